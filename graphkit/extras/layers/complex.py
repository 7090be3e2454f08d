"""Pseudo-complex convolution: complex arithmetic carried by real tensors (real, imaginary).

From `End-to-End Complex-Valued Multidilated Convolutional Neural Network for Joint Acoustic Echo
Cancellation and Noise Suppression <https://arxiv.org/abs/2110.00745>`_ (Watcharasupat et al.,
ICASSP 2022), after `Deep Complex Networks <https://arxiv.org/abs/1705.09792>`_.

A pseudo-complex feature map is a real tensor of shape ``(B, 2, C, H, W)``: index 0 of
dimension 1 holds the real parts, index 1 the imaginary parts. Keeping the two parts in their
own dimension lets dense connections concatenate feature maps along ``C`` without mixing them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive

__all__ = [
    "ComplexConv2d",
    "apply_complex_mask",
    "bounded_complex_mask",
    "check_pseudo_complex",
    "from_pseudo_complex",
    "to_pseudo_complex",
]


def check_pseudo_complex(x: Tensor, channels: int | None, who: str) -> None:
    """``x`` is a ``(B, 2, C, H, W)`` pseudo-complex map (with ``C == channels`` when given)."""
    if x.dim() != 5 or x.size(1) != 2:
        raise ValueError(
            f"{who} expects a pseudo-complex (B, 2, C, H, W) tensor, got shape {tuple(x.shape)}"
        )
    if channels is not None and x.size(2) != channels:
        raise ValueError(f"{who} expects {channels} complex channels, got {x.size(2)}")


def to_pseudo_complex(z: Tensor) -> Tensor:
    """A complex ``(B, C, H, W)`` tensor as a real ``(B, 2, C, H, W)`` one."""
    if not z.is_complex():
        raise ValueError(f"to_pseudo_complex expects a complex tensor, got {z.dtype}")
    return torch.stack([z.real, z.imag], dim=1)


def from_pseudo_complex(x: Tensor) -> Tensor:
    """A real ``(B, 2, C, H, W)`` tensor as a complex ``(B, C, H, W)`` one."""
    check_pseudo_complex(x, None, "from_pseudo_complex")
    return torch.complex(x[:, 0], x[:, 1])


class ComplexConv2d(nn.Module):
    r"""A complex 2-D convolution on pseudo-complex maps.

    With complex weight :math:`W = W_r + i W_i`, bias :math:`b = b_r + i b_i` and input
    :math:`x = x_r + i x_i`,

    .. math::
        W * x + b = (W_r * x_r - W_i * x_i + b_r) + i\,(W_r * x_i + W_i * x_r + b_i),

    computed as one real convolution of the stacked input with the block weight
    :math:`\begin{pmatrix} W_r & -W_i \\ W_i & W_r \end{pmatrix}`.

    Args:
        in_channels (int): complex input channels.
        out_channels (int): complex output channels.
        kernel_size (int or tuple): kernel.
        dilation (int or tuple): dilation. (default: ``1``)
        padding (int, tuple or "same"): zero padding. (default: ``"same"``)
        bias (bool): learn a complex bias. (default: ``True``)

    Shapes:
        - input: :math:`(B, 2, C_{in}, H, W)`; output: :math:`(B, 2, C_{out}, H', W')`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        dilation: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = "same",
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels)
        self.kernel_size = nn.modules.utils._pair(kernel_size)
        self.dilation = nn.modules.utils._pair(dilation)
        check_positive(kernel_size=self.kernel_size[0], kernel_size_w=self.kernel_size[1])
        check_positive(dilation=self.dilation[0], dilation_w=self.dilation[1])
        if padding == "same":
            if any(k % 2 == 0 for k in self.kernel_size):
                raise ValueError(f"'same' padding needs odd kernels, got {self.kernel_size}")
            padding = tuple(d * (k - 1) // 2 for k, d in zip(self.kernel_size, self.dilation))
        elif isinstance(padding, str):
            raise ValueError(f"padding must be an int, a pair or 'same', got {padding!r}")
        self.padding = nn.modules.utils._pair(padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight_real = nn.Parameter(torch.empty(shape))
        self.weight_imag = nn.Parameter(torch.empty(shape))
        if bias:
            self.bias_real = nn.Parameter(torch.empty(out_channels))
            self.bias_imag = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias_real", None)
            self.register_parameter("bias_imag", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # each part gets half the variance of a real layer, so |W|^2 matches a real init
        fan_in = self.in_channels * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(2 * fan_in)
        for p in (self.weight_real, self.weight_imag, self.bias_real, self.bias_imag):
            if p is not None:
                nn.init.uniform_(p, -bound * math.sqrt(3), bound * math.sqrt(3))

    def forward(self, x: Tensor) -> Tensor:
        check_pseudo_complex(x, self.in_channels, "ComplexConv2d")
        b, _, c, h, w = x.shape
        wr, wi = self.weight_real, self.weight_imag
        weight = torch.cat([torch.cat([wr, -wi], 1), torch.cat([wi, wr], 1)], 0)
        bias = None
        if self.bias_real is not None:
            bias = torch.cat([self.bias_real, self.bias_imag])
        y = F.conv2d(x.reshape(b, 2 * c, h, w), weight, bias, 1, self.padding, self.dilation)
        return y.unflatten(1, (2, self.out_channels))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, bias={self.bias_real is not None}"
        )


def bounded_complex_mask(x: Tensor, eps: float = 1e-8) -> Tensor:
    r"""A pseudo-complex mask with magnitude squashed into :math:`[0, 1)`, phase kept:
    :math:`M = \tanh(|z|)\, z / |z|`.

    Shapes:
        - input / output: :math:`(B, 2, C, H, W)`
    """
    check_pseudo_complex(x, None, "bounded_complex_mask")
    mag = torch.sqrt(x.pow(2).sum(1, keepdim=True) + eps)
    return x * (torch.tanh(mag) / mag)


def apply_complex_mask(mask: Tensor, spec: Tensor) -> Tensor:
    r"""Multiply a pseudo-complex mask into a pseudo-complex spectrogram:
    :math:`(m_r s_r - m_i s_i) + i (m_r s_i + m_i s_r)`.

    Shapes:
        - mask, spec: :math:`(B, 2, C, F, T)` (broadcastable); output: the broadcast shape
    """
    check_pseudo_complex(mask, None, "apply_complex_mask")
    check_pseudo_complex(spec, None, "apply_complex_mask")
    try:
        torch.broadcast_shapes(mask.shape, spec.shape)
    except RuntimeError:
        raise ValueError(
            f"apply_complex_mask: mask {tuple(mask.shape)} does not broadcast against spec "
            f"{tuple(spec.shape)}"
        ) from None
    mr, mi = mask[:, 0], mask[:, 1]
    sr, si = spec[:, 0], spec[:, 1]
    return torch.stack([mr * sr - mi * si, mr * si + mi * sr], dim=1)
