"""Input validation shared by every loader, converter and method.

Each check raises a :class:`ValueError` that names the problem; nothing is dropped silently.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "check_data",
    "check_edge_index",
    "check_features",
    "check_num_nodes",
    "check_timestamps",
]


def check_edge_index(
    edge_index: Tensor | np.ndarray,
    num_nodes: int | None = None,
    name: str = "edge_index",
    allow_empty: bool = True,
) -> Tensor:
    """Return ``edge_index`` as a ``[2, E]`` int64 tensor after checking shape, dtype and range."""
    if isinstance(edge_index, np.ndarray):
        if edge_index.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {edge_index.dtype}")
        edge_index = torch.from_numpy(np.ascontiguousarray(edge_index))
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"{name} must be a tensor or array, got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got dtype {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, num_edges], got {list(edge_index.shape)}")
    edge_index = edge_index.long()
    if edge_index.numel() == 0:
        if not allow_empty:
            raise ValueError(f"{name} is empty: the graph has no edges")
        return edge_index
    lo = int(edge_index.min())
    if lo < 0:
        raise ValueError(f"{name} holds a negative node id ({lo})")
    if num_nodes is not None:
        hi = int(edge_index.max())
        if hi >= num_nodes:
            raise ValueError(
                f"{name} holds node id {hi}, out of range for num_nodes={num_nodes}"
            )
    return edge_index


def check_num_nodes(num_nodes: int, x: Tensor | None = None, name: str = "x") -> int:
    """Check that ``num_nodes`` is positive and agrees with the rows of ``x``."""
    if num_nodes <= 0:
        raise ValueError(f"the graph is empty (num_nodes={num_nodes})")
    if x is not None and x.size(0) != num_nodes:
        raise ValueError(
            f"node-count mismatch: {name} has {x.size(0)} rows but the graph has {num_nodes} nodes"
        )
    return num_nodes


def check_features(x: Tensor | np.ndarray, name: str = "x") -> Tensor:
    """Reject feature matrices of the wrong rank or holding NaN or infinite values."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [num_nodes, num_features], got {list(x.shape)}")
    if x.is_floating_point():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            kind = "NaN" if bool(torch.isnan(x).any()) else "infinite"
            raise ValueError(f"{name} holds {kind} values (first in row {row})")
    return x


def check_timestamps(t: Tensor | np.ndarray, name: str = "t", sorted_: bool = True) -> Tensor:
    """Timestamps must be finite, non-negative and (by default) sorted ascending."""
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(t)
    if t.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {list(t.shape)}")
    if t.numel() == 0:
        return t
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds NaN or infinite timestamps")
    if bool((t < 0).any()):
        i = int((t < 0).nonzero()[0, 0])
        raise ValueError(f"{name} holds a negative timestamp at event {i}")
    if sorted_ and t.numel() > 1:
        dec = (t[1:] < t[:-1]).nonzero()
        if dec.numel():
            i = int(dec[0, 0]) + 1
            raise ValueError(f"{name} is not sorted: event {i} comes before event {i - 1} in time")
    return t


def check_data(data) -> None:
    """Check a PyG ``Data`` as a whole: node count, ``edge_index``, ``hyperedge_index``, and
    that ``x``, ``y`` and every ``*_mask`` have one row per node (masks boolean).
    """
    n = data.num_nodes
    if n is None:
        raise ValueError("the graph has no nodes (num_nodes is None)")
    check_num_nodes(int(n))
    if getattr(data, "edge_index", None) is not None:
        check_edge_index(data.edge_index, n)
    if getattr(data, "hyperedge_index", None) is not None:
        from graphkit.data.hypergraph import check_hyperedge_index

        check_hyperedge_index(data.hyperedge_index, n, getattr(data, "num_hyperedges", None))
    if getattr(data, "x", None) is not None:
        check_features(data.x)
        check_num_nodes(n, data.x)
    if getattr(data, "y", None) is not None and data.y.dim() > 0:
        check_num_nodes(n, data.y, name="y")
    for key in data.keys():
        if key.endswith("_mask"):
            mask = data[key]
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 1:
                raise ValueError(f"{key} must be a one-dimensional boolean tensor")
            check_num_nodes(n, mask, name=key)
