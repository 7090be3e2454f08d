"""graphkit's data layer: loaders, registry, manifests, splits, converters and validation.

``load(name, root=None, **kwargs)`` returns a PyG object for any registered dataset;
``graphkit datasets list`` prints the registry. The data root is ``root``, else
``$GRAPHKIT_DATA``, else ``~/.cache/graphkit``; it is only read (apart from downloading a
missing file), never written.
"""

from __future__ import annotations

import importlib
from typing import Any

# Attributes are imported on first use (PEP 562) so that light modules such as
# ``graphkit.data.io`` can be imported without torch and the loaders.
_LAZY = {
    "ensure_files": "graphkit.data.download",
    "resolve_root": "graphkit.data.download",
    "largest_connected_component": "graphkit.data.splits",
    "per_class_split": "graphkit.data.splits",
    "random_planetoid_split": "graphkit.data.splits",
    "random_supervised_split": "graphkit.data.splits",
    "read_jodie_csv": "graphkit.data.temporal",
    "read_npz": "graphkit.data.datasets.npz",
    "check_data": "graphkit.data.validation",
    "check_graph": "graphkit.data.validation",
}

__all__ = [
    "check_data",
    "check_graph",
    "ensure_files",
    "largest_connected_component",
    "load",
    "per_class_split",
    "random_planetoid_split",
    "random_supervised_split",
    "read_jodie_csv",
    "read_npz",
    "registry",
    "resolve_root",
]


def register_builtin() -> None:
    """Import every loader module, which registers the built-in datasets."""
    importlib.import_module("graphkit.data.datasets")
    importlib.import_module("graphkit.data.temporal")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in {"registry", "datasets", "temporal"}:
        register_builtin()
        return importlib.import_module(f"graphkit.data.{name}")
    raise AttributeError(f"module 'graphkit.data' has no attribute {name!r}")


def load(name: str, root: str | None = None, **kwargs: Any) -> Any:
    """Load the registered dataset ``name`` from ``root`` (see :func:`resolve_root`).

    Args:
        name: a registered name (``graphkit datasets list``), e.g. ``"Cora"``,
            ``"prognn-cora"``, ``"ogbn-arxiv"``.
        root: the data root; ``None`` uses ``$GRAPHKIT_DATA`` or ``~/.cache/graphkit``.
        **kwargs: dataset options, e.g. ``attack="meta", rate=0.2`` for ``prognn-*``.

    Raises:
        ValueError: unknown name or bad option.
        FileNotFoundError: a needed file is missing and could not be downloaded.
    """
    from torch_geometric.data import Data

    from graphkit.data import registry
    from graphkit.data.validation import check_data

    out = registry.get(name).load(root, **kwargs)
    if type(out) is Data:
        check_data(out)
    return out
