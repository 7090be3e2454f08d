"""Default fixed-point formats of weights, activations and edge coefficients by bit-width.

The LPGNAS search chooses a bit-width per component; each bit-width maps to one fixed-point
split (:class:`~graphkit.nn.quant.quantizer.QFormat`) chosen for the range of that component:

* weights (signed): the split follows the tensor's initial range ``[-bound, bound]`` (Glorot:
  :func:`glorot_bound`). With :math:`s = 2^{\\lceil \\log_2 \\text{bound} \\rceil}` the format
  has :math:`i = \\log_2 s + 1 + \\lfloor b/4 \\rfloor` integer bits, i.e. the range is
  :math:`[-s\\,2^{\\lfloor b/4 \\rfloor}, s\\,2^{\\lfloor b/4 \\rfloor})`: at 2 bits
  exactly the initial range (grid :math:`s/2`, so most initial weights are non-zero codes),
  with :math:`2^{\\lfloor b/4 \\rfloor}` headroom for growth at wider formats. The default
  ``bound=0.25`` gives ``sQ-1.3`` (2 bits), ``sQ0.4`` (4), ``sQ1.7`` (8), ``sQ3.13`` (16).
  A fixed split independent of the layer (e.g. ``sQ-1.3`` everywhere) rounds every weight of
  a wide first layer (CiteSeer: 3703 inputs, bound 0.04) to zero at 2 bits: the layer's
  output is then constant, ReLU passes no gradient and training never starts.
* activations, i.e. layer inputs (signed): ``sQ(b/2).(b/2)`` (2 bits: grid 1/2 in [-1, 1/2];
  8 bits: grid 1/16 in [-8, 8));
* edge coefficients (GCN normalisation, mean weights, attention; unsigned): ``uQ1.(b-1)``.

32 bits is full precision (identity).
"""

from __future__ import annotations

import math
import numbers

from graphkit.nn.quant.quantizer import FULL_PRECISION_BITS, QFormat

__all__ = ["weight_format", "act_format", "coef_format", "glorot_bound", "moved_format"]

DEFAULT_WEIGHT_BOUND = 0.25


def _check(bits: int) -> None:
    if (not isinstance(bits, numbers.Integral) or isinstance(bits, bool) or bits < 2
            or (bits > 16 and bits != FULL_PRECISION_BITS)):
        raise ValueError(f"bits must be an integer in [2, 16] or 32, got {bits!r}")


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """Half-width :math:`\\sqrt{6 / (\\text{fan\\_in} + \\text{fan\\_out})}` of the Glorot
    uniform initialisation used by every quantised layer."""
    if fan_in < 1 or fan_out < 1:
        raise ValueError(f"fans must be >= 1, got fan_in={fan_in}, fan_out={fan_out}")
    return math.sqrt(6.0 / (fan_in + fan_out))


def weight_format(bits: int, bound: float = DEFAULT_WEIGHT_BOUND) -> QFormat:
    """Signed weight format of ``bits`` bits for a tensor initialised in ``[-bound, bound]``
    (32: full precision); see the module docstring."""
    _check(bits)
    if not bound > 0 or not math.isfinite(bound):
        raise ValueError(f"bound must be a positive finite number, got {bound!r}")
    if bits == FULL_PRECISION_BITS:
        return QFormat.full()
    int_bits = math.ceil(math.log2(bound)) + 1 + bits // 4
    return QFormat(int_bits, bits - int_bits, signed=True)


def moved_format(fmt: QFormat, from_bound: float, to_bound: float) -> QFormat:
    """``fmt`` (a weight format for values in ``[-from_bound, from_bound]``) moved, at the
    same width, to values in ``[-to_bound, to_bound]``: the integer bits change by
    :math:`\\lceil \\log_2 \\text{to} \\rceil - \\lceil \\log_2 \\text{from} \\rceil`, so the
    headroom over the initial range is kept (at least 0 fraction bits). On a format of
    :func:`weight_format` it equals ``weight_format(bits, to_bound)``."""
    for name, b in (("from_bound", from_bound), ("to_bound", to_bound)):
        if not b > 0 or not math.isfinite(b):
            raise ValueError(f"{name} must be a positive finite number, got {b!r}")
    if fmt.is_full:
        return fmt
    shift = math.ceil(math.log2(to_bound)) - math.ceil(math.log2(from_bound))
    int_bits = min(fmt.int_bits + shift, fmt.bits)
    return QFormat(int_bits, fmt.bits - int_bits, signed=fmt.signed)


def act_format(bits: int) -> QFormat:
    """Signed activation format ``sQ(b - b//2).(b//2)`` (32: full precision)."""
    _check(bits)
    if bits == FULL_PRECISION_BITS:
        return QFormat.full()
    return QFormat(bits - bits // 2, bits // 2, signed=True)


def coef_format(bits: int) -> QFormat:
    """Unsigned edge-coefficient format ``uQ1.(b-1)`` for values in [0, 1] (32: full)."""
    _check(bits)
    if bits == FULL_PRECISION_BITS:
        return QFormat.full()
    return QFormat(1, bits - 1, signed=False)
