"""EMOv2: a four-stage hierarchy of i2RMB blocks.

From `EMOv2: Pushing 5M Vision Model Frontier <https://arxiv.org/abs/2412.06674>`_ (Zhang et
al., 2024). The configurations are the official ``zhangzjn/EMOv2`` entries
``EMO2_{1M,2M,5M,20M}_k5_hybrid`` (``model/lib_emo/emo2.py``, 224² input, window 7):

========  ==============  ==================  ====================  ================
variant   depths          widths              expansion ratios      head widths
========  ==============  ==================  ====================  ================
``1m``    2, 2, 8, 3      32, 48, 80, 180     2, 2.5, 3, 3.5        16, 16, 20, 20
``2m``    3, 3, 9, 3      32, 48, 120, 200    2, 2.5, 3, 3.5        16, 16, 20, 20
``5m``    3, 3, 9, 3      48, 72, 160, 288    2, 3, 4, 4            16, 24, 32, 32
``20m``   3, 3, 13, 3     64, 128, 320, 448   2, 3, 4, 4            16, 32, 32, 32
========  ==============  ==================  ====================  ================

Stem: 3×3 conv (bias) stride 2 to half the first width, BN, SiLU; depthwise 3×3, BN, SiLU;
1×1 conv. Each stage opens with a stride-2 inverted residual block at twice the stage's
expansion ratio; the other blocks are inverted residual blocks (stages 1-2: BatchNorm, SiLU)
or i2RMBs with hybrid window attention (stages 3-4: LayerNorm, GELU). Every depthwise kernel
is 5×5. Head: LayerNorm, global average pooling, linear. Stochastic depth rises linearly to
0.04036 / 0.05 / 0.05 / 0.1 over the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct, stage_outputs
from graphkit.extras._core.checks import check_image
from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.i2rmb import I2RMB, LayerNorm2d

__all__ = ["EMOv2", "EMOv2Config", "EMOV2_CONFIGS", "emov2_1m", "emov2_2m", "emov2_5m",
           "emov2_20m"]

_PAPER = "EMOv2: Pushing 5M Vision Model Frontier"


@dataclass(frozen=True)
class EMOv2Config:
    """One EMOv2 size: per-stage depths, widths, expansion ratios, head widths, drop path."""

    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]
    expand_ratios: tuple[float, float, float, float]
    head_dims: tuple[int, int, int, int]
    drop_path: float


#: official ``EMO2_*_k5_hybrid`` configurations
EMOV2_CONFIGS = {
    "1m": EMOv2Config((2, 2, 8, 3), (32, 48, 80, 180), (2.0, 2.5, 3.0, 3.5), (16, 16, 20, 20),
                      0.04036),
    "2m": EMOv2Config((3, 3, 9, 3), (32, 48, 120, 200), (2.0, 2.5, 3.0, 3.5), (16, 16, 20, 20),
                      0.05),
    "5m": EMOv2Config((3, 3, 9, 3), (48, 72, 160, 288), (2.0, 3.0, 4.0, 4.0), (16, 24, 32, 32),
                      0.05),
    "20m": EMOv2Config((3, 3, 13, 3), (64, 128, 320, 448), (2.0, 3.0, 4.0, 4.0),
                       (16, 32, 32, 32), 0.1),
}


def _bn(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, eps=1e-6)


class EMOv2(nn.Module):
    """The EMOv2 classifier (see the module docstring for the configurations).

    Args:
        variant: ``"1m"``, ``"2m"``, ``"5m"`` or ``"20m"`` (default: ``"5m"``).
        num_classes: classes of the linear head (default: ``1000``).
        in_channels: image channels (default: ``3``).
        window_size: attention window of stages 3-4 (default: ``7``; 8 in the 256² configs).
        drop_path: stochastic-depth maximum; ``None`` takes the variant's (default: ``None``).

    Shapes:
        input ``(B, in_channels, H, W)``; output ``(B, num_classes)``.
        :meth:`forward_features` returns the four stage maps at strides 4, 8, 16, 32.
    """

    def __init__(
        self,
        variant: str = "5m",
        num_classes: int = 1000,
        in_channels: int = 3,
        window_size: int = 7,
        drop_path: float | None = None,
    ) -> None:
        super().__init__()
        if variant not in EMOV2_CONFIGS:
            raise ValueError(f"unknown EMOv2 variant {variant!r}; choose one of "
                             f"{sorted(EMOV2_CONFIGS)}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError(f"num_classes and in_channels must be positive, got "
                             f"{num_classes} and {in_channels}")
        cfg = EMOV2_CONFIGS[variant]
        drop_path = cfg.drop_path if drop_path is None else drop_path
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must lie in [0, 1), got {drop_path}")
        self.variant = variant
        self.in_channels = in_channels
        self.dims = cfg.dims
        c0 = cfg.dims[0] // 2
        self.stem = nn.Sequential(
            ConvNormAct(in_channels, c0, 3, stride=2, bias=True, norm_layer=_bn,
                        act_layer=nn.SiLU),
            ConvNormAct(c0, c0, 3, groups=c0, norm_layer=_bn, act_layer=nn.SiLU),
            ConvNormAct(c0, c0, 1, bias=False, norm_layer=None, act_layer=None),
        )
        rates = torch.linspace(0, drop_path, sum(cfg.depths)).tolist()
        stages, prev, idx = [], c0, 0
        for s in range(4):
            attn_stage = s >= 2
            blocks = []
            for j in range(cfg.depths[s]):
                first = j == 0
                blocks.append(I2RMB(
                    prev, cfg.dims[s],
                    expand_ratio=cfg.expand_ratios[s] * (2 if first else 1),
                    attention=attn_stage and not first,
                    head_dim=cfg.head_dims[s], window_size=window_size, dw_kernel=5,
                    stride=2 if first else 1,
                    norm_layer=LayerNorm2d if attn_stage else _bn,
                    act_layer=nn.GELU if attn_stage else nn.SiLU,
                    drop_path=0.0 if first else rates[idx],
                ))
                prev = cfg.dims[s]
                idx += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.norm = LayerNorm2d(cfg.dims[-1])
        self.head = nn.Linear(cfg.dims[-1], num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        # the official initialisation of the classifier
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        check_image(x, self.in_channels, "EMOv2")
        return stage_outputs(x, self.stem, self.stages)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.forward_features(x)[-1])
        return self.head(x.mean(dim=(2, 3)))


@register_model("emov2_1m", family="backbone", paper=_PAPER)
def emov2_1m(**kwargs) -> EMOv2:
    """EMOv2-1M (official: 1.4M parameters, 285M FLOPs at 224², 72.3 top-1)."""
    return EMOv2("1m", **kwargs)


@register_model("emov2_2m", family="backbone", paper=_PAPER)
def emov2_2m(**kwargs) -> EMOv2:
    """EMOv2-2M (official: 2.3M parameters, 487M FLOPs at 224², 75.8 top-1)."""
    return EMOv2("2m", **kwargs)


@register_model("emov2_5m", family="backbone", paper=_PAPER)
def emov2_5m(**kwargs) -> EMOv2:
    """EMOv2-5M (official: 5.1M parameters, 1035M FLOPs at 224², 79.4 top-1)."""
    return EMOv2("5m", **kwargs)


@register_model("emov2_20m", family="backbone", paper=_PAPER)
def emov2_20m(**kwargs) -> EMOv2:
    """EMOv2-20M (the official ``EMO2_20M_k5_hybrid`` configuration)."""
    return EMOv2("20m", **kwargs)
