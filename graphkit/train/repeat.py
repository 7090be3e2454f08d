"""Repeat an experiment over seeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from graphkit.train.seed import seed_everything

__all__ = ["run_repeated"]

T = TypeVar("T")


def run_repeated(fn: Callable[[int], T], runs: int, seed: int = 0) -> list[T]:
    """Call ``fn(r)`` for ``r = 0 .. runs - 1``, seeding everything with ``seed + r`` first.

    This is the benchmark convention (``--runs``, ``--seed``: run ``r`` uses ``seed + r``), so
    run ``r`` is reproducible on its own.

    Returns:
        The list of ``fn``'s results, one per run.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    results = []
    for r in range(runs):
        seed_everything(seed + r)
        results.append(fn(r))
    return results
