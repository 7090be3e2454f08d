"""Parameterized hypercomplex layers: PHM linear and PHC convolutions.

`PHNNs: Lightweight Neural Networks via Parameterized Hypercomplex Convolutions
<https://arxiv.org/abs/2110.04176>`_ (Grassucci, Zhang, Comminiello, IEEE TNNLS 2022), building
on the PHM layer of `Beyond Fully-Connected Layers with Quaternions
<https://arxiv.org/abs/2102.08597>`_. Official code: ``eleGAN23/HyperNets``.

A PH layer never stores its dense weight; it builds it as a sum of Kronecker products

.. math::
    \\mathbf{W} = \\sum_{i=1}^{n} \\mathbf{A}_i \\otimes \\mathbf{F}_i,
    \\qquad \\mathbf{A}_i \\in \\mathbb{R}^{n \\times n},\\;
    \\mathbf{F}_i \\in \\mathbb{R}^{\\frac{out}{n} \\times \\frac{in}{n} \\times k \\cdots k},

where the :math:`\\mathbf{A}_i` learn the algebra's multiplication rules (for :math:`n = 4`
the Hamilton matrices of :func:`hamilton_matrices` give a quaternion layer) and the
:math:`\\mathbf{F}_i` are the filters. Block :math:`(r, c)` of :math:`\\mathbf{W}` is
:math:`\\sum_i A_i[r, c]\\, \\mathbf{F}_i`, so a layer holds :math:`n^3 + out \\cdot in \\cdot
k^d / n` weights (plus ``out`` biases) instead of :math:`out \\cdot in \\cdot k^d`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.registry import register_model

__all__ = [
    "PHConv1d",
    "PHConv2d",
    "PHConv3d",
    "PHLinear",
    "hamilton_matrices",
    "kronecker_weight",
]

_PAPER = "PHNNs: Lightweight Neural Networks via Parameterized Hypercomplex Convolutions"


def kronecker_weight(A: Tensor, F_: Tensor) -> Tensor:
    """The dense weight :math:`\\sum_i A_i \\otimes F_i` (Kronecker over the first two axes).

    Args:
        A: ``(n, n, n)``, the ``n`` algebra matrices.
        F_: ``(n, out/n, in/n, *kernel)``, the ``n`` filter banks.

    Returns:
        ``(out, in, *kernel)`` with ``W[r*o + p, c*i + q] = sum_l A[l, r, c] * F_[l, p, q]``.
    """
    if A.dim() != 3 or A.shape[0] != A.shape[1] or A.shape[1] != A.shape[2]:
        raise ValueError(f"A must have shape (n, n, n), got {tuple(A.shape)}")
    n = A.shape[0]
    if F_.dim() < 3 or F_.shape[0] != n:
        raise ValueError(f"F must have shape (n={n}, out/n, in/n, *kernel), got {tuple(F_.shape)}")
    o, i, kernel = F_.shape[1], F_.shape[2], F_.shape[3:]
    # (n_r, o, n_c, i, *kernel): row block r, column block c; one contraction over l
    w = torch.einsum("lrc,lpq...->rpcq...", A, F_)
    return w.reshape(n * o, n * i, *kernel)


def hamilton_matrices(
    device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """The four ``4 x 4`` matrices that make a PH layer with ``n = 4`` a quaternion layer.

    With the weight ``r + x i + y j + z k`` and the input split into four components, the
    Hamilton product gives the block matrix ``[[r,-x,-y,-z], [x,r,-z,y], [y,z,r,-x],
    [z,-y,x,r]]``; entry ``l`` of the result is the sign pattern of component ``l``.

    Returns:
        ``(4, 4, 4)`` tensor, for ``r``, ``x``, ``y``, ``z`` in that order.
    """
    r = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    x = [[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, -1], [0, 0, 1, 0]]
    y = [[0, 0, -1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, -1, 0, 0]]
    z = [[0, 0, 0, -1], [0, 0, -1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]
    return torch.tensor([r, x, y, z], device=device, dtype=dtype or torch.get_default_dtype())


def _check_divisible(n: int, in_features: int, out_features: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if in_features < 1 or out_features < 1:
        raise ValueError(
            f"in and out sizes must be positive, got in={in_features}, out={out_features}"
        )
    if in_features % n or out_features % n:
        raise ValueError(
            f"in ({in_features}) and out ({out_features}) sizes must both be divisible by n={n}"
        )


class _PHBase(nn.Module):
    """Holds ``A`` (n, n, n), ``F`` (n, out/n, in/n, *kernel) and the optional bias."""

    def __init__(
        self, n: int, in_features: int, out_features: int, kernel: tuple[int, ...], bias: bool
    ) -> None:
        super().__init__()
        _check_divisible(n, in_features, out_features)
        if any(k < 1 for k in kernel):
            raise ValueError(f"kernel_size must be positive, got {kernel}")
        self.n = n
        self.A = nn.Parameter(torch.empty(n, n, n))
        self.F = nn.Parameter(torch.empty(n, out_features // n, in_features // n, *kernel))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self._fan_in = in_features * math.prod(kernel)

    def reset_parameters(self) -> None:
        # Xavier-uniform on both factors as in the official code; bias as torch's Linear/Conv
        nn.init.xavier_uniform_(self.A)
        nn.init.xavier_uniform_(self.F)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self._fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def weight(self) -> Tensor:
        """The dense weight :math:`\\sum_i A_i \\otimes F_i`, rebuilt on every access."""
        return kronecker_weight(self.A, self.F)


class PHLinear(_PHBase):
    """Parameterized hypercomplex multiplication (PHM) layer, ``y = x W^T + b``.

    ``W = sum_i A_i kron F_i`` (see the module docstring); ``n**3 + in*out/n`` weights.

    Args:
        in_features: input size, divisible by ``n``.
        out_features: output size, divisible by ``n``.
        n: hypercomplex dimension (number of Kronecker terms) (default: ``4``).
        bias: add a learned bias of size ``out_features`` (default: ``True``).

    Shapes:
        input ``(*, in_features)``, output ``(*, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, n: int = 4, bias: bool = True) -> None:
        super().__init__(n, in_features, out_features, (), bias)
        self.in_features = in_features
        self.out_features = out_features
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"PHLinear expects input (*, {self.in_features}), got {tuple(x.shape)}"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, n={self.n}, "
            f"bias={self.bias is not None}"
        )


def _tuple(value: int | Sequence[int], dims: int, name: str) -> tuple[int, ...]:
    out = (value,) * dims if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != dims:
        raise ValueError(f"{name} must be an int or {dims} ints, got {value!r}")
    return out


class _PHConvNd(_PHBase):
    _dims: int = 0
    _conv = staticmethod(F.conv2d)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        n: int = 4,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
    ) -> None:
        kernel = _tuple(kernel_size, self._dims, "kernel_size")
        super().__init__(n, in_channels, out_channels, kernel, bias)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel
        self.stride = _tuple(stride, self._dims, "stride")
        self.padding = (
            padding if isinstance(padding, str) else _tuple(padding, self._dims, "padding")
        )
        self.dilation = _tuple(dilation, self._dims, "dilation")
        if min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"stride and dilation must be positive, got {stride}, {dilation}")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}")
        elif min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (self._dims + 1, self._dims + 2) or x.shape[-self._dims - 1] != (
            self.in_channels
        ):
            raise ValueError(
                f"{type(self).__name__} expects input (N, {self.in_channels}, "
                f"{', '.join('*' * self._dims)}), got {tuple(x.shape)}"
            )
        return type(self)._conv(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"n={self.n}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, bias={self.bias is not None}"
        )


class PHConv1d(_PHConvNd):
    """Parameterized hypercomplex 1-D convolution (PHC); see :class:`PHConv2d` for the args.

    Shapes:
        input ``(N, in_channels, L)``, output ``(N, out_channels, L_out)``.
    """

    _dims = 1
    _conv = staticmethod(F.conv1d)


class PHConv2d(_PHConvNd):
    """Parameterized hypercomplex 2-D convolution (PHC).

    The kernel is ``W = sum_i A_i kron F_i`` (module docstring), then ``F.conv2d``; it holds
    ``n**3 + out*in*kh*kw/n`` weights. ``n = 3`` serves RGB input without a padding channel.

    Args:
        in_channels: input channels, divisible by ``n``.
        out_channels: output channels, divisible by ``n``.
        kernel_size: int or pair.
        n: hypercomplex dimension (default: ``4``).
        stride: as :class:`torch.nn.Conv2d` (default: ``1``).
        padding: as :class:`torch.nn.Conv2d`, ints or ``"same"``/``"valid"`` (default: ``0``).
        dilation: as :class:`torch.nn.Conv2d` (default: ``1``).
        bias: add a learned bias (default: ``True``). (The official layer creates a bias
            but never adds it.)

    Shapes:
        input ``(N, in_channels, H, W)``, output ``(N, out_channels, H_out, W_out)``.
    """

    _dims = 2
    _conv = staticmethod(F.conv2d)


class PHConv3d(_PHConvNd):
    """Parameterized hypercomplex 3-D convolution (PHC); see :class:`PHConv2d` for the args.

    Shapes:
        input ``(N, in_channels, D, H, W)``, output ``(N, out_channels, D_out, H_out, W_out)``.
    """

    _dims = 3
    _conv = staticmethod(F.conv3d)


register_model("phconv2d", family="block", paper=_PAPER)(PHConv2d)
