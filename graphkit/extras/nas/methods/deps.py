r"""DεpS: delayed ε-shrinking, a faster schedule for training a Once-for-All supernet.

From `DεpS: Delayed ε-Shrinking for Faster Once-For-All Training
<https://arxiv.org/abs/2407.06167>`_ (Annavajjala, Khare et al., ECCV 2024; official code
gatech-sysml/deps). It trains an :class:`~graphkit.extras.nas.methods.ofa.OFASupernet` in one
phase instead of progressive shrinking, with three changes:

- **FM-Warmup:** only the full (largest) model trains for the first ``fm_warmup`` share of the
  steps; shrinking (sampling subnets) is delayed until then.
- **ε-Shrinking:** when shrinking starts, the subnets' learning rate is the full model's times a
  factor ramped in ``ramp_steps`` equal increments from ε to 1, while the full model keeps its
  own rate (:meth:`DEpSSchedule.subnet_lr_factor`):

  .. math::
      \beta(t) = \begin{cases} 0 & t < t_s \\
      \varepsilon + (1 - \varepsilon)\,\min\!\big(1, \tfrac{t - t_s + 1}{R}\big) & t \ge t_s
      \end{cases}

- **IKD-Warmup:** each step, the full model's logits (from the same, still-training network)
  distil into every sampled subnet (in-place KD,
  :func:`~graphkit.extras.training.distill.kd_kl`).

One shrinking step (:class:`DEpSTrainer`) sums the gradients of the full model's cross-entropy,
the smallest subnet's and ``n_subnets - 2`` random subnets' KD losses, the subnet terms scaled
by :math:`\beta(t)` (the reference code's ``sum`` gradient aggregation; with plain SGD, scaling a
gradient is scaling its learning rate). The hidden channels are sorted by importance once, when
shrinking starts (the reference's ``--reorganize_weights``).

The reference run (MobileNetV3, 270 epochs) starts its 5-epoch ramp at epoch 145 and ends it at
epoch 150 (``--teacher_warmup 150 --smallnet_warmup 5``), i.e. ``fm_warmup`` ≈ 0.54; its ramp
raises the subnets' absolute rate towards the full model's rate at the ramp's end, where
:math:`\beta` here is relative to the current rate (the two differ by the full model's rate
change over the short ramp). With ``eps=0`` the increments are :math:`1/R, 2/R, \dots, 1`, as
in the reference.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.methods.ofa import OFASupernet
from graphkit.extras.training.distill import kd_kl

_PAPER = "DεpS: Delayed ε-Shrinking for Faster Once-For-All Training"


class DEpSSchedule:
    """When DεpS starts shrinking and how fast the subnets' learning rate ramps up.

    Args:
        total_steps (int): the training budget in optimiser steps.
        fm_warmup (float): share of the budget trained on the full model only, in ``[0, 1)``
            (default: ``0.5``).
        eps (float): the ramp's starting factor ε, in ``[0, 1]`` (default: ``0.0``).
        ramp_steps (int, optional): steps of the ramp from ε to 1 (default: the reference
            run's 5 of 270 epochs, ``max(1, round(total_steps * 5 / 270))``).
    """

    def __init__(
        self,
        total_steps: int,
        fm_warmup: float = 0.5,
        eps: float = 0.0,
        ramp_steps: int | None = None,
    ) -> None:
        if isinstance(total_steps, bool) or int(total_steps) != total_steps or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        if not 0.0 <= fm_warmup < 1.0:
            raise ValueError(f"fm_warmup must lie in [0, 1), got {fm_warmup}")
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"eps must lie in [0, 1], got {eps}")
        if ramp_steps is None:
            ramp_steps = max(1, round(total_steps * 5 / 270))
        if int(ramp_steps) != ramp_steps or ramp_steps < 1:
            raise ValueError(f"ramp_steps must be a positive integer, got {ramp_steps!r}")
        self.total_steps, self.fm_warmup = int(total_steps), fm_warmup
        self.eps, self.ramp_steps = eps, int(ramp_steps)
        #: the first step that trains subnets
        self.shrink_start = int(round(fm_warmup * total_steps))

    def _check(self, step: int) -> None:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")

    def shrinking(self, step: int) -> bool:
        """Whether subnets are trained at ``step`` (0-based)."""
        self._check(step)
        return step >= self.shrink_start

    def subnet_lr_factor(self, step: int) -> float:
        """:math:`\\beta(t)`: the subnets' learning rate relative to the full model's."""
        self._check(step)
        if step < self.shrink_start:
            return 0.0
        progress = min(1.0, (step - self.shrink_start + 1) / self.ramp_steps)
        return self.eps + (1.0 - self.eps) * progress

    def __repr__(self) -> str:
        return (
            f"DEpSSchedule(total_steps={self.total_steps}, fm_warmup={self.fm_warmup}, "
            f"eps={self.eps}, ramp_steps={self.ramp_steps}, shrink_start={self.shrink_start})"
        )


@register_model("deps", family="nas", paper=_PAPER)
class DEpSTrainer:
    """The DεpS training step on an :class:`~graphkit.extras.nas.methods.ofa.OFASupernet`.

    Args:
        supernet (OFASupernet): the supernet.
        schedule (DEpSSchedule): warm-up and ramp.
        n_subnets (int): networks per shrinking step: the full model, the smallest subnet and
            ``n_subnets - 2`` random ones, at least 2 (default: ``4``, the reference's
            ``--dynamic_batch_size``).
        temperature (float): in-place KD temperature (default: ``1.0``).
        reorganize (bool): sort hidden channels when shrinking starts (default: ``True``).
        seed (int): seed of the subnet sampler (default: ``0``).
    """

    def __init__(
        self,
        supernet: OFASupernet,
        schedule: DEpSSchedule,
        n_subnets: int = 4,
        temperature: float = 1.0,
        reorganize: bool = True,
        seed: int = 0,
    ) -> None:
        if not isinstance(supernet, OFASupernet):
            raise TypeError(f"supernet must be an OFASupernet, got {type(supernet).__name__}")
        if not isinstance(schedule, DEpSSchedule):
            raise TypeError(f"schedule must be a DEpSSchedule, got {type(schedule).__name__}")
        if n_subnets < 2:
            raise ValueError(f"n_subnets must be >= 2 (full and smallest), got {n_subnets}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.supernet, self.schedule = supernet, schedule
        self.n_subnets, self.temperature = n_subnets, temperature
        self.reorganize = reorganize
        self.rng = random.Random(seed)
        self.reorganized = False

    def train_step(
        self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer, step: int
    ) -> dict[str, float]:
        """One optimiser step at ``step``; returns the full model's loss and the factor used."""
        net, schedule = self.supernet, self.schedule
        shrinking = schedule.shrinking(step)
        if shrinking and self.reorganize and not self.reorganized:
            # before any forward of this step, so the gradients match the sorted weights
            net.sort_channels_()
            self.reorganized = True
        optimizer.zero_grad()
        net.set_active(net.max_config())
        logits = net(x)
        loss_full = F.cross_entropy(logits, y)
        loss_full.backward()
        beta = schedule.subnet_lr_factor(step)
        if shrinking:
            soft = logits.detach()
            configs = [net.min_config()]
            configs += [net.sample_config(self.rng) for _ in range(self.n_subnets - 2)]
            for cfg in configs:
                net.set_active(cfg)
                (beta * kd_kl(net(x), soft, T=self.temperature)).backward()
            net.set_active(net.max_config())
        optimizer.step()
        return {"loss_full": float(loss_full.detach()), "subnet_lr_factor": beta}
