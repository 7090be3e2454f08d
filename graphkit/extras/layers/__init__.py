"""Reusable blocks and operators of the catalogue (usable outside any one paper)."""

from graphkit.extras.layers.complex import (
    ComplexConv2d,
    apply_complex_mask,
    bounded_complex_mask,
    check_pseudo_complex,
    from_pseudo_complex,
    to_pseudo_complex,
)
from graphkit.extras.layers.fsmn import (
    ChannelLayerNorm,
    DepthwiseConvModule,
    DilatedDenseMemory,
    DilatedFSMN,
    DilatedFSMNBlock,
    FFConvM,
    GatedConvUnit,
)
from graphkit.extras.layers.i2rmb import (
    I2RMB,
    HybridWindowAttention,
    LayerNorm2d,
    MetaMobileBlock,
    i2RMB,
)
from graphkit.extras.layers.moat_block import MOATBlock, MOATMBConv, same_avg_pool
from graphkit.extras.layers.multidilated import D2Block, D3Block, MultiDilatedConv2d
from graphkit.extras.layers.nin_gating import MixerBlock, MixerGatingUnit, NiNformer, NiNformerBlock
from graphkit.extras.layers.osa import OSAModule
from graphkit.extras.layers.phc import (
    PHConv1d,
    PHConv2d,
    PHConv3d,
    PHLinear,
    hamilton_matrices,
    kronecker_weight,
)
from graphkit.extras.layers.reversible import ReversibleBlock, ReversibleSequence
from graphkit.extras.layers.shift import (
    DenseShiftConv2d,
    DenseShiftLinear,
    dense_shift_quantize,
    low_variance_init_,
    shift_encoding,
    shift_linear_reference,
)

__all__ = [
    "ChannelLayerNorm",
    "ComplexConv2d",
    "D2Block",
    "D3Block",
    "DenseShiftConv2d",
    "DenseShiftLinear",
    "DepthwiseConvModule",
    "DilatedDenseMemory",
    "DilatedFSMN",
    "DilatedFSMNBlock",
    "FFConvM",
    "GatedConvUnit",
    "HybridWindowAttention",
    "I2RMB",
    "LayerNorm2d",
    "MOATBlock",
    "MOATMBConv",
    "MetaMobileBlock",
    "MixerBlock",
    "MixerGatingUnit",
    "MultiDilatedConv2d",
    "NiNformer",
    "NiNformerBlock",
    "OSAModule",
    "PHConv1d",
    "PHConv2d",
    "PHConv3d",
    "PHLinear",
    "ReversibleBlock",
    "ReversibleSequence",
    "apply_complex_mask",
    "bounded_complex_mask",
    "check_pseudo_complex",
    "dense_shift_quantize",
    "from_pseudo_complex",
    "hamilton_matrices",
    "i2RMB",
    "kronecker_weight",
    "low_variance_init_",
    "same_avg_pool",
    "shift_encoding",
    "shift_linear_reference",
    "to_pseudo_complex",
]
