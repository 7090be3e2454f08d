"""The papers' mixture-of-experts models, built on the shared router, experts and losses."""

from graphkit.extras.moe.methods.mixlora import MixLoRA, MixLoRAFFN

__all__ = ["MixLoRA", "MixLoRAFFN"]
