"""graphkit.extras: the other models of graphkit's paper collection.

The graph methods outside graphkit's main list (topological concentration, meta-node
contrastive clustering, Auto-GNN), vision backbones and blocks, pruning and sparsity,
architecture search, mixture-of-experts, hypernetworks, training methods and analysis tools,
each written once on shared plumbing
(``graphkit.extras._core``: a model registry, parameter and MAC counting, acceptance helpers).
The catalogue and its acceptance checks are in the project's ``specs/extras.md``.

Families are sub-packages imported on first use, so ``import graphkit.extras`` pulls in nothing
beyond torch::

    from graphkit.extras import create_model, list_models
    list_models(family="backbone")           # every registered backbone
    net = create_model("vovnet39")           # build one by its short name
"""

from __future__ import annotations

import importlib
from typing import Any

from graphkit.extras._core.counting import count_macs, count_params, nonzero_macs
from graphkit.extras._core.registry import (
    FAMILIES,
    ModelEntry,
    create_model,
    get_entry,
    list_models,
    register_model,
)

#: Sub-packages, one per family of the catalogue; each registers its entries on import.
SUBPACKAGES = (
    "layers",
    "vision",
    "sparsity",
    "nas",
    "moe",
    "hyper",
    "training",
    "analysis",
    "dense",
    "generative",
    "graph",
    "compression",
    "audio",
    "data",
)

__all__ = [
    "FAMILIES",
    "SUBPACKAGES",
    "ModelEntry",
    "count_macs",
    "count_params",
    "create_model",
    "get_entry",
    "list_models",
    "nonzero_macs",
    "register_model",
]


def __getattr__(name: str) -> Any:
    if name in SUBPACKAGES:
        module = importlib.import_module(f"graphkit.extras.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'graphkit.extras' has no attribute {name!r}")
