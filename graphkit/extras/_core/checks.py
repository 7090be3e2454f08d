"""Argument checks shared by the catalogue's modules (one wording for one kind of mistake)."""

from __future__ import annotations


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
