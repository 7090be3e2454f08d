"""Random pruning at initialisation with ER / ERK layer densities (Liu et al., "The Unreasonable
Effectiveness of Random Pruning: Return of the Most Naive Baseline for Sparse Training",
https://arxiv.org/abs/2202.02643; official code VITA-Group/Random_Pruning).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.allocation import erdos_renyi, round_counts, uniform
from graphkit.extras.sparsity.masks import Pruner

ALLOCATIONS = ("erk", "er", "uniform")


@register_model(
    "random_pruning",
    family="pruning",
    paper="The Unreasonable Effectiveness of Random Pruning: Return of the Most Naive "
    "Baseline for Sparse Training",
)
class RandomPruning(Pruner):
    r"""Static random sparsity: masks drawn uniformly at random once, then kept fixed.

    Layer densities follow ``allocation``: ``"erk"``
    :math:`d_l \propto \big(\tfrac{n^{in}+n^{out}+k^h+k^w}{n^{in} n^{out} k^h k^w}\big)^p`,
    ``"er"`` the same without kernel terms, or ``"uniform"``; the factor is solved so the
    parameter-weighted density is ``density``, layers that would pass 1 are made dense and the
    rest solved again (:func:`~graphkit.extras.sparsity.allocation.erdos_renyi`). Densities are
    rounded to whole weights by largest remainder, so the realised global count is
    ``round(density * N)`` exactly. Within a layer, the kept positions are a uniform random
    subset of that size. Training then updates only kept weights (:meth:`step` does nothing).

    Args:
        model: the model to prune.
        density: global density over the pruned layers.
        allocation: ``"erk"``, ``"er"`` or ``"uniform"``. (default: ``"erk"``)
        power_scale: ERK exponent ``p``, as the official code's ``erk_power_scale``.
            (default: ``1.0``)
        dense_layers: module names kept dense (they still count in the global density).
            (default: none)
        dense_first_last: also keep the first and last pruned layer dense. (default: ``False``)
        seed: seed of the masks' generator; ``None`` uses torch's global generator.
            (default: ``None``)
        layers: module names to prune. (default: every ``Linear`` / ``Conv*d``)
    """

    def __init__(
        self,
        model: nn.Module,
        density: float,
        allocation: str = "erk",
        power_scale: float = 1.0,
        dense_layers: Iterable[str] = (),
        dense_first_last: bool = False,
        seed: int | None = None,
        layers: Iterable[str] | None = None,
    ) -> None:
        if allocation not in ALLOCATIONS:
            raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
        super().__init__(model, None, None, "uniform", layers)
        self.kind = allocation
        self.power_scale = power_scale
        self.dense = set(dense_layers)
        if dense_first_last:
            names = list(self.layers)
            self.dense |= {names[0], names[-1]}
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.densities = self.prune(density)

    def score(self, name: str, module: nn.Module) -> Tensor:
        """Uniform random scores: the kept set is a uniform random subset."""
        weight = self.weight(name)
        scores = torch.rand(weight.shape, generator=self.generator)
        return scores.to(weight.device)

    def allocate(self, scores: Mapping[str, Tensor], density: float) -> dict[str, float]:
        shapes = {name: tuple(s.shape) for name, s in scores.items()}
        if self.kind == "uniform":
            densities = uniform(shapes, density, self.dense)
        else:
            densities = erdos_renyi(
                shapes, density, self.kind == "erk", self.power_scale, self.dense
            )
        sizes = {name: s.numel() for name, s in scores.items()}
        counts = round_counts(densities, sizes)
        return {name: counts[name] / sizes[name] for name in scores}
