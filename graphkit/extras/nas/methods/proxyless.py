r"""ProxylessNAS: path-binarised search directly on the target task and hardware.

From `ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware
<https://arxiv.org/abs/1812.00332>`_ (Cai, Zhu and Han, ICLR 2019; official code
mit-han-lab/proxylessnas). :class:`ProxylessSupernet` is the MobileNetV2-like space of the
paper: a 3×3 stem (stride 2), a fixed MBConv (expand 1, 3×3), then stages of layers whose op is
one of the MBConvs ``{3×3, 5×5, 7×7} × expand {3, 6}`` or, where the layer has an identity
shortcut (stride 1, equal widths), ``zero`` (the layer is skipped): 7 choices. Each layer is a
:class:`~graphkit.extras.nas.mixed.BinarizedMixedOp` with logits :math:`\alpha`, so a training
step keeps one path's activations, and :math:`\alpha` gets the binary-gate gradient. The
hardware term is the expected latency

.. math::
    \mathbb{E}[\mathrm{LAT}] = \sum_{l} \sum_{j} p^{(l)}_j\, F(o^{(l)}_j), \qquad
    p^{(l)} = \mathrm{softmax}(\alpha^{(l)}),

over a per-op latency table :math:`F` (:func:`expected_latency`), added to the loss as
:math:`\mathrm{CE} + \lambda\,\mathbb{E}[\mathrm{LAT}]` (:func:`latency_loss`); it is
differentiable in :math:`\alpha`. For a non-differentiable metric, :func:`reinforce_loss` is
the paper's REINFORCE alternative on the same logits.

:func:`proxyless_gpu`, :func:`proxyless_cpu` and :func:`proxyless_mobile` build the three
searched ImageNet networks. The official net configs (``proxyless_{gpu,cpu,mobile}.config``) are
hosted outside the repository; the per-layer ops below follow them as transcribed in
osmr/imgclsmob (``pytorchcv/models/proxylessnas.py``), whose parameter counts they reproduce
exactly (GPU 7,119,848; CPU 4,361,648; Mobile 4,080,512 at 1000 classes).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct, MBConv
from graphkit.extras._core.checks import check_fraction
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.elastic import make_divisible
from graphkit.extras.nas.mixed import BinarizedMixedOp, arch_parameters, weight_parameters
from graphkit.extras.nas.space import Choice, SearchSpace

_PAPER = "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware"

#: The paper's MBConv candidates, named as in the official code.
CANDIDATES: tuple[str, ...] = (
    "3x3_MBConv3",
    "3x3_MBConv6",
    "5x5_MBConv3",
    "5x5_MBConv6",
    "7x7_MBConv3",
    "7x7_MBConv6",
)
ZERO = "zero"


def _parse_op(name: str) -> tuple[int, int]:
    """``"5x5_MBConv3"`` -> ``(5, 3)`` (kernel size, expand ratio)."""
    try:
        kernel, rest = name.split("x", 1)
        k2, expand = rest.split("_MBConv")
        if int(kernel) != int(k2):
            raise ValueError
        return int(kernel), int(expand)
    except ValueError:
        raise ValueError(f"op names look like '5x5_MBConv3' or {ZERO!r}, got {name!r}") from None


def _norm(eps: float) -> Any:
    return functools.partial(nn.BatchNorm2d, eps=eps)


def _op(name: str, c_in: int, c_out: int, stride: int, eps: float) -> nn.Module:
    """One layer: an MBConv (with its identity shortcut where it has one) or the skip."""
    if name == ZERO:
        if stride != 1 or c_in != c_out:
            raise ValueError(f"{ZERO!r} needs an identity shortcut (stride 1, equal widths)")
        return nn.Identity()
    k, e = _parse_op(name)
    return MBConv(
        c_in, c_out, expand_ratio=e, kernel_size=k, stride=stride,
        act_layer=nn.ReLU6, norm_layer=_norm(eps),
    )  # fmt: skip


def _stem(in_channels: int, stem: int, first: int, eps: float) -> list[nn.Module]:
    return [
        ConvNormAct(in_channels, stem, 3, stride=2, norm_layer=_norm(eps), act_layer=nn.ReLU6),
        MBConv(
            stem, first, expand_ratio=1, kernel_size=3, act_layer=nn.ReLU6, norm_layer=_norm(eps)
        ),
    ]


def _head(c_in: int, last: int, num_classes: int, dropout: float, eps: float) -> nn.Sequential:
    return nn.Sequential(
        ConvNormAct(c_in, last, 1, norm_layer=_norm(eps), act_layer=nn.ReLU6),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Dropout(dropout),
        nn.Linear(last, num_classes),
    )


def _layer_plan(
    widths: Sequence[int], depths: Sequence[int], strides: Sequence[int], first: int
) -> list[tuple[int, int, int]]:
    """``(c_in, c_out, stride)`` of every searchable layer, stage by stage."""
    if not len(widths) == len(depths) == len(strides) or not widths:
        raise ValueError(
            f"widths, depths and strides must be non-empty and of one length, got "
            f"{len(widths)}, {len(depths)}, {len(strides)}"
        )
    if any(d < 1 for d in depths) or any(s not in (1, 2) for s in strides):
        raise ValueError(f"depths must be positive and strides 1 or 2, got {depths}, {strides}")
    plan, c = [], first
    for w, n, s in zip(widths, depths, strides):
        for i in range(n):
            plan.append((c, w, s if i == 0 else 1))
            c = w
    return plan


@register_model("proxylessnas", family="nas", paper=_PAPER)
class ProxylessSupernet(nn.Module):
    r"""The ProxylessNAS supernet (MobileNetV2-like space) with path-binarised layers.

    In training mode each layer samples its active op (:class:`BinarizedMixedOp`, ``mode``
    ``"two"`` or ``"full"``); in eval mode it runs the op of largest :math:`\alpha`.
    :meth:`set_active` fixes one op per layer instead (``cfg = {"layer0": "5x5_MBConv3",
    ...}``; ``set_active(None)`` returns to sampling), and :meth:`extract` copies a
    configuration into a standalone network; :meth:`derive` is the configuration of largest
    :math:`\alpha`.

    Args:
        space (str): the search space; only ``"mobilenetv2_like"`` (default).
        width_stages (Sequence[int]): stage widths (default: ``(24, 40, 80, 96, 192, 320)``).
        n_cell_stages (Sequence[int]): layers per stage (default: ``(4, 4, 4, 4, 4, 1)``).
        stride_stages (Sequence[int]): stage strides (default: ``(2, 2, 2, 1, 2, 1)``).
        candidates (Sequence[str]): MBConv ops (default: :data:`CANDIDATES`); ``"zero"`` is
            added where a layer has an identity shortcut.
        stem_channels (int): stem width (default: ``32``).
        first_channels (int): width of the fixed first MBConv (default: ``16``).
        last_channels (int): width of the 1×1 feature-mix conv (default: ``1280``).
        width_mult (float): multiplies every width but ``last_channels`` (default: ``1.0``).
        num_classes (int): classifier outputs (default: ``1000``).
        dropout (float): dropout before the classifier (default: ``0.0``).
        bn_eps (float): BatchNorm epsilon (default: ``1e-3``, the official value).
        mode (str): binarisation mode of every layer, ``"two"`` or ``"full"`` (default:
            ``"two"``).
        generator (torch.Generator, optional): CPU generator of the path samples.

    Shapes:
        - **input:** :math:`(N, 3, H, W)`
        - **output:** :math:`(N, \text{num\_classes})`
    """

    def __init__(
        self,
        space: str = "mobilenetv2_like",
        width_stages: Sequence[int] = (24, 40, 80, 96, 192, 320),
        n_cell_stages: Sequence[int] = (4, 4, 4, 4, 4, 1),
        stride_stages: Sequence[int] = (2, 2, 2, 1, 2, 1),
        candidates: Sequence[str] = CANDIDATES,
        stem_channels: int = 32,
        first_channels: int = 16,
        last_channels: int = 1280,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.0,
        bn_eps: float = 1e-3,
        mode: str = "two",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if space != "mobilenetv2_like":
            raise ValueError(f"unknown search space {space!r}; only 'mobilenetv2_like'")
        if not (width_mult > 0 and math.isfinite(width_mult)):
            raise ValueError(f"width_mult must be a positive finite number, got {width_mult}")
        check_fraction("dropout", dropout)  # a NaN dropout was accepted
        if not (bn_eps > 0 and math.isfinite(bn_eps)):
            raise ValueError(f"bn_eps must be a positive number, got {bn_eps}")
        candidates = tuple(candidates)
        if not candidates or ZERO in candidates:
            raise ValueError(f"candidates must be MBConv op names (no {ZERO!r}), got {candidates}")
        for name in candidates:
            _parse_op(name)

        def width(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        stem, first = width(stem_channels), width(first_channels)
        widths = [width(w) for w in width_stages]
        self.bn_eps = bn_eps
        self.stem = nn.Sequential(*_stem(3, stem, first, bn_eps))
        self.plan = _layer_plan(widths, n_cell_stages, stride_stages, first)
        self.layers = nn.ModuleList()
        choices = []
        for i, (c_in, c_out, s) in enumerate(self.plan):
            names = candidates + ((ZERO,) if s == 1 and c_in == c_out else ())
            ops = {n: _op(n, c_in, c_out, s, bn_eps) for n in names}
            self.layers.append(BinarizedMixedOp(ops, mode=mode, generator=generator))
            choices.append(Choice(f"layer{i}", names))
        self.head = _head(widths[-1], last_channels, num_classes, dropout, bn_eps)
        self.space = SearchSpace("proxyless", choices)
        self.active: list[str] | None = None

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    # -- architecture ------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The logits :math:`\\alpha` of every layer."""
        return arch_parameters(self)

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the logits."""
        return weight_parameters(self)

    def probs(self) -> list[Tensor]:
        """Each layer's :math:`\\mathrm{softmax}(\\alpha)` (differentiable)."""
        return [layer.probs() for layer in self.layers]

    def derive(self) -> dict[str, str]:
        """The configuration of largest :math:`\\alpha` in every layer."""
        return {f"layer{i}": layer.names[layer.chosen()] for i, layer in enumerate(self.layers)}

    @torch.no_grad()
    def rescale_updated_alpha(self) -> None:
        """After an architecture step in ``"two"`` mode: keep the uninvolved ops' probabilities."""
        for layer in self.layers:
            if layer.last_sample is not None:
                layer.rescale_updated_alpha()

    def set_active(self, cfg: Mapping[str, Any] | None) -> None:
        """Run the ops named in ``cfg`` in every mode; ``None`` returns to path sampling."""
        if cfg is None:
            self.active = None
            return
        self.space.validate(cfg)
        self.active = [cfg[f"layer{i}"] for i in range(len(self.layers))]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(x.shape)}")
        x = self.stem(x)
        for i, layer in enumerate(self.layers):
            if self.active is None:
                x = layer(x)
            else:
                x = layer.candidates[layer.names.index(self.active[i])](x)
        return self.head(x)

    @torch.no_grad()
    def extract(self, cfg: Mapping[str, Any] | None = None) -> nn.Sequential:
        """Configuration ``cfg`` (default: :meth:`derive`) as a standalone network."""
        cfg = self.derive() if cfg is None else cfg
        self.space.validate(cfg)
        ops = [
            copy.deepcopy(layer.candidates[layer.names.index(cfg[f"layer{i}"])])
            for i, layer in enumerate(self.layers)
        ]
        return nn.Sequential(*copy.deepcopy(list(self.stem)), *ops, copy.deepcopy(self.head))

    def extra_repr(self) -> str:
        return f"layers={len(self.layers)}, size={self.space.size()}"


# -- the hardware objective ------------------------------------------------------------------
LatencyTable = Mapping[str, Mapping[str, float]]


def expected_latency(supernet: ProxylessSupernet, table: LatencyTable) -> Tensor:
    r""":math:`\sum_l \sum_j p^{(l)}_j F(o^{(l)}_j)`, differentiable in the logits.

    Args:
        supernet (ProxylessSupernet): the supernet.
        table (Mapping[str, Mapping[str, float]]): ``table["layer3"]["5x5_MBConv6"]`` is that
            op's latency; every op of every layer must be present (``"zero"`` usually 0).
    """
    total: Tensor | None = None
    for i, layer in enumerate(supernet.layers):
        key = f"layer{i}"
        if key not in table:
            raise KeyError(f"latency table has no entry for {key!r}")
        missing = [n for n in layer.names if n not in table[key]]
        if missing:
            raise KeyError(f"latency table misses ops {missing} of {key!r}")
        lat = torch.tensor(
            [float(table[key][n]) for n in layer.names],
            device=layer.alpha.device,
            dtype=layer.alpha.dtype,
        )
        if not torch.isfinite(lat).all() or (lat < 0).any():
            raise ValueError(f"latencies of {key!r} must be finite and >= 0, got {lat.tolist()}")
        term = (layer.probs() * lat).sum()
        total = term if total is None else total + term
    assert total is not None
    return total


def latency_loss(supernet: ProxylessSupernet, table: LatencyTable, lam: float = 1.0) -> Tensor:
    r"""The hardware term :math:`\lambda\,\mathbb{E}[\mathrm{LAT}]` to add to the task loss."""
    if not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be >= 0, got {lam}")
    return lam * expected_latency(supernet, table)


@torch.no_grad()
def macs_table(supernet: ProxylessSupernet, resolution: int = 224) -> dict[str, dict[str, float]]:
    """A latency proxy: each op's multiply-accumulates at ``resolution`` (``zero`` costs 0).

    A measured table (seconds on the target device) replaces it in a real search.
    """
    from graphkit.extras._core.counting import count_macs

    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    size = (resolution + 1) // 2  # after the stride-2 stem
    table: dict[str, dict[str, float]] = {}
    for i, ((c_in, _, stride), layer) in enumerate(zip(supernet.plan, supernet.layers)):
        table[f"layer{i}"] = {
            name: 0.0 if name == ZERO else float(count_macs(op, (1, c_in, size, size)))
            for name, op in zip(layer.names, layer.candidates)
        }
        size = (size + stride - 1) // stride
    return table


def reinforce_loss(supernet: ProxylessSupernet, cfg: Mapping[str, Any], advantage: float) -> Tensor:
    r"""REINFORCE on the logits: :math:`-(R - b)\sum_l \log p^{(l)}_{a_l}` for sampled ``cfg``.

    Its gradient is the paper's estimate for a non-differentiable reward :math:`R`
    (``advantage`` is :math:`R - b`, with :math:`b` a moving-average baseline).
    """
    if not math.isfinite(advantage):
        raise ValueError(f"advantage must be a finite number, got {advantage}")
    supernet.space.validate(cfg)
    logp = torch.stack(
        [
            F.log_softmax(layer.alpha, dim=0)[layer.names.index(cfg[f"layer{i}"])]
            for i, layer in enumerate(supernet.layers)
        ]
    )
    return -float(advantage) * logp.sum()


# -- the searched networks -------------------------------------------------------------------
#: Per stage: (width, stride, ops); then stem, first-block and feature-mix widths.
_NETS: dict[str, tuple[tuple[tuple[int, int, tuple[str, ...]], ...], int, int, int]] = {
    "gpu": (
        (
            (32, 2, ("5x5_MBConv3", ZERO, ZERO, ZERO)),
            (56, 2, ("7x7_MBConv3", ZERO, ZERO, "3x3_MBConv3")),
            (112, 2, ("7x7_MBConv6", ZERO, ZERO, "5x5_MBConv3")),
            (128, 1, ("5x5_MBConv6", ZERO, "3x3_MBConv3", "5x5_MBConv3")),
            (256, 2, ("7x7_MBConv6", "7x7_MBConv6", "7x7_MBConv6", "5x5_MBConv6")),
            (432, 1, ("7x7_MBConv6",)),
        ),
        40, 24, 1728,
    ),
    "cpu": (
        (
            (32, 2, ("3x3_MBConv6", "3x3_MBConv3", "3x3_MBConv3", "3x3_MBConv3")),
            (48, 2, ("3x3_MBConv6", "3x3_MBConv3", "3x3_MBConv3", "5x5_MBConv3")),
            (88, 2, ("3x3_MBConv6", ZERO, ZERO, "3x3_MBConv3")),
            (104, 1, ("5x5_MBConv6", "3x3_MBConv3", "3x3_MBConv3", "3x3_MBConv3")),
            (216, 2, ("5x5_MBConv6", "5x5_MBConv3", "5x5_MBConv3", "3x3_MBConv3")),
            (360, 1, ("5x5_MBConv6",)),
        ),
        40, 24, 1432,
    ),
    "mobile": (
        (
            (32, 2, ("5x5_MBConv3", "3x3_MBConv3", ZERO, ZERO)),
            (40, 2, ("7x7_MBConv3", "3x3_MBConv3", "5x5_MBConv3", "5x5_MBConv3")),
            (80, 2, ("7x7_MBConv6", "5x5_MBConv3", "5x5_MBConv3", "5x5_MBConv3")),
            (96, 1, ("5x5_MBConv6", "5x5_MBConv3", "5x5_MBConv3", "5x5_MBConv3")),
            (192, 2, ("7x7_MBConv6", "7x7_MBConv6", "7x7_MBConv3", "7x7_MBConv3")),
            (320, 1, ("7x7_MBConv6",)),
        ),
        32, 16, 1280,
    ),
}  # fmt: skip


def proxyless_net(target: str, num_classes: int = 1000, dropout: float = 0.0) -> nn.Sequential:
    """The network ProxylessNAS found for ``target`` (``"gpu"``, ``"cpu"`` or ``"mobile"``).

    Stem 3×3 (stride 2), a fixed 3×3 MBConv (expand 1), the searched layers (``zero`` layers are
    identities), a 1×1 feature-mix conv, global pooling, dropout and a linear classifier;
    ReLU6 and BatchNorm (eps 1e-3) throughout.
    """
    if target not in _NETS:
        raise ValueError(f"unknown target {target!r}; choose one of {sorted(_NETS)}")
    stages, stem, first, last = _NETS[target]
    plan = _layer_plan([w for w, _, _ in stages], [len(o) for *_, o in stages],
                       [s for _, s, _ in stages], first)  # fmt: skip
    names = [n for *_, ops in stages for n in ops]
    layers = [_op(n, c_in, c_out, s, 1e-3) for n, (c_in, c_out, s) in zip(names, plan)]
    return nn.Sequential(
        *_stem(3, stem, first, 1e-3),
        *layers,
        _head(stages[-1][0], last, num_classes, dropout, 1e-3),
    )


@register_model("proxyless_gpu", family="nas", paper=_PAPER)
def proxyless_gpu(num_classes: int = 1000, dropout: float = 0.0) -> nn.Sequential:
    """ProxylessNAS-GPU (7,119,848 parameters at 1000 classes)."""
    return proxyless_net("gpu", num_classes, dropout)


@register_model("proxyless_cpu", family="nas", paper=_PAPER)
def proxyless_cpu(num_classes: int = 1000, dropout: float = 0.0) -> nn.Sequential:
    """ProxylessNAS-CPU (4,361,648 parameters at 1000 classes)."""
    return proxyless_net("cpu", num_classes, dropout)


@register_model("proxyless_mobile", family="nas", paper=_PAPER)
def proxyless_mobile(num_classes: int = 1000, dropout: float = 0.0) -> nn.Sequential:
    """ProxylessNAS-Mobile (4,080,512 parameters at 1000 classes)."""
    return proxyless_net("mobile", num_classes, dropout)
