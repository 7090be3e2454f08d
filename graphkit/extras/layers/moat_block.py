"""The MOAT block: a mobile convolution followed by self-attention, no Transformer MLP.

`MOAT: Alternating Mobile Convolution and Attention Brings Strong Vision Models
<https://arxiv.org/abs/2210.01820>`_ (Yang et al., ICLR 2023). The layout follows the official
TensorFlow code (google-research/deeplab2, ``model/layers/moat_blocks.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.attention import MultiHeadSelfAttention, window_partition, window_reverse
from graphkit.extras._core.blocks import (
    ActLayer,
    ConvNormAct,
    DropPath,
    MBConv,
    NormLayer,
    SqueezeExcite,
)
from graphkit.extras._core.checks import check_fraction, check_image, check_positive

#: TensorFlow's batch-norm defaults (epsilon 1e-3, moving-average decay 0.99), as in MOAT.
TFBatchNorm2d = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)


def same_avg_pool(x: Tensor, kernel_size: int, stride: int) -> Tensor:
    """Average pooling with TensorFlow's ``"same"`` padding (extra padding after, padded cells
    not counted), so the output is :math:`\\lceil H / s \\rceil \\times \\lceil W / s \\rceil`."""
    check_positive(kernel_size=kernel_size, stride=stride)
    pads = []
    for n in (x.size(-1), x.size(-2)):  # F.pad lists the last dimension first
        total = max((math.ceil(n / stride) - 1) * stride + kernel_size - n, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return F.avg_pool2d(x, kernel_size, stride)
    summed = F.avg_pool2d(F.pad(x, pads), kernel_size, stride, divisor_override=1)
    ones = x.new_ones(1, 1, x.size(-2), x.size(-1))
    counts = F.avg_pool2d(F.pad(ones, pads), kernel_size, stride, divisor_override=1)
    return summed / counts


class MOATMBConv(MBConv):
    r"""The pre-norm MBConv of MOAT (after `CoAtNet <https://arxiv.org/abs/2106.04803>`_).

    .. math::
        y = \mathrm{shortcut}(x) + \mathrm{DP}\Big(W_{proj}\,\mathrm{SE}\big(
            \mathrm{DW}_{k,s}(\mathrm{PW}_{expand}(\mathrm{BN}(x)))\big) + b\Big)

    It is :class:`~graphkit.extras._core.blocks.MBConv` (the same expansion and depthwise
    Conv-BN-act) with the four differences of the official code: a batch norm on the input
    (pre-norm), a hidden width of ``expand_ratio * out_channels``, a squeeze-excitation of
    ``int(out_channels * se_ratio)`` channels with SiLU inside, and a projection that is a
    1×1 convolution *with bias and no norm*. The shortcut always exists: average pooling
    (``pool_size``, TensorFlow "same" padding) when strided, then a 1×1 convolution with bias
    when the width changes.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): depthwise stride, 1 or 2. (default: ``1``)
        expand_ratio (int): hidden width over ``out_channels``. (default: ``4``)
        kernel_size (int): depthwise kernel. (default: ``3``)
        se_ratio (float): SE width over ``out_channels``; ``0`` for none. (default: ``0.25``)
        pool_size (int): shortcut pooling window when strided. (default: ``2``)
        act_layer (callable): activation. (default: GELU)
        norm_layer (callable): batch norm. (default: :data:`TFBatchNorm2d`)
        drop_path (float): stochastic depth of the residual branch. (default: ``0.0``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \lceil H/s \rceil, \lceil W/s \rceil)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        expand_ratio: int = 4,
        kernel_size: int = 3,
        se_ratio: float = 0.25,
        pool_size: int = 2,
        act_layer: ActLayer = nn.GELU,
        norm_layer: NormLayer = TFBatchNorm2d,
        drop_path: float = 0.0,
    ) -> None:
        check_positive(out_channels=out_channels, expand_ratio=expand_ratio, pool_size=pool_size)
        check_fraction("drop_path", drop_path)
        if not se_ratio >= 0:
            raise ValueError(f"se_ratio must be >= 0 (0 for no squeeze-excite), got {se_ratio}")
        mid = out_channels * expand_ratio
        super().__init__(
            in_channels,
            out_channels,
            expand_ratio=max(1.0, mid / in_channels),
            kernel_size=kernel_size,
            stride=stride,
            se_ratio=0.0,
            act_layer=act_layer,
            norm_layer=norm_layer,
            mid_channels=mid,
        )
        if isinstance(self.expand, nn.Identity):  # MBConv skips it at equal widths; MOAT never
            self.expand = ConvNormAct(
                in_channels, mid, 1, norm_layer=norm_layer, act_layer=act_layer
            )
        self.pre_norm = norm_layer(in_channels)
        if se_ratio > 0:
            rd = max(1, int(out_channels * se_ratio))
            self.se = SqueezeExcite(mid, rd_channels=rd, act_layer=nn.SiLU)
        self.project = ConvNormAct(mid, out_channels, 1, norm_layer=None, act_layer=None)
        self.pool_size = pool_size
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )
        self.has_residual = True
        self.drop_path = DropPath(drop_path)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.pre_norm.reset_parameters()
        if self.shortcut is not None:
            self.shortcut.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        shortcut = same_avg_pool(x, self.pool_size, self.stride) if self.stride > 1 else x
        if self.shortcut is not None:
            shortcut = self.shortcut(shortcut)
        y = self.project(self.se(self.depthwise(self.expand(self.pre_norm(x)))))
        return shortcut + self.drop_path(y)


class MOATBlock(nn.Module):
    r"""The MOAT block: a :class:`MOATMBConv` (no SE) then multi-head self-attention with a
    relative position bias; the Transformer's MLP is removed.

    .. math::
        z = \mathrm{MBConv}(x), \qquad
        y = z + \mathrm{DP}\big(\mathrm{Attn}(\mathrm{LN}(z))\big)

    Attention is global over the (possibly downsampled) map, or with ``window=(h, w)`` runs
    inside non-overlapping windows with the same weights (MOAT's mode for dense tasks); both
    agree when the window is the feature size. Heads have ``head_dim`` channels each. The
    relative-bias table is made for a ``rel_pos_size`` grid and resized bilinearly to the
    attended grid (see :class:`~graphkit.extras._core.attention.RelativePositionBias`).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels; a multiple of ``head_dim``.
        stride (int): stride of the MBConv, 1 or 2. (default: ``1``)
        expand_ratio (int): MBConv expansion over ``out_channels``. (default: ``4``)
        head_dim (int): channels per attention head. (default: ``32``)
        window (tuple, optional): attention window ``(h, w)``; ``None`` for global.
            (default: ``None``)
        rel_pos_size (int, optional): grid of the relative-bias table; ``None`` for no bias.
            (default: ``7``)
        pool_size (int): shortcut pooling window of the MBConv. (default: ``2``)
        drop_path (float): stochastic depth of both residual branches. (default: ``0.0``)
        ln_eps (float): epsilon of the attention's LayerNorm. (default: ``1e-5``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \lceil H/s \rceil, \lceil W/s \rceil)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        expand_ratio: int = 4,
        head_dim: int = 32,
        window: tuple[int, int] | None = None,
        rel_pos_size: int | None = 7,
        pool_size: int = 2,
        drop_path: float = 0.0,
        ln_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        check_positive(out_channels=out_channels, head_dim=head_dim)
        if out_channels % head_dim:
            raise ValueError(f"head_dim={head_dim} must divide out_channels={out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.mbconv = MOATMBConv(
            in_channels,
            out_channels,
            stride=stride,
            expand_ratio=expand_ratio,
            se_ratio=0.0,
            pool_size=pool_size,
            drop_path=drop_path,
        )
        self.norm = nn.LayerNorm(out_channels, eps=ln_eps)
        # windows are cut here (not inside the attention) so ``window`` can change after
        # construction: the same weights serve classification and dense prediction
        self.attn = MultiHeadSelfAttention(
            out_channels, out_channels // head_dim, qkv_bias=True, rel_pos_size=rel_pos_size
        )
        self.window = window
        self.drop_path = DropPath(drop_path)
        self.reset_parameters()

    @property
    def window(self) -> tuple[int, int] | None:
        """The attention window ``(h, w)``, or ``None`` for global attention."""
        return self._window

    @window.setter
    def window(self, value: tuple[int, int] | None) -> None:
        if value is not None:
            if not isinstance(value, Sequence) or len(value) != 2:
                raise ValueError(f"window must be a pair (h, w) or None, got {value!r}")
            check_positive(window_h=value[0], window_w=value[1])
            value = (int(value[0]), int(value[1]))
        self._window = value

    def reset_parameters(self) -> None:
        self.mbconv.reset_parameters()
        self.norm.reset_parameters()
        self.attn.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        z = self.mbconv(x)
        b, c, h, w = z.shape
        t = self.norm(z.permute(0, 2, 3, 1))  # (B, H, W, C)
        if self._window is None:
            y = self.attn(t.reshape(b, h * w, c), (h, w)).reshape(b, h, w, c)
        else:
            wh, ww = self._window
            if h % wh or w % ww:
                raise ValueError(f"window {self._window} must divide the feature size {(h, w)}")
            windows = self.attn(window_partition(t, self._window), self._window)
            y = window_reverse(windows, self._window, (h, w))
        return z + self.drop_path(y.permute(0, 3, 1, 2))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"stride={self.mbconv.stride}, heads={self.attn.num_heads}, window={self._window}, "
            f"rel_pos={None if self.attn.rel_pos is None else self.attn.rel_pos.size})"
        )
