"""PVT: the Pyramid Vision Transformer (v1).

`Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions
<https://arxiv.org/abs/2102.12122>`_ (Wang et al., ICCV 2021). Configurations follow the
official classification code (whai362/PVT, ``classification/pvt.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.attention import MultiHeadSelfAttention
from graphkit.extras._core.blocks import MLP, DropPath
from graphkit.extras._core.checks import check_fraction, check_image, check_positive
from graphkit.extras._core.registry import register_model

_PAPER = (
    "Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without Convolutions"
)


@dataclass(frozen=True)
class PVTConfig:
    """Per-stage settings of one PVT variant (all four share widths, heads and ratios)."""

    depths: tuple[int, int, int, int]
    embed_dims: tuple[int, int, int, int] = (64, 128, 320, 512)
    num_heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    mlp_ratios: tuple[int, int, int, int] = (8, 8, 4, 4)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    patch_sizes: tuple[int, int, int, int] = (4, 2, 2, 2)


#: The official configurations (``pvt_tiny`` ... ``pvt_large``).
CONFIGS: dict[str, PVTConfig] = {
    "tiny": PVTConfig(depths=(2, 2, 2, 2)),
    "small": PVTConfig(depths=(3, 4, 6, 3)),
    "medium": PVTConfig(depths=(3, 4, 18, 3)),
    "large": PVTConfig(depths=(3, 8, 27, 3)),
}


class PVTBlock(nn.Module):
    r"""A pre-norm transformer block with spatial-reduction attention.

    .. math::
        X' = X + \mathrm{DP}(\mathrm{SRA}(\mathrm{LN}(X))), \qquad
        Y = X' + \mathrm{DP}(\mathrm{MLP}(\mathrm{LN}(X')))

    Args:
        dim (int): token width.
        num_heads (int): attention heads.
        mlp_ratio (float): MLP hidden width as a multiple of ``dim``. (default: ``4.0``)
        sr_ratio (int): spatial-reduction ratio :math:`R`. (default: ``1``)
        drop_path (float): stochastic depth of both branches. (default: ``0.0``)
        norm_eps (float): epsilon of the two LayerNorms. (default: ``1e-6``)

    Shapes:
        - input: :math:`(B, N, C)` with the grid ``size=(H, W)`` (``None`` is allowed
          only without spatial reduction); output: the same.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        sr_ratio: int = 1,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadSelfAttention(dim, num_heads, qkv_bias=True, sr_ratio=sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        self.attn.reset_parameters()
        for lin in (self.mlp.fc1, self.mlp.fc2):
            nn.init.trunc_normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, size: tuple[int, int] | None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), size))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    r"""Non-overlapping patch embedding: a :math:`p \times p` stride-:math:`p` convolution,
    flattened to tokens and layer-normalised.

    Args:
        in_channels (int): input channels.
        dim (int): token width.
        patch_size (int): patch side :math:`p`.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: tokens :math:`(B, \lfloor H/p \rfloor \lfloor W/p \rfloor, C)` and the
          grid :math:`(\lfloor H/p \rfloor, \lfloor W/p \rfloor)`.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, dim=dim, patch_size=patch_size)
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        x = self.proj(x)
        size = (x.shape[-2], x.shape[-1])
        return self.norm(x.flatten(2).transpose(1, 2)), size


class PVT(nn.Module):
    r"""Pyramid Vision Transformer (v1) with an optional classification head.

    Four stages; stage :math:`s` embeds non-overlapping patches (4, 2, 2, 2), adds a learned
    absolute position embedding made for ``img_size`` (bilinearly resized for other inputs),
    and runs ``depths[s]`` :class:`PVTBlock` s whose keys and values are reduced by
    :math:`R_s \in \{8, 4, 2, 1\}`, so attention costs :math:`N \cdot N / R_s^2`. A class
    token joins only the last stage (v1); the head reads it after a final LayerNorm.
    Stage outputs have strides 4, 8, 16, 32.

    ========  ==============  ===================================================
    variant   depths          shared settings
    ========  ==============  ===================================================
    tiny      2, 2, 2, 2      dims 64, 128, 320, 512; heads 1, 2, 5, 8;
    small     3, 4, 6, 3      MLP ratios 8, 8, 4, 4; SR ratios 8, 4, 2, 1
    medium    3, 4, 18, 3
    large     3, 8, 27, 3
    ========  ==============  ===================================================

    Args:
        variant (str): ``"tiny"``, ``"small"``, ``"medium"`` or ``"large"``.
            (default: ``"small"``)
        num_classes (int): classifier outputs; ``0`` for no head (the class token).
            (default: ``1000``)
        in_channels (int): image channels. (default: ``3``)
        img_size (int): the resolution the position embeddings are made for. (default: ``224``)
        drop_path_rate (float): stochastic depth, rising linearly over the blocks to this.
            (default: ``0.0``)
        features_only (bool): ``forward`` returns the four stage maps; no head is built.
            (default: ``False``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`, :math:`H, W` multiples of 32 (the spatial
          reductions must divide each stage's grid).
        - output: :math:`(B, \text{num\_classes})`, or :math:`(B, 512)` with
          ``num_classes=0``, or with ``features_only`` four maps
          :math:`(B, C_s, H / r_s, W / r_s)`, :math:`r_s \in \{4, 8, 16, 32\}`.
    """

    def __init__(
        self,
        variant: str = "small",
        num_classes: int = 1000,
        in_channels: int = 3,
        img_size: int = 224,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
    ) -> None:
        super().__init__()
        if variant not in CONFIGS:
            raise ValueError(f"unknown PVT variant {variant!r}; choose one of {list(CONFIGS)}")
        check_positive(in_channels=in_channels, img_size=img_size)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if img_size % 32:
            raise ValueError(f"img_size must be a multiple of 32, got {img_size}")
        check_fraction("drop_path_rate", drop_path_rate)
        cfg = CONFIGS[variant]
        self.variant = variant
        self.config = cfg
        self.in_channels = in_channels
        self.features_only = features_only
        self.feature_channels = list(cfg.embed_dims)
        self.feature_strides = [4, 8, 16, 32]
        n = sum(cfg.depths)
        rates = [drop_path_rate * i / max(n - 1, 1) for i in range(n)]  # linspace(0, rate, n)
        self.patch_embeds = nn.ModuleList()
        self.pos_embeds = nn.ParameterList()
        self.stages = nn.ModuleList()
        self.pos_grids: list[tuple[int, int]] = []
        width, cur = in_channels, 0
        for s in range(4):
            dim = cfg.embed_dims[s]
            self.patch_embeds.append(PatchEmbed(width, dim, cfg.patch_sizes[s]))
            side = img_size // self.feature_strides[s]
            self.pos_grids.append((side, side))
            tokens = side * side + (1 if s == 3 else 0)  # the last stage's also covers cls
            self.pos_embeds.append(nn.Parameter(torch.empty(1, tokens, dim)))
            self.stages.append(
                nn.ModuleList(
                    PVTBlock(
                        dim,
                        cfg.num_heads[s],
                        cfg.mlp_ratios[s],
                        cfg.sr_ratios[s],
                        drop_path=rates[cur + j],
                    )
                    for j in range(cfg.depths[s])
                )
            )
            cur += cfg.depths[s]
            width = dim
        self.cls_token = nn.Parameter(torch.empty(1, 1, width))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.num_features = width
        has_head = num_classes > 0 and not features_only
        self.head = nn.Linear(width, num_classes) if has_head else nn.Identity()
        self._reset(convolutions=False)  # built with PyTorch's default already

    def reset_parameters(self) -> None:
        """The official initialisation: truncated-normal (std 0.02) position embeddings,
        class token and linear weights; zero biases; unit LayerNorms; PyTorch's default for
        the patch-embedding and spatial-reduction convolutions."""
        self._reset(convolutions=True)

    def _reset(self, convolutions: bool) -> None:
        # construction leaves the convolutions as built, so that a seeded model draws the
        # same numbers as before reset_parameters re-initialised them as well
        for p in self.pos_embeds:
            nn.init.trunc_normal_(p, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm) or (convolutions and isinstance(m, nn.Conv2d)):
                m.reset_parameters()

    def _pos_embed(self, s: int, size: tuple[int, int]) -> Tensor:
        pos = self.pos_embeds[s]
        grid = pos[:, 1:] if s == 3 else pos
        if size != self.pos_grids[s]:
            gh, gw = self.pos_grids[s]
            grid = grid.reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
            grid = grid.flatten(2).transpose(1, 2)
        return torch.cat([pos[:, :1], grid], dim=1) if s == 3 else grid

    def _run(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        check_image(x, self.in_channels, "PVT")
        if x.size(-2) % 32 or x.size(-1) % 32:
            raise ValueError(f"PVT needs H and W divisible by 32, got {tuple(x.shape[-2:])}")
        b = x.size(0)
        maps = []
        for s in range(4):
            tokens, size = self.patch_embeds[s](x)
            if s == 3:
                tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)
            tokens = tokens + self._pos_embed(s, size)
            for block in self.stages[s]:
                if s == 3:
                    # the class token joins attention; SR ratio 1 here, so no grid is needed
                    tokens = block(tokens, None)
                else:
                    tokens = block(tokens, size)
            grid_tokens = tokens[:, 1:] if s == 3 else tokens
            x = grid_tokens.transpose(1, 2).reshape(b, -1, *size)
            maps.append(x)
        return maps, tokens

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The four stage maps, strides 4, 8, 16, 32 (the last without the class token)."""
        return self._run(x)[0]

    def forward(self, x: Tensor) -> Tensor | list[Tensor]:
        maps, tokens = self._run(x)
        if self.features_only:
            return maps
        return self.head(self.norm(tokens)[:, 0])


def _builder(variant: str) -> Any:
    def build(**kwargs: Any) -> PVT:
        return PVT(variant=variant, **kwargs)

    build.__name__ = build.__qualname__ = f"pvt_{variant}"
    build.__doc__ = f"PVT-{variant.capitalize()} (see :class:`PVT`)."
    return build


pvt_tiny = register_model("pvt_tiny", family="backbone", paper=_PAPER)(_builder("tiny"))
pvt_small = register_model("pvt_small", family="backbone", paper=_PAPER)(_builder("small"))
pvt_medium = register_model("pvt_medium", family="backbone", paper=_PAPER)(_builder("medium"))
pvt_large = register_model("pvt_large", family="backbone", paper=_PAPER)(_builder("large"))
