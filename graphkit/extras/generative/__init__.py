"""Generative and energy-based models of the catalogue."""

from graphkit.extras.generative.asdm import (
    BlockIncubation,
    CLMECondConv,
    GRIAttention,
    semantic_alignment_loss,
)
from graphkit.extras.generative.lego import LEGOBrick, LEGODiffusion, lego, skip_schedule
from graphkit.extras.generative.monotone_dbm import (
    ConvCouplings,
    MeanFieldActivation,
    MonotoneDBM,
    mean_field_fixed_point,
)

__all__ = [
    "BlockIncubation",
    "CLMECondConv",
    "ConvCouplings",
    "GRIAttention",
    "LEGOBrick",
    "LEGODiffusion",
    "MeanFieldActivation",
    "MonotoneDBM",
    "lego",
    "mean_field_fixed_point",
    "semantic_alignment_loss",
    "skip_schedule",
]
