"""Early stopping and best-checkpoint tracking, shared by every training loop of graphkit.

:class:`EarlyStopping` is the state (best value, the step that reached it, steps since, the
best weights); the loops decide when to validate and what to do with a stop.
:func:`pyg_citation_stop` is the stopping rule of PyG's ``benchmark/citation``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

__all__ = ["EarlyStopping", "pyg_citation_stop"]

_MODES = ("max", "min")
_TIES = ("first", "last")
_COPIES = ("deepcopy", "clone")


class EarlyStopping:
    """Track the best of a validation (or training) value and stop after ``patience`` steps
    without improvement.

    Call :meth:`step` once per evaluation; it returns whether the value improved, after which
    the loop takes a :meth:`snapshot` of the weights if it wants them back. :attr:`should_stop`
    says whether ``patience`` steps in a row failed to improve. :meth:`restore` loads the kept
    weights.

    Improvement is strict by default (``ties="first"``: the first of equal values is kept);
    ``ties="last"`` keeps the last. A NaN value never improves on a number, and a NaN best is
    never improved on (comparisons with NaN are false).

    The loops differ in two ways, each an explicit argument here:

    * **Is the initial state a candidate?** With ``baseline=None`` (default) the first value
      always improves. With a number, the first value must beat ``baseline``; call
      :meth:`snapshot` before the first step to make the initial weights the fallback, reported
      as epoch ``baseline_epoch``. (Static link prediction: ``baseline=-1.0``; contrastive
      training: ``baseline=inf`` on the loss; temporal link prediction: ``baseline=-inf`` with
      no initial snapshot.)
    * **patience**: ``None`` never stops; an integer ``>= 1`` stops once ``patience``
      consecutive steps failed to improve (``0`` is rejected: every loop rejects it).

    Args:
        mode (str): ``"max"`` (higher is better, e.g. accuracy) or ``"min"`` (e.g. a loss).
        patience (int, optional): steps without improvement before :attr:`should_stop`.
            (default: :obj:`None`, never)
        ties (str): ``"first"`` (strict improvement) or ``"last"``. (default: ``"first"``)
        baseline (float, optional): the value the initial state holds. (default: :obj:`None`)
        baseline_epoch (int, optional): :attr:`best_epoch` until the first improvement.
        copy_mode (str): how :meth:`snapshot` copies the state dict: ``"deepcopy"``
            (``copy.deepcopy(module.state_dict())``: keeps non-tensor extra state and the
            state dict's version metadata) or ``"clone"`` (a plain dict of
            ``tensor.detach().clone()``). (default: ``"deepcopy"``)

    Attributes:
        best: the best value so far (``baseline`` before any improvement).
        best_epoch: the ``epoch`` passed to the improving :meth:`step` (its 1-based step number
            when none was passed); ``baseline_epoch`` before any improvement.
        num_bad: consecutive steps without improvement.
        num_steps: steps taken.
        best_state: the last :meth:`snapshot` (``None`` before one).

    The attributes are plain values: a loop that checkpoints may save and set them.
    """

    def __init__(self, mode: str = "max", patience: int | None = None, *, ties: str = "first",
                 baseline: float | None = None, baseline_epoch: int | None = None,
                 copy_mode: str = "deepcopy") -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if patience is not None and not patience >= 1:
            raise ValueError(f"patience must be None or >= 1, got {patience}")
        if ties not in _TIES:
            raise ValueError(f"ties must be one of {_TIES}, got {ties!r}")
        if copy_mode not in _COPIES:
            raise ValueError(f"copy_mode must be one of {_COPIES}, got {copy_mode!r}")
        self.mode, self.patience, self.ties, self.copy_mode = mode, patience, ties, copy_mode
        self.best: float | None = baseline
        self.best_epoch: int | None = baseline_epoch
        self.num_bad = 0
        self.num_steps = 0
        self.best_state: dict[str, Any] | None = None

    def improves(self, value: float) -> bool:
        """Whether ``value`` would improve on :attr:`best` (no state change)."""
        if self.best is None:
            return True
        if self.ties == "first":
            return value > self.best if self.mode == "max" else value < self.best
        return value >= self.best if self.mode == "max" else value <= self.best

    def step(self, value: float, *, epoch: int | None = None) -> bool:
        """Record ``value`` (of ``epoch``); return whether it improved on the best."""
        self.num_steps += 1
        if self.improves(value):
            self.best = value
            self.best_epoch = self.num_steps if epoch is None else epoch
            self.num_bad = 0
            return True
        self.num_bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        """``patience`` consecutive steps failed to improve (never when ``patience`` is None)."""
        return self.patience is not None and self.num_bad >= self.patience

    def snapshot(self, module: nn.Module) -> None:
        """Keep a copy of ``module``'s state dict as :attr:`best_state` (see ``copy_mode``)."""
        state = module.state_dict()
        if self.copy_mode == "clone":
            self.best_state = {k: v.detach().clone() for k, v in state.items()}
        else:
            self.best_state = copy.deepcopy(state)

    def restore(self, module: nn.Module) -> bool:
        """Load :attr:`best_state` into ``module``; ``False`` (nothing loaded) before any
        :meth:`snapshot`."""
        if self.best_state is None:
            return False
        module.load_state_dict(self.best_state)
        return True

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(mode={self.mode!r}, patience={self.patience}, "
                f"best={self.best}, best_epoch={self.best_epoch}, num_bad={self.num_bad})")


def pyg_citation_stop(losses: Sequence[float], patience: int, epochs: int) -> bool:
    r"""The early-stopping rule of PyG's ``benchmark/citation`` (used by DAGNN).

    With ``losses`` the validation losses of epochs ``1..t`` (``t = len(losses)``): once
    ``t > epochs // 2``, stop when the current loss exceeds the mean of the previous
    ``patience`` ones, :math:`\ell_t > \frac{1}{p}\sum_{s=t-p}^{t-1} \ell_s` (fewer when fewer
    were recorded).
    """
    epoch = len(losses)
    previous = list(losses[-(patience + 1):-1])
    if epoch <= epochs // 2 or not previous:
        return False
    return losses[-1] > sum(previous) / len(previous)
