"""Multi-dilated convolution and the D2 / D3 blocks of D3Net, real or pseudo-complex.

`Densely connected multidilated convolutional networks for dense prediction tasks
<https://arxiv.org/abs/2011.11844>`_ (Takahashi & Mitsufuji, CVPR 2021), in the pseudo-complex
form of `End-to-End Complex-Valued Multidilated Convolutional Neural Network for Joint Acoustic
Echo Cancellation and Noise Suppression <https://arxiv.org/abs/2110.00745>`_ (Watcharasupat
et al., ICASSP 2022).

Inside a densely connected block the input of a layer is a concatenation of skip slices (the
block input and each earlier layer's output). A multi-dilated convolution gives slice
:math:`j` its own dilation :math:`2^j`, so the receptive field grows exponentially with depth
without pooling, and no slice is ever seen through a dilation too coarse for its own
resolution (the aliasing D3Net avoids). Real maps are ``(B, C, H, W)``; pseudo-complex maps
(``complex=True``) are ``(B, 2, C, H, W)`` (see :mod:`graphkit.extras.layers.complex`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras.layers.complex import ComplexConv2d, check_pseudo_complex

__all__ = ["D2Block", "D3Block", "MultiDilatedConv2d"]


def _channel_dim(is_complex: bool) -> int:
    return 2 if is_complex else 1


def _check_input(x: Tensor, channels: int, is_complex: bool, who: str) -> None:
    if is_complex:
        check_pseudo_complex(x, channels, who)
    elif x.dim() != 4 or x.size(1) != channels:
        raise ValueError(
            f"{who} expects a (B, {channels}, H, W) tensor, got shape {tuple(x.shape)}"
        )


class MultiDilatedConv2d(nn.Module):
    r"""A convolution whose input slices each get their own dilation, summed:

    .. math::
        y = \sum_{j} W_j *_{d_j} x_j, \qquad x = [x_0, x_1, \dots], \quad d_j = 2^j

    Args:
        sections (sequence of int): channel widths of the slices :math:`x_j`, in input order.
        out_channels (int): output channels.
        kernel_size (int): odd kernel, 'same' padding. (default: ``3``)
        dilations (sequence of int, optional): one per slice; ``None`` gives
            :math:`1, 2, 4, \dots`. (default: ``None``)
        complex (bool): pseudo-complex maps and :class:`ComplexConv2d` slices.
            (default: ``False``)
        bias (bool): one bias, on the first slice's convolution. (default: ``True``)

    Shapes:
        - input: :math:`(B, \sum_j C_j, H, W)` (complex: :math:`(B, 2, \sum_j C_j, H, W)`)
        - output: :math:`(B, C_{out}, H, W)` (complex: :math:`(B, 2, C_{out}, H, W)`)
    """

    def __init__(
        self,
        sections: Sequence[int],
        out_channels: int,
        kernel_size: int = 3,
        dilations: Sequence[int] | None = None,
        complex: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        sections = [int(s) for s in sections]
        if not sections:
            raise ValueError("sections must list at least one slice width")
        for j, s in enumerate(sections):
            check_positive(**{f"sections[{j}]": s})
        check_positive(out_channels=out_channels, kernel_size=kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        dilations = [2**j for j in range(len(sections))] if dilations is None else list(dilations)
        if len(dilations) != len(sections):
            raise ValueError(
                f"need one dilation per section, got {len(dilations)} for {len(sections)}"
            )
        for j, d in enumerate(dilations):
            check_positive(**{f"dilations[{j}]": d})
        self.sections, self.dilations, self.complex = sections, dilations, complex
        self.in_channels, self.out_channels = sum(sections), out_channels
        convs = []
        for j, (s, d) in enumerate(zip(sections, dilations, strict=True)):
            with_bias = bias and j == 0  # one bias for the sum
            if complex:
                convs.append(ComplexConv2d(s, out_channels, kernel_size, d, bias=with_bias))
            else:
                pad = d * (kernel_size - 1) // 2
                convs.append(
                    nn.Conv2d(s, out_channels, kernel_size, padding=pad, dilation=d,
                              bias=with_bias)
                )
        self.convs = nn.ModuleList(convs)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, self.complex, "MultiDilatedConv2d")
        slices = x.split(self.sections, dim=_channel_dim(self.complex))
        out = self.convs[0](slices[0])
        for conv, part in zip(self.convs[1:], slices[1:], strict=True):
            out = out + conv(part)
        return out

    def extra_repr(self) -> str:
        return f"sections={self.sections}, dilations={self.dilations}, complex={self.complex}"


class _NormAct(nn.Module):
    """Batch norm and ReLU; on pseudo-complex maps each part is normalised on its own."""

    def __init__(self, channels: int, is_complex: bool) -> None:
        super().__init__()
        self.is_complex = is_complex
        self.norm = nn.BatchNorm2d(2 * channels if is_complex else channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.is_complex:
            return torch.relu(self.norm(x.flatten(1, 2))).unflatten(1, (2, -1))
        return torch.relu(self.norm(x))


class D2Block(nn.Module):
    r"""D2 block: densely connected layers of norm, ReLU and a multi-dilated convolution.

    Layer :math:`i` reads the block input and the outputs of layers :math:`0..i-1`, slice
    :math:`j` of which is convolved with dilation :math:`2^j`; it adds ``growth`` channels.
    The block returns the concatenation of its layers' outputs.

    Args:
        in_channels (int): input channels (complex channels when ``complex``).
        growth (int): channels each layer adds.
        num_layers (int): layers :math:`L`; dilations reach :math:`2^{L-1}`.
        kernel_size (int): odd kernel. (default: ``3``)
        complex (bool): pseudo-complex maps. (default: ``False``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`; output: :math:`(B, L \cdot growth, H, W)`
          (complex: with the extra dimension of size 2 after ``B``)
    """

    def __init__(
        self,
        in_channels: int,
        growth: int,
        num_layers: int,
        kernel_size: int = 3,
        complex: bool = False,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, growth=growth, num_layers=num_layers)
        self.in_channels, self.complex = in_channels, complex
        self.out_channels = growth * num_layers
        self.norms = nn.ModuleList()
        self.convs = nn.ModuleList()
        for i in range(num_layers):
            sections = [in_channels] + [growth] * i
            self.norms.append(_NormAct(sum(sections), complex))
            self.convs.append(MultiDilatedConv2d(sections, growth, kernel_size, complex=complex))

    def reset_parameters(self) -> None:
        for norm, conv in zip(self.norms, self.convs, strict=True):
            norm.norm.reset_parameters()
            conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, self.complex, "D2Block")
        dim = _channel_dim(self.complex)
        features = [x]
        for norm, conv in zip(self.norms, self.convs, strict=True):
            features.append(conv(norm(torch.cat(features, dim=dim))))
        return torch.cat(features[1:], dim=dim)


class D3Block(nn.Module):
    r"""D3 block: D2 blocks, densely connected (each reads the input and all earlier outputs).

    .. math::
        h_0 = x, \qquad h_m = \mathrm{D2}_m([h_0, h_1, \dots, h_{m-1}]), \qquad
        y = [h_1, \dots, h_M]

    Args:
        in_channels (int): input channels.
        growth (int): channels each D2 layer adds.
        num_layers (int): layers per D2 block.
        num_blocks (int): D2 blocks :math:`M`.
        kernel_size (int): odd kernel. (default: ``3``)
        complex (bool): pseudo-complex maps. (default: ``False``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`; output: :math:`(B, M L \cdot growth, H, W)`
          (complex: with the extra dimension of size 2 after ``B``)
    """

    def __init__(
        self,
        in_channels: int,
        growth: int,
        num_layers: int,
        num_blocks: int,
        kernel_size: int = 3,
        complex: bool = False,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, num_blocks=num_blocks)
        self.in_channels, self.complex = in_channels, complex
        width = growth * num_layers
        self.blocks = nn.ModuleList(
            D2Block(in_channels + m * width, growth, num_layers, kernel_size, complex)
            for m in range(num_blocks)
        )
        self.out_channels = width * num_blocks

    def reset_parameters(self) -> None:
        for block in self.blocks:
            block.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, self.complex, "D3Block")
        dim = _channel_dim(self.complex)
        features = [x]
        for block in self.blocks:
            features.append(block(torch.cat(features, dim=dim)))
        return torch.cat(features[1:], dim=dim)
