r"""S2LIC: learned image compression with SwinV2 transforms and the ACGC entropy model.

From `S2LIC: Learned Image Compression with the SwinV2 Block, Adaptive Channel-wise and
Global-inter Attention Context <https://arxiv.org/abs/2403.14471>`_ (Wang, Fu, Cao, Wang,
Chen and Liang, 2024; official model file ``wyq2021/S2LIC`` ``code/s2lic.py``).

- **Transforms.** Analysis :math:`g_a`: a dense-block enhancement of the image, then four
  stride-2 convolutions (5×5, then 3×3; to ``N`` and finally ``M`` channels) with a residual
  SwinV2 group (:class:`ResidualSwinV2Group`) after each of the first three, so the latent
  :math:`y` has :math:`1/16` of the resolution. Synthesis :math:`g_s` mirrors it with
  transposed convolutions, a sub-pixel output convolution and a second enhancement.
  Official defaults: ``N=192``, ``M=320``, window 8, depths ``(1, 2, 3)`` and heads
  ``(4, 8, 16)`` (mirrored in :math:`g_s`), MLP ratio 4, drop-path 0.1.
- **Hyperprior.** :math:`z = h_a(y)` (:math:`1/64` resolution) under an
  :class:`~graphkit.extras.compression.entropy.EntropyBottleneck`; :math:`h_s(\hat z)` gives
  ``2M`` hyper parameters (scales and means).
- **ACGC** (:class:`ACGCContext`): :math:`y` is cut into ``num_slices`` channel slices
  (official 10). Slice :math:`i` is coded in two checkerboard passes (anchors, then
  non-anchors, :func:`checkerboard_mask`). Its context is the hyper parameters, an adaptive
  channel-wise attention (:class:`ChannelContext`) and a deformable global inter-slice
  attention (:class:`GlobalInterContext`) over the decoded slices :math:`\hat y_{<i}`, and,
  for non-anchors, a convolution of the slice's decoded anchors. A latent residual prediction
  (Minnen & Singh, 2020) corrects the rounding of each pass. Likelihoods come from a
  :class:`~graphkit.extras.compression.entropy.GaussianConditional`; the loss is
  :math:`\lambda \cdot 255^2 \cdot \mathrm{MSE} + \mathrm{bpp}` (:class:`RateDistortionLoss`).

Where this differs from the official file: its layer library (RSTB, enhancement, ACCTX,
AGCTX, hyper and entropy-parameter networks) is an unpublished CompressAI fork, so those
blocks follow the paper's text and are graphkit's own; the official non-anchor parameters use
no intra-slice (anchor) context, this module gives them one, as the paper's checkerboard
description states; the enhancement before :math:`g_a` and after :math:`g_s` is two separate
dense blocks (the official module is one, run forwards and in reverse); the hyperprior
quantises :math:`z` to the integers (no learned median offset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.attention import MultiHeadSelfAttention, window_partition, window_reverse
from graphkit.extras._core.blocks import MLP, DropPath
from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.compression.entropy import EntropyBottleneck, GaussianConditional, ste_round

PAPER = (
    "S2LIC: Learned Image Compression with the SwinV2 Block, Adaptive Channel-wise and "
    "Global-inter Attention Context"
)


def checkerboard_mask(
    height: int, width: int, device: torch.device | str | None = None
) -> Tensor:
    """The anchor positions of a ``(height, width)`` checkerboard: ``True`` where ``i + j`` is
    even. Anchors are coded first; non-anchors (``~mask``) are coded given them."""
    check_positive(height=height, width=width)
    i = torch.arange(height, device=device)[:, None]
    j = torch.arange(width, device=device)[None, :]
    return (i + j) % 2 == 0


# --------------------------------------------------------------------------- SwinV2 blocks


class ContinuousPositionBias(nn.Module):
    r"""SwinV2's log-spaced continuous relative position bias.

    A relative offset :math:`\Delta` inside a :math:`w_h \times w_w` window is normalised to
    :math:`[-8, 8]` and log-spaced, :math:`\hat\Delta = \mathrm{sign}(\Delta)
    \log_2(1 + |\Delta|) / \log_2 8`; a 2-layer MLP (hidden 512, ReLU) maps it to one logit
    per head, and the bias is :math:`16\,\mathrm{sigmoid}(\cdot)`. Being a function of the
    offset, it serves any window size.

    Args:
        num_heads (int): heads. hidden (int): MLP width. (default: ``512``)
    """

    def __init__(self, num_heads: int, hidden: int = 512) -> None:
        super().__init__()
        check_positive(num_heads=num_heads, hidden=hidden)
        self.num_heads = num_heads
        self.mlp = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, num_heads, bias=False)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.mlp[0], self.mlp[2]):
            layer.reset_parameters()

    def forward(self, wh: int, ww: int) -> Tensor:
        check_positive(wh=wh, ww=ww)
        weight = self.mlp[0].weight
        dev = weight.device
        # the table in at least float32 (the log-spaced offsets), then the MLP's own dtype
        dt = torch.promote_types(weight.dtype, torch.float32)
        dh = torch.arange(-(wh - 1), wh, device=dev, dtype=dt)
        dw = torch.arange(-(ww - 1), ww, device=dev, dtype=dt)
        table = torch.stack(torch.meshgrid(dh, dw, indexing="ij"), dim=-1)  # (2wh-1, 2ww-1, 2)
        norm = torch.tensor([max(wh - 1, 1), max(ww - 1, 1)], device=dev, dtype=dt)
        table = table / norm * 8
        table = torch.sign(table) * torch.log2(table.abs() + 1) / math.log2(8)
        logits = self.mlp(table.to(weight.dtype)).permute(2, 0, 1)  # (heads, 2wh-1, 2ww-1)
        rh, rw = torch.arange(wh, device=dev), torch.arange(ww, device=dev)
        ih = (rh[None, :] - rh[:, None] + wh - 1)[:, None, :, None].expand(wh, ww, wh, ww)
        iw = (rw[None, :] - rw[:, None] + ww - 1)[None, :, None, :].expand(wh, ww, wh, ww)
        n = wh * ww
        return 16 * torch.sigmoid(logits[:, ih.reshape(n, n), iw.reshape(n, n)])


class CosineWindowAttention(MultiHeadSelfAttention):
    r"""SwinV2 scaled-cosine attention inside windows (a :class:`MultiHeadSelfAttention`
    reusing its projections):

    .. math::
        \mathrm{softmax}\big(\cos(q_i, k_j) \cdot e^{\min(\tau, \log 100)} + B_{ij} + M_{ij}\big)

    with a learned per-head log-scale :math:`\tau` (initial :math:`\log 10`), :math:`B` the
    :class:`ContinuousPositionBias` and :math:`M` an optional additive mask (shifted windows).
    The key projection keeps the bias of the shared ``kv`` projection (SwinV2 has none).

    Args:
        dim (int): channels. num_heads (int): heads. (default: ``8``)

    Shapes:
        - ``forward(windows, window, mask=None)``: windows :math:`(B n_W, w_h w_w, C)`, mask
          :math:`(n_W, w_h w_w, w_h w_w)`; output like ``windows``.
    """

    def __init__(self, dim: int, num_heads: int = 8) -> None:
        self._ready = False
        super().__init__(dim, num_heads, qkv_bias=True)
        self.logit_scale = nn.Parameter(torch.empty(num_heads, 1, 1))
        self.cpb = ContinuousPositionBias(num_heads)
        self._ready = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self._ready:
            nn.init.constant_(self.logit_scale, math.log(10.0))
            self.cpb.reset_parameters()

    def forward(  # type: ignore[override]
        self, x: Tensor, window: tuple[int, int], mask: Tensor | None = None
    ) -> Tensor:
        bw, n, c = x.shape
        q = F.normalize(self._heads(self.q(x)), dim=-1)
        k, v = (self._heads(t) for t in self.kv(x).chunk(2, dim=-1))
        k = F.normalize(k, dim=-1)
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        logits = (q @ k.transpose(-2, -1)) * scale + self.cpb(*window)
        if mask is not None:
            nw = mask.size(0)
            logits = logits.view(bw // nw, nw, self.num_heads, n, n) + mask[None, :, None]
            logits = logits.view(bw, self.num_heads, n, n)
        out = self.attn_drop(logits.softmax(-1)) @ v
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))


class SwinV2Block(nn.Module):
    r"""A SwinV2 block (`Swin Transformer V2 <https://arxiv.org/abs/2111.09883>`_): residual
    post-norm around (shifted) window cosine attention and an MLP,

    .. math::
        x \leftarrow x + \mathrm{DP}(\mathrm{LN}(\mathrm{WA}(x))),\qquad
        x \leftarrow x + \mathrm{DP}(\mathrm{LN}(\mathrm{MLP}(x))).

    The window is ``min(window, H, W)``; when it covers the whole map there is no shift.

    Args:
        dim (int): channels. num_heads (int): heads. window (int): window side. (default: ``8``)
        shift (bool): cyclic shift by half a window, with the region mask. (default: ``False``)
        mlp_ratio (float): MLP width ratio. (default: ``4.0``)
        drop_path (float): stochastic depth. (default: ``0.0``)

    Shapes:
        - input and output: :math:`(B, C, H, W)`, :math:`H, W` multiples of the window.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int = 8,
        shift: bool = False,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, num_heads=num_heads, window=window)
        self.dim, self.window, self.shift = dim, window, shift
        self.attn = CosineWindowAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.norm2 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.attn.reset_parameters()
        self.mlp.reset_parameters()
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()

    @staticmethod
    def _shift_mask(h: int, w: int, win: int, s: int, device: torch.device) -> Tensor:
        region = torch.zeros(1, h, w, 1, device=device)
        cuts = (slice(0, -win), slice(-win, -s), slice(-s, None))
        label = 0
        for hs in cuts:
            for ws in cuts:
                region[:, hs, ws] = label
                label += 1
        ids = window_partition(region, (win, win)).squeeze(-1)  # (nW, win*win)
        diff = ids[:, None, :] - ids[:, :, None]
        return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.dim, "SwinV2Block")
        b, c, h, w = x.shape
        win = min(self.window, h, w)
        if h % win or w % win:
            raise ValueError(f"window {win} must divide the feature size {(h, w)}")
        s = win // 2 if self.shift and win < min(h, w) else 0
        t = x.permute(0, 2, 3, 1)
        shifted = torch.roll(t, (-s, -s), dims=(1, 2)) if s else t
        # the region mask is built in float32; it follows the input's dtype
        mask = self._shift_mask(h, w, win, s, x.device).to(x.dtype) if s else None
        out = self.attn(window_partition(shifted, (win, win)), (win, win), mask)
        out = window_reverse(out, (win, win), (h, w))
        if s:
            out = torch.roll(out, (s, s), dims=(1, 2))
        t = t + self.drop_path(self.norm1(out))
        t = t + self.drop_path(self.norm2(self.mlp(t)))
        return t.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window={self.window}, shift={self.shift}"


class ResidualSwinV2Group(nn.Module):
    r"""Residual SwinV2 group (the RSTB of SwinIR with SwinV2 blocks): ``depth`` blocks
    alternating plain and shifted windows, a 3×3 convolution, and a skip,
    :math:`y = x + \mathrm{Conv}(\mathrm{Blocks}(x))`.

    Args:
        dim (int): channels. depth (int): blocks. num_heads (int): heads.
        window (int): window side. (default: ``8``) mlp_ratio (float): (default: ``4.0``)
        drop_path (sequence of float, optional): per-block stochastic depth.

    Shapes:
        - input and output: :math:`(B, C, H, W)`.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: int = 8,
        mlp_ratio: float = 4.0,
        drop_path: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        check_positive(depth=depth)
        rates = list(drop_path) if drop_path is not None else [0.0] * depth
        if len(rates) != depth:
            raise ValueError(f"drop_path needs {depth} rates, got {len(rates)}")
        self.blocks = nn.Sequential(
            *(
                SwinV2Block(dim, num_heads, window, i % 2 == 1, mlp_ratio, rates[i])
                for i in range(depth)
            )
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for block in self.blocks:
            block.reset_parameters()
        self.conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.blocks(x))


class DenseEnhance(nn.Module):
    r"""Dense-block feature enhancement of an image: ``layers`` 3×3 conv + GELU layers, each
    seeing the concatenation of the image and all earlier outputs (growth ``hidden``), fused
    by a 1×1 convolution into a residual, :math:`y = x + W[\,x, h_1, \dots, h_L\,]`.

    Args:
        channels (int): image channels. (default: ``3``) hidden (int): growth. (default:
            ``64``) layers (int): dense layers. (default: ``3``)
    """

    def __init__(self, channels: int = 3, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        check_positive(channels=channels, hidden=hidden, layers=layers)
        self.channels = channels
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * hidden, hidden, 3, padding=1) for i in range(layers)
        )
        self.fuse = nn.Conv2d(channels + layers * hidden, channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        # start as the identity so the codec begins from plain transforms
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.channels, "DenseEnhance")
        feats = [x]
        for conv in self.convs:
            feats.append(F.gelu(conv(torch.cat(feats, 1))))
        return x + self.fuse(torch.cat(feats, 1))


# --------------------------------------------------------------------------- ACGC context


def _heads_for(channels: int, per_head: int = 32) -> int:
    """The official head count ``channels // 32``, lowered to a divisor (at least one)."""
    h = max(1, channels // per_head)
    while channels % h:
        h -= 1
    return h


class ChannelContext(nn.Module):
    r"""Adaptive channel-wise attention over the decoded slices (ACGC's inter-slice channel
    context): transposed attention whose attention matrix is channel × channel per head,

    .. math::
        Q, K, V = \mathrm{DW}_{3\times3}(W_{1\times1} x),\quad
        A = \mathrm{softmax}\big(\hat Q \hat K^\top \cdot t\big),\quad
        y = W_o\big(x + W_p (A V)\big)

    with :math:`\hat Q, \hat K` L2-normalised over positions and a learned per-head
    temperature :math:`t`; :math:`W_o` (1×1) maps to ``out_dim``. Cost is linear in the number
    of positions.

    Args:
        dim (int): channels of :math:`\hat y_{<i}`. out_dim (int): output channels.
        num_heads (int, optional): heads (default: ``dim // 32`` lowered to a divisor).
    """

    def __init__(self, dim: int, out_dim: int, num_heads: int | None = None) -> None:
        super().__init__()
        check_positive(dim=dim, out_dim=out_dim)
        self.num_heads = num_heads or _heads_for(dim)
        if dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide dim={dim}")
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.dw = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim)
        self.temperature = nn.Parameter(torch.empty(self.num_heads, 1, 1))
        self.proj = nn.Conv2d(dim, dim, 1)
        self.out = nn.Conv2d(dim, out_dim, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in (self.qkv, self.dw, self.proj, self.out):
            conv.reset_parameters()
        nn.init.ones_(self.temperature)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.qkv.in_channels, "ChannelContext")
        b, c, h, w = x.shape
        q, k, v = self.dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(-1)
        mixed = (attn @ v).reshape(b, c, h, w)
        return self.out(x + self.proj(mixed))


class GlobalInterContext(nn.Module):
    r"""Global inter-slice attention with deformable sampling (ACGC's global context).

    Queries come from every position of :math:`\hat y_{<i}`; keys and values are read by
    bilinear sampling (``grid_sample``) at a reference grid moved by learned offsets,
    :math:`p + \Delta p`, with :math:`\Delta p = r \tanh(\mathrm{Conv}(q))` predicted per group
    from the queries (DAT-style deformable attention), so each query attends globally to
    positions that move with the content:

    .. math::
        y = W_o\,\big[\mathrm{softmax}(q\,k(p+\Delta p)^\top / \sqrt d)\,v(p+\Delta p)\big]

    Args:
        dim (int): channels of :math:`\hat y_{<i}`. out_dim (int): output channels.
        num_heads (int, optional): heads (default: ``dim // 32`` lowered to a divisor).
        offset_range (float): :math:`r`, the largest offset in grid cells. (default: ``2.0``)
    """

    def __init__(
        self, dim: int, out_dim: int, num_heads: int | None = None, offset_range: float = 2.0
    ) -> None:
        super().__init__()
        check_positive(dim=dim, out_dim=out_dim)
        self.num_heads = num_heads or _heads_for(dim)
        if dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide dim={dim}")
        if not 0 < offset_range < math.inf:
            raise ValueError(f"offset_range must be a positive finite number, got {offset_range}")
        self.offset_range = offset_range
        self.q = nn.Conv2d(dim, dim, 1)
        self.offset = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim),
            nn.GELU(),
            nn.Conv2d(dim, 2 * self.num_heads, 1),
        )
        self.kv = nn.Conv2d(dim, 2 * dim, 1)
        self.out = nn.Conv2d(dim, out_dim, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in (self.q, self.offset[0], self.kv, self.out):
            conv.reset_parameters()
        # start from the regular grid
        nn.init.zeros_(self.offset[2].weight)
        nn.init.zeros_(self.offset[2].bias)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.q.in_channels, "GlobalInterContext")
        b, c, h, w = x.shape
        g, d = self.num_heads, c // self.num_heads
        q = self.q(x)
        off = self.offset_range * torch.tanh(self.offset(q))  # (B, 2g, H, W) in cells
        off = off.reshape(b * g, 2, h, w).permute(0, 2, 3, 1)  # (Bg, H, W, (dy, dx))
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype) if h > 1 else x.new_zeros(1)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype) if w > 1 else x.new_zeros(1)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        cell = x.new_tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)])
        grid = torch.stack([gx, gy], -1)[None] + off.flip(-1) * cell  # (x, y) order
        src = x.reshape(b * g, d, h, w)
        sampled = F.grid_sample(src, grid, mode="bilinear", align_corners=True)
        k, v = self.kv(sampled.reshape(b, c, h, w)).chunk(2, dim=1)
        qh, kh, vh = (t.reshape(b, g, d, h * w).transpose(-2, -1) for t in (q, k, v))
        out = ((qh @ kh.transpose(-2, -1)) * d**-0.5).softmax(-1) @ vh  # (B, g, HW, d)
        return self.out(out.transpose(-2, -1).reshape(b, c, h, w))


def _pointwise_mlp(cin: int, cout: int) -> nn.Sequential:
    """Three 1×1 convolutions with GELU, narrowing linearly from ``cin`` to ``cout``."""
    h1 = cout + (cin - cout) * 2 // 3
    h2 = cout + (cin - cout) // 3
    return nn.Sequential(
        nn.Conv2d(cin, h1, 1), nn.GELU(), nn.Conv2d(h1, h2, 1), nn.GELU(), nn.Conv2d(h2, cout, 1)
    )


def _lrp(cin: int, cout: int) -> nn.Sequential:
    """Latent residual prediction: 3×3 convolutions with GELU, output :math:`0.5\\tanh`."""
    hidden = max(cout, (cin + cout) // 2)
    return nn.Sequential(
        nn.Conv2d(cin, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, cout, 3, padding=1)
    )


class ACGCContext(nn.Module):
    r"""The ACGC entropy model: channel slices, each coded in two checkerboard passes.

    For slice :math:`i` with decoded context :math:`\hat y_{<i}`, hyper parameters
    :math:`\psi` and anchor mask :math:`A`:

    .. math::
        (\sigma, \mu)_A &= e_A\big([\,\mathrm{CC}_i(\hat y_{<i}),\ \mathrm{GC}_i(\hat y_{<i}),
        \ \psi\,]\big),\qquad
        \hat y_{i,A} = \lfloor y_{i,A} - \mu_A \rceil + \mu_A + r_A\\
        (\sigma, \mu)_{\bar A} &= e_{\bar A}\big([\,\mathrm{CC}_i,\ \mathrm{GC}_i,\ \psi,
        \ \mathrm{Conv}_{5\times5}(A \odot \hat y_i)\,]\big),\qquad
        \hat y_{i,\bar A} = \lfloor y_{i,\bar A} - \mu_{\bar A} \rceil + \mu_{\bar A}
        + r_{\bar A}

    (slice 0 has no CC/GC terms) where :math:`r` is the latent residual prediction
    :math:`0.5 \tanh(\mathrm{LRP}([\mu_\psi, \hat y_{<i}, \text{decoded part of }
    \hat y_i]))` masked to the pass's positions. So anchor parameters depend only on
    :math:`\psi` and :math:`\hat y_{<i}`, non-anchor parameters also on the slice's anchors,
    never on a latent not yet decoded. Rounding passes a straight-through gradient;
    likelihoods use noise in training and rounding in evaluation.

    Args:
        M (int): latent channels. num_slices (int): slices; must divide ``M``. (default:
            ``10``) hyper_channels (int, optional): channels of :math:`\psi` (default ``2M``,
            scales then means).

    Shapes:
        - ``forward(y, hyper)``: :math:`(B, M, h, w)` and :math:`(B, 2M, h, w)`; returns a dict
          with ``y_hat`` and ``likelihoods`` :math:`(B, M, h, w)` and the Gaussian ``means``
          and ``scales`` :math:`(B, M, h, w)`.
    """

    def __init__(self, M: int, num_slices: int = 10, hyper_channels: int | None = None) -> None:
        super().__init__()
        check_positive(M=M, num_slices=num_slices)
        if M % num_slices:
            raise ValueError(f"num_slices={num_slices} must divide M={M}")
        self.M, self.num_slices = M, num_slices
        s = self.slice_ch = M // num_slices
        hc = self.hyper_channels = hyper_channels or 2 * M
        self.channel_ctx = nn.ModuleList(ChannelContext(s * i, 2 * s) for i in range(1, num_slices))
        self.global_ctx = nn.ModuleList(GlobalInterContext(s * i, s) for i in range(1, num_slices))
        self.params_anchor = nn.ModuleList(
            _pointwise_mlp(hc + (3 * s if i else 0), 2 * s) for i in range(num_slices)
        )
        self.spatial_ctx = nn.ModuleList(
            nn.Conv2d(s, 2 * s, 5, padding=2) for _ in range(num_slices)
        )
        self.params_nonanchor = nn.ModuleList(
            _pointwise_mlp(hc + 2 * s + (3 * s if i else 0), 2 * s) for i in range(num_slices)
        )
        self.lrp_anchor = nn.ModuleList(_lrp(M + (i + 1) * s, s) for i in range(num_slices))
        self.lrp_nonanchor = nn.ModuleList(_lrp(M + (i + 1) * s, s) for i in range(num_slices))
        self.gaussian = GaussianConditional()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and isinstance(m, nn.Conv2d):
                m.reset_parameters()
        for m in (*self.channel_ctx, *self.global_ctx):
            m.reset_parameters()

    def forward(self, y: Tensor, hyper: Tensor) -> dict[str, Tensor]:
        check_image(y, self.M, "ACGCContext")
        check_image(hyper, self.hyper_channels, "ACGCContext (hyper parameters)")
        if y.shape[-2:] != hyper.shape[-2:]:
            raise ValueError(f"y {tuple(y.shape)} and hyper {tuple(hyper.shape)} differ in size")
        anchor = checkerboard_mask(*y.shape[-2:], device=y.device).to(y.dtype)
        non = 1 - anchor
        hyper_means = hyper[:, self.M :]
        mode = "noise" if self.training else "round"
        decoded: list[Tensor] = []
        out = {"likelihoods": [], "means": [], "scales": []}
        for i, y_i in enumerate(y.chunk(self.num_slices, dim=1)):
            ctx = [hyper]
            if i:
                prev = torch.cat(decoded, 1)
                ctx = [self.channel_ctx[i - 1](prev), self.global_ctx[i - 1](prev), hyper]
            # pass 1: anchors, from the hyperprior and earlier slices only
            sc_a, mu_a = self.params_anchor[i](torch.cat(ctx, 1)).chunk(2, 1)
            y_a = (ste_round(y_i - mu_a) + mu_a) * anchor
            y_a = y_a + anchor * 0.5 * torch.tanh(
                self.lrp_anchor[i](torch.cat([hyper_means, *decoded, y_a], 1))
            )
            # pass 2: non-anchors, also from the slice's decoded anchors
            spatial = self.spatial_ctx[i](y_a)
            sc_n, mu_n = self.params_nonanchor[i](torch.cat([*ctx, spatial], 1)).chunk(2, 1)
            scales = sc_a * anchor + sc_n * non
            means = mu_a * anchor + mu_n * non
            _, p = self.gaussian(y_i, scales, means, mode=mode)
            y_hat = y_a + (ste_round(y_i - mu_n) + mu_n) * non
            y_hat = y_hat + non * 0.5 * torch.tanh(
                self.lrp_nonanchor[i](torch.cat([hyper_means, *decoded, y_hat], 1))
            )
            decoded.append(y_hat)
            out["likelihoods"].append(p)
            out["means"].append(means)
            out["scales"].append(scales)
        result = {k: torch.cat(v, 1) for k, v in out.items()}
        result["y_hat"] = torch.cat(decoded, 1)
        return result

    def extra_repr(self) -> str:
        return f"M={self.M}, num_slices={self.num_slices}"


# --------------------------------------------------------------------------- the codec


def _down(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


@register_model("s2lic", family="compression", paper=PAPER)
class S2LIC(nn.Module):
    r"""The S2LIC codec: SwinV2 analysis/synthesis, hyperprior and the ACGC entropy model.

    .. math::
        y = g_a(x),\ z = h_a(y),\ \hat z = \lfloor z \rceil,\ \psi = h_s(\hat z),\
        \hat y = \mathrm{ACGC}(y, \psi),\ \hat x = g_s(\hat y)

    Args:
        N (int): transform width. (default: ``192``)
        M (int): latent channels. (default: ``320``)
        num_slices (int): ACGC slices. (default: ``10``)
        window (int): SwinV2 window. (default: ``8``)
        depths (sequence of int): SwinV2 blocks per analysis group (mirrored in synthesis).
            (default: ``(1, 2, 3)``)
        num_heads (sequence of int): heads per analysis group. (default: ``(4, 8, 16)``)
        mlp_ratio (float): (default: ``4.0``) drop_path (float): largest stochastic depth.
            (default: ``0.1``) enhance_hidden (int): enhancement growth. (default: ``64``)

    Shapes:
        - input: :math:`(B, 3, H, W)` with :math:`H, W` multiples of 64 (the hyperprior's
          stride) and the windows fitting the :math:`1/2, 1/4, 1/8` maps.
        - output: a dict with ``x_hat`` :math:`(B, 3, H, W)`, ``likelihoods`` (``y``:
          :math:`(B, M, H/16, W/16)`, ``z``: :math:`(B, N, H/64, W/64)`) and ``y_hat``.
    """

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        num_slices: int = 10,
        window: int = 8,
        depths: Sequence[int] = (1, 2, 3),
        num_heads: Sequence[int] = (4, 8, 16),
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
        enhance_hidden: int = 64,
    ) -> None:
        super().__init__()
        check_positive(N=N, M=M, window=window)
        if len(depths) != 3 or len(num_heads) != 3:
            raise ValueError("depths and num_heads need one entry per group (three)")
        self.N, self.M = N, M
        total = sum(depths)
        rates = torch.linspace(0, drop_path, 2 * total).tolist()
        starts = [0, depths[0], depths[0] + depths[1]]

        def group(i: int, offset: int) -> ResidualSwinV2Group:
            r = rates[offset + starts[i] : offset + starts[i] + depths[i]]
            return ResidualSwinV2Group(N, depths[i], num_heads[i], window, mlp_ratio, r)

        self.enhance_in = DenseEnhance(3, enhance_hidden)
        self.g_a = nn.Sequential(
            _down(3, N, 5), group(0, 0), _down(N, N, 3), group(1, 0), _down(N, N, 3),
            group(2, 0), _down(N, M, 3),
        )
        self.g_s = nn.Sequential(
            _up(M, N, 3), group(2, total), _up(N, N, 3), group(1, total), _up(N, N, 3),
            group(0, total), nn.Conv2d(N, 3 * 4, 3, padding=1), nn.PixelShuffle(2),
        )
        self.enhance_out = DenseEnhance(3, enhance_hidden)
        self.h_a = nn.Sequential(
            nn.Conv2d(M, N, 3, padding=1), nn.GELU(), _down(N, N, 5), nn.GELU(), _down(N, N, 5)
        )
        self.h_s = nn.Sequential(
            _up(N, N, 5), nn.GELU(), _up(N, N * 3 // 2, 5), nn.GELU(),
            nn.Conv2d(N * 3 // 2, 2 * M, 3, padding=1),
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.context = ACGCContext(M, num_slices)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for child in self.children():
            for m in child.modules():
                if m is not child and isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                    m.reset_parameters()
        for m in (self.enhance_in, self.enhance_out, self.entropy_bottleneck, self.context):
            m.reset_parameters()
        for stage in (*self.g_a, *self.g_s):
            if isinstance(stage, ResidualSwinV2Group):
                stage.reset_parameters()

    def forward(self, x: Tensor) -> dict[str, Tensor | dict[str, Tensor]]:
        check_image(x, 3, "S2LIC")
        h, w = x.shape[-2:]
        if h % 64 or w % 64:
            raise ValueError(f"S2LIC needs H and W multiples of 64, got {(h, w)}")
        if torch.isnan(x).any():
            raise ValueError("S2LIC got NaN pixels")
        y = self.g_a(self.enhance_in(x))
        z = self.h_a(y)
        _, z_lik = self.entropy_bottleneck(z)
        z_hat = ste_round(z)
        coded = self.context(y, self.h_s(z_hat))
        x_hat = self.enhance_out(self.g_s(coded["y_hat"]))
        return {
            "x_hat": x_hat,
            "y_hat": coded["y_hat"],
            "likelihoods": {"y": coded["likelihoods"], "z": z_lik},
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(N={self.N}, M={self.M}, "
            f"num_slices={self.context.num_slices})"
        )


def bpp(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    r"""Estimated bits per pixel, :math:`-\sum \log_2 p / (B H W)` over all likelihoods."""
    check_positive(num_pixels=num_pixels)
    if not likelihoods:
        raise ValueError("bpp got no likelihoods")
    return sum(-torch.log2(p).sum() for p in likelihoods.values()) / num_pixels


class RateDistortionLoss(nn.Module):
    r""":math:`\mathcal L = \lambda \cdot 255^2 \cdot \mathrm{MSE}(\hat x, x) + \mathrm{bpp}`
    (the CompressAI convention for images in :math:`[0, 1]`).

    Args:
        lmbda (float): :math:`\lambda`; CompressAI's grid runs 0.0018 … 0.0483.
            (default: ``0.013``)
    """

    def __init__(self, lmbda: float = 0.013) -> None:
        super().__init__()
        if not 0 < lmbda < math.inf:  # also rejects NaN
            raise ValueError(f"lmbda must be positive, got {lmbda}")
        self.lmbda = lmbda

    def forward(self, output: dict, target: Tensor) -> dict[str, Tensor]:
        if target.dim() != 4 or output["x_hat"].shape != target.shape:
            raise ValueError(
                f"x_hat and target must be one (B, C, H, W) shape, got "
                f"{tuple(output['x_hat'].shape)} and {tuple(target.shape)}"
            )
        b, _, h, w = target.shape
        rate = bpp(output["likelihoods"], b * h * w)
        mse = F.mse_loss(output["x_hat"], target)
        return {"loss": self.lmbda * 255**2 * mse + rate, "bpp": rate, "mse": mse}

    def extra_repr(self) -> str:
        return f"lmbda={self.lmbda}"
