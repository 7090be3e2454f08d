"""Seeding and an opt-in deterministic mode, for reproducible runs."""

from __future__ import annotations

import os
import random
from types import TracebackType

import numpy as np
import torch

__all__ = ["seed_everything", "deterministic"]


def seed_everything(seed: int) -> None:
    """Seed Python's :mod:`random`, NumPy's global generator and torch (CPU and every CUDA device).

    Args:
        seed (int): a non-negative integer below :math:`2^{32}`.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


class deterministic:  # noqa: N801  (used like torch.set_grad_enabled)
    """Switch deterministic algorithms on (or off); also usable as a context manager.

    Sets :func:`torch.use_deterministic_algorithms`, ``torch.backends.cudnn.deterministic``
    (and turns cuDNN benchmarking off), and ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` when it is unset,
    which cuBLAS needs for reproducible results on CUDA. Called as a function the setting stays;
    used in a ``with`` block the previous setting is restored on exit::

        deterministic()              # from now on
        with deterministic():        # only inside the block
            ...

    Operations without a deterministic implementation then raise a ``RuntimeError``
    (or only warn with ``warn_only=True``).

    Args:
        enabled (bool): switch deterministic mode on or off. (default: :obj:`True`)
        warn_only (bool): warn instead of raising for non-deterministic operations.
            (default: :obj:`False`)
    """

    def __init__(self, enabled: bool = True, warn_only: bool = False) -> None:
        self._previous = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
            os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        )
        self.enabled = bool(enabled)
        if self.enabled and "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.use_deterministic_algorithms(self.enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic = self.enabled
        torch.backends.cudnn.benchmark = False if self.enabled else self._previous[3]

    def __enter__(self) -> deterministic:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        algorithms, warn_only, cudnn_det, cudnn_bench, cublas = self._previous
        torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
        torch.backends.cudnn.deterministic = cudnn_det
        torch.backends.cudnn.benchmark = cudnn_bench
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas

    def __repr__(self) -> str:
        return f"deterministic(enabled={self.enabled})"
