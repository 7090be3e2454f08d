"""Argument checks shared by the catalogue's modules (one wording for one kind of mistake)."""

from __future__ import annotations

from torch import Tensor


def check_positive(**values: int) -> None:
    """Every keyword is a positive integer, else a ``ValueError`` naming it."""
    for name, value in values.items():
        if isinstance(value, bool) or int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_fraction(name: str, value: float) -> float:
    """``value`` lies in ``[0, 1)`` (a dropout or drop-path probability, a sparsity)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


def check_image(x: Tensor, channels: int, who: str) -> None:
    """``x`` is a ``(B, channels, H, W)`` batch, else a ``ValueError`` naming ``who``."""
    if x.dim() != 4:
        raise ValueError(f"{who} expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.size(1) != channels:
        raise ValueError(f"{who} expects {channels} input channels, got {x.size(1)}")
