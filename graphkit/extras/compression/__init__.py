"""Learned image compression: entropy models and the catalogue's codecs."""

from graphkit.extras.compression.entropy import (
    EntropyBottleneck,
    GaussianConditional,
    bits,
    quantize,
    ste_round,
)
from graphkit.extras.compression.s2lic import (
    S2LIC,
    ACGCContext,
    ChannelContext,
    ContinuousPositionBias,
    CosineWindowAttention,
    DenseEnhance,
    GlobalInterContext,
    RateDistortionLoss,
    ResidualSwinV2Group,
    SwinV2Block,
    bpp,
    checkerboard_mask,
)

__all__ = [
    "ACGCContext",
    "ChannelContext",
    "ContinuousPositionBias",
    "CosineWindowAttention",
    "DenseEnhance",
    "EntropyBottleneck",
    "GaussianConditional",
    "GlobalInterContext",
    "RateDistortionLoss",
    "ResidualSwinV2Group",
    "S2LIC",
    "SwinV2Block",
    "bits",
    "bpp",
    "checkerboard_mask",
    "quantize",
    "ste_round",
]
