"""graphkit: recent graph-learning methods on PyTorch and PyTorch Geometric.

Layers and models live in :mod:`graphkit.nn`; the shared data and sampling layer in
:mod:`graphkit.data` and :mod:`graphkit.sampling`; methods in :mod:`graphkit.embed`,
:mod:`graphkit.graphlets`, :mod:`graphkit.temporal`, :mod:`graphkit.robust`, and the training
loops, metrics and seeding in :mod:`graphkit.train` and :mod:`graphkit.metrics`. The other
models of the same paper collection (vision, pruning, NAS, MoE, hypernetworks, and the graph
methods outside the main list) are in :mod:`graphkit.extras`.
Sub-packages are imported on first use, so ``import graphkit`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "data",
    "sampling",
    "ops",
    "nn",
    "train",
    "metrics",
    "transforms",
    "embed",
    "graphlets",
    "temporal",
    "robust",
    "benchmarking",
    "typing",
    "extras",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"graphkit.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'graphkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_SUBMODULES))


__all__ = ["__version__", *sorted(_SUBMODULES)]
