"""MossFormer2: time-domain monaural speech separation with attention and an RNN-free recurrence.

`MossFormer2: Combining Transformer and RNN-Free Recurrent Network for Enhanced Time-Domain
Monaural Speech Separation <https://arxiv.org/abs/2312.11825>`_ (Zhao et al., ICASSP 2024).
Official code: ``modelscope/ClearerVoice-Studio`` (``models/mossformer2_ss``); the layer
widths, kernels and wiring below follow it, so the default configuration has the official
parameter count (up to the rotary frequencies, a buffer here and a frozen parameter there).

Pipeline: encoder ``Conv1d(1 -> N, 16, stride 8)`` + ReLU; mask net (group norm, pointwise
projection, scaled sinusoidal position, ``R`` pairs of a MossFormer layer and a
:class:`~graphkit.extras.layers.fsmn.DilatedFSMNBlock`, layer norm, skip, PReLU, one gated
pointwise head per source, ReLU masks); masks multiply the encoder output; a shared
``ConvTranspose1d(N -> 1, 16, stride 8)`` decodes each source.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.fsmn import DilatedFSMNBlock, FFConvM

__all__ = [
    "MossFormer2",
    "MossFormerLayer",
    "OffsetScale",
    "ScaleNorm",
    "ScaledSinusoidalEmbedding",
    "mossformer2",
    "mossformer2_tiny",
    "rotary_embedding",
]

_PAPER = (
    "MossFormer2: Combining Transformer and RNN-Free Recurrent Network for Enhanced "
    "Time-Domain Monaural Speech Separation"
)


class ScaleNorm(nn.Module):
    r"""Scale norm: :math:`y = g\,x / \max(\lVert x \rVert_2 / \sqrt{C}, \epsilon)` over the last
    dimension, one learnable gain :math:`g`.

    Args:
        dim (int): :math:`C`.
        eps (float): lower bound of the norm. (default: ``1e-5``)
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        check_positive(dim=dim)
        self.dim, self.scale, self.eps = dim, dim**-0.5, eps
        self.g = nn.Parameter(torch.ones(1))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.g)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 0 or x.size(-1) != self.dim:
            raise ValueError(f"ScaleNorm expects (*, {self.dim}), got shape {tuple(x.shape)}")
        norm = x.norm(dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class ScaledSinusoidalEmbedding(nn.Module):
    """Sinusoidal positions ``[sin(t w), cos(t w)]`` times one learnable scale.

    Args:
        dim (int): embedding width (even).

    Shapes:
        - output of ``forward(length)``: :math:`(T, \\text{dim})`
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        check_positive(dim=dim)
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("inv_freq", 10000.0 ** (-torch.arange(0, dim, 2).float() / dim))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.scale)

    def forward(self, length: int) -> Tensor:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        t = torch.arange(length, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        angles = t[:, None] * self.inv_freq[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1) * self.scale


class OffsetScale(nn.Module):
    r"""Per-head affine maps of one shared projection: :math:`y_h = x \odot \gamma_h + \beta_h`.

    Args:
        dim (int): feature width.
        heads (int): number of outputs. (default: ``4``)
    """

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        check_positive(dim=dim, heads=heads)
        self.gamma = nn.Parameter(torch.empty(heads, dim))
        self.beta = nn.Parameter(torch.empty(heads, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.gamma, std=0.02)
        nn.init.zeros_(self.beta)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if x.dim() == 0 or x.size(-1) != self.gamma.size(-1):
            raise ValueError(
                f"OffsetScale expects (*, {self.gamma.size(-1)}), got shape {tuple(x.shape)}"
            )
        return (x.unsqueeze(-2) * self.gamma + self.beta).unbind(dim=-2)


def rotary_embedding(x: Tensor, rot_dim: int = 32, theta: float = 10000.0) -> Tensor:
    r"""Rotary position embedding on the first ``rot_dim`` features of ``x`` ``(..., T, D)``.

    Adjacent feature pairs :math:`(x_{2k}, x_{2k+1})` at position :math:`t` are rotated by
    the angle :math:`t\,\theta^{-2k/\mathrm{rot\_dim}}`; the remaining features pass unchanged.
    A ``rot_dim`` above ``D`` is reduced to ``D`` (every feature rotated, the angles of ``D``),
    so that a narrow model's query/key width can take the default.
    """
    if x.dim() < 2:
        raise ValueError(f"rotary_embedding expects (..., T, D), got shape {tuple(x.shape)}")
    rot_dim = min(rot_dim, x.size(-1))
    if rot_dim % 2:
        raise ValueError(f"rot_dim must be even, got {rot_dim}")
    inv_freq = theta ** (-torch.arange(0, rot_dim, 2, device=x.device, dtype=x.dtype) / rot_dim)
    t = torch.arange(x.size(-2), device=x.device, dtype=x.dtype)
    angles = (t[:, None] * inv_freq[None, :]).repeat_interleave(2, dim=-1)
    rot, rest = x[..., :rot_dim], x[..., rot_dim:]
    pairs = rot.unflatten(-1, (-1, 2))
    rotated_half = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return torch.cat([rot * angles.cos() + rotated_half * angles.sin(), rest], dim=-1)


class MossFormerLayer(nn.Module):
    r"""Gated single-head attention with joint local (quadratic) and global (linear) attention.

    From one shared projection :math:`z` (width ``query_key_dim``), four per-head affine maps
    give :math:`q, k` (quadratic) and :math:`q', k'` (linear), with rotary positions. With
    value and gate :math:`v, u` from a second projection and chunks of ``group_size`` steps:

    .. math::
        A = \mathrm{ReLU}(q k^\top / g)^2 \ \text{(within a chunk)}, \quad
        \hat v = A v + q' (k'^\top v) / T, \quad \hat u = A u + q' (k'^\top u) / T,
        \qquad y = x + \mathrm{FFConvM}\big((\hat u \odot v) \odot \sigma(\hat v \odot u)\big)

    Half of the input channels are shifted one step in time first (token shift).

    Args:
        dim (int): model width :math:`C`.
        group_size (int): attention chunk :math:`g`. (default: ``256``)
        query_key_dim (int): width of :math:`z`. (default: ``128``)
        expansion_factor (float): hidden width of :math:`[v, u]` over ``dim``. (default: ``4.0``)
        dropout (float): dropout on attention weights and feed-forward outputs.
            (default: ``0.1``)
        rotary_dim (int): features rotated by the rotary embedding. (default: ``32``)

    Shapes:
        - input / output: :math:`(B, T, C)`
    """

    def __init__(
        self,
        dim: int,
        group_size: int = 256,
        query_key_dim: int = 128,
        expansion_factor: float = 4.0,
        dropout: float = 0.1,
        rotary_dim: int = 32,
    ) -> None:
        super().__init__()
        check_positive(dim=dim, group_size=group_size, query_key_dim=query_key_dim)
        check_fraction("dropout", dropout)
        hidden = int(dim * expansion_factor)
        if hidden < 2 or hidden % 2:
            raise ValueError(
                f"dim * expansion_factor must be an even width >= 2, got {dim} * {expansion_factor}"
            )
        self.dim, self.group_size, self.rotary_dim = dim, group_size, rotary_dim
        self.to_hidden = FFConvM(dim, hidden, norm=ScaleNorm(dim), dropout=dropout)
        self.to_qk = FFConvM(dim, query_key_dim, norm=ScaleNorm(dim), dropout=dropout)
        self.qk_offset_scale = OffsetScale(query_key_dim, heads=4)
        # the gated output is hidden / 2 wide (2 * dim at the default expansion of 4)
        self.to_out = FFConvM(hidden // 2, dim, norm=ScaleNorm(hidden // 2), dropout=dropout)
        self.attn_dropout = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        for m in (self.to_hidden, self.to_qk, self.qk_offset_scale, self.to_out):
            m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.size(-1) != self.dim:
            raise ValueError(
                f"MossFormerLayer expects a (B, T, {self.dim}) tensor, got shape {tuple(x.shape)}"
            )
        shifted, passed = x.chunk(2, dim=-1)
        shifted = F.pad(shifted, (0, 0, 1, -1))  # each step sees half of the previous one
        h = torch.cat([shifted, passed], dim=-1)
        v, u = self.to_hidden(h).chunk(2, dim=-1)
        quad_q, lin_q, quad_k, lin_k = (
            rotary_embedding(t, self.rotary_dim) for t in self.qk_offset_scale(self.to_qk(h))
        )
        att_v, att_u = self._attend(quad_q, lin_q, quad_k, lin_k, v, u)
        return x + self.to_out((att_u * v) * torch.sigmoid(att_v * u))

    def _attend(
        self, quad_q: Tensor, lin_q: Tensor, quad_k: Tensor, lin_k: Tensor, v: Tensor, u: Tensor
    ) -> tuple[Tensor, Tensor]:
        n, g = v.size(1), self.group_size
        pad = (-n) % g
        # zero padding: padded keys and values contribute nothing to either attention
        q, k, lq, lk, v2, u2 = (
            F.pad(t, (0, 0, 0, pad)).unflatten(1, (-1, g))
            for t in (quad_q, quad_k, lin_q, lin_k, v, u)
        )
        attn = self.attn_dropout(F.relu(q @ k.transpose(-1, -2) / g) ** 2)
        # global linear attention: one key-value summary for the whole sequence
        kv = torch.einsum("bgnd,bgne->bde", lk, v2) / n
        ku = torch.einsum("bgnd,bgne->bde", lk, u2) / n
        out_v = attn @ v2 + torch.einsum("bgnd,bde->bgne", lq, kv)
        out_u = attn @ u2 + torch.einsum("bgnd,bde->bgne", lq, ku)
        return out_v.flatten(1, 2)[:, :n], out_u.flatten(1, 2)[:, :n]


class _MaskNet(nn.Module):
    """The separator: maps encoder features ``(B, N, L)`` to ReLU masks ``(S, B, N, L)``."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_blocks: int,
        n_src: int,
        group_size: int,
        query_key_dim: int,
        inner_channels: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_src = n_src
        self.norm = nn.GroupNorm(1, in_channels, eps=1e-8)
        self.proj_in = nn.Conv1d(in_channels, channels, 1, bias=False)
        self.pos_enc = ScaledSinusoidalEmbedding(channels)
        self.attention = nn.ModuleList(
            MossFormerLayer(channels, group_size, query_key_dim, 4.0, dropout)
            for _ in range(num_blocks)
        )
        self.recurrent = nn.ModuleList(
            DilatedFSMNBlock(channels, inner_channels, dropout=dropout) for _ in range(num_blocks)
        )
        self.final_norm = nn.LayerNorm(channels, eps=1e-6)
        self.intra_norm = nn.GroupNorm(1, channels, eps=1e-8)
        self.prelu = nn.PReLU()
        self.proj_src = nn.Conv1d(channels, channels * n_src, 1)
        self.out_tanh = nn.Conv1d(channels, channels, 1)
        self.out_gate = nn.Conv1d(channels, channels, 1)
        self.proj_out = nn.Conv1d(channels, in_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj_in(self.norm(x))
        x = x + self.pos_enc(x.size(-1)).t()
        h = x.transpose(1, 2)
        for attn, rec in zip(self.attention, self.recurrent, strict=True):
            h = rec(attn(h))
        h = self.intra_norm(self.final_norm(h).transpose(1, 2)) + x
        h = self.proj_src(self.prelu(h))
        b, _, length = h.shape
        h = h.reshape(b * self.n_src, -1, length)
        h = torch.tanh(self.out_tanh(h)) * torch.sigmoid(self.out_gate(h))
        masks = F.relu(self.proj_out(h)).reshape(b, self.n_src, -1, length)
        return masks.transpose(0, 1)


class MossFormer2(nn.Module):
    r"""MossFormer2 separator: a masking encoder-separator-decoder on the waveform.

    .. math::
        E = \mathrm{ReLU}(\mathrm{Conv1d}_{16, /8}(x)), \qquad
        \hat s_j = \mathrm{ConvT1d}_{16, \times 8}(M_j \odot E), \ j = 1..S

    where the masks :math:`M_j` come from ``R`` MossFormer layers (:class:`MossFormerLayer`)
    each followed by a recurrent
    :class:`~graphkit.extras.layers.fsmn.DilatedFSMNBlock`. The default configuration
    (``N = 512``, ``R = 24``) is the paper's and the official WSJ0-2mix model. Outputs are cut
    or zero-padded to the input length, so any :math:`T \ge 1.5\,` ``kernel_size`` works. Train with
    :func:`~graphkit.extras.audio.losses.pit_si_snr_loss`.

    Args:
        n_src (int): number of sources :math:`S`. (default: ``2``)
        N (int): encoder filters (mask width). (default: ``512``)
        R (int): repeated MossFormer + recurrent pairs. (default: ``24``)
        channels (int, optional): separator width; ``None`` uses ``N``. (default: ``None``)
        kernel_size (int): encoder/decoder kernel, stride ``kernel_size // 2``. (default: ``16``)
        group_size (int): attention chunk length. (default: ``256``)
        query_key_dim (int): attention query/key width. (default: ``128``)
        inner_channels (int): recurrent bottleneck width. (default: ``256``)
        dropout (float): dropout probability. (default: ``0.1``)

    Shapes:
        - input: :math:`(B, T)` mixture
        - output: :math:`(B, S, T)` estimated sources
    """

    def __init__(
        self,
        n_src: int = 2,
        N: int = 512,
        R: int = 24,
        channels: int | None = None,
        kernel_size: int = 16,
        group_size: int = 256,
        query_key_dim: int = 128,
        inner_channels: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        channels = N if channels is None else channels
        check_positive(n_src=n_src, N=N, R=R, channels=channels, kernel_size=kernel_size)
        if kernel_size < 2:
            raise ValueError("kernel_size must be at least 2 (stride = kernel_size // 2), got 1")
        self.n_src, self.N, self.R, self.kernel_size = n_src, N, R, kernel_size
        stride = kernel_size // 2
        self.encoder = nn.Conv1d(1, N, kernel_size, stride=stride, bias=False)
        self.mask_net = _MaskNet(
            N, channels, R, n_src, group_size, query_key_dim, inner_channels, dropout
        )
        self.decoder = nn.ConvTranspose1d(N, 1, kernel_size, stride=stride, bias=False)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2:
            raise ValueError(f"MossFormer2 expects a (B, T) waveform, got shape {tuple(x.shape)}")
        min_length = self.kernel_size + self.kernel_size // 2
        if x.size(1) < min_length:
            # two encoder frames at least: the memory's instance norms need more than one step
            raise ValueError(
                f"MossFormer2 needs at least {min_length} samples (two encoder frames), "
                f"got {x.size(1)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("MossFormer2 input contains NaN or infinite samples")
        b, t = x.shape
        feats = F.relu(self.encoder(x.unsqueeze(1)))
        masks = self.mask_net(feats)
        est = self.decoder((masks * feats).reshape(self.n_src * b, self.N, -1)).squeeze(1)
        est = est.reshape(self.n_src, b, -1).transpose(0, 1)
        if est.size(-1) >= t:
            return est[..., :t]
        return F.pad(est, (0, t - est.size(-1)))

    def extra_repr(self) -> str:
        return f"n_src={self.n_src}, N={self.N}, R={self.R}, kernel_size={self.kernel_size}"


@register_model("mossformer2", family="audio", paper=_PAPER)
def mossformer2(**kwargs: Any) -> MossFormer2:
    """MossFormer2, by default in the paper's configuration (``N = 512``, ``R = 24``)."""
    return MossFormer2(**kwargs)


def mossformer2_tiny(**kwargs: Any) -> MossFormer2:
    """A small MossFormer2 (``N = 64``, ``R = 2``, narrow attention and memory) for CPU tests."""
    config: dict[str, Any] = dict(N=64, R=2, group_size=64, query_key_dim=32, inner_channels=32)
    config.update(kwargs)
    return MossFormer2(**config)

