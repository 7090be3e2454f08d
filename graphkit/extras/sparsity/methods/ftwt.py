r"""Dynamic channel pruning with self-supervised mask prediction (Elkerdawy et al., "Fire Together
Wire Together: A Dynamic Pruning Approach with Self-Supervised Mask Prediction", CVPR 2022,
https://arxiv.org/abs/2110.08232).

For each gated layer :math:`l` a small predictor reads the layer's input (the previous layer's
activation) and predicts, per filter, whether it is among the input's top-:math:`k` filters.
The labels are self-supervised: with heatmap masses :math:`m_c = \sum_{h,w} |a_{c,h,w}|` of the
layer's output sorted decreasingly, :math:`k` is the smallest count whose mass reaches the
fraction ``mass`` of the total,

.. math::
    k = \min\Big\{k' : \sum_{i \le k'} m_{(i)} \ge \text{mass} \cdot \sum_c m_c\Big\},

so :math:`k` changes per input. Predictors are trained with binary cross-entropy against these
labels on detached inputs, decoupled from the task loss; at inference only the predicted
filters are computed. Since a layer's cost scales with its kept output and input channels, the
FLOPs reduction can be estimated from ``mass`` alone, with the labels, before any predictor is
trained.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.counting import count_macs
from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model

__all__ = [
    "FTWTGate",
    "ftwt_loss",
    "ftwt_reduction",
    "ftwt_wrap",
    "set_ftwt_masks",
    "topk_mass_labels",
]

#: Relative slack of the mass criterion, so a mass reached up to float rounding counts.
_SLACK = 1e-6


def topk_mass_labels(activation: Tensor, mass: float) -> Tensor:
    r"""Per-input top-:math:`k`-by-mass labels of the channels of ``activation``.

    Args:
        activation: ``(N, C, *)`` layer output.
        mass: fraction of the total heatmap mass to reach, in ``(0, 1]``; ``1`` labels every
            channel.

    Returns:
        boolean ``(N, C)``: ``True`` for the :math:`k` channels of largest mass (ties broken by
        channel order), :math:`k` the smallest count reaching ``mass`` of the total (at least 1).
    """
    _check_mass(mass)
    if activation.dim() < 2:
        raise ValueError(f"activation must be (N, C, ...), got shape {tuple(activation.shape)}")
    heat = activation.detach().abs().flatten(2).sum(2) if activation.dim() > 2 else activation.abs()
    if torch.isnan(heat).any():
        raise ValueError("activation contains NaN")
    n, c = heat.shape
    if mass >= 1.0:
        return torch.ones(n, c, dtype=torch.bool, device=heat.device)
    order = heat.sort(dim=1, descending=True, stable=True)
    cum = order.values.cumsum(1)
    need = mass * cum[:, -1:] * (1.0 - _SLACK)
    k = ((cum < need).sum(1) + 1).clamp(max=c)  # first position whose mass reaches the need
    ranks = torch.empty_like(order.indices)
    ranks.scatter_(1, order.indices, torch.arange(c, device=heat.device).expand(n, c))
    return ranks < k[:, None]


def _check_mass(mass: float) -> None:
    if not 0.0 < float(mass) <= 1.0:
        raise ValueError(f"mass must lie in (0, 1], got {mass}")


def _channels(layer: nn.Module) -> tuple[int, int]:
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("FTWTGate needs a layer containing an nn.Conv2d (or give channels)")
    return convs[0].in_channels, convs[-1].out_channels


class FTWTGate(nn.Module):
    r"""A layer whose output filters are gated per input by a self-supervised mask predictor.

    .. math::
        y = f(x) \odot M, \qquad
        \hat{M} = \big[\sigma(W_p\, \mathrm{GMP}(x) + b_p) > \text{threshold}\big]

    where ``GMP`` is global max pooling (the paper's light head: global pooling and a
    ``1 x 1`` convolution). In training mode the mask is the label
    (:func:`topk_mass_labels` of :math:`f(x)`) and :attr:`loss` holds the predictor's BCE;
    in eval mode it is the prediction (or the label after ``set_ftwt_masks(model,
    "label")``), which always keeps the most likely filter, as a label keeps at least one.
    ``mass = 1`` keeps every filter: the gate is then the layer itself. The layer is computed
    densely and then masked: the skipped work is counted (:func:`ftwt_reduction`), not
    skipped in wall time.
    Each forward records :attr:`keep_out` (share of filters kept) and :attr:`keep_in` (share of
    input channels not all zero, which a pruned previous layer skips) per input.

    Args:
        layer: the gated layer, ``(N, C_in, H, W) -> (N, C_out, H', W')``, e.g. conv-BN-ReLU.
        mass: heatmap mass of the labels, in ``(0, 1]``. (default: ``0.9``)
        in_channels: ``C_in``. (default: the first ``Conv2d``'s)
        out_channels: ``C_out``. (default: the last ``Conv2d``'s)
        threshold: probability above which a filter is predicted kept. (default: ``0.5``)
    """

    def __init__(
        self,
        layer: nn.Module,
        mass: float = 0.9,
        in_channels: int | None = None,
        out_channels: int | None = None,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        _check_mass(mass)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        if in_channels is None or out_channels is None:
            c_in, c_out = _channels(layer)
            in_channels = in_channels or c_in
            out_channels = out_channels or c_out
        self.layer, self.mass, self.threshold = layer, float(mass), float(threshold)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.predictor = nn.Linear(self.in_channels, self.out_channels)
        self.masks = "predicted"
        self.loss: Tensor | None = None
        self.keep_in: Tensor | None = None
        self.keep_out: Tensor | None = None
        self._dense: dict[tuple[int, ...], int] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the predictor (the gated layer is left as it is)."""
        self.predictor.reset_parameters()

    def logits(self, x: Tensor) -> Tensor:
        """Mask logits ``(N, C_out)`` from the detached input (decoupled from the task loss)."""
        return self.predictor(x.detach().amax(dim=(2, 3)))

    def dense_macs(self, x: Tensor) -> int:
        """MACs of the ungated layer for one input of ``x``'s size (cached per size)."""
        key = tuple(x.shape[1:])
        if key not in self._dense:
            self._dense[key] = count_macs(self.layer, x[:1].detach())
        return self._dense[key]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected (N, {self.in_channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        out = self.layer(x)
        if out.dim() != 4 or out.shape[1] != self.out_channels:
            raise ValueError(
                f"the layer's output {tuple(out.shape)} has not {self.out_channels} channels"
            )
        self.keep_in = (x.detach().abs().amax(dim=(2, 3)) > 0).float().mean(1)
        if self.mass >= 1.0:
            self.loss, self.keep_out = None, torch.ones(len(x), device=x.device)
            return out
        labels = topk_mass_labels(out, self.mass)
        if self.training:
            logits = self.logits(x)
            self.loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            mask = labels
        elif self.masks == "label":
            mask = labels
        else:
            logits = self.logits(x)
            mask = torch.sigmoid(logits) > self.threshold
            # a label keeps at least one filter, so a prediction does too (its most likely)
            mask[torch.arange(len(x), device=x.device), logits.argmax(1)] = True
        self.keep_out = mask.float().mean(1)
        return out * mask[:, :, None, None].to(out.dtype)

    def extra_repr(self) -> str:
        return f"mass={self.mass}, threshold={self.threshold}, masks={self.masks!r}"


def _gates(model: nn.Module) -> list[FTWTGate]:
    gates = [m for m in model.modules() if isinstance(m, FTWTGate)]
    if not gates:
        raise ValueError("the model has no FTWTGate (wrap it with ftwt_wrap)")
    return gates


def set_ftwt_masks(model: nn.Module, masks: str) -> None:
    """Make every gate of ``model`` use ``"predicted"`` or ``"label"`` masks in eval mode."""
    if masks not in ("predicted", "label"):
        raise ValueError(f"masks must be 'predicted' or 'label', got {masks!r}")
    for gate in _gates(model):
        gate.masks = masks


def ftwt_loss(model: nn.Module) -> Tensor:
    """Sum of the gates' BCE losses of the last training-mode forward."""
    losses = [g.loss for g in _gates(model) if g.loss is not None]
    if not losses:
        raise ValueError("no gate has a loss: run a training-mode forward with mass < 1 first")
    return torch.stack(losses).sum()


@torch.no_grad()
def ftwt_reduction(model: nn.Module, x: Tensor, masks: str = "predicted") -> float:
    r"""Share of the model's MACs saved on the batch ``x`` with ``masks``.

    Gated layer :math:`l` costs :math:`\text{MACs}_l \cdot \kappa^{out}_l \kappa^{in}_l` per
    input (a convolution's cost scales with its kept output and input channels); the rest of
    the model is dense, and each predictor's ``C_in x C_out`` product is added. ``masks="label"``
    gives the estimate from ``mass`` alone, ``"predicted"`` what the trained predictors
    realise. Returns :math:`1 - \text{realised} / \text{dense}` (dense: the ungated model),
    averaged over the batch.
    """
    gates = _gates(model)
    if x.dim() == 0 or x.shape[0] == 0:  # the mean over no inputs was NaN
        raise ValueError(f"ftwt_reduction needs at least one input, got x {tuple(x.shape)}")
    previous = [g.masks for g in gates]
    set_ftwt_masks(model, masks)
    try:
        with eval_mode(model):
            examples = _inputs(model, gates, x)
            model(x)  # records every gate's kept shares on the whole batch
            saved = sum(
                g.dense_macs(x_in) * float((1.0 - g.keep_out * g.keep_in).mean())
                for g, x_in in zip(gates, examples, strict=True)
            )
    finally:
        for g, m in zip(gates, previous, strict=True):
            g.masks = m
    # the predictors' products (one per gate with mass < 1) are paid on top of the gated net
    overhead = sum(g.in_channels * g.out_channels for g in gates if g.mass < 1.0)
    dense = count_macs(model, x[:1]) - overhead
    return (saved - overhead) / dense


def _inputs(model: nn.Module, gates: list[FTWTGate], x: Tensor) -> list[Tensor]:
    """One example input of each gate (for its dense MACs)."""
    seen: dict[int, Tensor] = {}

    def hook(i: int):
        def record(module: nn.Module, args: tuple) -> None:
            seen[i] = args[0][:1]

        return record

    hooks = [g.register_forward_pre_hook(hook(i)) for i, g in enumerate(gates)]
    try:
        model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return [seen[i] for i in range(len(gates))]


_FOLLOWERS = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish)


@register_model(
    "ftwt",
    family="pruning",
    paper="Fire Together Wire Together: A Dynamic Pruning Approach with Self-Supervised Mask "
    "Prediction",
)
def ftwt_wrap(model: nn.Sequential, mass: float = 0.9, threshold: float = 0.5) -> nn.Sequential:
    """A copy of a flat ``nn.Sequential`` CNN (VGG-style) with every convolution gated.

    Each ``Conv2d`` (``groups=1``) and the norms / activations right after it become one
    :class:`FTWTGate` of ``mass``; pooling, the classifier and the rest are kept as they are.

    Args:
        model: the CNN.
        mass: heatmap mass of every gate, in ``(0, 1]``. (default: ``0.9``)
        threshold: predictor probability threshold. (default: ``0.5``)
    """
    _check_mass(mass)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"ftwt_wrap needs a flat nn.Sequential, got {type(model).__name__}")
    items, out, i = list(model), [], 0
    while i < len(items):
        m = items[i]
        if isinstance(m, nn.Conv2d) and m.groups == 1:
            j = i + 1
            while j < len(items) and isinstance(items[j], _FOLLOWERS):
                j += 1
            layer = nn.Sequential(*(copy.deepcopy(k) for k in items[i:j]))
            out.append(FTWTGate(layer, mass, threshold=threshold))
            i = j
        else:
            out.append(copy.deepcopy(m))
            i += 1
    if not any(isinstance(m, FTWTGate) for m in out):
        raise ValueError("the model has no Conv2d to gate")
    return nn.Sequential(*out)
