"""Sparsity schedules: the target sparsity at each training step and when to prune.

A schedule is called with a step and returns the sparsity (share of weights pruned) wanted
there; :meth:`Schedule.is_update_step` says whether the pruner acts at that step.
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping


def _is_int(value: object) -> bool:
    """An integral number (``3`` or ``3.0``), not a bool, a fraction, NaN or inf."""
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and float(value).is_integer()
    )


def _check_sparsity(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


class Schedule(ABC):
    """Base class: ``schedule(step) -> sparsity`` plus the steps at which to prune."""

    @abstractmethod
    def __call__(self, step: int) -> float: ...

    @abstractmethod
    def is_update_step(self, step: int) -> bool: ...

    @property
    @abstractmethod
    def final(self) -> float:
        """The sparsity the schedule ends at."""


class _Ramp(Schedule):
    """Shared part of ramps from ``s_i`` to ``s_f`` pruned at ``t0 + k*dt``, ``k = 0..n``."""

    def __init__(self, s_f: float, t0: int = 0, n: int = 1, dt: int = 1, s_i: float = 0.0):
        self.s_i = _check_sparsity("s_i", s_i)
        self.s_f = _check_sparsity("s_f", s_f)
        for name, value in (("t0", t0), ("n", n), ("dt", dt)):
            if not _is_int(value):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if int(n) < 1 or int(dt) < 1 or int(t0) < 0:
            raise ValueError(f"need t0 >= 0, n >= 1 and dt >= 1, got t0={t0}, n={n}, dt={dt}")
        self.t0, self.n, self.dt = int(t0), int(n), int(dt)

    @property
    def end(self) -> int:
        return self.t0 + self.n * self.dt

    @property
    def final(self) -> float:
        return self.s_f

    def _progress(self, step: int) -> float:
        return min(max((step - self.t0) / (self.n * self.dt), 0.0), 1.0)

    def is_update_step(self, step: int) -> bool:
        return self.t0 <= step <= self.end and (step - self.t0) % self.dt == 0

    def __call__(self, step: int) -> float:
        progress = self._progress(step)
        # the end points exactly, not up to the rounding of the formula
        if progress == 0.0:
            return self.s_i
        return self.s_f if progress == 1.0 else self._ramp(progress)

    @abstractmethod
    def _ramp(self, progress: float) -> float:
        """The sparsity at ``progress`` in (0, 1) of the ramp."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(s_i={self.s_i}, s_f={self.s_f}, t0={self.t0}, "
            f"n={self.n}, dt={self.dt})"
        )


class CubicSchedule(_Ramp):
    r"""Gradual pruning schedule of Zhu & Gupta, "To prune, or not to prune"
    (https://arxiv.org/abs/1710.01878):

    .. math::
        s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{n\,\Delta t}\right)^3,
        \quad t \in \{t_0, t_0 + \Delta t, \dots, t_0 + n\Delta t\}

    ``s_i`` before ``t0`` and ``s_f`` after the last pruning step; prunes fast early, when
    redundant weights are plentiful, and slowly near the end.

    Args:
        s_f: final sparsity.
        t0: first pruning step. (default: ``0``)
        n: number of pruning intervals. (default: ``1``)
        dt: steps between pruning steps. (default: ``1``)
        s_i: initial sparsity. (default: ``0.0``)
    """

    def _ramp(self, progress: float) -> float:
        return self.s_f + (self.s_i - self.s_f) * (1.0 - progress) ** 3


class LinearSchedule(_Ramp):
    """Sparsity rising linearly from ``s_i`` at ``t0`` to ``s_f`` at ``t0 + n*dt``.

    Args: as :class:`CubicSchedule`.
    """

    def _ramp(self, progress: float) -> float:
        return self.s_i + (self.s_f - self.s_i) * progress


class StepSchedule(Schedule):
    """Piecewise-constant sparsity: ``milestones[t]`` from step ``t`` on (``0`` before the first).

    Args:
        milestones: ``{step: sparsity}``; the pruner acts exactly at these steps.
    """

    def __init__(self, milestones: Mapping[int, float]):
        if not milestones:
            raise ValueError("StepSchedule needs at least one milestone")
        fractional = [t for t in milestones if not _is_int(t)]
        if fractional:
            raise ValueError(f"milestone steps must be integers, got {fractional}")
        self.milestones = {
            int(t): _check_sparsity(f"milestone {t}", s) for t, s in sorted(milestones.items())
        }
        if min(self.milestones) < 0:
            raise ValueError("milestone steps must be >= 0")

    @property
    def final(self) -> float:
        return self.milestones[max(self.milestones)]

    def __call__(self, step: int) -> float:
        value = 0.0
        for t, s in self.milestones.items():
            if step >= t:
                value = s
        return value

    def is_update_step(self, step: int) -> bool:
        return step in self.milestones

    def __repr__(self) -> str:
        return f"StepSchedule({self.milestones})"
