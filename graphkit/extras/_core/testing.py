"""Acceptance helpers shared by the catalogue's tests (exact unless a tolerance is justified)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.counting import count_macs, count_params
from graphkit.extras._core.modules import eval_mode


def _check_close(name: str, got: float, expected: float, rel: float) -> None:
    if rel == 0.0:
        if got != expected:
            raise AssertionError(f"{name}: got {got:,}, expected exactly {expected:,}")
    elif abs(got - expected) > rel * abs(expected):
        raise AssertionError(
            f"{name}: got {got:,}, expected {expected:,} within {rel:.1%} "
            f"(off by {abs(got - expected) / abs(expected):.2%})"
        )


def assert_params(model: nn.Module, expected: int, rel: float = 0.0) -> None:
    """The model has ``expected`` parameters, exactly unless ``rel`` allows a share."""
    _check_close("parameters", count_params(model), expected, rel)


def assert_macs(
    model: nn.Module, input_shape: Sequence[int] | Tensor, expected: int, rel: float = 0.0
) -> None:
    """The model's eval forward costs ``expected`` MACs (see :func:`count_macs`)."""
    _check_close("MACs", count_macs(model, input_shape), expected, rel)


@torch.no_grad()
def assert_same_function(
    reference: nn.Module, candidate: nn.Module, *inputs: Tensor, atol: float = 1e-5
) -> None:
    """Two modules give the same outputs on ``inputs`` (both in eval mode), to ``atol``."""
    with eval_mode(reference, candidate):
        want, got = reference(*inputs), candidate(*inputs)
    if want.shape != got.shape:
        raise AssertionError(f"output shapes differ: {tuple(want.shape)} vs {tuple(got.shape)}")
    err = (want - got).abs().max().item() if want.numel() else 0.0
    if not err <= atol:
        raise AssertionError(f"outputs differ by up to {err:.3g} (atol {atol:g})")
