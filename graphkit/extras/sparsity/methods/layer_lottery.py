r"""Layer pruning at initialisation (Jordao et al., "When Layers Play the Lottery, all Tickets Win
at Initialization", https://arxiv.org/abs/2301.10835).

Whole residual blocks are scored at initialisation by summing a pruning-at-init saliency over
their weights, and the lowest-scored blocks are removed (their identity shortcut remains);
the shallower network is then trained from the same initial weights. The saliencies are

* SNIP (Lee et al., https://arxiv.org/abs/1810.02340): :math:`|g \odot \theta|`,
* GraSP (Wang et al., https://arxiv.org/abs/2002.07376): :math:`S = -\theta \odot H g`, where
  :math:`g = \nabla_\theta L` and :math:`H` is the Hessian of the loss. GraSP prunes the weights
  of *largest* :math:`S` (their removal reduces the gradient flow least), so a block's
  importance here is :math:`-\sum S = \sum \theta \odot Hg` and the lowest are removed,
* random scores, the baseline.

The removal is the ``layer`` granularity of the pruning family: a :class:`LayerGate` around
the block, which passes its input through when the gate is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.modules import replace_module
from graphkit.extras._core.registry import register_model

__all__ = [
    "CRITERIA",
    "LayerGate",
    "LayerTicketPruner",
    "grasp_saliency",
    "hessian_gradient_product",
    "snip_saliency",
]

#: The block-scoring criteria of :class:`LayerTicketPruner`.
CRITERIA = ("grasp", "snip", "random")

Loss = Callable[[Tensor, Tensor], Tensor]


class LayerGate(nn.Module):
    r"""The ``layer`` granularity: :math:`y = F(x)` when open, :math:`y = x` when closed.

    Closing the gate of a residual block :math:`y = x + F(x)` (or ``relu`` of it, after a
    ``relu``) leaves its identity shortcut; the block's weights stay, unused.

    Args:
        block: the wrapped block; it must map its input to a tensor of the same shape for the
            gate to be closed.
        active: whether the gate starts open. (default: ``True``)
    """

    def __init__(self, block: nn.Module, active: bool = True) -> None:
        super().__init__()
        self.block = block
        self.register_buffer("active", torch.tensor(bool(active)))

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) if bool(self.active) else x

    def extra_repr(self) -> str:
        return f"active={bool(self.active)}"


def _weights(module: nn.Module) -> list[nn.Parameter]:
    """The weight matrices / kernels of ``module`` (parameters of two or more dims)."""
    return [p for p in module.parameters() if p.dim() > 1 and p.requires_grad]


def hessian_gradient_product(
    model: nn.Module, loss_fn: Loss, inputs: Tensor, targets: Tensor, params: list[nn.Parameter]
) -> tuple[list[Tensor], list[Tensor]]:
    r"""``(g, Hg)``: the loss gradient w.r.t. ``params`` and the Hessian times it.

    :math:`Hg = \nabla_\theta (g_{\text{fixed}}^\top \nabla_\theta L)`, by double backward.
    """
    if not params:
        raise ValueError("params is empty: no weights to take the Hessian-gradient product of")
    loss = loss_fn(model(inputs), targets)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    fixed = [g.detach() for g in grads]
    inner = sum((g * f).sum() for g, f in zip(grads, fixed, strict=True))
    hg = torch.autograd.grad(inner, params)
    return fixed, [h.detach() for h in hg]


def grasp_saliency(
    model: nn.Module, loss_fn: Loss, inputs: Tensor, targets: Tensor, params: list[nn.Parameter]
) -> list[Tensor]:
    r"""GraSP's per-weight :math:`S = -\theta \odot Hg` (larger: pruned first)."""
    _, hg = hessian_gradient_product(model, loss_fn, inputs, targets, params)
    return [-(p.detach() * h) for p, h in zip(params, hg, strict=True)]


def snip_saliency(
    model: nn.Module, loss_fn: Loss, inputs: Tensor, targets: Tensor, params: list[nn.Parameter]
) -> list[Tensor]:
    r"""SNIP's per-weight connection sensitivity :math:`|g \odot \theta|` (larger: kept)."""
    if not params:
        raise ValueError("params is empty: no weights to score")
    loss = loss_fn(model(inputs), targets)
    grads = torch.autograd.grad(loss, params)
    return [(g * p.detach()).abs() for g, p in zip(grads, params, strict=True)]


def _default_blocks(model: nn.Module) -> list[str]:
    names = [
        n for n, m in model.named_modules()
        if n and type(m).__name__.endswith(("Block", "Bottleneck"))
    ]  # fmt: skip
    # outermost only: a block inside a block is part of it
    return [n for n in names if not any(n.startswith(f"{o}.") for o in names)]


@register_model(
    "layer_lottery",
    family="pruning",
    paper="When Layers Play the Lottery, all Tickets Win at Initialization",
)
class LayerTicketPruner:
    r"""Remove the lowest-scored residual blocks of a network at initialisation.

    Each candidate block gets the importance :math:`\sum_{w \in \text{block}} a(w)` of its
    weights (parameters of two or more dimensions) under ``criterion``: GraSP
    :math:`a = \theta \odot Hg` (minus GraSP's pruning score), SNIP :math:`a = |g \odot \theta|`,
    or uniform random. Blocks whose output shape differs from their input shape (downsampling
    or widening blocks, whose shortcut is not the identity) are protected and always kept; of
    the others, ``round(keep_ratio * count)`` with the highest importance are kept and the rest
    are removed by closing a :class:`LayerGate` put around every candidate block.

    Args:
        model: the network at initialisation (changed in place by :meth:`prune`).
        criterion: ``"grasp"``, ``"snip"`` or ``"random"``. (default: ``"grasp"``)
        keep_ratio: share of the removable blocks kept, in ``[0, 1]``. (default: ``0.5``)
        blocks: module names of the candidate blocks. (default: every outermost module whose
            class name ends in ``Block`` or ``Bottleneck``)
        loss_fn: loss of the scoring batch. (default: cross-entropy)
        seed: seed of the random criterion. (default: ``None``)
    """

    def __init__(
        self,
        model: nn.Module,
        criterion: str = "grasp",
        keep_ratio: float = 0.5,
        blocks: Iterable[str] | None = None,
        loss_fn: Loss = F.cross_entropy,
        seed: int | None = None,
    ) -> None:
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if not 0.0 <= float(keep_ratio) <= 1.0:
            raise ValueError(f"keep_ratio must lie in [0, 1], got {keep_ratio}")
        self.model, self.criterion, self.keep_ratio = model, criterion, float(keep_ratio)
        self.loss_fn, self.seed = loss_fn, seed
        modules = dict(model.named_modules())
        self.blocks = list(blocks) if blocks is not None else _default_blocks(model)
        if not self.blocks:
            raise ValueError("no candidate blocks: name them with blocks=[...]")
        unknown = [b for b in self.blocks if b not in modules or not b]
        if unknown:
            raise ValueError(f"blocks {unknown} are not submodules of the model")
        self.gates: dict[str, LayerGate] = {}
        self.removed: list[str] | None = None

    def _shapes(self, inputs: Tensor) -> dict[str, bool]:
        """``{block: output shape == input shape}`` from one forward pass."""
        same: dict[str, bool] = {}
        modules = dict(self.model.named_modules())

        def hook(name: str) -> Callable:
            def record(module: nn.Module, args: tuple, out: Tensor) -> None:
                same[name] = isinstance(out, Tensor) and out.shape == args[0].shape

            return record

        handles = [modules[b].register_forward_hook(hook(b)) for b in self.blocks]
        try:
            with torch.no_grad():
                self.model(inputs)
        finally:
            for h in handles:
                h.remove()
        missing = [b for b in self.blocks if b not in same]
        if missing:
            raise ValueError(f"blocks {missing} were not called in the forward pass")
        return same

    def scores(self, inputs: Tensor, targets: Tensor) -> dict[str, float]:
        """Importance of every candidate block (higher is kept) on one batch."""
        modules = dict(self.model.named_modules())
        if self.criterion == "random":
            generator = None if self.seed is None else torch.Generator().manual_seed(self.seed)
            values = torch.rand(len(self.blocks), generator=generator, dtype=torch.float64)
            return {b: float(v) for b, v in zip(self.blocks, values, strict=True)}
        params_of = {b: _weights(modules[b]) for b in self.blocks}
        empty = [b for b, ps in params_of.items() if not ps]
        if empty:
            raise ValueError(f"blocks {empty} have no trainable weights to score")
        params = [p for ps in params_of.values() for p in ps]
        saliency = grasp_saliency if self.criterion == "grasp" else snip_saliency
        per_weight = saliency(self.model, self.loss_fn, inputs, targets, params)
        sign = -1.0 if self.criterion == "grasp" else 1.0  # GraSP prunes its largest S
        out, start = {}, 0
        for b, ps in params_of.items():
            out[b] = sign * float(sum(s.sum() for s in per_weight[start : start + len(ps)]))
            start += len(ps)
        if any(v != v for v in out.values()):
            raise ValueError("a block's score is NaN (NaN weights or loss?)")
        return out

    def prune(self, inputs: Tensor, targets: Tensor | None = None) -> list[str]:
        """Score the blocks on one batch, remove the lowest; returns the removed names.

        ``targets`` may be ``None`` for the random criterion (``inputs`` still give the
        shapes that decide which blocks are protected).
        """
        if targets is None and self.criterion != "random":
            raise ValueError(f"criterion {self.criterion!r} needs targets")
        if self.removed is not None:
            raise RuntimeError("prune was already called on this model")
        same = self._shapes(inputs)
        self.protected = [b for b in self.blocks if not same[b]]
        removable = [b for b in self.blocks if same[b]]
        self.importance = self.scores(inputs, targets)
        keep = round(self.keep_ratio * len(removable))
        ranked = sorted(removable, key=lambda b: self.importance[b], reverse=True)
        removed = set(ranked[keep:])
        for b in self.blocks:
            gate = LayerGate(self.model.get_submodule(b), active=b not in removed)
            replace_module(self.model, b, gate)
            self.gates[b] = gate
        self.removed = [b for b in self.blocks if b in removed]
        return self.removed

    def compact(self) -> None:
        """Drop the removed blocks (``nn.Identity``) and unwrap the kept ones, in place."""
        for b, gate in self.gates.items():
            replace_module(self.model, b, gate.block if bool(gate.active) else nn.Identity())
        self.gates = {}

    def __repr__(self) -> str:
        return (
            f"LayerTicketPruner(criterion={self.criterion!r}, keep_ratio={self.keep_ratio}, "
            f"blocks={len(self.blocks)})"
        )
