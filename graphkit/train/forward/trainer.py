"""Per-layer optimisation with early stopping and best-checkpoint restore.

Forward learning trains each layer (or, for the top-down schemes, each time step of all layers)
with *its own* Adam optimiser; validation runs every ``val_every`` epochs and training stops
after ``patience`` checks without improvement, after which the best checkpoint is restored
(`facebookresearch/forwardgnn <https://github.com/facebookresearch/forwardgnn>`_ defaults: lr
``1e-3``, weight decay ``5e-4``, 1000 epochs, validation every 2 epochs, patience 100).

The early-stopping state is the shared :class:`graphkit.train.EarlyStopping` (re-exported here
as ``EarlyStopping``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from graphkit.data.validation import is_integer
from graphkit.train.early_stopping import EarlyStopping

__all__ = ["EarlyStopping", "LayerwiseTrainer", "StoppingLog", "local_step"]


def _finite(v: object) -> bool:
    """``v`` is a finite real number (not a bool): a Python or NumPy number, or a
    one-element real tensor."""
    if isinstance(v, Tensor):
        return v.numel() == 1 and not (v.is_complex() or v.dtype == torch.bool) \
            and math.isfinite(float(v))
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class StoppingLog:
    """What one early-stopped training did."""

    epochs: int = 0
    best_epoch: int = -1
    best_score: float | None = None
    losses: list[float] = field(default_factory=list)
    #: the validation score of every check, in order (epochs ``val_every``, ``2 val_every``, ...)
    val_scores: list[float] = field(default_factory=list)


def local_step(module: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor,
               grad_clip: float | None = None) -> Tensor:
    """``zero_grad``, ``backward``, optional gradient-norm clipping of ``module``, ``step``, and
    ``zero_grad`` again: the gradients are freed as soon as they are applied, so they do not
    stay allocated through the validation pass, the hand-off to the next layer or the next
    step's forward pass (the next step starts from zero gradients either way).

    Returns the detached loss as a tensor: reading it as a float would wait for the device at
    every step.
    """
    optimizer.zero_grad()
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


class LayerwiseTrainer:
    """Optimiser factory and early-stopping loop shared by every forward-learning scheme.

    Args:
        epochs (int): maximum epochs per layer (per run for top-down schemes). (default: 1000)
        lr (float): Adam learning rate. (default: 1e-3)
        weight_decay (float): Adam weight decay. (default: 5e-4)
        val_every (int): epochs between validation checks. (default: 2)
        patience (int): checks without improvement before stopping. (default: 100)
        grad_clip (float, optional): clip each layer's gradient norm. (default: :obj:`None`)
    """

    def __init__(self, epochs: int = 1000, lr: float = 1e-3, weight_decay: float = 5e-4,
                 val_every: int = 2, patience: int = 100, grad_clip: float | None = None) -> None:
        # a float count failed in range() inside fit (epochs) or was taken as it is: a check
        # every 1.5 epochs validated every third epoch only (val_every)
        for name, v in (("epochs", epochs), ("val_every", val_every), ("patience", patience)):
            if not is_integer(v) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        # an infinite or NaN rate trains to NaN, which surfaced later as a metrics error
        if not _finite(lr) or not lr > 0:
            raise ValueError(f"lr must be positive and finite, got {lr!r}")
        if not _finite(weight_decay) or weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative and finite, got "
                             f"{weight_decay!r}")
        if grad_clip is not None and not (_finite(grad_clip) and grad_clip > 0):
            raise ValueError(f"grad_clip must be None or positive and finite, got {grad_clip!r} "
                             "(0 would zero every gradient, NaN make them NaN; None: no "
                             "clipping)")
        self.epochs, self.lr, self.weight_decay = epochs, lr, weight_decay
        self.val_every, self.patience, self.grad_clip = val_every, patience, grad_clip

    def optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        """A fresh Adam over ``module``'s parameters only."""
        return torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def step(self, module: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor) -> Tensor:
        """One :func:`local_step` with this trainer's gradient clipping."""
        return local_step(module, optimizer, loss, self.grad_clip)

    def fit(self, module: nn.Module, epoch_fn: Callable[[], Tensor | float],
            score_fn: Callable[[], float]) -> StoppingLog:
        """Run ``epoch_fn`` (one epoch of optimisation, returning the loss) up to ``epochs``
        times, validating with ``score_fn`` (higher is better, run under ``no_grad`` in eval
        mode), and restore ``module``'s best checkpoint at the end (none when no check ran).
        The first check always improves and the first of equal scores is kept."""
        stopper = EarlyStopping("max", self.patience)
        log = StoppingLog()
        losses: list[Tensor | float] = []  # read as floats once, after training
        for epoch in range(self.epochs):
            module.train()
            losses.append(epoch_fn())
            log.epochs = epoch + 1
            if (epoch + 1) % self.val_every == 0:
                module.eval()
                with torch.no_grad():
                    score = float(score_fn())
                log.val_scores.append(score)
                if stopper.step(score, epoch=epoch):
                    log.best_epoch, log.best_score = epoch, score
                    stopper.snapshot(module)
                if stopper.should_stop:
                    break
        log.losses = [float(v) for v in losses]
        stopper.restore(module)
        module.eval()
        return log

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(epochs={self.epochs}, lr={self.lr}, "
                f"weight_decay={self.weight_decay}, val_every={self.val_every}, "
                f"patience={self.patience}, grad_clip={self.grad_clip})")
