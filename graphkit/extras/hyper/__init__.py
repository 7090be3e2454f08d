"""Hypernetworks and weight prediction: generated weights run through the target module, and
graph hypernetworks that predict a traced architecture's weights (LoGAH)."""

from graphkit.extras.hyper.arch_graph import OP_TYPES, ArchGraph, trace_architecture
from graphkit.extras.hyper.base import (
    HyperArchitecture,
    HyperInput,
    HyperNetSpec,
    HyperNetwork,
    HyperOutput,
    Variability,
    mlp_hypernetwork,
)
from graphkit.extras.hyper.logah import (
    GraphHyperNetwork,
    GraphormerLayer,
    LowRankDecoder,
    ShapeEncoder,
    TiledDecoder,
    TinyViT,
    ViTConfig,
    apply_predicted,
    ghn3_tiled,
    logah,
    meta_train,
    normalize_predicted,
    vit_family,
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
    "ArchGraph",
    "GraphHyperNetwork",
    "GraphormerLayer",
    "HyperArchitecture",
    "HyperInput",
    "HyperNetSpec",
    "HyperNetwork",
    "HyperOutput",
    "LowRankDecoder",
    "MIPEncoding",
    "MIPHyperNetwork",
    "MixtureGrowth",
    "OP_TYPES",
    "ShapeEncoder",
    "TemplateBank",
    "TemplateConv2d",
    "TemplateLinear",
    "TiledDecoder",
    "TinyViT",
    "Variability",
    "ViTConfig",
    "apply_predicted",
    "ghn3_tiled",
    "logah",
    "meta_train",
    "mip_hypernetwork",
    "mlp_hypernetwork",
    "normalize_predicted",
    "template_mlp",
    "trace_architecture",
    "vit_family",
]
