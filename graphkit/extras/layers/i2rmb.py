r"""The Meta Mobile Block and its attention instance, the i2RMB, of EMOv2.

From `EMOv2: Pushing 5M Vision Model Frontier <https://arxiv.org/abs/2412.06674>`_ (Zhang et
al., 2024), the extension of `Rethinking Mobile Block for Efficient Attention-based Models
<https://arxiv.org/abs/2301.01146>`_ (EMO, ICCV 2023). The layout follows the official
``zhangzjn/EMOv2`` (``model/lib_emo/emo2.py``, class ``iiRMB``).

A Meta Mobile Block is one residual around "expand, efficient operator, project":

.. math::
    z = \mathcal{E}(\mathrm{norm}(x)) \in \mathbb{R}^{\lambda C \times H \times W}, \qquad
    u = z + \mathrm{DW}_{k}(z), \qquad
    y = x + \gamma \odot W_{proj}\,u

where :math:`\mathcal{E}` is the expansion: a biased 1×1 convolution with an activation (an
inverted residual block, the early stages) or, in the i2RMB, the expanded value projection
mixed by window attention. ``DW`` is a depthwise conv-BN-SiLU, :math:`W_{proj}` a bias-free 1×1
conv and :math:`\gamma` a layer scale (init ``1e-6``). A downsampling block (stride 2, or a
channel change) has neither skip: :math:`u = \mathrm{DW}_k(z)`, :math:`y = \gamma \odot
W_{proj} u` (the official code keeps :math:`\gamma` there too).

The i2RMB's attention (``EW_MHSA_Hybrid`` in the official code) computes queries and keys from
the block input at width :math:`C` (heads of ``head_dim`` channels) and values at the expanded
width :math:`\lambda C`, and sums two window attentions over the zero-padded map: "close"
windows of :math:`w \times w` neighbouring pixels and "remote" windows that take every
:math:`n`-th pixel (a dilated grid spanning the whole map), so each output mixes a local and a
global neighbourhood at the cost of window attention.

The small window attention lives here; it was written before ``_core/attention.py`` existed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct, DropPath, LayerScale
from graphkit.extras._core.checks import check_fraction, check_positive

__all__ = ["LayerNorm2d", "HybridWindowAttention", "MetaMobileBlock", "I2RMB", "i2RMB"]

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map (each pixel normalised alone).

    Args:
        channels: :math:`C`.
        eps: added to the variance (default: ``1e-6``, as in EMOv2).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.normalized_shape[0]:
            raise ValueError(
                f"LayerNorm2d expects (B, {self.normalized_shape[0]}, H, W), "
                f"got shape {tuple(x.shape)}"
            )
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _to_windows(x: Tensor, wh: int, ww: int, heads: int, remote: bool) -> Tensor:
    """``(B, heads * d, n1 wh, n2 ww)`` to ``(B n1 n2, heads, wh ww, d)``.

    Close windows are ``wh x ww`` blocks of neighbours; remote windows gather the pixels whose
    row and column share a residue modulo ``n1`` and ``n2`` (a grid with stride ``n``).
    """
    b, c, h, w = x.shape
    n1, n2 = h // wh, w // ww
    if remote:  # row = i * n1 + r: window index r, position i
        x = x.view(b, c, wh, n1, ww, n2).permute(0, 3, 5, 1, 2, 4)
    else:  # row = r * wh + i
        x = x.view(b, c, n1, wh, n2, ww).permute(0, 2, 4, 1, 3, 5)
    x = x.reshape(b * n1 * n2, heads, c // heads, wh * ww)
    return x.transpose(-2, -1)


def _from_windows(
    x: Tensor, batch: int, n1: int, n2: int, wh: int, ww: int, remote: bool
) -> Tensor:
    """Inverse of :func:`_to_windows`: ``(B n1 n2, heads, wh ww, d)`` to ``(B, C, H, W)``."""
    heads, d = x.size(1), x.size(3)
    x = x.transpose(-2, -1).reshape(batch, n1, n2, heads * d, wh, ww)
    if remote:
        x = x.permute(0, 3, 4, 1, 5, 2)
    else:
        x = x.permute(0, 3, 1, 4, 2, 5)
    return x.reshape(batch, heads * d, n1 * wh, n2 * ww)


class HybridWindowAttention(nn.Module):
    r"""Close plus remote window attention with expanded values (EMOv2's EW-MHSA hybrid).

    .. math::
        [Q; K] = W_{qk} x + b_{qk}, \qquad V = \phi(W_v x + b_v), \qquad
        y = \sum_{P \in \{\text{close}, \text{remote}\}}
            \mathrm{softmax}\!\big(Q_P K_P^\top / \sqrt{d}\big)\, V_P

    per head and per window of partition :math:`P`. The map is zero-padded on the right and
    bottom to a multiple of the window (padded pixels take part, as in the official code) and
    cropped back.

    Args:
        in_channels: :math:`C`, divisible by ``head_dim``.
        out_channels: value width :math:`\lambda C`, divisible by the number of heads.
        head_dim: query/key channels per head :math:`d` (default: ``32``).
        window_size: window side :math:`w`; ``<= 0`` attends over the whole map
            (default: ``7``).
        qkv_bias: biases of the projections (default: ``True``).
        act_layer: the value activation :math:`\phi` (default: GELU).
        attn_drop: dropout on the attention weights (default: ``0.0``).

    Shapes:
        input ``(B, C, H, W)``, output ``(B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        head_dim: int = 32,
        window_size: int = 7,
        qkv_bias: bool = True,
        act_layer: ActLayer = nn.GELU,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels, head_dim=head_dim)
        check_fraction("attn_drop", attn_drop)
        if in_channels % head_dim:
            raise ValueError(f"head_dim={head_dim} must divide in_channels={in_channels}")
        self.heads = in_channels // head_dim
        if out_channels % self.heads:
            raise ValueError(
                f"the {self.heads} heads must divide out_channels={out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.head_dim = head_dim
        self.window_size = window_size
        self.scale = head_dim**-0.5
        self.qk = ConvNormAct(in_channels, 2 * in_channels, 1, bias=qkv_bias, norm_layer=None,
                              act_layer=None)
        self.v = ConvNormAct(in_channels, out_channels, 1, bias=qkv_bias, norm_layer=None,
                             act_layer=act_layer)
        self.attn_drop = nn.Dropout(attn_drop)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.qk.reset_parameters()
        self.v.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f"HybridWindowAttention expects (B, {self.in_channels}, H, W), "
                f"got shape {tuple(x.shape)}"
            )
        b, _, h, w = x.shape
        if self.window_size > 0:
            wh = ww = self.window_size
        else:
            wh, ww = h, w
        pad_b, pad_r = (-h) % wh, (-w) % ww
        x = F.pad(x, (0, pad_r, 0, pad_b))
        n1, n2 = x.size(2) // wh, x.size(3) // ww
        q, k = self.qk(x).chunk(2, dim=1)
        v = self.v(x)
        out = x.new_zeros(b, self.out_channels, x.size(2), x.size(3))
        for remote in (True, False):
            qw, kw, vw = (_to_windows(t, wh, ww, self.heads, remote) for t in (q, k, v))
            attn = self.attn_drop(((qw @ kw.transpose(-2, -1)) * self.scale).softmax(dim=-1))
            out = out + _from_windows(attn @ vw, b, n1, n2, wh, ww, remote)
        return out[:, :, :h, :w]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, heads={self.heads}, "
            f"head_dim={self.head_dim}, window_size={self.window_size}"
        )


class MetaMobileBlock(nn.Module):
    r"""EMOv2's one-residual Meta Mobile Block around a given expansion operator.

    .. math::
        z = \mathcal{E}(\mathrm{norm}(x)), \quad u = z + \mathrm{DW}_k(z), \quad
        y = x + \mathrm{DropPath}(\gamma \odot W_{proj} u)

    and, without the skip (``stride != 1``, a channel change or ``has_skip=False``),
    :math:`u = \mathrm{DW}_k(z)` and :math:`y = \gamma \odot W_{proj} u`.

    Args:
        in_channels: :math:`C_{in}`.
        out_channels: :math:`C_{out}`.
        expansion: the operator :math:`\mathcal{E}` mapping ``(B, C_in, H, W)`` to
            ``(B, mid_channels, H, W)``.
        mid_channels: the expanded width :math:`\lambda C_{in}`.
        norm_layer: the input norm, built from ``in_channels`` (default: BatchNorm2d with
            ``eps=1e-6``).
        dw_kernel: depthwise kernel :math:`k`; ``0`` drops the depthwise conv (default: ``5``).
        stride: depthwise stride, 1 or 2 (default: ``1``).
        has_skip: keep both skips when the shapes allow (default: ``True``).
        layer_scale: initial :math:`\gamma`; ``0`` for none (default: ``1e-6``).
        drop_path: stochastic-depth probability of the residual branch (default: ``0.0``).
        drop: dropout before the projection (default: ``0.0``).

    Shapes:
        input ``(B, C_in, H, W)``, output ``(B, C_out, ceil(H / s), ceil(W / s))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expansion: nn.Module,
        mid_channels: int,
        norm_layer: NormLayer | None = None,
        dw_kernel: int = 5,
        stride: int = 1,
        has_skip: bool = True,
        layer_scale: float = 1e-6,
        drop_path: float = 0.0,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels,
                       mid_channels=mid_channels)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if dw_kernel < 0 or (dw_kernel and dw_kernel % 2 == 0):
            raise ValueError(f"dw_kernel must be 0 or a positive odd integer, got {dw_kernel}")
        if dw_kernel == 0 and stride != 1:
            raise ValueError("a strided block needs the depthwise conv (dw_kernel > 0)")
        if layer_scale < 0:
            raise ValueError(f"layer_scale must be >= 0, got {layer_scale}")
        check_fraction("drop_path", drop_path)
        check_fraction("drop", drop)
        if norm_layer is None:
            norm_layer = _batch_norm
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.has_skip = has_skip and stride == 1 and in_channels == out_channels
        self.norm = norm_layer(in_channels)
        self.expansion = expansion
        self.conv_local = (
            ConvNormAct(mid_channels, mid_channels, dw_kernel, stride=stride,
                        groups=mid_channels, norm_layer=_batch_norm, act_layer=nn.SiLU)
            if dw_kernel
            else nn.Identity()
        )
        self.proj_drop = nn.Dropout(drop)
        self.proj = ConvNormAct(mid_channels, out_channels, 1, bias=False, norm_layer=None,
                                act_layer=None)
        self.ls = (
            LayerScale(out_channels, init_value=layer_scale, channel_dim=1)
            if layer_scale > 0
            else nn.Identity()
        )
        self.drop_path = DropPath(drop_path) if self.has_skip else nn.Identity()
        if drop_path and not self.has_skip:
            raise ValueError("drop_path needs the residual: stride 1 and equal channels")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.norm, self.expansion, self.conv_local, self.proj, self.ls):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.in_channels}, H, W), "
                f"got shape {tuple(x.shape)}"
            )
        z = self.expansion(self.norm(x))
        u = z + self.conv_local(z) if self.has_skip else self.conv_local(z)
        y = self.ls(self.proj(self.proj_drop(u)))
        return x + self.drop_path(y) if self.has_skip else y

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, " \
               f"skip={self.has_skip}"


def _batch_norm(channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels, eps=1e-6)


class I2RMB(MetaMobileBlock):
    r"""The Improved Inverted Residual Mobile Block (i2RMB) of EMOv2.

    A :class:`MetaMobileBlock` whose expansion is, with ``attention=True``, the
    :class:`HybridWindowAttention` (values expanded to ``int(in_channels * expand_ratio)``)
    and otherwise a biased 1×1 conv with activation (the inverted residual block EMOv2 uses in
    its first two stages and in every downsampling block).

    Args:
        in_channels: :math:`C_{in}`.
        out_channels: :math:`C_{out}`.
        expand_ratio: :math:`\lambda` (default: ``4.0``).
        attention: use the hybrid window attention (default: ``True``).
        head_dim: attention head width (default: ``32``).
        window_size: attention window (default: ``7``).
        dw_kernel: depthwise kernel (default: ``5``).
        stride: 1 or 2 (default: ``1``).
        norm_layer: input norm (default: BatchNorm2d, ``eps=1e-6``).
        act_layer: activation of the expansion (default: GELU).
        qkv_bias: biases of the expansion convolutions (default: ``True``).
        layer_scale: initial layer scale (default: ``1e-6``).
        drop_path: stochastic depth (default: ``0.0``).
        attn_drop: attention dropout (default: ``0.0``).
        drop: dropout before the projection (default: ``0.0``).

    Shapes:
        input ``(B, C_in, H, W)``, output ``(B, C_out, ceil(H / s), ceil(W / s))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: float = 4.0,
        attention: bool = True,
        head_dim: int = 32,
        window_size: int = 7,
        dw_kernel: int = 5,
        stride: int = 1,
        norm_layer: NormLayer | None = None,
        act_layer: ActLayer = nn.GELU,
        qkv_bias: bool = True,
        layer_scale: float = 1e-6,
        drop_path: float = 0.0,
        attn_drop: float = 0.0,
        drop: float = 0.0,
    ) -> None:
        if not expand_ratio > 0:
            raise ValueError(f"expand_ratio must be > 0, got {expand_ratio}")
        check_positive(in_channels=in_channels)
        mid = int(in_channels * expand_ratio)
        if attention:
            expansion: nn.Module = HybridWindowAttention(
                in_channels, mid, head_dim=head_dim, window_size=window_size,
                qkv_bias=qkv_bias, act_layer=act_layer, attn_drop=attn_drop,
            )
        else:
            expansion = ConvNormAct(in_channels, mid, 1, bias=qkv_bias, norm_layer=None,
                                    act_layer=act_layer)
        super().__init__(
            in_channels, out_channels, expansion, mid, norm_layer=norm_layer,
            dw_kernel=dw_kernel, stride=stride, layer_scale=layer_scale, drop_path=drop_path,
            drop=drop,
        )
        self.attention = attention


#: The paper's spelling of :class:`I2RMB`.
i2RMB = I2RMB
