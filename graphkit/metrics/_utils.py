"""Input conversion shared by the metric functions."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def as_tensor(x: Any, name: str, allow_empty: bool = False) -> Tensor:
    """``x`` (tensor, array or sequence) as a detached tensor; a ``ValueError`` if it is empty
    (unless ``allow_empty``)."""
    if isinstance(x, Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a tensor or an array: {exc}") from exc
    if t.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    return t


def check_finite(t: Tensor, name: str) -> None:
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")


def check_binary(t: Tensor, name: str) -> Tensor:
    """``t`` as a bool tensor; a ``ValueError`` if it holds values other than 0 and 1."""
    if t.dtype == torch.bool:
        return t
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"{name} must hold only 0 and 1 (binary labels)")
    return t == 1
