"""Node and edge graphlet degree vectors (2- to 4-node graphlets, ORCA's orbit numbering).

Node orbit ``i`` of ``u`` counts the graphlets in which ``u`` sits on orbit ``i`` (Milenkovic and
Przulj, "Uncovering biological network function via graphlet degree signatures", 2008). They are
row sums of the 1-hop orbit adjacencies divided by the number of orbit-``j`` neighbours an
orbit-``i`` node has inside its graphlet, e.g. ``gdv[:, 7] = A^{(1)}_{7,6} 1 / 3``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphkit.graphlets._input import simple_graph
from graphkit.ops.graphlets import orbit_counter

__all__ = ["gdv", "edge_gdv", "EDGE_ORBITS"]

# Edge orbit e joins nodes on these orbits (ORCA's / gradco's 12 edge orbits, 3 and 4 nodes).
EDGE_ORBITS = ((1, 2), (3, 3), (4, 5), (5, 5), (6, 7), (8, 8), (9, 11), (10, 10), (10, 11),
               (12, 13), (13, 13), (14, 14))


def gdv(graph: Any, num_nodes: int | None = None, backend: str | None = None) -> np.ndarray:
    """Graphlet degree vectors: an ``n x 15`` ``int64`` array, column ``i`` = node orbit ``i``."""
    a = simple_graph(graph, num_nodes)
    return np.asarray(orbit_counter(a.indptr, a.indices, backend).gdv(), dtype=np.int64)


def edge_gdv(
    graph: Any, num_nodes: int | None = None, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Edge graphlet degree vectors.

    Returns:
        ``(edges, counts)``: ``edges`` is ``m x 2`` (``u < v``, sorted), ``counts`` is ``m x 12``
        ``int64`` with column ``e`` the edge orbit :data:`EDGE_ORBITS` ``[e]``.
    """
    a = simple_graph(graph, num_nodes)
    edges, counts = orbit_counter(a.indptr, a.indices, backend).edge_gdv()
    return np.asarray(edges, dtype=np.int64).reshape(-1, 2), np.asarray(counts, dtype=np.int64)
