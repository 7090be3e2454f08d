"""Default fixed-point formats of weights, activations and edge coefficients by bit-width.

The LPGNAS search chooses a bit-width per component; each bit-width maps to one fixed-point
split (:class:`~graphkit.nn.quant.quantizer.QFormat`) chosen for the range of that component:

* weights (signed): 2 bits ``sQ-1.3`` (grid 1/8 in [-1/4, 1/8]), 4 bits ``sQ0.4``
  ([-1/2, 7/16], grid 1/16), 8 bits ``sQ1.7`` ([-1, 1)), 16 bits ``sQ3.13``;
* activations, i.e. layer inputs (signed): ``sQ(b/2).(b/2)`` (2 bits: grid 1/2 in [-1, 1/2];
  8 bits: grid 1/16 in [-8, 8));
* edge coefficients (GCN normalisation, mean weights, attention; unsigned): ``uQ1.(b-1)``.

32 bits is full precision (identity).
"""

from __future__ import annotations

from graphkit.nn.quant.quantizer import FULL_PRECISION_BITS, QFormat

__all__ = ["weight_format", "act_format", "coef_format"]

_WEIGHT_INT_BITS = {2: -1, 4: 0, 8: 1, 16: 3}


def _check(bits: int) -> None:
    if not isinstance(bits, int) or bits < 2 or (bits > 16 and bits != FULL_PRECISION_BITS):
        raise ValueError(f"bits must be an integer in [2, 16] or 32, got {bits!r}")


def weight_format(bits: int) -> QFormat:
    """Signed weight format of ``bits`` bits (32: full precision)."""
    _check(bits)
    if bits == FULL_PRECISION_BITS:
        return QFormat.full()
    int_bits = _WEIGHT_INT_BITS.get(bits, bits // 4)
    return QFormat(int_bits, bits - int_bits, signed=True)


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
