"""Mixture of experts: routers, expert containers, balancing losses and the papers' models."""

from graphkit.extras.moe.experts import FFNExperts, LoRAExperts
from graphkit.extras.moe.losses import load_balance_loss, z_loss
from graphkit.extras.moe.methods import (
    AdvMoETrainer,
    GaussianMoE,
    MixLoRA,
    MixLoRAFFN,
    MoECNN,
    MoEConv2d,
    fit_mle,
    voronoi_loss,
)
from graphkit.extras.moe.router import Router, RouterAux

__all__ = [
    "AdvMoETrainer",
    "FFNExperts",
    "GaussianMoE",
    "LoRAExperts",
    "MixLoRA",
    "MixLoRAFFN",
    "MoECNN",
    "MoEConv2d",
    "Router",
    "RouterAux",
    "fit_mle",
    "load_balance_loss",
    "voronoi_loss",
    "z_loss",
]
