"""Argument checks shared by the catalogue's modules (one wording for one kind of mistake)."""

from __future__ import annotations

import operator
from collections.abc import Iterable

from torch import Tensor, nn


def check_positive(**values: int) -> None:
    """Every keyword is a positive integer (a Python or NumPy integer, not a float such as
    ``5.0``, which ``nn.Linear`` would reject later with a torch error), else a ``ValueError``
    naming it."""
    for name, value in values.items():
        try:
            whole = operator.index(value)
        except TypeError:
            whole = None
        if isinstance(value, bool) or whole is None or whole <= 0:
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


def _side_out(m: nn.Module, n: int, dim: int) -> int:
    """Output length along ``dim`` (0 rows, 1 columns) of a conv or pooling layer fed ``n``."""

    def pick(v: int | tuple[int, ...] | str) -> int | str:
        return v if isinstance(v, int | str) else v[dim]

    k, s, p = pick(m.kernel_size), pick(m.stride), pick(m.padding)
    d = pick(getattr(m, "dilation", 1))
    if p == "same":
        return n
    p = 0 if p == "valid" else p
    span = n + 2 * p - d * (k - 1) - 1
    if getattr(m, "ceil_mode", False):
        out = -(-span // s) + 1
        return out - 1 if (out - 1) * s >= n + p else out
    return span // s + 1


def min_input_size(modules: Iterable[nn.Module], limit: int = 4096) -> tuple[int, int]:
    """The smallest ``(H, W)`` that the 2-D convolutions and max / average pools among
    ``modules``, applied one after the other, keep at least one pixel wide (other modules
    are taken to keep the size). ``limit`` bounds the search."""
    layers = [m for m in modules if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d)]

    def fits(n: int, dim: int) -> bool:
        for m in layers:
            n = _side_out(m, n, dim)
            if n < 1:
                return False
        return True

    return tuple(  # type: ignore[return-value]
        next((n for n in range(1, limit + 1) if fits(n, dim)), limit) for dim in (0, 1)
    )


def check_min_size(x: Tensor, min_size: tuple[int, int], who: str) -> None:
    """``x``'s last two sides reach ``min_size``, else a ``ValueError`` naming ``who``."""
    h, w = x.shape[-2:]
    if h < min_size[0] or w < min_size[1]:
        raise ValueError(
            f"{who} needs images of at least {min_size[0]}x{min_size[1]} pixels (its strides "
            f"and pools would shrink a smaller one to nothing), got {h}x{w}"
        )
