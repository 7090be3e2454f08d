"""Reusable blocks and operators of the catalogue (usable outside any one paper)."""

from graphkit.extras.layers.nin_gating import (
    MixerBlock,
    MixerGatingUnit,
    NiNformer,
    NiNformerBlock,
)
from graphkit.extras.layers.osa import OSAModule
from graphkit.extras.layers.phc import (
    PHConv1d,
    PHConv2d,
    PHConv3d,
    PHLinear,
    hamilton_matrices,
    kronecker_weight,
)
from graphkit.extras.layers.shift import (
    DenseShiftConv2d,
    DenseShiftLinear,
    dense_shift_quantize,
    low_variance_init_,
    shift_encoding,
    shift_linear_reference,
)

__all__ = [
    "DenseShiftConv2d",
    "DenseShiftLinear",
    "MixerBlock",
    "MixerGatingUnit",
    "NiNformer",
    "NiNformerBlock",
    "OSAModule",
    "PHConv1d",
    "PHConv2d",
    "PHConv3d",
    "PHLinear",
    "dense_shift_quantize",
    "hamilton_matrices",
    "kronecker_weight",
    "low_variance_init_",
    "shift_encoding",
    "shift_linear_reference",
]
