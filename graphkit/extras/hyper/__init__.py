"""Hypernetworks and weight prediction: generated weights run through the target module."""

from graphkit.extras.hyper.base import (
    HyperArchitecture,
    HyperInput,
    HyperNetSpec,
    HyperNetwork,
    HyperOutput,
    Variability,
    mlp_hypernetwork,
)
from graphkit.extras.hyper.mip import MIPEncoding, MIPHyperNetwork, mip_hypernetwork
from graphkit.extras.hyper.templates import (
    MixtureGrowth,
    TemplateBank,
    TemplateConv2d,
    TemplateLinear,
    template_mlp,
)

__all__ = [
    "HyperArchitecture",
    "HyperInput",
    "HyperNetSpec",
    "HyperNetwork",
    "HyperOutput",
    "MIPEncoding",
    "MIPHyperNetwork",
    "MixtureGrowth",
    "TemplateBank",
    "TemplateConv2d",
    "TemplateLinear",
    "Variability",
    "mip_hypernetwork",
    "mlp_hypernetwork",
    "template_mlp",
]
