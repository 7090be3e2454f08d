"""Generative and energy-based models of the catalogue."""

from graphkit.extras.generative.monotone_dbm import (
    ConvCouplings,
    MeanFieldActivation,
    MonotoneDBM,
    mean_field_fixed_point,
)

__all__ = [
    "ConvCouplings",
    "MeanFieldActivation",
    "MonotoneDBM",
    "mean_field_fixed_point",
]
