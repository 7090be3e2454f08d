"""Layer Adaptive Progressive Pruning (Zhai et al., "LAPP: Layer Adaptive Progressive Pruning for
Compressing CNNs from Scratch", 2023, https://arxiv.org/abs/2309.14157; no official code).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.modules import eval_mode, replace_module
from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.masks import Channel, Pruner, update_mask

__all__ = ["BypassConv2d", "LAPPPruner"]


class BypassConv2d(nn.Module):
    r"""A convolution with a lightweight parallel bypass: :math:`y = \mathrm{conv}(x) + B x`.

    :math:`B` is a bias-free 1x1 convolution of the same stride with
    ``groups = gcd(in, out)`` (a per-channel scale when ``in == out``), so a filter pruned from
    ``conv`` still passes its input channel on, at a cost of ``out * in / groups`` weights.

    Args:
        conv: the convolution to wrap (a ``'same'``-style padding, so 1x1 fits its output).

    Shapes:
        - **input:** ``(B, in, H, W)``
        - **output:** ``(B, out, H', W')``, the shape of ``conv``'s output
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"BypassConv2d wraps an nn.Conv2d, got {type(conv).__name__}")
        self.conv = conv
        groups = math.gcd(conv.in_channels, conv.out_channels)
        self.bypass = nn.Conv2d(
            conv.in_channels, conv.out_channels, 1, conv.stride, groups=groups, bias=False
        ).to(conv.weight.device, conv.weight.dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.bypass.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        out, side = self.conv(x), self.bypass(x)
        if out.shape != side.shape:
            raise ValueError(
                f"the bypass gives {tuple(side.shape)} but the convolution {tuple(out.shape)}: "
                "LAPP bypasses need a 'same'-padded convolution"
            )
        return out + side


@register_model(
    "lapp",
    family="pruning",
    paper="LAPP: Layer Adaptive Progressive Pruning for Compressing CNNs from Scratch",
)
class LAPPPruner(Pruner):
    r"""Filter pruning during the first epochs from scratch, with a learnable threshold per layer.

    Every pruned convolution :math:`l` scores its filters (``"l1"``: :math:`\|W_{l,i}\|_1`;
    ``"bn"``: :math:`|\gamma_{l,i}|` of the BatchNorm that reads its output), divided by the
    layer's mean score so thresholds of different layers are comparable, and keeps the filters
    above its learnable threshold :math:`t_l`. The gate is hard in the forward pass and
    :math:`\sigma((s_{l,i} - t_l)/T)` in the backward pass (straight-through), so the task loss
    and the FLOPs loss

    .. math::
        L_F = \Big|\frac{F(t)}{R} - 1\Big|, \qquad
        F(t) = F_{fixed} + \sum_l F_l \cdot \frac{1}{C_l} \sum_i g_{l,i}

    both move the thresholds, and the per-layer rates follow (:math:`F_l` the layer's dense
    MACs, :math:`F_{fixed}` every other ``Linear`` / ``Conv*d``, bypasses included; this is the
    count :func:`~graphkit.extras._core.counting.nonzero_macs` makes of the masked network).
    After ``warm_epochs`` epochs :meth:`finalize` writes each layer's gate as a binary
    ``channel`` mask through the shared mask API, removes the gates and freezes the masks.

    With ``bypass=True`` every pruned convolution is wrapped in a :class:`BypassConv2d` at
    construction (before training), in place in ``model``.

    Choices of this implementation (the paper has no public code): the score normalisation,
    the absolute FLOPs loss, the STE temperature and the 1x1 grouped bypass.

    Args:
        model: the network to prune, trained from scratch alongside.
        target_flops: :math:`R`, the MACs of the pruned network (positive).
        input_shape: the input shape the MACs are counted at, e.g. ``(1, 3, 32, 32)``.
        importance: ``"l1"`` or ``"bn"``. (default: ``"l1"``)
        bypass: add the bypass branches. (default: ``True``)
        warm_epochs: epochs of the pruning phase, positive. (default: ``5``)
        temperature: :math:`T` of the straight-through sigmoid. (default: ``0.1``)
        layers: names of the ``Conv2d`` to prune. (default: every ``Conv2d``)
    """

    def __init__(
        self,
        model: nn.Module,
        target_flops: float,
        input_shape: Sequence[int],
        importance: str = "l1",
        bypass: bool = True,
        warm_epochs: int = 5,
        temperature: float = 0.1,
        layers: Iterable[str] | None = None,
    ) -> None:
        if importance not in ("l1", "bn"):
            raise ValueError(f"importance must be 'l1' or 'bn', got {importance!r}")
        if not float(target_flops) > 0:
            raise ValueError(f"target_flops must be positive, got {target_flops}")
        if isinstance(warm_epochs, bool) or int(warm_epochs) != warm_epochs or warm_epochs < 1:
            raise ValueError(f"warm_epochs must be a positive integer, got {warm_epochs!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        modules = dict(model.named_modules())
        names = (
            [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
            if layers is None
            else list(layers)
        )
        for name in names:
            if not isinstance(modules.get(name), nn.Conv2d):
                raise ValueError(f"{name!r} is not an nn.Conv2d of the model")
        if not names:
            raise ValueError("the model has no Conv2d to prune")
        if any(isinstance(s, bool) or not float(s).is_integer() or s < 1 for s in input_shape):
            raise ValueError(f"input_shape must hold positive integers, got {tuple(input_shape)}")
        self.input_shape = tuple(int(s) for s in input_shape)
        norms = _following_norms(model, [modules[n] for n in names], self.input_shape)
        if importance == "bn":
            missing = [n for n, bn in zip(names, norms, strict=True) if bn is None]
            if missing:
                raise ValueError(f"importance='bn' needs a BatchNorm after {missing}")
        if bypass:
            for name in names:
                replace_module(model, name, BypassConv2d(modules[name]))
            names = [f"{n}.conv" for n in names]
        super().__init__(model, None, Channel(0), "uniform", names)
        self.target_flops = float(target_flops)
        self.importance, self.bypass = importance, bool(bypass)
        self.warm_epochs, self.temperature = int(warm_epochs), float(temperature)
        self.norms = dict(zip(names, norms, strict=True))
        first = next(iter(self.layers.values())).weight
        self.thresholds = nn.ParameterDict(
            {n.replace(".", "__"): nn.Parameter(first.new_zeros(())) for n in names}
        )
        self.dense_macs, self.fixed_macs = _dense_macs(model, self.layers, self.input_shape)
        self.epoch, self.frozen = 0, False
        self._gates: dict[str, Tensor] = {}
        self._handles = [
            module.register_forward_hook(self._gate_hook(name))
            for name, module in self.layers.items()
        ]

    # -- scores and gates ------------------------------------------------------------------------

    def threshold(self, name: str) -> nn.Parameter:
        """The learnable threshold :math:`t_l` of layer ``name``."""
        return self.thresholds[name.replace(".", "__")]

    def parameters(self) -> list[nn.Parameter]:
        """The thresholds, to give to an optimiser next to the model's weights."""
        return list(self.thresholds.values())

    def filter_scores(self, name: str) -> Tensor:
        """Normalised importance of each filter of layer ``name`` (mean 1), detached."""
        if self.importance == "bn":
            raw = self.norms[name].weight.detach().abs()
        else:
            raw = self.weight(name).detach().abs().flatten(1).sum(1)
        if torch.isnan(raw).any():
            raise ValueError(f"layer {name!r} has NaN importance scores")
        return raw / raw.mean().clamp_min(torch.finfo(raw.dtype).tiny)

    def gate(self, name: str) -> Tensor:
        """Straight-through gate of each filter: hard forward, sigmoid backward."""
        s = self.filter_scores(name)
        soft = torch.sigmoid((s - self.threshold(name)) / self.temperature)
        hard = (s > self.threshold(name)).to(soft.dtype)
        return hard + (soft - soft.detach())  # exactly 0 or 1 in the forward pass

    def _gate_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
            if self.frozen:
                return out
            gate = self.gate(name)
            self._gates[name] = gate
            return out * gate.view(1, -1, *([1] * (out.dim() - 2)))

        return hook

    def kept(self) -> dict[str, int]:
        """Filters each layer keeps at the current thresholds (or masks, once frozen)."""
        if self.frozen:
            return {n: int(self.mask(n).flatten(1).any(1).sum()) for n in self.layers}
        return {n: int((self.filter_scores(n) > self.threshold(n)).sum()) for n in self.layers}

    def flops(self) -> Tensor:
        """:math:`F(t)`, differentiable in the thresholds through the straight-through gates."""
        device = next(iter(self.thresholds.values())).device
        total = torch.zeros((), dtype=torch.float64, device=device)
        for name, macs in self.dense_macs.items():
            if self.frozen:
                share = self.kept()[name] / self.mask(name).shape[0]
            else:
                share = self.gate(name).double().mean()
            total = total + macs * share
        return total + self.fixed_macs

    def flops_loss(self) -> Tensor:
        """:math:`L_F = |F(t) / R - 1|` (constant once the masks are frozen)."""
        return (self.flops() / self.target_flops - 1.0).abs().float()

    # -- schedule --------------------------------------------------------------------------------

    def end_epoch(self) -> bool:
        """Call after each epoch; at the end of the pruning phase the masks become binary."""
        if self.frozen:
            return False
        self.epoch += 1
        if self.epoch >= self.warm_epochs:
            self.finalize()
            return True
        return False

    def score(self, name: str, module: nn.Module) -> Tensor:
        """Each weight carries its filter's importance (for the ``channel`` granularity)."""
        s = self.filter_scores(name)
        return s.view(-1, *([1] * (self.weight(name).dim() - 1))).expand_as(self.weight(name))

    @torch.no_grad()
    def finalize(self) -> dict[str, int]:
        """Write each layer's kept filters as a binary channel mask, drop the gates, freeze."""
        kept = self.kept()
        for name, module in self.layers.items():
            density = kept[name] / module.weight.shape[0]
            mask = self.select(name, self.score(name, module), density)
            update_mask(module, mask, self.param_names[name])
        for handle in self._handles:
            handle.remove()
        self._handles, self.frozen = [], True
        for t in self.thresholds.values():
            t.requires_grad_(False)
        return kept

    def bypass_params(self) -> int:
        """Weights the bypasses add."""
        return sum(
            m.bypass.weight.numel() for m in self.model.modules() if isinstance(m, BypassConv2d)
        )

    def __repr__(self) -> str:
        return (
            f"LAPPPruner(layers={len(self.layers)}, target_flops={self.target_flops:,.0f}, "
            f"importance={self.importance!r}, bypass={self.bypass}, "
            f"warm_epochs={self.warm_epochs})"
        )


def _run(model: nn.Module, input_shape: Sequence[int]) -> None:
    ref = next(iter(model.parameters()))
    with eval_mode(model), torch.no_grad():
        model(torch.zeros(input_shape, device=ref.device, dtype=ref.dtype))


def _following_norms(
    model: nn.Module, convs: list[nn.Conv2d], input_shape: Sequence[int]
) -> list[nn.BatchNorm2d | None]:
    """For each conv, the BatchNorm whose input is exactly that conv's output (or ``None``)."""
    # the outputs are kept alive here, so no later tensor can reuse their id
    produced: dict[int, tuple[int, Tensor]] = {}
    found: dict[int, nn.BatchNorm2d] = {}

    def conv_hook(index: int):
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            produced[id(out)] = (index, out)

        return hook

    def bn_hook(module: nn.Module, args: tuple) -> None:
        hit = produced.get(id(args[0]))
        if hit is not None and hit[1] is args[0]:
            found.setdefault(hit[0], module)

    handles = [c.register_forward_hook(conv_hook(i)) for i, c in enumerate(convs)]
    handles += [
        m.register_forward_pre_hook(bn_hook)
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    ]
    try:
        _run(model, input_shape)
    finally:
        for h in handles:
            h.remove()
    return [found.get(i) for i in range(len(convs))]


def _dense_macs(
    model: nn.Module, layers: dict[str, nn.Module], input_shape: Sequence[int]
) -> tuple[dict[str, float], float]:
    """Dense MACs of each pruned layer and of every other ``Linear`` / ``Conv*d`` together."""
    per_module: dict[int, float] = {}

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        w = module.weight
        fan_in = module.in_features if isinstance(module, nn.Linear) else w[0].numel()
        per_module[id(module)] = per_module.get(id(module), 0.0) + out.numel() * fan_in

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        _run(model, input_shape)
    finally:
        for h in handles:
            h.remove()
    pruned = {name: per_module.get(id(m), 0.0) for name, m in layers.items()}
    ids = {id(m) for m in layers.values()}
    return pruned, sum(v for k, v in per_module.items() if k not in ids)
