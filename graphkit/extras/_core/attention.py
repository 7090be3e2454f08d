"""Multi-head self-attention shared by the catalogue's attention backbones (spec §3.7).

One module, :class:`MultiHeadSelfAttention`, covers the three forms the entries use:

- global attention over all tokens (`Attention Is All You Need
  <https://arxiv.org/abs/1706.03762>`_);
- non-shifted window attention: tokens attend only inside non-overlapping ``(h, w)`` windows
  (`Swin Transformer <https://arxiv.org/abs/2103.14030>`_; MOAT's dense-task mode);
- spatial-reduction attention: keys and values come from an ``R × R`` strided convolution of
  the map followed by LayerNorm, so the attention matrix is :math:`N \times N/R^2`
  (`Pyramid Vision Transformer <https://arxiv.org/abs/2102.12122>`_);

each optionally with a learned 2-D relative position bias (:class:`RelativePositionBias`, the
CoAtNet/MOAT form). The attention product is written with explicit matrix products so that
:func:`~graphkit.extras._core.counting.count_macs` sees it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_positive

Size2 = tuple[int, int]


def _pair(value: int | Size2, name: str) -> Size2:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
    check_positive(**{f"{name}[0]": pair[0], f"{name}[1]": pair[1]})
    return int(pair[0]), int(pair[1])


def scaled_dot_product(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float,
    bias: Tensor | None = None,
    dropout: nn.Module | None = None,
) -> Tensor:
    r""":math:`\mathrm{softmax}(q k^\top \cdot \mathrm{scale} + \mathrm{bias})\, v`.

    Args:
        q (Tensor): queries :math:`(*, N, d)`.
        k (Tensor): keys :math:`(*, M, d)`.
        v (Tensor): values :math:`(*, M, d_v)`.
        scale (float): logit scale, usually :math:`d^{-1/2}`.
        bias (Tensor, optional): additive logits broadcastable to :math:`(*, N, M)`.
        dropout (nn.Module, optional): applied to the attention weights.

    Returns:
        Tensor of shape :math:`(*, N, d_v)`.
    """
    logits = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        logits = logits + bias
    weights = logits.softmax(dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v


def window_partition(x: Tensor, window: Size2) -> Tensor:
    """Split a ``(B, H, W, C)`` map into ``(B * nW, wh * ww, C)`` windows, row-major."""
    b, h, w, c = x.shape
    wh, ww = window
    if h % wh or w % ww:
        raise ValueError(f"window {window} must divide the feature size {(h, w)}")
    x = x.reshape(b, h // wh, wh, w // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


def window_reverse(windows: Tensor, window: Size2, size: Size2) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh * ww, C)`` to ``(B, H, W, C)``."""
    (wh, ww), (h, w) = window, size
    c = windows.shape[-1]
    x = windows.reshape(-1, h // wh, w // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


class RelativePositionBias(nn.Module):
    r"""A learned 2-D relative position bias, one table per head (`CoAtNet
    <https://arxiv.org/abs/2106.04803>`_, as used by MOAT).

    The table :math:`T \in \mathbb{R}^{h \times (2S_h - 1) \times (2S_w - 1)}` holds one logit
    per head and relative offset. For a ``(H, W)`` grid of tokens, the bias between query
    :math:`(i, j)` and key :math:`(x, y)` is

    .. math::
        B_{n,(i,j),(x,y)} = \tilde T_{n,\; x - i + H - 1,\; y - j + W - 1}

    where :math:`\tilde T = T` when :math:`(H, W) = (S_h, S_w)` and otherwise :math:`T`
    bilinearly resized (half-pixel centres) to :math:`(2H - 1) \times (2W - 1)`, so one table
    serves every resolution, as in the official MOAT code.

    Args:
        num_heads (int): attention heads.
        size (int or tuple): the grid :math:`(S_h, S_w)` the table is made for.

    Shapes:
        - ``forward(H, W)``: :math:`(h, HW, HW)`.
    """

    def __init__(self, num_heads: int, size: int | Size2) -> None:
        super().__init__()
        check_positive(num_heads=num_heads)
        self.num_heads = num_heads
        self.size = _pair(size, "size")
        sh, sw = self.size
        self.table = nn.Parameter(torch.empty(num_heads, 2 * sh - 1, 2 * sw - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.table, std=0.02)

    def forward(self, height: int, width: int) -> Tensor:
        check_positive(height=height, width=width)
        table = self.table
        if (height, width) != self.size:
            table = F.interpolate(
                table.unsqueeze(0),
                size=(2 * height - 1, 2 * width - 1),
                mode="bilinear",
                align_corners=False,
            ).squeeze(0)
        dev = table.device
        rh = torch.arange(height, device=dev)
        rw = torch.arange(width, device=dev)
        dh = rh[None, :] - rh[:, None] + height - 1  # (query row, key row)
        dw = rw[None, :] - rw[:, None] + width - 1
        idx_h = dh[:, None, :, None].expand(height, width, height, width)
        idx_w = dw[None, :, None, :].expand(height, width, height, width)
        n = height * width
        return table[:, idx_h.reshape(n, n), idx_w.reshape(n, n)]

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, size={self.size}"


class MultiHeadSelfAttention(nn.Module):
    r"""Multi-head self-attention: global, windowed or spatial-reduction, with an optional
    relative position bias.

    .. math::
        Q = X W_q,\quad [K, V] = \mathrm{SR}(X) W_{kv},\quad
        Y = \Big[\mathrm{softmax}\big(Q_n K_n^\top / \sqrt{d} + B_n\big) V_n\Big]_{n=1}^{h} W_o

    with :math:`d = C / h`. :math:`\mathrm{SR}` is the identity, or for ``sr_ratio`` :math:`R
    > 1` a :math:`R \times R` stride-:math:`R` convolution (with bias) of the
    :math:`(H, W)` token map followed by LayerNorm, which shortens keys and values to
    :math:`N / R^2` tokens (PVT). With ``window`` the map is cut into non-overlapping windows
    and the formula applies inside each. :math:`B` is the relative bias
    (:class:`RelativePositionBias`) of the attended grid, or zero.

    Parameters: :math:`W_q` is ``Linear(C, C)`` and :math:`W_{kv}` ``Linear(C, 2C)`` (biases
    per ``qkv_bias``), :math:`W_o` ``Linear(C, C)`` with bias; the same count as separate
    q, k, v projections.

    Args:
        dim (int): token width :math:`C`.
        num_heads (int): heads :math:`h`; must divide ``dim``. (default: ``8``)
        qkv_bias (bool): biases of the q and kv projections. (default: ``True``)
        sr_ratio (int): spatial-reduction ratio :math:`R`; ``1`` for none. (default: ``1``)
        window (int or tuple, optional): window ``(h, w)``; ``None`` for global attention.
            (default: ``None``)
        rel_pos_size (int or tuple, optional): grid the relative-bias table is made for;
            ``None`` for no bias. (default: ``None``)
        attn_drop (float): dropout on the attention weights. (default: ``0.0``)
        proj_drop (float): dropout after the output projection. (default: ``0.0``)
        sr_norm_eps (float): epsilon of the reduction's LayerNorm. (default: ``1e-5``)

    Shapes:
        - input: tokens :math:`(B, N, C)` and, for windows, spatial reduction or a relative
          bias, the grid ``size=(H, W)`` with :math:`N = HW`.
        - output: :math:`(B, N, C)`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        sr_ratio: int = 1,
        window: int | Size2 | None = None,
        rel_pos_size: int | Size2 | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        sr_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, num_heads=num_heads, sr_ratio=sr_ratio)
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide dim={dim}")
        check_fraction("attn_drop", attn_drop)
        check_fraction("proj_drop", proj_drop)
        if sr_ratio > 1 and window is not None:
            raise ValueError("spatial reduction and window attention cannot be combined")
        if sr_ratio > 1 and rel_pos_size is not None:
            # the reduced keys no longer sit on the query grid, so a relative offset is undefined
            raise ValueError("a relative position bias needs sr_ratio=1")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sr_ratio = sr_ratio
        self.window = _pair(window, "window") if window is not None else None
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.sr_norm = nn.LayerNorm(dim, eps=sr_norm_eps)
        self.rel_pos = (
            RelativePositionBias(num_heads, rel_pos_size) if rel_pos_size is not None else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal (std 0.02) projections with zero biases, as PVT and MOAT."""
        for lin in (self.q, self.kv, self.proj):
            nn.init.trunc_normal_(lin.weight, std=0.02)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        if self.sr_ratio > 1:
            self.sr.reset_parameters()
            self.sr_norm.reset_parameters()
        if self.rel_pos is not None:
            self.rel_pos.reset_parameters()

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def _attend(self, x: Tensor, kv_src: Tensor, grid: Size2 | None) -> Tensor:
        q = self._heads(self.q(x))
        k, v = (self._heads(t) for t in self.kv(kv_src).chunk(2, dim=-1))
        bias = self.rel_pos(*grid) if self.rel_pos is not None and grid is not None else None
        out = scaled_dot_product(q, k, v, self.scale, bias, self.attn_drop)
        return out.transpose(1, 2).reshape(x.shape)

    def forward(self, x: Tensor, size: Size2 | None = None) -> Tensor:
        if x.dim() != 3 or x.size(-1) != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects tokens (B, N, {self.dim}), "
                f"got shape {tuple(x.shape)}"
            )
        needs_grid = self.sr_ratio > 1 or self.window is not None or self.rel_pos is not None
        if size is not None:
            h, w = _pair(size, "size")
            if h * w != x.size(1):
                raise ValueError(f"size {(h, w)} does not match the {x.size(1)} tokens")
        elif needs_grid:
            raise ValueError("this attention needs the token grid: pass size=(H, W)")
        if self.window is not None:
            b = x.size(0)
            win = window_partition(x.reshape(b, h, w, self.dim), self.window)
            out = window_reverse(self._attend(win, win, self.window), self.window, (h, w))
            out = out.reshape(b, h * w, self.dim)
        elif self.sr_ratio > 1:
            b = x.size(0)
            r = self.sr_ratio
            if h % r or w % r:
                raise ValueError(f"sr_ratio={r} must divide the feature size {(h, w)}")
            m = self.sr(x.transpose(1, 2).reshape(b, self.dim, h, w))
            reduced = self.sr_norm(m.flatten(2).transpose(1, 2))
            out = self._attend(x, reduced, None)
        else:
            out = self._attend(x, x, (h, w) if size is not None else None)
        return self.proj_drop(self.proj(out))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.dim}, num_heads={self.num_heads}, "
            f"sr_ratio={self.sr_ratio}, window={self.window}, "
            f"rel_pos={None if self.rel_pos is None else self.rel_pos.size})"
        )
