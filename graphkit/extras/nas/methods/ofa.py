r"""Once-for-All: one MobileNetV3 supernet trained once, specialised without retraining.

From `Once-for-All: Train One Network and Specialize it for Efficient Deployment
<https://arxiv.org/abs/1908.09791>`_ (Cai et al., ICLR 2020; official code
mit-han-lab/once-for-all, ``OFAMobileNetV3``). :class:`OFASupernet` is the MobileNetV3 supernet:

- stem 3×3 conv (stride 2, h-swish) to 16 channels, a fixed MBConv 16→16 (expand 1, 3×3, ReLU);
- ``units`` elastic units (widths 24, 40, 80, 112, 160; strides 2, 2, 2, 1, 2; ReLU in the first
  two, h-swish after; squeeze-excitation in units 2, 4 and 5), each of up to ``max(depth)``
  :class:`~graphkit.extras.nas.elastic.ElasticMBConv` blocks with elastic kernel (``ks``),
  expand ratio (``expand``) and depth (the first ``d`` blocks run);
- head: 1×1 conv to 960 (BN, h-swish), global pooling, 1×1 conv to 1280 (no BN, h-swish),
  dropout and a linear classifier.

Channel widths are ``make_divisible(w * width_mult, 8)``. The architecture space has
:math:`\big(\sum_{d} (|ks|\,|e|)^d\big)^{units}` configurations,
:math:`(9^2 + 9^3 + 9^4)^5 = 7371^5 \approx 2.2 \times 10^{19}` by default; elastic resolution
(128–224, step 4) is a property of the training data, not of the weights, so it is kept apart
(:attr:`OFASupernet.resolutions`).

:class:`ProgressiveShrinking` is the paper's training order: the full network, then elastic
kernel, then elastic depth, then elastic expand ratio, each stage widening the sampled options
(depth ``{4} → {3,4} → {2,3,4}``, expand ``{6} → {4,6} → {3,4,6}``) and fine-tuning the sampled
subnets with in-place knowledge distillation from the full network (loss
:math:`\mathrm{CE} + \lambda_{KD}\,\mathrm{KD}`); hidden channels are sorted by importance
before the expand stages.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct, MBConv, SqueezeExcite
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.elastic import ElasticDepth, ElasticMBConv, make_divisible
from graphkit.extras.nas.space import Choice, SearchSpace
from graphkit.extras.training.distill import kd_kl

_PAPER = "Once-for-All: Train One Network and Specialize it for Efficient Deployment"

#: OFA-MobileNetV3's units: (width, stride, activation, squeeze-excitation).
MBV3_UNITS: tuple[tuple[int, int, type[nn.Module], bool], ...] = (
    (24, 2, nn.ReLU, False),
    (40, 2, nn.ReLU, True),
    (80, 2, nn.Hardswish, False),
    (112, 1, nn.Hardswish, True),
    (160, 2, nn.Hardswish, True),
)


def _check_options(name: str, values: Sequence[int | float], low: float) -> tuple:
    out = tuple(sorted(set(values)))
    if not out or any(v < low for v in out):
        raise ValueError(f"{name} must be a non-empty list of values >= {low}, got {values}")
    return out


class ElasticSqueezeExcite(nn.Module):
    r"""OFA's squeeze-excitation for an elastic hidden width (``DynamicSE``).

    For a :math:`C`-channel input it uses the first :math:`r = \mathrm{make\_divisible}(C / 4)`
    reduced channels: :math:`s = \mathrm{hsigmoid}(W_2[:C, :r]\,\mathrm{ReLU}(W_1[:r, :C]
    \,\mathrm{GAP}(x) + b_1[:r]) + b_2[:C])`, :math:`y = s \odot x`.

    Args:
        channels (int): the largest hidden width.
        divisor (int): reduced widths are multiples of it (default: ``8``).

    Shapes:
        - **input / output:** :math:`(N, C, H, W)`, :math:`C \le` ``channels``
    """

    def __init__(self, channels: int, divisor: int = 8) -> None:
        super().__init__()
        self.channels, self.divisor = channels, divisor
        rd = self.reduced(channels)
        self.reduce = nn.Conv2d(channels, rd, 1)
        self.expand = nn.Conv2d(rd, channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reduce.reset_parameters()
        self.expand.reset_parameters()

    def reduced(self, channels: int) -> int:
        """Reduced width used for a ``channels``-wide input."""
        return make_divisible(channels // 4, self.divisor)

    def forward(self, x: Tensor) -> Tensor:
        c = x.size(1)
        if x.dim() != 4 or c > self.channels:
            raise ValueError(
                f"expected (N, C<={self.channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        r = self.reduced(c)
        s = x.mean(dim=(2, 3), keepdim=True)
        s = F.relu(F.conv2d(s, self.reduce.weight[:r, :c], self.reduce.bias[:r]))
        s = F.hardsigmoid(F.conv2d(s, self.expand.weight[:c, :r], self.expand.bias[:c]))
        return x * s

    @torch.no_grad()
    def extract(self, channels: int) -> SqueezeExcite:
        """A standalone :class:`~graphkit.extras._core.blocks.SqueezeExcite` for ``channels``."""
        r = self.reduced(channels)
        out = SqueezeExcite(channels, rd_channels=r, act_layer=nn.ReLU, gate_layer=nn.Hardsigmoid)
        out = out.to(device=self.reduce.weight.device, dtype=self.reduce.weight.dtype)
        out.reduce.weight.copy_(self.reduce.weight[:r, :channels])
        out.reduce.bias.copy_(self.reduce.bias[:r])
        out.expand.weight.copy_(self.expand.weight[:channels, :r])
        out.expand.bias.copy_(self.expand.bias[:channels])
        return out


class OFAMBConv(ElasticMBConv):
    """An :class:`~graphkit.extras.nas.elastic.ElasticMBConv` with OFA's optional elastic SE.

    The SE gates the depthwise output, before the projection. Arguments are those of
    :class:`~graphkit.extras.nas.elastic.ElasticMBConv` plus ``use_se`` (default: ``False``).
    """

    def __init__(self, *args: Any, use_se: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.se = (
            ElasticSqueezeExcite(self.mid_channels(self.expand_ratios[-1])) if use_se else None
        )

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.se is not None:
            self.se.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f"expected (N, {self.in_channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        h = self.expand_act(self.expand_bn(self.expand(x)))
        h = self.depthwise_act(self.depthwise_bn(self.depthwise(h)))
        if self.se is not None:
            h = self.se(h)
        y = self.project_bn(self.project(h))
        return x + y if self.has_residual else y

    @torch.no_grad()
    def sort_channels_(self) -> Tensor:
        """Sort SE's reduced channels, then the hidden channels (OFA's weight re-organisation).

        Both orderings are by the L1 norm of the outgoing weights and keep the full-width
        function unchanged. Returns the hidden-channel permutation.
        """
        se = self.se
        if se is not None:
            order = torch.argsort(se.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True)
            se.reduce.weight.copy_(se.reduce.weight[order])
            se.reduce.bias.copy_(se.reduce.bias[order])
            se.expand.weight.copy_(se.expand.weight[:, order])
        order = super().sort_channels_()
        if se is not None:
            se.reduce.weight.copy_(se.reduce.weight[:, order])
            se.expand.weight.copy_(se.expand.weight[order])
            se.expand.bias.copy_(se.expand.bias[order])
        return order

    @torch.no_grad()
    def extract(self) -> MBConv:
        out = super().extract()
        if self.se is not None:
            out.se = self.se.extract(self.mid_channels())
        return out


@register_model("ofa_mbv3", family="nas", paper=_PAPER)
class OFASupernet(nn.Module):
    r"""The Once-for-All MobileNetV3 supernet (``ofa_mbv3_d234_e346_k357_w1.0`` by default).

    A configuration is ``{"unit0": {"depth": d, "layers": {"layer0": {"ks": k, "e": e}, ...}},
    ...}`` (see :attr:`space`); :meth:`set_active` runs it, :meth:`extract` copies it into a
    standalone :class:`~torch.nn.Sequential` of plain layers with the same output.

    Args:
        ks (Sequence[int]): depthwise kernel sizes (default: ``(3, 5, 7)``).
        expand (Sequence[float]): expand ratios (default: ``(3, 4, 6)``).
        depth (Sequence[int]): unit depths (default: ``(2, 3, 4)``).
        units (int): number of elastic units, 1 to 5; the first ``units`` of
            :data:`MBV3_UNITS` are used (default: ``5``).
        width_mult (float): width multiplier (default: ``1.0``).
        num_classes (int): classifier outputs (default: ``1000``).
        dropout (float): dropout before the classifier (default: ``0.1``).
        in_channels (int): image channels (default: ``3``).

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)` (any resolution; 128–224 in the paper)
        - **output:** :math:`(N, \text{num\_classes})`
    """

    resolutions: tuple[int, ...] = tuple(range(128, 225, 4))

    def __init__(
        self,
        ks: Sequence[int] = (3, 5, 7),
        expand: Sequence[float] = (3, 4, 6),
        depth: Sequence[int] = (2, 3, 4),
        units: int = 5,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        dropout: float = 0.1,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not 1 <= units <= len(MBV3_UNITS):
            raise ValueError(f"units must lie in [1, {len(MBV3_UNITS)}], got {units}")
        if not (width_mult > 0 and math.isfinite(width_mult)):
            raise ValueError(f"width_mult must be a positive finite number, got {width_mult}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.ks = _check_options("ks", ks, 1)
        self.expand_ratios = _check_options("expand", expand, 1)
        self.depths = _check_options("depth", depth, 1)
        self.width_mult = width_mult

        def width(w: int) -> int:
            return make_divisible(w * width_mult, 8)

        stem, first = width(16), width(16)
        self.stem = ConvNormAct(in_channels, stem, 3, stride=2, act_layer=nn.Hardswish)
        self.first_block = MBConv(stem, first, expand_ratio=1, kernel_size=3, act_layer=nn.ReLU)
        self.units = nn.ModuleList()
        c = first
        for w, stride, act, use_se in MBV3_UNITS[:units]:
            blocks = []
            for i in range(self.depths[-1]):
                blocks.append(
                    OFAMBConv(
                        c,
                        width(w),
                        self.ks,
                        self.expand_ratios,
                        stride if i == 0 else 1,
                        act_layer=act,
                        use_se=use_se,
                    )
                )
                c = width(w)
            self.units.append(ElasticDepth(blocks, self.depths))
        final, last = width(960), width(1280)
        self.head = nn.Sequential(
            ConvNormAct(c, final, 1, act_layer=nn.Hardswish),
            nn.AdaptiveAvgPool2d(1),
            ConvNormAct(final, last, 1, norm_layer=None, bias=False, act_layer=nn.Hardswish),
            nn.Flatten(1),
            nn.Dropout(dropout),
            nn.Linear(last, num_classes),
        )
        self.space = SearchSpace("ofa", [self._unit_space(i) for i in range(units)])
        self.active_cfg = self.max_config()

    def _unit_space(self, i: int) -> SearchSpace:
        def layers(d: int) -> SearchSpace:
            return SearchSpace(
                "layers",
                [
                    SearchSpace(
                        f"layer{j}", [Choice("ks", self.ks), Choice("e", self.expand_ratios)]
                    )
                    for j in range(d)
                ],
            )

        return SearchSpace(
            f"unit{i}", [Choice("depth", self.depths, {d: layers(d) for d in self.depths})]
        )

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    # -- configurations ---------------------------------------------------------------------
    def sample_config(
        self,
        rng: random.Random | int | None = None,
        ks: Sequence[int] | None = None,
        expand: Sequence[float] | None = None,
        depth: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """A uniform random configuration, optionally restricted to some of the options."""
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        ks_opts = self._subset("ks", ks, self.ks)
        e_opts = self._subset("expand", expand, self.expand_ratios)
        d_opts = self._subset("depth", depth, self.depths)
        cfg: dict[str, Any] = {}
        for i in range(len(self.units)):
            d = rng.choice(d_opts)
            cfg[f"unit{i}"] = {
                "depth": d,
                "layers": {
                    f"layer{j}": {"ks": rng.choice(ks_opts), "e": rng.choice(e_opts)}
                    for j in range(d)
                },
            }
        return cfg

    @staticmethod
    def _subset(name: str, chosen: Sequence | None, allowed: tuple) -> tuple:
        if chosen is None:
            return allowed
        chosen = tuple(chosen)
        if not chosen or any(v not in allowed for v in chosen):
            raise ValueError(f"{name} options {chosen} must be a non-empty subset of {allowed}")
        return chosen

    def max_config(self) -> dict[str, Any]:
        """The largest network: deepest units, largest kernels and expand ratios."""
        return self.sample_config(0, (self.ks[-1],), (self.expand_ratios[-1],), (self.depths[-1],))

    def min_config(self) -> dict[str, Any]:
        """The smallest network: shallowest units, smallest kernels and expand ratios."""
        return self.sample_config(0, (self.ks[0],), (self.expand_ratios[0],), (self.depths[0],))

    def set_active(self, cfg: Mapping[str, Any]) -> None:
        """Run architecture ``cfg`` from now on (a ``ValueError`` names a key outside the space)."""
        self.space.validate(cfg)
        for i, unit in enumerate(self.units):
            ucfg = cfg[f"unit{i}"]
            unit.set_active(ucfg["depth"])
            for j in range(ucfg["depth"]):
                layer = ucfg["layers"][f"layer{j}"]
                unit.blocks[j].set_active(kernel_size=layer["ks"], expand_ratio=layer["e"])
        self.active_cfg = copy.deepcopy(dict(cfg))

    def blocks(self) -> Iterator[OFAMBConv]:
        """Every elastic block of every unit."""
        for unit in self.units:
            yield from unit.blocks

    @torch.no_grad()
    def sort_channels_(self) -> None:
        """Sort every elastic block's hidden channels by importance (before expand shrinking)."""
        for block in self.blocks():
            block.sort_channels_()

    # -- running and extracting -------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(x.shape)}")
        x = self.first_block(self.stem(x))
        for unit in self.units:
            x = unit(x)
        return self.head(x)

    @torch.no_grad()
    def extract(self, cfg: Mapping[str, Any] | None = None) -> nn.Sequential:
        """Architecture ``cfg`` (default: the active one) as a standalone network.

        The supernet's active configuration is left as it was.
        """
        previous = self.active_cfg
        if cfg is not None:
            self.set_active(cfg)
        try:
            units = [unit.extract() for unit in self.units]
        finally:
            self.set_active(previous)
        out = nn.Sequential(
            copy.deepcopy(self.stem),
            copy.deepcopy(self.first_block),
            *units,
            copy.deepcopy(self.head),
        )
        return out.train(self.training)

    def extra_repr(self) -> str:
        return (
            f"ks={self.ks}, expand={self.expand_ratios}, depth={self.depths}, "
            f"units={len(self.units)}, width_mult={self.width_mult}"
        )


class ProgressiveShrinking:
    r"""OFA's progressive-shrinking schedule and training step.

    Stages, in order (:attr:`stages`): ``"full"`` (largest network only), ``"kernel"``
    (elastic kernel), ``"depth1" .. "depth{D-1}"`` (the deepest ``k + 1`` depths), then
    ``"expand1" .. "expand{E-1}"`` (the largest ``k + 1`` expand ratios, all depths and
    kernels). :meth:`begin` sorts the hidden channels when an expand stage starts and, for the
    first shrinking stage, freezes a copy of the full network as the teacher unless one was
    given. :meth:`train_step` samples ``n_subnets`` configurations of the stage, accumulates
    :math:`\mathrm{CE}(f(x), y) + \lambda_{KD}\,\mathrm{KD}(f(x), t(x))` of each (KD:
    :func:`~graphkit.extras.training.distill.kd_kl` at temperature 1, as the official
    soft-target cross-entropy) and takes one optimiser step.

    Args:
        supernet (OFASupernet): the supernet to train.
        teacher (nn.Module, optional): a trained full network (default: a frozen copy of the
            supernet's largest network, taken by :meth:`begin`).
        kd_ratio (float): :math:`\lambda_{KD}`, ``0`` for no distillation (default: ``1.0``).
        n_subnets (int): configurations per step in the shrinking stages (default: ``2``).
        resolutions (Sequence[int], optional): elastic resolution: each step resizes the batch
            to a sampled size (default: :obj:`None`, keep the input size).
        seed (int): seed of the configuration sampler (default: ``0``).
    """

    def __init__(
        self,
        supernet: OFASupernet,
        teacher: nn.Module | None = None,
        kd_ratio: float = 1.0,
        n_subnets: int = 2,
        resolutions: Sequence[int] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(supernet, OFASupernet):
            raise TypeError(f"supernet must be an OFASupernet, got {type(supernet).__name__}")
        if not (kd_ratio >= 0 and math.isfinite(kd_ratio)):
            raise ValueError(f"kd_ratio must be >= 0, got {kd_ratio}")
        if n_subnets < 1:
            raise ValueError(f"n_subnets must be positive, got {n_subnets}")
        if resolutions is not None and (not resolutions or min(resolutions) < 1):
            raise ValueError(f"resolutions must be positive sizes, got {resolutions}")
        self.supernet, self.teacher = supernet, teacher
        self.kd_ratio, self.n_subnets = kd_ratio, n_subnets
        self.resolutions = tuple(resolutions) if resolutions is not None else None
        self.rng = random.Random(seed)
        net = supernet
        self.stages: tuple[str, ...] = (
            "full",
            "kernel",
            *(f"depth{k}" for k in range(1, len(net.depths))),
            *(f"expand{k}" for k in range(1, len(net.expand_ratios))),
        )
        self.stage: str | None = None

    def options(self, stage: str) -> dict[str, tuple]:
        """The kernel sizes, expand ratios and depths sampled in ``stage``."""
        net = self.supernet
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r}; stages are {self.stages}")
        if stage == "full":
            return {"ks": net.ks[-1:], "expand": net.expand_ratios[-1:], "depth": net.depths[-1:]}
        if stage == "kernel":
            return {"ks": net.ks, "expand": net.expand_ratios[-1:], "depth": net.depths[-1:]}
        k = int(stage.removeprefix("depth").removeprefix("expand"))
        if stage.startswith("depth"):
            return {"ks": net.ks, "expand": net.expand_ratios[-1:], "depth": net.depths[-k - 1 :]}
        return {"ks": net.ks, "expand": net.expand_ratios[-k - 1 :], "depth": net.depths}

    def sample(self, stage: str) -> dict[str, Any]:
        """A configuration drawn uniformly from the options of ``stage``."""
        return self.supernet.sample_config(self.rng, **self.options(stage))

    @torch.no_grad()
    def begin(self, stage: str) -> None:
        """Enter ``stage``: take the teacher and sort channels where the paper does."""
        self.options(stage)  # validates the name
        if stage != "full" and self.teacher is None and self.kd_ratio > 0:
            self.teacher = self.supernet.extract(self.supernet.max_config()).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        if stage.startswith("expand"):
            self.supernet.sort_channels_()
        self.stage = stage

    def train_step(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer) -> float:
        """One optimiser step of the current stage; returns the mean loss over the subnets."""
        if self.stage is None:
            raise RuntimeError("call begin(stage) before train_step")
        if self.resolutions is not None:
            size = self.rng.choice(self.resolutions)
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        soft = None
        if self.stage != "full" and self.kd_ratio > 0 and self.teacher is not None:
            with torch.no_grad():
                soft = self.teacher(x)
        optimizer.zero_grad()
        n = 1 if self.stage == "full" else self.n_subnets
        total = 0.0
        for _ in range(n):
            self.supernet.set_active(self.sample(self.stage))
            out = self.supernet(x)
            loss = F.cross_entropy(out, y)
            if soft is not None:
                loss = loss + self.kd_ratio * kd_kl(out, soft, T=1.0)
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        return total / n
