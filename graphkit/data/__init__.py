"""graphkit's data layer: loaders, registry, manifests, splits, converters and validation.

``load(name, root=None, **kwargs)`` returns a PyG object for any registered dataset;
``graphkit datasets list`` prints the registry. The data root is ``root``, else
``$GRAPHKIT_DATA``, else ``~/.cache/graphkit``; it is only read (apart from downloading a
missing file), never written.
"""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Data

from graphkit.data import (
    datasets,  # noqa: F401  (registers the built-in loaders)
    registry,
)
from graphkit.data.datasets.npz import read_npz
from graphkit.data.download import ensure_files, resolve_root
from graphkit.data.splits import largest_connected_component, random_planetoid_split
from graphkit.data.temporal import read_jodie_csv  # also registers the temporal datasets
from graphkit.data.validation import check_data

__all__ = [
    "ensure_files",
    "largest_connected_component",
    "load",
    "random_planetoid_split",
    "read_jodie_csv",
    "read_npz",
    "registry",
    "resolve_root",
]


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
    out = registry.get(name).load(root, **kwargs)
    if type(out) is Data:
        check_data(out)
    return out
