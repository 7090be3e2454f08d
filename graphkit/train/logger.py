"""A logger over runs with the OGB examples' conventions (``examples/*/logger.py``)."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["Logger"]

_KEYS = ("highest_train", "highest_valid", "final_train", "final_test")
_LABELS = ("Highest Train", "Highest Valid", "  Final Train", "   Final Test")


class Logger:
    """Collect ``(train, valid, test)`` metrics per epoch and run; select by best validation.

    Within a run the selected epoch is the first with the highest validation value; the run
    reports the highest train and validation values, and the train and test values at the
    selected epoch ("final"). Over runs, each is summarised as mean and sample standard
    deviation (0 for a single run). Values are stored as given (fractions);
    :meth:`print_statistics` prints percentages like OGB's logger.

    Args:
        runs (int): number of runs.
        info (object, optional): anything to keep beside the results (e.g. the arguments).
    """

    def __init__(self, runs: int, info: object = None) -> None:
        if runs < 1:
            raise ValueError(f"runs must be >= 1, got {runs}")
        self.info = info
        self.results: list[list[tuple[float, float, float]]] = [[] for _ in range(runs)]

    def add_result(self, run: int, result: Sequence[float]) -> None:
        """Append one epoch's ``(train, valid, test)`` values to run ``run`` (0-based).

        ``test`` may be NaN (no test split); a NaN ``train`` or ``valid`` value raises a
        ``ValueError``: it would silently decide or hide the selected epoch."""
        if len(result) != 3:
            raise ValueError(f"result must be (train, valid, test), got {len(result)} values")
        if not 0 <= run < len(self.results):
            raise ValueError(f"run must lie in [0, {len(self.results)}), got {run}")
        values = tuple(float(v) for v in result)
        for name, v in zip(("train", "valid"), values):
            if math.isnan(v):
                raise ValueError(f"the {name} value of run {run} is NaN: the best-validation "
                                 "selection and the highest train value need numbers")
        self.results[run].append(values)

    def run_statistics(self, run: int) -> dict[str, float]:
        """``highest_train``, ``highest_valid``, ``final_train``, ``final_test`` of one run."""
        if not 0 <= run < len(self.results):
            raise ValueError(f"run must lie in [0, {len(self.results)}), got {run}")
        rows = self.results[run]
        if not rows:
            raise ValueError(f"run {run} has no results")
        best = max(range(len(rows)), key=lambda i: (rows[i][1], -i))  # first highest valid
        return {
            "highest_train": max(r[0] for r in rows),
            "highest_valid": rows[best][1],
            "final_train": rows[best][0],
            "final_test": rows[best][2],
        }

    def statistics(self) -> dict[str, tuple[float, float]]:
        """``(mean, std)`` over the runs that have results, for each key of
        :meth:`run_statistics`."""
        per_run = [self.run_statistics(r) for r, rows in enumerate(self.results) if rows]
        if not per_run:
            raise ValueError("no results were added")
        out = {}
        for key in _KEYS:
            values = [s[key] for s in per_run]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            out[key] = (statistics.fmean(values), std)
        return out

    def print_statistics(self, run: int | None = None, file: TextIO | None = None) -> None:
        """Print one run's statistics, or (``run=None``) mean ± std over all runs, in %."""
        file = file or sys.stdout
        if run is not None:
            stats = self.run_statistics(run)
            print(f"Run {run + 1:02d}:", file=file)
            for key, label in zip(_KEYS, _LABELS):
                print(f"{label}: {100 * stats[key]:.2f}", file=file)
            return
        summary = self.statistics()
        print("All runs:", file=file)
        for key, label in zip(_KEYS, _LABELS):
            mean, std = summary[key]
            std_text = f"{100 * std:.2f}" if not math.isnan(std) else "nan"
            print(f"{label}: {100 * mean:.2f} ± {std_text}", file=file)
