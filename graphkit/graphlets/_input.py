"""Turning any graph input into the simple undirected 0/1 CSR graph the counters need.

Rule (documented in :func:`simple_graph`): edge weights are ignored (an entry is an edge when it is
non-zero), duplicate edges count once, self-loops are dropped, and a directed input (some pairs
given in one direction only while others are given in both) is made undirected by keeping a pair
when either direction is present. Each change is reported with a :class:`GraphletInputWarning`.
An edge list that gives every undirected edge exactly once is symmetrised silently.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["GraphletInputWarning", "simple_graph"]


class GraphletInputWarning(UserWarning):
    """The input graph was changed to make it simple and undirected."""


def simple_graph(graph: Any, num_nodes: int | None = None) -> sp.csr_array:
    """Return ``graph`` as a symmetric 0/1 ``int32`` CSR array, sorted, without self-loops.

    Args:
        graph: an ``edge_index`` (``[2, E]``, both directions or each edge once), a SciPy sparse
            adjacency matrix, a networkx graph or a PyG ``Data``.
        num_nodes: the number of nodes (default: inferred from the input).
    """
    if type(graph).__module__.startswith("networkx"):
        from graphkit.data.convert import to_csr  # torch is only needed there

        # at float64: "an edge is a non-zero entry", and float32 rounds a 1e-50 weight to 0
        graph = to_csr(graph, num_nodes, weighted=True, dtype=np.float64)
        num_nodes = None
    if sp.issparse(graph):
        if graph.shape[0] != graph.shape[1]:
            raise ValueError(f"adjacency matrix must be square, got shape {graph.shape}")
        if num_nodes is not None and num_nodes != graph.shape[0]:
            raise ValueError(
                f"num_nodes={num_nodes} does not match the matrix's {graph.shape[0]} rows"
            )
        coo = sp.coo_array(graph)
        n = coo.shape[0]
        keep = coo.data != 0
        row, col, weight = coo.row[keep], coo.col[keep], coo.data[keep]
    else:
        from graphkit.data.convert import to_edge_index  # torch is only needed here

        ei, w, n = to_edge_index(graph, num_nodes)
        row, col = (a.astype(np.int64) for a in ei.numpy())
        weight = None if w is None else w.numpy()
        if weight is not None and len(weight) == len(row):
            keep = weight != 0
            row, col, weight = row[keep], col[keep], weight[keep]
    if n < 0:
        raise ValueError(f"num_nodes must be non-negative, got {n}")
    row = np.asarray(row, dtype=np.int64)
    col = np.asarray(col, dtype=np.int64)
    if weight is not None and len(weight) == len(row) and not np.isfinite(weight).all():
        # "an edge is a non-zero entry" cannot decide for NaN: reject it, as the CLI does
        i = int(np.argmax(~np.isfinite(weight)))
        raise ValueError(f"the graph holds a NaN or infinite edge weight ({weight[i]}) at "
                         f"edge ({row[i]}, {col[i]})")
    changes = []
    if weight is not None and len(weight) and np.any(weight != 1):
        changes.append("edge weights ignored (an edge is a non-zero entry)")
    loops = row == col
    if loops.any():
        changes.append(f"{int(loops.sum())} self-loop(s) dropped")
        row, col = row[~loops], col[~loops]
    key = row * max(n, 1) + col
    unique = np.unique(key)
    if len(unique) < len(key):
        changes.append(f"{len(key) - len(unique)} duplicate edge(s) merged")
    rev = np.isin(unique, (unique % max(n, 1)) * max(n, 1) + unique // max(n, 1))
    if rev.any() and not rev.all():
        changes.append(
            f"directed input made undirected ({int((~rev).sum())} pair(s) given in one "
            "direction only)"
        )
    if changes:
        warnings.warn("graphlet counting: " + "; ".join(changes), GraphletInputWarning,
                      stacklevel=3)
    r, c = unique // max(n, 1), unique % max(n, 1)
    ones = np.ones(2 * len(r), dtype=np.int32)
    a = sp.csr_array((ones, (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1
    a.sort_indices()
    return a
