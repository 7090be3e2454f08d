"""Iterative Soft Shrinkage-Percentage (Wang et al., "Iterative Soft Shrinkage Learning for
Efficient Image Super-Resolution", ICCV 2023, https://arxiv.org/abs/2211.13654; official code
Jiamian-Wang/Iterative-Soft-Shrinkage-SR).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.masks import Pruner
from graphkit.extras.sparsity.schedules import Schedule


@register_model(
    "iss_p",
    family="pruning",
    paper="Iterative Soft Shrinkage Learning for Efficient Image Super-Resolution",
)
class ISSPPruner(Pruner):
    r"""Unstructured pruning from random init by iterative soft shrinkage, then a frozen mask.

    Pruning stage, every iteration :math:`k \le K_p` (call :meth:`step` after the optimiser
    step): in each layer the share :math:`p_k` of weights with the smallest :math:`|w|` is
    shrunk in proportion to its own magnitude,

    .. math::
        w \leftarrow (1 - \alpha)\, w \quad \text{for the } p_k \text{ share of smallest }
        |w| \text{ of each layer}

    (``N - round((1 - p_k) N)`` weights of a layer of ``N``) instead of being zeroed, so a
    shrunk weight the gradient favours can grow back and the sparse structure keeps changing.
    The shrink multiplies the dense latent weight in place, as the official code multiplies the
    weights, so it compounds while a weight stays low. At :math:`k = K_p`, after that
    iteration's shrink, the mask :math:`M[K_p]` (each layer's ``target_sparsity`` smallest
    magnitudes pruned) is fixed, the pruned latent weights are zeroed, and fine-tuning
    continues with the mask frozen (later steps do nothing).

    :math:`p_k` is ``schedule(k)`` when a schedule is given (a percentage schedule rising to
    the target, e.g. :class:`~graphkit.extras.sparsity.schedules.CubicSchedule`), else the
    target at every iteration, as the official code does (its per-layer ``pr``). The official
    code's multiplier ``ist_ratio`` is :math:`1 - \alpha` here.

    Args:
        model: the model to prune (any ``Linear`` / ``Conv*d`` model, e.g. an EDSR-style net).
        target_sparsity: per-layer sparsity of the final mask.
        prune_iters: :math:`K_p`, the last iteration of the pruning stage (``>= 0``).
        shrink: :math:`\alpha` in ``(0, 1]``; ``1`` zeroes the share each iteration (iterative
            hard thresholding). (default: ``0.1``, a choice of this implementation)
        schedule: optional :math:`p_k`. (default: ``None``: the target)
        layers: module names to prune. (default: every ``Linear`` / ``Conv*d``)
    """

    def __init__(
        self,
        model: nn.Module,
        target_sparsity: float,
        prune_iters: int,
        shrink: float = 0.1,
        schedule: Schedule | None = None,
        layers: Iterable[str] | None = None,
    ) -> None:
        if not 0.0 <= target_sparsity <= 1.0:
            raise ValueError(f"target_sparsity must lie in [0, 1], got {target_sparsity}")
        if not 0.0 < shrink <= 1.0:
            raise ValueError(f"shrink must lie in (0, 1], got {shrink}")
        if isinstance(prune_iters, bool) or not float(prune_iters).is_integer() or prune_iters < 0:
            raise ValueError(f"prune_iters must be an integer >= 0, got {prune_iters!r}")
        super().__init__(model, schedule, None, "uniform", layers)
        self.target_sparsity = float(target_sparsity)
        self.prune_iters = int(prune_iters)
        self.shrink = float(shrink)
        self.frozen = False

    def share(self, k: int) -> float:
        """:math:`p_k`, the share of each layer shrunk at iteration ``k``."""
        return self.target_sparsity if self.schedule is None else self.schedule(k)

    @torch.no_grad()
    def shrink_step(self, share: float) -> dict[str, torch.Tensor]:
        """Multiply each layer's ``share`` smallest ``|w|`` by ``1 - shrink``.

        Returns ``{layer: boolean tensor of the shrunk positions}``.
        """
        shrunk = {}
        for name, module in self.layers.items():
            latent = self.latent(name)
            low = ~self.select(name, self.score(name, module), 1.0 - share)
            latent[low] *= 1.0 - self.shrink
            shrunk[name] = low
        return shrunk

    def step(self, global_step: int) -> bool:
        """Shrink (``global_step <= prune_iters``); freeze the mask at ``prune_iters``."""
        if self.frozen:
            return False
        if global_step <= self.prune_iters:
            self.shrink_step(self.share(global_step))
        if global_step >= self.prune_iters:
            self.prune(1.0 - self.target_sparsity)
            self.frozen = True
        return True

    def masks(self) -> dict[str, torch.Tensor]:
        """The current boolean masks (all kept until the mask is frozen)."""
        return {name: self.mask(name).clone() for name in self.layers}
