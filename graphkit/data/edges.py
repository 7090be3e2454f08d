"""Edge-list normalisation with an explicit report of what was changed.

Loaders turn raw pair lists into PyG's undirected convention (each edge ``{u, v}`` stored as
``(u, v)`` and ``(v, u)``, a self-loop stored once, sorted by source then target). Whatever they
normalise (merged duplicates, removed self-loops, relabelled ids) is recorded in a small dict
that the loader stores as ``data.cleaning``; nothing is dropped silently.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["relabel", "undirected_edge_index"]


def relabel(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary integer ids to ``0..n-1`` in ascending order of the original id.

    Returns:
        ``(original_ids, new_ids)``: the sorted distinct original ids (``original_ids[k]`` is the
        id of new node ``k``) and ``ids`` rewritten in the new numbering, same shape as ``ids``.
    """
    original, inverse = np.unique(np.asarray(ids), return_inverse=True)
    return original, inverse.reshape(np.shape(ids))


def undirected_edge_index(
    pairs: np.ndarray | Tensor, num_nodes: int, *, self_loops: str = "keep"
) -> tuple[Tensor, dict[str, int | bool]]:
    """Symmetrise a list of node pairs and merge duplicates.

    Args:
        pairs: ``[E, 2]`` (or ``[2, E]`` tensor-style, when the first dim is 2 and the second
            is not) integer node pairs in ``0..num_nodes-1``; a pair and its reverse are the same
            undirected edge.
        num_nodes: the number of nodes.
        self_loops: ``"keep"`` (stored once each) or ``"remove"``.

    Returns:
        ``(edge_index, report)``: a sorted ``[2, E']`` int64 tensor holding both directions of
        every distinct undirected edge, and ``{"input_pairs", "unique_edges", "self_loops",
        "self_loops_removed"}`` where ``unique_edges`` counts distinct unordered pairs
        (self-loops included) and ``self_loops`` counts the distinct self-loops found.
    """
    from graphkit.data.validation import check_edge_index

    if self_loops not in ("keep", "remove"):
        raise ValueError(f"self_loops must be 'keep' or 'remove', got {self_loops!r}")
    arr = pairs.cpu().numpy() if isinstance(pairs, Tensor) else np.asarray(pairs)
    if arr.ndim == 2 and arr.shape[1] != 2 and arr.shape[0] == 2:
        arr = arr.T
    if arr.ndim != 2 or (arr.size and arr.shape[1] != 2):
        raise ValueError(f"pairs must have shape [num_pairs, 2], got {list(arr.shape)}")
    arr = arr.reshape(-1, 2)
    if arr.size == 0 or arr.dtype.kind in "iu":  # np.empty((0, 2)) is float, but holds no id
        arr = arr.astype(np.int64)
    # float or boolean pairs reach the check uncast: they fail instead of being truncated
    check_edge_index(np.ascontiguousarray(arr.T), num_nodes, name="pairs")
    lo = np.minimum(arr[:, 0], arr[:, 1]).astype(np.int64)
    hi = np.maximum(arr[:, 0], arr[:, 1]).astype(np.int64)
    key = np.unique(lo * num_nodes + hi)
    lo, hi = key // num_nodes, key % num_nodes
    loop = lo == hi
    report: dict[str, int | bool] = {
        "input_pairs": int(arr.shape[0]),
        "unique_edges": int(key.size),
        "self_loops": int(loop.sum()),
        "self_loops_removed": self_loops == "remove" and bool(loop.any()),
    }
    if self_loops == "remove":
        lo, hi, loop = lo[~loop], hi[~loop], loop[~loop]
    row = np.concatenate([lo, hi[~loop]])
    col = np.concatenate([hi, lo[~loop]])
    order = np.lexsort((col, row))
    edge_index = torch.from_numpy(np.stack([row[order], col[order]]).astype(np.int64))
    return edge_index, report
