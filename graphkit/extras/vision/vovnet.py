"""VoVNet: a backbone of stacked One-Shot Aggregation modules.

`An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object Detection
<https://arxiv.org/abs/1904.09730>`_ (Lee et al., CVPR-W 2019). Configurations follow the
official classification code (stigma0617/VoVNet.pytorch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct, stage_outputs
from graphkit.extras._core.checks import check_image, check_min_size, min_input_size
from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.osa import OSAModule

_PAPER = "An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object Detection"


@dataclass(frozen=True)
class VoVNetConfig:
    """Per-stage widths and depths of one VoVNet variant."""

    stage_channels: tuple[int, int, int, int]
    concat_channels: tuple[int, int, int, int]
    modules_per_stage: tuple[int, int, int, int]
    layers_per_module: int = 5


#: The official configurations (VoVNet.pytorch ``vovnet27_slim``, ``vovnet39``, ``vovnet57``).
CONFIGS: dict[str, VoVNetConfig] = {
    "27_slim": VoVNetConfig((64, 80, 96, 112), (128, 256, 384, 512), (1, 1, 1, 1)),
    "39": VoVNetConfig((128, 160, 192, 224), (256, 512, 768, 1024), (1, 1, 2, 2)),
    "57": VoVNetConfig((128, 160, 192, 224), (256, 512, 768, 1024), (1, 1, 4, 3)),
}


class VoVNet(nn.Module):
    r"""VoVNet backbone with an optional classification head.

    Stem: three 3×3 Conv-BN-ReLU (3→64 stride 2, 64→64, 64→128 stride 2). Four stages
    follow; every stage but the first begins with a 3×3 stride-2 max-pool (ceil mode), then
    stacks :class:`~graphkit.extras.layers.osa.OSAModule` s (the first maps the previous
    width to ``concat_channels``, the others add an identity shortcut, as in the official
    code). Stage outputs have strides 4, 8, 16, 32. Head: global average pooling and a
    linear classifier.

    ========  ====================  =====================  =================
    variant   stage_channels        concat_channels        modules / stage
    ========  ====================  =====================  =================
    27_slim   64, 80, 96, 112       128, 256, 384, 512     1, 1, 1, 1
    39        128, 160, 192, 224    256, 512, 768, 1024    1, 1, 2, 2
    57        128, 160, 192, 224    256, 512, 768, 1024    1, 1, 4, 3
    ========  ====================  =====================  =================

    Args:
        depth (int): 27, 39 or 57. (default: ``39``)
        slim (bool): the slim widths; the only slim variant is VoVNet-27 and VoVNet-27
            exists only slim. (default: ``False``)
        num_classes (int): classifier outputs; ``0`` for no head (pooled features).
            (default: ``1000``)
        in_channels (int): image channels. (default: ``3``)
        features_only (bool): ``forward`` returns the four stage outputs instead of logits,
            and no head is built. (default: ``False``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, \text{num\_classes})`, or :math:`(B, C_{concat,4})` with
          ``num_classes=0``, or with ``features_only`` a list of four maps
          :math:`(B, C_{concat,s}, H_s, W_s)`, :math:`H_s = H / r_s` for
          :math:`r_s \in \{4, 8, 16, 32\}` when :math:`H` is a multiple of 32 (other sizes
          follow the stride-2 conv and ceil-mode pool arithmetic).
    """

    def __init__(
        self,
        depth: int = 39,
        slim: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
        features_only: bool = False,
    ) -> None:
        super().__init__()
        key = f"{depth}_slim" if slim else str(depth)
        if key not in CONFIGS:
            raise ValueError(
                f"no VoVNet with depth={depth}, slim={slim}; available: 27 (slim=True), 39, 57"
            )
        if num_classes < 0 or in_channels <= 0:
            raise ValueError(
                f"num_classes must be >= 0 and in_channels > 0, got {num_classes}, {in_channels}"
            )
        cfg = CONFIGS[key]
        self.config = cfg
        self.in_channels = in_channels
        self.features_only = features_only
        self.stem = nn.Sequential(
            ConvNormAct(in_channels, 64, 3, stride=2),
            ConvNormAct(64, 64, 3),
            ConvNormAct(64, 128, 3, stride=2),
        )
        stages = []
        width = 128
        for s in range(4):
            blocks: list[nn.Module] = []
            if s > 0:
                blocks.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
            for m in range(cfg.modules_per_stage[s]):
                blocks.append(
                    OSAModule(
                        width,
                        cfg.stage_channels[s],
                        cfg.concat_channels[s],
                        cfg.layers_per_module,
                        identity=m > 0,
                    )
                )
                width = cfg.concat_channels[s]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.min_size = min_input_size([*self.stem.modules(), *self.stages.modules()])
        self.num_features = width
        self.feature_channels = list(cfg.concat_channels)
        self.feature_strides = [4, 8, 16, 32]
        has_head = num_classes > 0 and not features_only
        self.classifier = nn.Linear(width, num_classes) if has_head else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: Kaiming-normal convs, unit BN, zero linear bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()
            elif isinstance(m, nn.Linear):
                m.reset_parameters()
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The four stage outputs, strides 4, 8, 16, 32."""
        check_image(x, self.in_channels, "VoVNet")
        check_min_size(x, self.min_size, "VoVNet")
        return stage_outputs(x, self.stem, self.stages)

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        feats = self.forward_features(x)
        if self.features_only:
            return feats
        pooled = torch.flatten(nn.functional.adaptive_avg_pool2d(feats[-1], 1), 1)
        return self.classifier(pooled)


@register_model("vovnet27_slim", family="backbone", paper=_PAPER)
def vovnet27_slim(**kwargs: Any) -> VoVNet:
    """VoVNet-27-slim (see :class:`VoVNet`)."""
    return VoVNet(depth=27, slim=True, **kwargs)


@register_model("vovnet39", family="backbone", paper=_PAPER)
def vovnet39(**kwargs: Any) -> VoVNet:
    """VoVNet-39 (see :class:`VoVNet`)."""
    return VoVNet(depth=39, **kwargs)


@register_model("vovnet57", family="backbone", paper=_PAPER)
def vovnet57(**kwargs: Any) -> VoVNet:
    """VoVNet-57 (see :class:`VoVNet`)."""
    return VoVNet(depth=57, **kwargs)
