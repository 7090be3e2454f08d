r"""Fixed-point quantisers with a straight-through estimator.

A fixed-point format :math:`Q(i, f)` stores a number as an integer :math:`k` with the value
:math:`k \cdot 2^{-f}` in :math:`b = i + f` bits. Signed formats (two's complement) represent
:math:`[-2^{i-1},\ 2^{i-1} - 2^{-f}]`, unsigned ones :math:`[0,\ 2^{i} - 2^{-f}]`. ``i`` may be
zero or negative (a format for small numbers, e.g. weights), ``f`` is non-negative.

Quantisation rounds half up (:math:`k = \lfloor x 2^f + 1/2 \rfloor`, then clamps), the rule
an integer pipeline implements as ``(v + 2^{s-1}) >> s``, so the integer inference path of
:mod:`graphkit.nn.quant.integer` reproduces it bit for bit.

Gradient convention (clipped straight-through estimator, Bengio et al. 2013): the gradient is
passed unchanged where :math:`x` lies inside the representable range and is zero outside it.
Full precision (``QFormat.full()``, 32 bits) is the identity in value and gradient.

Used by LPGNAS (`Learned Low Precision Graph Neural Networks
<https://arxiv.org/abs/2009.09232>`_, Zhao et al., EuroMLSys 2021).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["FULL", "QFormat", "fixed_point_quantize", "quantize_to_int", "FixedPointQuantizer",
           "full_precision"]

FULL_PRECISION_BITS = 32

_BYPASS = False


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format ``Q(int_bits, frac_bits)``, or full precision when ``int_bits`` is
    ``None``.

    Args:
        int_bits (int, optional): integer bits (including the sign bit when signed); may be
            negative. ``None`` means full precision (float32, identity quantiser).
        frac_bits (int): fraction bits, ``>= 0``. (default: :obj:`0`)
        signed (bool): two's complement (``True``) or unsigned. (default: :obj:`True`)
    """

    int_bits: int | None
    frac_bits: int = 0
    signed: bool = True

    def __post_init__(self) -> None:
        if self.int_bits is None:
            return
        for name in ("int_bits", "frac_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {v!r}")
        if self.frac_bits < 0:
            raise ValueError(f"frac_bits must be >= 0, got {self.frac_bits}")
        if self.int_bits + self.frac_bits < 1:
            raise ValueError(
                f"a fixed-point format needs int_bits + frac_bits >= 1, got "
                f"int_bits={self.int_bits}, frac_bits={self.frac_bits}")
        if self.int_bits + self.frac_bits > 31:
            raise ValueError(f"at most 31 fixed-point bits are supported, got {self.bits}")

    @classmethod
    def full(cls) -> QFormat:
        """Full precision (32-bit float)."""
        return cls(None)

    @classmethod
    def of_bits(cls, bits: int, int_bits: int, signed: bool = True) -> QFormat:
        """``bits`` total bits with ``int_bits`` integer bits; ``bits >= 32`` is full precision."""
        if bits >= FULL_PRECISION_BITS:
            return cls.full()
        return cls(int_bits, bits - int_bits, signed)

    @property
    def is_full(self) -> bool:
        return self.int_bits is None

    @property
    def bits(self) -> int:
        """Storage bits: ``int_bits + frac_bits``, or 32 for full precision."""
        return FULL_PRECISION_BITS if self.int_bits is None else self.int_bits + self.frac_bits

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        if self.int_bits is None:
            raise ValueError("full precision has no integer codes")
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        if self.int_bits is None:
            raise ValueError("full precision has no integer codes")
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def step(self) -> float:
        """Grid spacing ``2**-frac_bits``."""
        return 2.0 ** -self.frac_bits

    @property
    def range(self) -> tuple[float, float]:
        """The representable interval ``(qmin * step, qmax * step)``."""
        return self.qmin * self.step, self.qmax * self.step

    def __str__(self) -> str:
        if self.int_bits is None:
            return "fp32"
        return f"{'s' if self.signed else 'u'}Q{self.int_bits}.{self.frac_bits}"


def quantize_to_int(x: Tensor, fmt: QFormat, name: str = "x") -> Tensor:
    """Integer codes ``clamp(floor(x * 2**f + 1/2), qmin, qmax)`` as ``int64``.

    Raises a ``ValueError`` naming ``name`` where ``x`` holds NaN, which has no code (the
    cast would give an arbitrary integer). Infinities saturate to ``qmin`` / ``qmax``.
    """
    if fmt.is_full:
        raise ValueError("full precision has no integer codes")
    if x.is_floating_point() and bool(torch.isnan(x).any()):
        raise ValueError(f"{name} holds NaN values, which have no integer code")
    # float64: a float32 product has 24 bits, too few for a 31-bit format (qmax would round up
    # and halves to even); infinities saturate before the cast
    k = torch.floor(x.double() * (2.0 ** fmt.frac_bits) + 0.5)
    return k.clamp(fmt.qmin, fmt.qmax).to(torch.int64)


class _FixedPoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float, lo: float, hi: float) -> Tensor:
        ctx.save_for_backward((x >= lo) & (x <= hi))
        return torch.floor(x * scale + 0.5).clamp(lo * scale, hi * scale) / scale

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None


def fixed_point_quantize(x: Tensor, fmt: QFormat) -> Tensor:
    r"""Fake-quantise ``x`` to ``fmt`` (values on the grid, same dtype) with the clipped STE.

    .. math::
        Q(x) = 2^{-f}\,\mathrm{clamp}(\lfloor 2^f x + \tfrac12 \rfloor, q_{\min}, q_{\max}),
        \qquad \frac{\partial Q}{\partial x} := \mathbb{1}[x_{\min} \le x \le x_{\max}].
    """
    if fmt.is_full or _BYPASS:
        return x
    lo, hi = fmt.range
    if max(-fmt.qmin, fmt.qmax) >= 2**23 and x.dtype != torch.float64:
        # float32 cannot hold code + 1/2 (the rounding step) once codes reach 2^23: an
        # unsigned 24-bit format's upper half rounded one step up
        return _FixedPoint.apply(x.double(), 2.0 ** fmt.frac_bits, lo, hi).to(x.dtype)
    return _FixedPoint.apply(x, 2.0 ** fmt.frac_bits, lo, hi)


@contextmanager
def full_precision(enabled: bool = True) -> Iterator[None]:
    """Inside the block :func:`fixed_point_quantize` is the identity for every format (a
    full-precision pass of a quantised model, e.g. a warm-up before quantisation-aware
    training); ``enabled=False`` leaves quantisation on. Not thread-safe."""
    global _BYPASS
    previous, _BYPASS = _BYPASS, bool(enabled) or _BYPASS
    try:
        yield
    finally:
        _BYPASS = previous


class FixedPointQuantizer(torch.nn.Module):
    r"""Module form of :func:`fixed_point_quantize` for one format ``Q(i, f)``, the quantiser
    of LPGNAS (`Zhao et al., 2020 <https://arxiv.org/abs/2009.09232>`_):

    .. math::
        Q(x) = 2^{-f}\,\mathrm{clamp}(\lfloor 2^f x + \tfrac12 \rfloor, q_{\min}, q_{\max}),
        \qquad \frac{\partial Q}{\partial x} := \mathbb{1}[x_{\min} \le x \le x_{\max}]

    (straight-through estimator, clipped to the representable range). No parameters.

    Args:
        fmt (QFormat): the format; :meth:`QFormat.full` gives the identity.
    """

    def __init__(self, fmt: QFormat) -> None:
        super().__init__()
        self.fmt = fmt

    def forward(self, x: Tensor) -> Tensor:
        return fixed_point_quantize(x, self.fmt)

    def extra_repr(self) -> str:
        return str(self.fmt)


#: Full precision (identity quantiser, 32 bits).
FULL = QFormat(None)
