"""DenseShift: zero-free low-bit power-of-two (shift) weights.

`DenseShift: Towards Accurate and Efficient Low-Bit Power-of-Two Quantization
<https://arxiv.org/abs/2208.09708>`_ (Li et al., ICCV 2023).

Every effective weight is a signed power of two and never zero:

.. math::
    w_q = s \\cdot 2^{p}, \\qquad s \\in \\{-1, +1\\}, \\qquad
    p \\in \\{0, -1, \\dots, -(2^{b-1} - 1)\\},

one sign bit and :math:`b - 1` exponent bits, so :math:`2^b` levels (a zero-including shift
format spends a code on 0 and has :math:`2^b - 1`). Sign-scale decomposition: the layer trains
two latent tensors, one for the sign and one for the scale,

.. math::
    s = \\mathrm{sign}(\\theta_s) \\;(\\mathrm{sign}(0) = +1), \\qquad
    p = \\mathrm{clip}\\big(\\mathrm{round}(\\log_2 |\\theta_p|),\\, -(2^{b-1}-1),\\, 0\\big),

each quantiser passing its gradient straight through (identity), so
:math:`\\partial L / \\partial \\theta_s = g \\cdot 2^p` and
:math:`\\partial L / \\partial \\theta_p = g \\cdot s \\cdot \\mathrm{sign}(\\theta_p)` for the
gradient :math:`g` at :math:`w_q`: a sign can flip however small its weight, which is what
keeps DenseShift weights from freezing.

At inference a product :math:`x \\cdot s 2^p` needs no multiplier: adding :math:`p` to the
exponent field of the float :math:`x` and flipping its sign bit is exact;
:func:`shift_linear_reference` computes a linear layer that way, to check it against the float
path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.registry import register_model

__all__ = [
    "DenseShiftConv2d",
    "DenseShiftLinear",
    "dense_shift_quantize",
    "low_variance_init_",
    "shift_encoding",
    "shift_linear_reference",
]

_PAPER = "DenseShift: Towards Accurate and Efficient Low-Bit Power-of-Two Quantization"
_MAX_BITS = 7  # p >= -63: every level, and x * 2**p for ordinary x, stays a normal float32


def _check_bits(bits: int) -> int:
    if not isinstance(bits, int) or not 1 <= bits <= _MAX_BITS:
        raise ValueError(f"bits must be an integer in [1, {_MAX_BITS}], got {bits!r}")
    return -(2 ** (bits - 1) - 1)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


class _Pow2STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, magnitude: Tensor, p_min: int) -> Tensor:
        return torch.exp2(_exponent(magnitude, p_min).to(magnitude.dtype))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def _exponent(magnitude: Tensor, p_min: int) -> Tensor:
    # log2(0) = -inf clamps to p_min: a zero latent still gives the smallest non-zero level
    return torch.log2(magnitude).round().clamp(p_min, 0)


def _check_latents(sign_latent: Tensor, scale_latent: Tensor) -> None:
    if sign_latent.shape != scale_latent.shape:
        raise ValueError(
            f"sign and scale latents must have one shape, got {tuple(sign_latent.shape)} "
            f"and {tuple(scale_latent.shape)}"
        )
    if torch.isnan(sign_latent).any() or torch.isnan(scale_latent).any():
        raise ValueError("DenseShift latent weights contain NaN")


def dense_shift_quantize(sign_latent: Tensor, scale_latent: Tensor, bits: int = 3) -> Tensor:
    """The DenseShift weight ``s * 2**p`` with straight-through gradients (module docstring).

    Args:
        sign_latent: latent sign tensor; ``s = +1`` where it is ``>= 0``, else ``-1``.
        scale_latent: latent scale tensor of the same shape; ``p`` rounds ``log2 |.|``.
        bits: weight bits ``b``, in ``[1, 7]``: ``p`` lies in ``[-(2**(b-1) - 1), 0]``
            (default: ``3``).

    Returns:
        a tensor of the latents' shape whose every entry is ``+-2**p``, never 0.
    """
    p_min = _check_bits(bits)
    _check_latents(sign_latent, scale_latent)
    return _SignSTE.apply(sign_latent) * _Pow2STE.apply(scale_latent.abs(), p_min)


@torch.no_grad()
def shift_encoding(
    sign_latent: Tensor, scale_latent: Tensor, bits: int = 3
) -> tuple[Tensor, Tensor]:
    """The integer form of the weights: signs in ``{-1, +1}`` and exponents ``p`` (``int8``)."""
    p_min = _check_bits(bits)
    _check_latents(sign_latent, scale_latent)
    sign = torch.where(sign_latent >= 0, 1, -1).to(torch.int8)
    return sign, _exponent(scale_latent.abs(), p_min).to(torch.int8)


_FLOAT_BITS = {  # dtype: (integer view, mantissa bits, exponent mask, sign bit)
    torch.float32: (torch.int32, 23, 0x7F800000, -(2**31)),
    torch.float64: (torch.int64, 52, 0x7FF0000000000000, -(2**63)),
}


@torch.no_grad()
def shift_linear_reference(
    x: Tensor, sign: Tensor, exponent: Tensor, bias: Tensor | None = None
) -> Tensor:
    """A linear layer whose products use integer additions only: ``x * s * 2**p`` is ``x``
    with ``p`` added to its exponent field and its sign bit flipped where ``s = -1``.

    A slow reference (it materialises every product) for checking the float path.

    Args:
        x: ``(B, in)`` float32 or float64, finite, without subnormals.
        sign: ``(out, in)`` integers in ``{-1, +1}``.
        exponent: ``(out, in)`` integers ``p <= 0``.
        bias: optional ``(out,)``.

    Returns:
        ``(B, out)``, the sum over ``in`` of the exact products (plus ``bias``).
    """
    if x.dtype not in _FLOAT_BITS:
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")
    if x.dim() != 2 or sign.dim() != 2 or sign.shape != exponent.shape or (
        sign.shape[1] != x.shape[1]
    ):
        raise ValueError(
            f"expected x (B, in) and sign, exponent (out, in), got {tuple(x.shape)}, "
            f"{tuple(sign.shape)}, {tuple(exponent.shape)}"
        )
    if bias is not None and bias.shape != sign.shape[:1]:
        raise ValueError(f"bias must be ({sign.shape[0]},), got {tuple(bias.shape)}")
    if exponent.is_floating_point() and not bool((exponent == exponent.round()).all()):
        raise ValueError("exponent entries must be integers (a fractional shift has no bits)")
    if not bool(((sign == 1) | (sign == -1)).all()):
        raise ValueError("sign entries must be -1 or +1 (DenseShift weights are never zero)")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite (inf or NaN has no exponent to shift)")
    itype, mant, exp_mask, sign_bit = _FLOAT_BITS[x.dtype]
    bits = x.contiguous().view(itype).unsqueeze(1)  # (B, 1, in)
    field = (bits & exp_mask) >> mant  # biased exponent of x
    zero = (bits & ~sign_bit) == 0  # +-0 stays +-0 whatever the shift
    if bool(((field == 0) & ~zero).any()):
        raise ValueError("x contains subnormal values; the exponent trick needs normal floats")
    p = exponent.to(itype).unsqueeze(0)  # (1, out, in)
    if bool(((field + p <= 0) & ~zero).any()):
        raise ValueError("a product x * 2**p would underflow to a subnormal")
    flip = torch.where(sign.unsqueeze(0) < 0, sign_bit, 0).to(itype)  # XOR mask of the sign
    shifted = torch.where(zero, bits, bits + (p << mant)) ^ flip
    out = shifted.view(x.dtype).sum(dim=-1)
    return out if bias is None else out + bias


def low_variance_init_(layer: DenseShiftLinear | DenseShiftConv2d, spread: float = 1e-3) -> None:
    """Low-variance random initialisation of a DenseShift layer, for transfer learning.

    Every weight starts at the smallest magnitude ``2**-(2**(b-1) - 1)`` with a random sign:
    the least variance a zero-free weight set can have. Sign latents are drawn from
    ``U(-spread, spread)`` so that early gradient steps can still flip them.

    Args:
        layer: a :class:`DenseShiftLinear` or :class:`DenseShiftConv2d`.
        spread: half-width of the sign latents' uniform draw (default: ``1e-3``).
    """
    if not isinstance(layer, _DenseShiftMixin):
        raise TypeError(f"expected a DenseShift layer, got {type(layer).__name__}")
    if not spread > 0:
        raise ValueError(f"spread must be positive, got {spread}")
    with torch.no_grad():
        layer.sign_latent.uniform_(-spread, spread)
        layer.scale_latent.fill_(2.0**layer.p_min)
        if layer.bias is not None:
            layer.bias.zero_()


class _DenseShiftMixin(nn.Module):
    """Latents ``sign_latent`` and ``scale_latent`` of one weight shape, and the bias."""

    def _init_latents(
        self, shape: tuple[int, ...], out_features: int, bias: bool, bits: int
    ) -> None:
        self.p_min = _check_bits(bits)
        self.bits = bits
        self.sign_latent = nn.Parameter(torch.empty(shape))
        self.scale_latent = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None

    def reset_parameters(self) -> None:
        # torch's default layer init, then split into sign and magnitude: the quantised weight
        # starts as that init rounded to the nearest level in range
        w = torch.empty_like(self.sign_latent)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        with torch.no_grad():
            self.sign_latent.copy_(w)
            self.scale_latent.copy_(w.abs())
            if self.bias is not None:
                bound = 1.0 / math.sqrt(w[0].numel())
                self.bias.uniform_(-bound, bound)

    @property
    def weight(self) -> Tensor:
        """The quantised weight ``s * 2**p`` (differentiable through the STEs)."""
        return dense_shift_quantize(self.sign_latent, self.scale_latent, self.bits)

    def shift_encoding(self) -> tuple[Tensor, Tensor]:
        """Signs (``int8``, +-1) and exponents (``int8``, ``p_min..0``) of the weights."""
        return shift_encoding(self.sign_latent, self.scale_latent, self.bits)


@register_model("denseshift", family="quantisation", paper=_PAPER)
class DenseShiftLinear(_DenseShiftMixin):
    """Linear layer with DenseShift weights, ``y = x W_q^T + b``.

    Args:
        in_features: input size.
        out_features: output size.
        bias: add a float bias (default: ``True``).
        bits: weight bits ``b`` in ``[1, 7]``; ``2**b`` levels (default: ``3``).

    Shapes:
        input ``(*, in_features)``, output ``(*, out_features)``.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, bits: int = 3
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"sizes must be positive, got {in_features}, {out_features}")
        self.in_features, self.out_features = in_features, out_features
        self._init_latents((out_features, in_features), out_features, bias, bits)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"DenseShiftLinear expects input (*, {self.in_features}), got {tuple(x.shape)}"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bits={self.bits}, bias={self.bias is not None}"
        )


class DenseShiftConv2d(_DenseShiftMixin):
    """2-D convolution with DenseShift weights.

    Args:
        in_channels: input channels, divisible by ``groups``.
        out_channels: output channels, divisible by ``groups``.
        kernel_size: int or pair.
        stride: as :class:`torch.nn.Conv2d` (default: ``1``).
        padding: as :class:`torch.nn.Conv2d` (default: ``0``).
        dilation: as :class:`torch.nn.Conv2d` (default: ``1``).
        groups: as :class:`torch.nn.Conv2d` (default: ``1``).
        bias: add a float bias (default: ``True``).
        bits: weight bits ``b`` in ``[1, 7]`` (default: ``3``).

    Shapes:
        input ``(N, in_channels, H, W)``, output ``(N, out_channels, H_out, W_out)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        bits: int = 3,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or groups < 1:
            raise ValueError(
                f"channels and groups must be positive, got {in_channels}, {out_channels}, "
                f"groups={groups}"
            )
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(kernel) != 2 or min(kernel) < 1:
            raise ValueError(f"kernel_size must be a positive int or pair, got {kernel_size!r}")
        pairs = {"stride": stride, "dilation": dilation}
        for name, value in pairs.items():
            values = (value,) if isinstance(value, int) else tuple(value)
            if len(values) not in (1, 2) or min(values) < 1:
                raise ValueError(f"{name} must be a positive int or pair, got {value!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}")
        elif min((padding,) if isinstance(padding, int) else tuple(padding)) < 0:
            raise ValueError(f"padding must be >= 0, got {padding!r}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        shape = (out_channels, in_channels // groups, *kernel)
        self._init_latents(shape, out_channels, bias, bits)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"DenseShiftConv2d expects input (N, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
            f"bits={self.bits}, bias={self.bias is not None}"
        )
