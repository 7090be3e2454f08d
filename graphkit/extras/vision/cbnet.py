r"""CBNetV2: composite backbones with Dense Higher-Level Composition.

From `CBNet: A Composite Backbone Network Architecture for Object Detection
<https://arxiv.org/abs/2107.00420>`_ (Liang et al., IEEE TIP 2022; "CBNetV2"). The
composition follows the official ``VDIGPKU/CBNetV2`` (``mmdet/models/backbones/cbnet.py``,
``CBResNet`` with ``cb_del_stages=1``, ``cb_zero_init=True``).

:math:`K` copies of a backbone run in sequence; copy :math:`k` receives, at the input of each
of its stages :math:`l \ge d`, the Dense Higher-Level Composition of copy :math:`k-1`'s
outputs:

.. math::
    x_k^{l} \leftarrow x_k^{l} + \sum_{j = l}^{L - 1}
        \mathrm{up}\big(\mathrm{BN}(W_{j \to l} F_{k-1}^{j})\big)

where :math:`F^j` is stage :math:`j`'s output, :math:`W_{j \to l}` a bias-free 1×1 conv to
stage :math:`l`'s input width and ``up`` nearest resizing to stage :math:`l`'s input size.
The copies after the first drop their stem and their first :math:`d` stages
(``del_stages``) and reuse the first copy's outputs there. One set of compositions serves
every pair of consecutive copies (as in the official code), so the parameter count is
:math:`K \cdot B - (K - 1)(\text{stem} + \text{first } d \text{ stages}) + G` for a backbone
of :math:`B` parameters and compositions of :math:`G`. The composition BNs start at zero
(so at initialisation the lead copy computes the plain backbone) and, as in the official
code, always run in eval mode. The lead (last) copy's outputs go to the neck; with assistant
supervision each assisting copy's features also feed the head and their losses are added
with weight :math:`\lambda` (``assistant_weight``, 0.5 in the paper).

Any backbone exposing ``stem`` (a module) and ``stages`` (a sequence of modules, each mapping
the previous output to the next) composes: :class:`ResNetBackbone` below,
:class:`~graphkit.extras.vision.vovnet.VoVNet`, :class:`~graphkit.extras.vision.emov2.EMOv2`.
The backbone's head, if any, is not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import stage_outputs
from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model

__all__ = ["Bottleneck", "ResNetBackbone", "CBNet", "cbnet_resnet50"]

_PAPER = "CBNet: A Composite Backbone Network Architecture for Object Detection"

#: bottleneck blocks per stage
_RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class Bottleneck(nn.Module):
    """ResNet bottleneck (1×1, 3×3 with the stride, 1×1 ×4), BN after each, ReLU, residual.

    Args:
        in_channels: input width.
        planes: bottleneck width; the output has ``4 * planes`` channels.
        stride: stride of the 3×3 conv and the projection shortcut (default: ``1``).

    Shapes:
        input ``(B, in_channels, H, W)``, output ``(B, 4 planes, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, planes=planes, stride=stride)
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False),
                          nn.BatchNorm2d(out))
            if stride != 1 or in_channels != out
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.conv1.in_channels, "Bottleneck")
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.downsample(x))


class ResNetBackbone(nn.Module):
    """The ImageNet ResNet of `Deep Residual Learning <https://arxiv.org/abs/1512.03385>`_
    without its classifier, in the layout of torchvision's ``resnet50`` (stride on the 3×3
    conv), exposing ``stem`` and ``stages`` for :class:`CBNet`.

    Stem: 7×7 conv stride 2 (64), BN, ReLU, 3×3 max-pool stride 2. Stages of bottlenecks at
    64/128/256/512 planes (outputs 256/512/1024/2048), strides 4, 8, 16, 32. ResNet-50 holds
    23,508,032 parameters here (torchvision's 25,557,032 less the 2,049,000 of its fc).

    Args:
        depth: 50, 101 or 152 (default: ``50``).
        in_channels: image channels (default: ``3``).

    Shapes:
        input ``(B, in_channels, H, W)``; output the list of four stage maps.
    """

    def __init__(self, depth: int = 50, in_channels: int = 3) -> None:
        super().__init__()
        if depth not in _RESNET_DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(_RESNET_DEPTHS)}, got {depth}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages, width = [], 64
        for s, blocks in enumerate(_RESNET_DEPTHS[depth]):
            planes = 64 * 2**s
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(width, planes, stride=2 if b == 0 and s > 0 else 1))
                width = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.feature_channels = [256, 512, 1024, 2048]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's initialisation: Kaiming-normal (fan-out) convs, unit BN."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image(x, self.in_channels, "ResNetBackbone")
        return stage_outputs(x, self.stem, self.stages)


def _composition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels))


class CBNet(nn.Module):
    r"""A composite backbone of ``k`` copies joined by Dense Higher-Level Composition.

    See the module docstring for the rule. The stage widths are read from a dry run of the
    first copy on a ``probe_size`` square input unless ``channels`` gives them.

    Args:
        backbone_fn: builds one backbone exposing ``stem`` and ``stages``; called ``k`` times.
        k: number of copies :math:`K \ge 1` (``1`` is the plain backbone) (default: ``2``).
        composition: ``"DHLC"``, the paper's Dense Higher-Level Composition (the only one
            the official code ships) (default: ``"DHLC"``).
        assistant_weight: :math:`\lambda` of :meth:`assistant_loss` (default: ``0.5``).
        del_stages: leading stages the later copies share with the first (default: ``1``, the
            official setting; ``0`` shares the stem only).
        channels: ``(stem width, stage 1 width, ..., stage L width)``; ``None`` infers them
            (default: ``None``).
        in_channels: image channels of the dry run (default: ``3``).
        probe_size: side of the dry-run input (default: ``64``).

    Shapes:
        input ``(B, C, H, W)``; output the lead copy's ``L`` stage maps, each the shape the
        single backbone gives. ``forward(x, all_copies=True)`` returns all ``K`` lists.
    """

    def __init__(
        self,
        backbone_fn: Callable[[], nn.Module],
        k: int = 2,
        composition: str = "DHLC",
        assistant_weight: float = 0.5,
        del_stages: int = 1,
        channels: Sequence[int] | None = None,
        in_channels: int = 3,
        probe_size: int = 64,
    ) -> None:
        super().__init__()
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if composition.upper() != "DHLC":
            raise ValueError(f"composition must be 'DHLC' (dense higher-level), got "
                             f"{composition!r}")
        if not assistant_weight >= 0:
            raise ValueError(f"assistant_weight must be >= 0, got {assistant_weight}")
        check_positive(in_channels=in_channels, probe_size=probe_size)
        first = backbone_fn()
        if not hasattr(first, "stem") or not hasattr(first, "stages"):
            raise TypeError(f"{type(first).__name__} must expose `stem` and `stages` to compose")
        n_stages = len(first.stages)
        if not 0 <= del_stages < n_stages:
            raise ValueError(f"del_stages must lie in [0, {n_stages - 1}], got {del_stages}")
        self.k = int(k)
        self.assistant_weight = float(assistant_weight)
        self.del_stages = del_stages
        self.channels = (list(channels) if channels is not None
                         else _probe_channels(first, in_channels, probe_size))
        if len(self.channels) != n_stages + 1:
            raise ValueError(f"channels needs the stem width and {n_stages} stage widths, "
                             f"got {len(self.channels)} values")
        self.stem = first.stem
        self.copies = nn.ModuleList([nn.ModuleList(first.stages)])
        for _ in range(1, self.k):
            copy = backbone_fn()
            # the later copies keep only the stages they run
            self.copies.append(nn.ModuleList(
                [nn.Identity() if s < del_stages else copy.stages[s] for s in range(n_stages)]
            ))
        # compositions[l][j - l]: copy k-1's stage-j output -> copy k's stage-l input
        self.compositions = nn.ModuleList()
        if self.k > 1:
            for l in range(n_stages):
                self.compositions.append(nn.ModuleList(
                    [_composition(self.channels[j + 1], self.channels[l])
                     for j in range(l, n_stages)] if l >= del_stages else []
                ))
        self.reset_composition()

    def reset_composition(self) -> None:
        """Zero the composition BNs, so the lead copy starts as the plain backbone."""
        for m in self.compositions.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()

    def train(self, mode: bool = True) -> CBNet:
        super().train(mode)
        # official trick: the composition BNs keep their (initial) statistics
        for m in self.compositions.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def _feeds(self, outs: list[Tensor], sizes: list[torch.Size]) -> list[Tensor | None]:
        feeds: list[Tensor | None] = []
        for l, convs in enumerate(self.compositions):
            if len(convs) == 0:
                feeds.append(None)
                continue
            total = 0
            for offset, g in enumerate(convs):
                total = total + F.interpolate(g(outs[l + offset]), size=sizes[l],
                                              mode="nearest")
            feeds.append(total)
        return feeds

    def forward(self, x: Tensor, all_copies: bool = False) -> list[Tensor] | list[list[Tensor]]:
        if x.dim() != 4:
            raise ValueError(f"CBNet expects (B, C, H, W), got shape {tuple(x.shape)}")
        stem_out = self.stem(x)
        per_copy: list[list[Tensor]] = []
        feeds: list[Tensor | None] = []
        for c, stages in enumerate(self.copies):
            h, outs = stem_out, []
            for s, stage in enumerate(stages):
                if c > 0 and s < self.del_stages:
                    h = per_copy[0][s]  # shared with the first copy
                else:
                    if c > 0 and feeds[s] is not None:
                        h = h + feeds[s]
                    h = stage(h)
                outs.append(h)
            per_copy.append(outs)
            if c < self.k - 1:
                feeds = self._feeds(outs, self._input_sizes(stem_out, outs))
        return per_copy if all_copies else per_copy[-1]

    @staticmethod
    def _input_sizes(stem_out: Tensor, outs: list[Tensor]) -> list[torch.Size]:
        # stage l's input is the stem output (l = 0) or stage l-1's output
        return [stem_out.shape[-2:]] + [o.shape[-2:] for o in outs[:-1]]

    def assistant_loss(self, features: Sequence[Sequence[Tensor]],
                       loss_fn: Callable[[Sequence[Tensor]], Tensor]) -> Tensor:
        r"""Assistant supervision :math:`\lambda \sum_{k < K} \mathcal{L}(F_k)`.

        Args:
            features: ``forward(x, all_copies=True)``'s output.
            loss_fn: the head's loss on one copy's features (the detection loss in the paper).
        """
        if len(features) != self.k:
            raise ValueError(f"expected the features of all {self.k} copies, got "
                             f"{len(features)}")
        if self.k == 1:
            return features[0][0].new_zeros(())
        return self.assistant_weight * sum(loss_fn(f) for f in features[:-1])


@torch.no_grad()
def _probe_channels(backbone: nn.Module, in_channels: int, size: int) -> list[int]:
    with eval_mode(backbone):
        p = next(backbone.parameters())
        h = backbone.stem(torch.zeros(1, in_channels, size, size, device=p.device,
                                      dtype=p.dtype))
        channels = [h.size(1)]
        for stage in backbone.stages:
            h = stage(h)
            channels.append(h.size(1))
    return channels


@register_model("cbnet_resnet50", family="backbone", paper=_PAPER)
def cbnet_resnet50(k: int = 2, **kwargs) -> CBNet:
    """Dual-ResNet-50 (``k=2``) and its ``k``-copy generalisations, the official setting."""
    return CBNet(lambda: ResNetBackbone(50), k=k, channels=(64, 256, 512, 1024, 2048),
                 **kwargs)
