"""The papers' mixture-of-experts models, built on the shared router, experts and losses."""

from graphkit.extras.moe.methods.advmoe import AdvMoETrainer, MoECNN, MoEConv2d
from graphkit.extras.moe.methods.gaussian_moe import GaussianMoE, fit_mle, voronoi_loss
from graphkit.extras.moe.methods.mixlora import MixLoRA, MixLoRAFFN

__all__ = [
    "AdvMoETrainer",
    "GaussianMoE",
    "MixLoRA",
    "MixLoRAFFN",
    "MoECNN",
    "MoEConv2d",
    "fit_mle",
    "voronoi_loss",
]
