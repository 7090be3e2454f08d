r"""A 3-D U-Net whose stages are reversible MBConv stacks, for brain-tumour segmentation.

From `Memory Efficient 3D U-Net with Reversible Mobile Inverted Bottlenecks for Brain Tumor
Segmentation <https://arxiv.org/abs/2104.09648>`_ (Pendse, Thangarasa, Chiley, Holmdahl,
Hestness and DeCoste; BraTS 2020). Each U-Net level is a
:class:`~graphkit.extras.layers.reversible.ReversibleSequence` of additive couplings whose
:math:`F` and :math:`G` are 3-D mobile inverted bottlenecks (1×1×1 expansion, 3×3×3
depthwise, 1×1×1 projection), so training memory does not grow with the number of blocks.
Levels are joined by non-reversible strided convolutions (down) and transposed convolutions
(up) with concatenated skips; the head gives one logit map per region (whole tumour, tumour
core, enhancing tumour), read through a sigmoid, and :func:`soft_dice_loss` is the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.reversible import ReversibleBlock, ReversibleSequence

PAPER = (
    "Memory Efficient 3D U-Net with Reversible Mobile Inverted Bottlenecks for Brain Tumor "
    "Segmentation"
)

NormLayer = Callable[[int], nn.Module]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (the largest divisor of ``channels`` not above 8):
    batch-size independent, so it suits 3-D volumes trained one at a time."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


def _check_volume(x: Tensor, channels: int, who: str) -> None:
    if x.dim() != 5:
        raise ValueError(f"{who} expects a (B, C, D, H, W) tensor, got shape {tuple(x.shape)}")
    if x.size(1) != channels:
        raise ValueError(f"{who} expects {channels} input channels, got {x.size(1)}")


class MBConv3d(nn.Module):
    r"""A 3-D mobile inverted bottleneck without its own residual (the coupling adds it).

    .. math::
        y = \mathrm{N}\big(P\,\phi(\mathrm{N}(\mathrm{DW}_{k}\,\phi(\mathrm{N}(E\,x))))\big)

    with :math:`E` a 1×1×1 expansion to ``channels * expand``, :math:`\mathrm{DW}_k` a
    :math:`k^3` depthwise convolution, :math:`P` a 1×1×1 projection back, :math:`\mathrm{N}`
    the normalisation and :math:`\phi` the activation (none after the projection: a linear
    bottleneck). Convolutions have no bias (the norm's shift replaces it).

    Args:
        channels (int): input and output channels.
        expand (int): expansion ratio of the hidden width. (default: ``4``)
        kernel_size (int): odd depthwise kernel size. (default: ``3``)
        norm_layer (callable): builds a norm from a channel count. (default: :func:`group_norm`)
        act_layer (callable): builds the activation. (default: SiLU)

    Shapes:
        - input: :math:`(B, C, D, H, W)`; output: the same.
    """

    def __init__(
        self,
        channels: int,
        expand: int = 4,
        kernel_size: int = 3,
        norm_layer: NormLayer = group_norm,
        act_layer: Callable[[], nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        check_positive(channels=channels, expand=expand)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        hidden = channels * expand
        self.channels = channels
        self.expand = expand
        self.pw_expand = nn.Conv3d(channels, hidden, 1, bias=False)
        self.norm1 = norm_layer(hidden)
        self.act1 = act_layer()
        self.depthwise = nn.Conv3d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False
        )
        self.norm2 = norm_layer(hidden)
        self.act2 = act_layer()
        self.pw_project = nn.Conv3d(hidden, channels, 1, bias=False)
        self.norm3 = norm_layer(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in (self.pw_expand, self.depthwise, self.pw_project):
            conv.reset_parameters()
        for norm in (self.norm1, self.norm2, self.norm3):
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_volume(x, self.channels, type(self).__name__)
        x = self.act1(self.norm1(self.pw_expand(x)))
        x = self.act2(self.norm2(self.depthwise(x)))
        return self.norm3(self.pw_project(x))

    def extra_repr(self) -> str:
        return f"{self.channels}, expand={self.expand}"


def rev_mbconv_block(channels: int, expand: int = 4, **kwargs) -> ReversibleBlock:
    """A reversible block on ``channels`` whose :math:`F` and :math:`G` are
    :class:`MBConv3d` on ``channels // 2`` (``channels`` must be even)."""
    if channels % 2:
        raise ValueError(
            f"a reversible block halves its channels: need an even count, got {channels}"
        )
    half = channels // 2
    return ReversibleBlock(MBConv3d(half, expand, **kwargs), MBConv3d(half, expand, **kwargs))


class _ConvNormAct3d(nn.Sequential):
    def __init__(self, conv: nn.Module, channels: int, norm_layer: NormLayer) -> None:
        super().__init__(conv, norm_layer(channels), nn.SiLU())


class RevMBConvUNet3D(nn.Module):
    r"""3-D U-Net with reversible MBConv stages (Pendse et al., BraTS 2020).

    Level :math:`i` works at ``widths[i]`` channels and :math:`1/2^i` resolution. Encoder:
    a 3×3×3 stem to ``widths[0]``, then per level a reversible stack of ``depths[i]``
    RevMBConv blocks, and between levels a 2×2×2 stride-2 convolution (+ norm, SiLU). Decoder:
    per level a 2×2×2 stride-2 transposed convolution, concatenation with the encoder skip, a
    1×1×1 fusion convolution (+ norm, SiLU) back to ``widths[i]`` and a reversible stack of
    ``decoder_depths[i]`` blocks. A 1×1×1 head gives ``out_ch`` logit maps; the region
    probabilities are their sigmoids. Only the reversible stacks run without stored
    activations; the transitions are ordinary layers.

    Args:
        in_ch (int): input modalities (T1, T1ce, T2, FLAIR). (default: ``4``)
        out_ch (int): output regions (WT, TC, ET). (default: ``3``)
        widths (sequence of int): even channel count per level. (default: ``(16, 32, 64, 128)``)
        depths (sequence of int): encoder blocks per level (``>= 1``).
            (default: ``(1, 1, 1, 1)``)
        expand (int): MBConv expansion ratio. (default: ``4``)
        decoder_depths (sequence of int, optional): decoder blocks for levels
            ``0 .. L-2``; ``None`` reuses ``depths[:-1]``. (default: ``None``)
        memory_saving (bool): recompute activations in backward. (default: ``True``)
        norm_layer (callable): normalisation. (default: :func:`group_norm`)

    Shapes:
        - input: :math:`(B, C_{in}, D, H, W)` with :math:`D, H, W` divisible by
          :math:`2^{L-1}`
        - output: :math:`(B, C_{out}, D, H, W)` logits.
    """

    def __init__(
        self,
        in_ch: int = 4,
        out_ch: int = 3,
        widths: Sequence[int] = (16, 32, 64, 128),
        depths: Sequence[int] = (1, 1, 1, 1),
        expand: int = 4,
        decoder_depths: Sequence[int] | None = None,
        memory_saving: bool = True,
        norm_layer: NormLayer = group_norm,
    ) -> None:
        super().__init__()
        check_positive(in_ch=in_ch, out_ch=out_ch, expand=expand)
        widths, depths = list(widths), list(depths)
        if not widths or len(widths) != len(depths):
            raise ValueError(
                f"widths and depths need one entry per level, got {len(widths)} and {len(depths)}"
            )
        for i, w in enumerate(widths):
            check_positive(**{f"widths[{i}]": w})
            if w % 2:
                raise ValueError(f"widths[{i}] = {w} must be even (reversible blocks halve it)")
        for i, d in enumerate(depths):
            check_positive(**{f"depths[{i}]": d})
        decoder_depths = depths[:-1] if decoder_depths is None else list(decoder_depths)
        if len(decoder_depths) != len(widths) - 1:
            raise ValueError(
                f"decoder_depths needs {len(widths) - 1} entries, got {len(decoder_depths)}"
            )
        for i, d in enumerate(decoder_depths):
            check_positive(**{f"decoder_depths[{i}]": d})
        self.in_ch, self.out_ch = in_ch, out_ch
        self.widths, self.depths = tuple(widths), tuple(depths)
        self.decoder_depths = tuple(decoder_depths)

        def stack(width: int, n: int) -> ReversibleSequence:
            blocks = [rev_mbconv_block(width, expand, norm_layer=norm_layer) for _ in range(n)]
            return ReversibleSequence(blocks, memory_saving=memory_saving)

        self.stem = nn.Conv3d(in_ch, widths[0], 3, padding=1)
        self.encoder = nn.ModuleList(stack(w, d) for w, d in zip(widths, depths, strict=True))
        self.down = nn.ModuleList(
            _ConvNormAct3d(nn.Conv3d(a, b, 2, stride=2, bias=False), b, norm_layer)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(b, a, 2, stride=2)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.fuse = nn.ModuleList(
            _ConvNormAct3d(nn.Conv3d(2 * w, w, 1, bias=False), w, norm_layer) for w in widths[:-1]
        )
        self.decoder = nn.ModuleList(
            stack(w, d) for w, d in zip(widths[:-1], decoder_depths, strict=True)
        )
        self.head = nn.Conv3d(widths[0], out_ch, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and isinstance(
                module, (nn.Conv3d, nn.ConvTranspose3d, nn.GroupNorm)
            ):
                module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_volume(x, self.in_ch, type(self).__name__)
        factor = 2 ** (len(self.widths) - 1)
        if any(s % factor for s in x.shape[2:]):
            raise ValueError(
                f"spatial size {tuple(x.shape[2:])} must be divisible by {factor} "
                f"({len(self.widths)} levels)"
            )
        skips = []
        h = self.stem(x)
        for i, stage in enumerate(self.encoder):
            h = stage(h)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        for i in reversed(range(len(self.decoder))):
            h = self.up[i](h)
            h = self.fuse[i](torch.cat([skips[i], h], dim=1))
            h = self.decoder[i](h)
        return self.head(h)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_ch={self.in_ch}, out_ch={self.out_ch}, "
            f"widths={self.widths}, depths={self.depths}, decoder_depths={self.decoder_depths})"
        )


def soft_dice_loss(logits: Tensor, target: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Soft Dice loss over sigmoid region maps, averaged over batch and regions.

    .. math::
        \mathcal{L} = 1 - \frac{1}{BC}\sum_{b,c}
        \frac{2\sum_v p_{bcv} t_{bcv} + \epsilon}{\sum_v p_{bcv} + \sum_v t_{bcv} + \epsilon},
        \qquad p = \sigma(\text{logits})

    Args:
        logits: :math:`(B, C, *)` region logits.
        target: the same shape, values in :math:`[0, 1]`.
        eps: smoothing that makes empty regions count as perfect. (default: ``1e-5``)
    """
    if logits.shape != target.shape or logits.dim() < 3:
        raise ValueError(
            f"logits and target must share a (B, C, *) shape, got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    p = torch.sigmoid(logits).flatten(2)
    t = target.to(p.dtype).flatten(2)
    dice = (2 * (p * t).sum(-1) + eps) / (p.sum(-1) + t.sum(-1) + eps)
    return 1 - dice.mean()


@register_model("revmbconv_unet3d", family="backbone", paper=PAPER)
def revmbconv_unet3d(**kwargs) -> RevMBConvUNet3D:
    """:class:`RevMBConvUNet3D` with its defaults (4 modalities in, 3 regions out)."""
    return RevMBConvUNet3D(**kwargs)
