"""MOAT: a backbone alternating mobile convolution and attention.

`MOAT: Alternating Mobile Convolution and Attention Brings Strong Vision Models
<https://arxiv.org/abs/2210.01820>`_ (Yang et al., ICLR 2023). Configurations follow the
official TensorFlow code (google-research/deeplab2, ``model/pixel_encoder/moat.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from graphkit.extras._core.attention import RelativePositionBias
from graphkit.extras._core.blocks import ConvNormAct, stage_outputs
from graphkit.extras._core.checks import check_fraction, check_image, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.moat_block import MOATBlock, MOATMBConv, TFBatchNorm2d

_PAPER = "MOAT: Alternating Mobile Convolution and Attention Brings Strong Vision Models"

#: Grids the relative-bias tables of the two attention stages are made for (strides 16, 32 at
#: 224²); other resolutions resize the tables, so the parameter count does not change.
POSITION_EMBEDDING_SIZES = (14, 7)


@dataclass(frozen=True)
class MOATConfig:
    """Stem widths, blocks per stage and stage widths of one MOAT variant."""

    stem: tuple[int, int]
    blocks: tuple[int, int, int, int]
    hidden: tuple[int, int, int, int]


def _tiny(stem: int) -> MOATConfig:
    return MOATConfig((stem, stem), (2, 3, 7, 2), (stem, 2 * stem, 4 * stem, 8 * stem))


#: The official configurations (``moat0_config`` ... ``tiny_moat3_config``).
CONFIGS: dict[str, MOATConfig] = {
    "moat0": MOATConfig((64, 64), (2, 3, 7, 2), (96, 192, 384, 768)),
    "moat1": MOATConfig((64, 64), (2, 6, 14, 2), (96, 192, 384, 768)),
    "moat2": MOATConfig((128, 128), (2, 6, 14, 2), (128, 256, 512, 1024)),
    "moat3": MOATConfig((160, 160), (2, 12, 28, 2), (160, 320, 640, 1280)),
    "moat4": MOATConfig((256, 256), (2, 12, 28, 2), (256, 512, 1024, 2048)),
    "tiny_moat0": _tiny(32),
    "tiny_moat1": _tiny(40),
    "tiny_moat2": _tiny(56),
    "tiny_moat3": _tiny(80),
}

WindowArg = Sequence[tuple[int, int] | None] | None


def _check_window(window: Any) -> None:
    if not isinstance(window, Sequence) or len(window) != 2:
        raise ValueError(
            f"window gives one (h, w) or None per attention stage (two), got {window!r}"
        )


class MOAT(nn.Module):
    r"""MOAT backbone with an optional classification head.

    Stem: 3×3 stride-2 convolution (with bias), BN, GELU, 3×3 convolution (with bias).
    Four stride-2 stages follow: two of :class:`~graphkit.extras.layers.moat_block.MOATMBConv`
    (expansion 4, SE 0.25) and two of :class:`~graphkit.extras.layers.moat_block.MOATBlock`
    (MBConv without SE, then attention with 32-channel heads and a relative position bias
    whose tables are made for 14² and 7² grids). Stage outputs have strides 4, 8, 16, 32.
    Head: global average pooling, LayerNorm, linear classifier.

    ===========  =========  ================  ========================
    variant      stem       blocks / stage    stage widths
    ===========  =========  ================  ========================
    moat0        64         2, 3, 7, 2        96, 192, 384, 768
    moat1        64         2, 6, 14, 2       96, 192, 384, 768
    moat2        128        2, 6, 14, 2       128, 256, 512, 1024
    moat3        160        2, 12, 28, 2      160, 320, 640, 1280
    moat4        256        2, 12, 28, 2      256, 512, 1024, 2048
    tiny_moatK   32/40/56/80 (K = 0..3)  2, 3, 7, 2   1, 2, 4, 8 × stem
    ===========  =========  ================  ========================

    Convolutions use PyTorch's symmetric padding, where the TensorFlow original pads strided
    convolutions after only; shapes and parameter counts agree.

    Args:
        variant (str): one of :data:`CONFIGS`. (default: ``"moat0"``)
        num_classes (int): classifier outputs; ``0`` for no head (pooled features).
            (default: ``1000``)
        in_channels (int): image channels. (default: ``3``)
        window (sequence, optional): attention windows ``(h, w)`` (or ``None`` for global)
            of the two attention stages, e.g. ``[(14, 14), (7, 7)]``; ``None`` for global
            attention everywhere (classification). Changeable later with
            :meth:`set_window`. (default: ``None``)
        relative_position (bool): the relative position bias (the official "no_pe" models
            have none). (default: ``True``)
        pool_size (int): shortcut pooling window of strided blocks (2 for classification,
            3 preferred for dense tasks). (default: ``2``)
        drop_path_rate (float): stochastic depth, rising linearly over the blocks (block
            :math:`i` of :math:`n` drops with ``rate * i / n``). (default: ``0.0``)
        features_only (bool): ``forward`` returns the four stage maps; no head is built.
            (default: ``False``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, \text{num\_classes})`, or :math:`(B, C_4)` with
          ``num_classes=0``, or with ``features_only`` four maps of strides 4, 8, 16, 32
          (sizes :math:`\lceil\cdot\rceil` of the stride-2 arithmetic).
    """

    def __init__(
        self,
        variant: str = "moat0",
        num_classes: int = 1000,
        in_channels: int = 3,
        window: WindowArg = None,
        relative_position: bool = True,
        pool_size: int = 2,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
    ) -> None:
        super().__init__()
        if variant not in CONFIGS:
            raise ValueError(f"unknown MOAT variant {variant!r}; choose one of {list(CONFIGS)}")
        check_positive(in_channels=in_channels, pool_size=pool_size)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        check_fraction("drop_path_rate", drop_path_rate)
        if window is not None:
            _check_window(window)
        cfg = CONFIGS[variant]
        self.variant = variant
        self.config = cfg
        self.in_channels = in_channels
        self.features_only = features_only
        self.feature_channels = list(cfg.hidden)
        self.feature_strides = [4, 8, 16, 32]
        self.stem = nn.Sequential(
            ConvNormAct(
                in_channels,
                cfg.stem[0],
                3,
                stride=2,
                bias=True,
                norm_layer=TFBatchNorm2d,
                act_layer=nn.GELU,
            ),
            ConvNormAct(cfg.stem[0], cfg.stem[1], 3, norm_layer=None, act_layer=None),
        )
        total = sum(cfg.blocks)
        stages: list[nn.Module] = []
        width, block_id = cfg.stem[1], 0
        for s in range(4):
            pe_size = POSITION_EMBEDDING_SIZES[s - 2] if s >= 2 and relative_position else None
            blocks: list[nn.Module] = []
            for j in range(cfg.blocks[s]):
                stride = 2 if j == 0 else 1
                dp = drop_path_rate * block_id / total
                if s < 2:
                    block: nn.Module = MOATMBConv(
                        width, cfg.hidden[s], stride, pool_size=pool_size, drop_path=dp
                    )
                else:
                    block = MOATBlock(
                        width,
                        cfg.hidden[s],
                        stride,
                        rel_pos_size=pe_size,
                        pool_size=pool_size,
                        drop_path=dp,
                    )
                blocks.append(block)
                width = cfg.hidden[s]
                block_id += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.num_features = width
        has_head = num_classes > 0 and not features_only
        self.head_norm = nn.LayerNorm(width) if has_head else nn.Identity()
        self.head = nn.Linear(width, num_classes) if has_head else nn.Identity()
        self.set_window(window)
        self.reset_parameters()

    def set_window(self, window: WindowArg) -> None:
        """Windows ``(h, w)`` (or ``None``) of the two attention stages; ``None`` for global."""
        if window is None:
            window = (None, None)
        _check_window(window)
        for stage, win in zip(self.stages[2:], window, strict=True):
            for block in stage:
                block.window = win

    def reset_parameters(self) -> None:
        """The official initialisation: normal (std 0.02) convolution and linear weights with
        zero biases; unit norms. Relative-bias tables are truncated normal (std 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.LayerNorm | RelativePositionBias):
                m.reset_parameters()

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The four stage outputs, strides 4, 8, 16, 32."""
        check_image(x, self.in_channels, "MOAT")
        return stage_outputs(x, self.stem, self.stages)

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        feats = self.forward_features(x)
        if self.features_only:
            return feats
        return self.head(self.head_norm(feats[-1].mean(dim=(2, 3))))


def _builder(variant: str) -> Any:
    def build(**kwargs: Any) -> MOAT:
        return MOAT(variant=variant, **kwargs)

    build.__name__ = build.__qualname__ = variant
    build.__doc__ = f"{variant} (see :class:`MOAT`)."
    return build


moat0 = register_model("moat0", family="backbone", paper=_PAPER)(_builder("moat0"))
moat1 = register_model("moat1", family="backbone", paper=_PAPER)(_builder("moat1"))
moat2 = register_model("moat2", family="backbone", paper=_PAPER)(_builder("moat2"))
moat3 = register_model("moat3", family="backbone", paper=_PAPER)(_builder("moat3"))
moat4 = register_model("moat4", family="backbone", paper=_PAPER)(_builder("moat4"))
tiny_moat0 = register_model("tiny_moat0", family="backbone", paper=_PAPER)(_builder("tiny_moat0"))
tiny_moat1 = register_model("tiny_moat1", family="backbone", paper=_PAPER)(_builder("tiny_moat1"))
tiny_moat2 = register_model("tiny_moat2", family="backbone", paper=_PAPER)(_builder("tiny_moat2"))
tiny_moat3 = register_model("tiny_moat3", family="backbone", paper=_PAPER)(_builder("tiny_moat3"))
