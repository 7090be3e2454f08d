"""Dilated FSMN memory blocks and gated convolutional units, the recurrent module of MossFormer2.

`MossFormer2: Combining Transformer and RNN-Free Recurrent Network for Enhanced Time-Domain
Monaural Speech Separation <https://arxiv.org/abs/2312.11825>`_ (Zhao et al., ICASSP 2024).
Official code: ``modelscope/ClearerVoice-Studio`` (``models/mossformer2_ss``), whose layer
widths, kernel sizes and wiring these modules follow so that parameter counts match.

A feedforward sequential memory network (FSMN) replaces recurrence by a learnable FIR filter
over time; MossFormer2 makes the filter bank dense and dilated (:class:`DilatedDenseMemory`),
wraps it in a gated convolutional unit (:class:`GatedConvUnit`) and puts that between two
pointwise projections (:class:`DilatedFSMNBlock`). Every module here maps a
``(B, T, C)`` sequence to a ``(B, T, C)`` sequence (``DilatedDenseMemory``: ``(B, C, T)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_positive

__all__ = [
    "ChannelLayerNorm",
    "DepthwiseConvModule",
    "DilatedDenseMemory",
    "DilatedFSMN",
    "DilatedFSMNBlock",
    "FFConvM",
    "GatedConvUnit",
]


def _check_sequence(x: Tensor, channels: int, who: str) -> None:
    if x.dim() != 3 or x.size(-1) != channels:
        raise ValueError(f"{who} expects a (B, T, {channels}) tensor, got shape {tuple(x.shape)}")


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channels of a ``(B, C, T)`` tensor (each time step on its own).

    Args:
        channels (int): :math:`C`.
        eps (float): added to the variance. (default: ``1e-5``)

    Shapes:
        - input / output: :math:`(B, C, T)`
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        check_positive(channels=channels)
        super().__init__(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.size(1) != self.normalized_shape[0]:
            raise ValueError(
                f"ChannelLayerNorm expects a (B, {self.normalized_shape[0]}, T) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class DepthwiseConvModule(nn.Module):
    r"""A residual depthwise convolution over time: :math:`y = x + \mathrm{DWConv}_k(x)`.

    Args:
        channels (int): :math:`C`.
        kernel_size (int): odd temporal kernel, 'same' padding. (default: ``17``)

    Shapes:
        - input / output: :math:`(B, T, C)`
    """

    def __init__(self, channels: int, kernel_size: int = 17) -> None:
        super().__init__()
        check_positive(channels=channels, kernel_size=kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.conv = nn.Conv1d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False
        )

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.conv.in_channels, "DepthwiseConvModule")
        return x + self.conv(x.transpose(1, 2)).transpose(1, 2)


class FFConvM(nn.Module):
    r"""Feed-forward convolution module: norm, linear, SiLU, residual depthwise conv, dropout.

    .. math::
        y = \mathrm{Drop}\big(\mathrm{DWRes}(\mathrm{SiLU}(W\,\mathrm{Norm}(x) + b))\big)

    Args:
        in_features (int): input width.
        out_features (int): output width.
        norm (nn.Module, optional): the input normalisation; ``None`` gives
            ``nn.LayerNorm(in_features)``. (default: ``None``)
        kernel_size (int): depthwise kernel. (default: ``17``)
        dropout (float): output dropout. (default: ``0.1``)

    Shapes:
        - input: :math:`(B, T, C_{in})`; output: :math:`(B, T, C_{out})`
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        norm: nn.Module | None = None,
        kernel_size: int = 17,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive(in_features=in_features, out_features=out_features)
        self.norm = nn.LayerNorm(in_features) if norm is None else norm
        self.linear = nn.Linear(in_features, out_features)
        self.conv = DepthwiseConvModule(out_features, kernel_size)
        self.dropout = nn.Dropout(check_fraction("dropout", dropout))

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()
        self.conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.linear.in_features, "FFConvM")
        return self.dropout(self.conv(F.silu(self.linear(self.norm(x)))))


class DilatedDenseMemory(nn.Module):
    r"""Dense, dilated FSMN memory: depthwise temporal filters whose inputs grow by concatenation.

    Layer :math:`i` (dilation :math:`2^i`) filters the concatenation of all previous outputs
    and the input, with a grouped convolution of ``C`` groups (each group reads
    :math:`i + 1` consecutive channels of the concatenation, as in the official code), a
    symmetric kernel of :math:`2L - 1` taps and 'same' padding, followed by instance norm and
    PReLU. The last layer's output is returned:

    .. math::
        s_0 = x, \quad o_i = \mathrm{PReLU}(\mathrm{IN}(\mathrm{Conv}_{2^i}(s_i))), \quad
        s_{i+1} = [o_i, s_i], \quad y = o_{D-1}

    Args:
        channels (int): :math:`C`.
        lorder (int): memory order :math:`L` (kernel :math:`2L - 1`). (default: ``20``)
        depth (int): number of dilated layers :math:`D`. (default: ``2``)

    Shapes:
        - input / output: :math:`(B, C, T)`
    """

    def __init__(self, channels: int, lorder: int = 20, depth: int = 2) -> None:
        super().__init__()
        check_positive(channels=channels, lorder=lorder, depth=depth)
        self.channels, self.lorder, self.depth = channels, lorder, depth
        kernel = 2 * lorder - 1
        self.convs = nn.ModuleList(
            nn.Conv1d(
                channels * (i + 1),
                channels,
                kernel,
                dilation=2**i,
                padding=(lorder - 1) * 2**i,
                groups=channels,
                bias=False,
            )
            for i in range(depth)
        )
        self.norms = nn.ModuleList(
            nn.InstanceNorm1d(channels, affine=True) for _ in range(depth)
        )
        self.acts = nn.ModuleList(nn.PReLU(channels) for _ in range(depth))

    def reset_parameters(self) -> None:
        for conv, norm, act in zip(self.convs, self.norms, self.acts, strict=True):
            conv.reset_parameters()
            norm.reset_parameters()
            act.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.size(1) != self.channels:
            raise ValueError(
                f"DilatedDenseMemory expects a (B, {self.channels}, T) tensor, "
                f"got shape {tuple(x.shape)}"
            )
        skip = x
        out = x
        for conv, norm, act in zip(self.convs, self.norms, self.acts, strict=True):
            out = act(norm(conv(skip)))
            skip = torch.cat([out, skip], dim=1)
        return out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lorder={self.lorder}, depth={self.depth}"


class DilatedFSMN(nn.Module):
    r"""Dilated FSMN layer: a ReLU bottleneck, a linear projection and dense dilated memory,
    with a residual connection.

    .. math::
        p = W_p\,\mathrm{ReLU}(W_h x + b_h), \qquad y = x + \mathrm{Memory}(p)

    Args:
        channels (int): input and output width :math:`C`.
        hidden (int): bottleneck width. (default: ``channels``)
        lorder (int): memory order. (default: ``20``)
        depth (int): dilated memory layers. (default: ``2``)

    Shapes:
        - input / output: :math:`(B, T, C)`
    """

    def __init__(
        self, channels: int, hidden: int | None = None, lorder: int = 20, depth: int = 2
    ) -> None:
        super().__init__()
        hidden = channels if hidden is None else hidden
        check_positive(channels=channels, hidden=hidden)
        self.channels = channels
        self.linear = nn.Linear(channels, hidden)
        self.project = nn.Linear(hidden, channels, bias=False)
        self.memory = DilatedDenseMemory(channels, lorder, depth)

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()
        self.project.reset_parameters()
        self.memory.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.channels, "DilatedFSMN")
        p = self.project(F.relu(self.linear(x)))
        return x + self.memory(p.transpose(1, 2)).transpose(1, 2)


class GatedConvUnit(nn.Module):
    r"""Gated convolutional unit around a dilated FSMN (MossFormer2's recurrent cell).

    .. math::
        y = \mathrm{FFConvM}_v(x) \odot \mathrm{FSMN}(\mathrm{FFConvM}_u(x)) + x

    Args:
        channels (int): width :math:`C` (input, gates and output).
        lorder (int): memory order. (default: ``20``)
        depth (int): dilated memory layers. (default: ``2``)
        dropout (float): dropout of the two feed-forward branches. (default: ``0.1``)

    Shapes:
        - input / output: :math:`(B, T, C)`
    """

    def __init__(
        self, channels: int, lorder: int = 20, depth: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_positive(channels=channels)
        self.channels = channels
        self.to_u = FFConvM(channels, channels, dropout=dropout)
        self.to_v = FFConvM(channels, channels, dropout=dropout)
        self.fsmn = DilatedFSMN(channels, channels, lorder, depth)

    def reset_parameters(self) -> None:
        for m in (self.to_u, self.to_v, self.fsmn):
            m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.channels, "GatedConvUnit")
        return self.to_v(x) * self.fsmn(self.to_u(x)) + x


class DilatedFSMNBlock(nn.Module):
    r"""MossFormer2's recurrent module: bottleneck, gated dilated FSMN, projection, residual.

    .. math::
        h = \mathrm{CLN}(\mathrm{PReLU}(W_1 x)), \qquad
        y = x + W_2\,\mathrm{CLN}(\mathrm{GCU}(h))

    with pointwise :math:`W_1: C \to C_{in}`, :math:`W_2: C_{in} \to C` (both with bias) and
    channel layer norms (CLN).

    Args:
        channels (int): model width :math:`C`.
        inner_channels (int): bottleneck width :math:`C_{in}`. (default: ``256``)
        lorder (int): memory order. (default: ``20``)
        depth (int): dilated memory layers. (default: ``2``)
        dropout (float): dropout inside the gated unit. (default: ``0.1``)

    Shapes:
        - input / output: :math:`(B, T, C)`
    """

    def __init__(
        self,
        channels: int,
        inner_channels: int = 256,
        lorder: int = 20,
        depth: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive(channels=channels, inner_channels=inner_channels)
        self.channels = channels
        self.conv1 = nn.Conv1d(channels, inner_channels, 1)
        self.act = nn.PReLU()
        self.norm1 = ChannelLayerNorm(inner_channels)
        self.gcu = GatedConvUnit(inner_channels, lorder, depth, dropout)
        self.norm2 = ChannelLayerNorm(inner_channels)
        self.conv2 = nn.Conv1d(inner_channels, channels, 1)

    def reset_parameters(self) -> None:
        for m in (self.conv1, self.act, self.norm1, self.gcu, self.norm2, self.conv2):
            m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_sequence(x, self.channels, "DilatedFSMNBlock")
        h = self.norm1(self.act(self.conv1(x.transpose(1, 2))))
        h = self.norm2(self.gcu(h.transpose(1, 2)).transpose(1, 2))
        return x + self.conv2(h).transpose(1, 2)
