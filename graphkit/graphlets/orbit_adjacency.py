"""Graphlet-orbit adjacency matrices (GRADCO) for graphlets on 2 to 4 nodes.

From `"Graphlets correct for the topological information missed by random walks"
<https://arxiv.org/abs/2405.14194>`_ (Windels, Malod-Dognin and Przulj, 2024):

.. math::
    A^{(h)}_{i,j}[u, v] = \\#\\{\\text{induced graphlet occurrences with } u \\text{ on orbit } i,
    \\; v \\text{ on orbit } j, \\; d_{\\text{graphlet}}(u, v) = h\\}

for Przulj's orbits 0..14 (ORCA's numbering). There are 28 such matrices (20 with
``i <= j`` and the transposes of the 8 non-symmetric ones); keys and conventions match the
``gradco`` package, whose graphlet adjacencies (Windels et al. 2019) are sums of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphkit.graphlets._input import simple_graph
from graphkit.ops.graphlets import KEYS, mask_of, orbit_counter

__all__ = ["KEYS", "GRAPHLET_OF_ORBIT", "select_keys", "orbit_adjacency", "graphlet_adjacency"]

GRAPHLET_OF_ORBIT = (0, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6, 6, 7, 7, 8)


def select_keys(
    hops: int | Iterable[int] | None = None,
    keys: Iterable[tuple[int, int, int]] | None = None,
) -> list[tuple[int, int, int]]:
    """The keys of the 28 whose hop is in ``hops`` (default: all) and that are in ``keys``."""
    if hops is None:
        hop_set = {1, 2, 3}
    else:
        given = [hops] if np.isscalar(hops) else list(hops)
        bad = [h for h in given if not _is_int(h) or int(h) not in (1, 2, 3)]
        if bad or not given:  # 1.5 used to be read as 1, and no hop at all as no matrix
            raise ValueError(f"hops must be in {{1, 2, 3}} (graphlets have <= 4 nodes), got "
                             f"{set(bad) if bad else given}")
        hop_set = {int(h) for h in given}
    chosen = [k for k in KEYS if k[0] in hop_set]
    if keys is not None:
        try:
            wanted = {tuple(int(x) for x in k) for k in keys}
        except (TypeError, ValueError):
            raise ValueError(f"keys must be (hop, orbit_i, orbit_j) triples of integers, got "
                             f"{keys!r}") from None
        mask_of(wanted)  # validates
        chosen = [k for k in chosen if k in wanted]
    return chosen


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def orbit_adjacency(
    graph: Any,
    num_nodes: int | None = None,
    hops: int | Iterable[int] | None = None,
    dense: bool = False,
    *,
    keys: Iterable[tuple[int, int, int]] | None = None,
    backend: str | None = None,
) -> dict[tuple[int, int, int], sp.csr_array | np.ndarray]:
    """Count the graphlet-orbit adjacency matrices of an undirected graph.

    Args:
        graph: an ``edge_index``, a SciPy sparse matrix, a networkx graph or a PyG ``Data``;
            made simple and undirected by :func:`~graphkit.graphlets.simple_graph`.
        num_nodes: the number of nodes (default: inferred).
        hops: keep only matrices of these within-graphlet distances (1, 2, 3; default: all).
        dense: return dense ``numpy`` arrays instead of CSR (only for small graphs).
        keys: keep only these ``(hop, orbit_i, orbit_j)`` keys (default: all 28).
        backend: ``"cpp"``, ``"numba"`` or ``"python"`` (default: ``$GRAPHKIT_BACKEND``, else
            the fastest available).

    Returns:
        ``{(hop, orbit_i, orbit_j): matrix}``, ``n x n`` ``int32`` ``scipy.sparse.csr_array``
        (sorted indices, no explicit zeros). Memory is O(m + nnz); for graphs whose 2- and 3-hop
        matrices do not fit in memory, stream them to disk with
        :func:`~graphkit.graphlets.save_orbit_adjacency`.
    """
    a = simple_graph(graph, num_nodes)
    n = a.shape[0]
    chosen = select_keys(hops, keys)
    counter = orbit_counter(a.indptr, a.indices, backend)
    mask = mask_of(chosen)
    # Count in row blocks and join each matrix once: peak memory stays near the output's size.
    step = 512
    parts: dict = {k: ([], [], [np.zeros(1, dtype=np.int64)]) for k in chosen}
    for r0 in range(0, max(n, 1), max(step, 1)):
        block = counter.count_rows(r0, min(n, r0 + step), mask, 0)
        for key in chosen:
            indptr, indices, data = block[KEYS.index(key)]
            cols, vals, ptrs = parts[key]
            cols.append(indices)
            vals.append(data)
            ptrs.append(np.diff(indptr))
        del block
    result = {}
    for key in chosen:
        cols, vals, ptrs = parts.pop(key)
        indptr = np.cumsum(np.concatenate(ptrs))
        idx_dtype = np.int32 if indptr[-1] < 2**31 else np.int64
        indices = np.empty(indptr[-1], dtype=idx_dtype)
        data = np.empty(indptr[-1], dtype=np.int32)
        pos = 0
        while cols:  # copy block by block, releasing each block as it is copied
            c, v = cols.pop(0), vals.pop(0)
            indices[pos:pos + len(c)] = c
            data[pos:pos + len(v)] = v
            pos += len(c)
            del c, v
        m = sp.csr_array((data, indices, indptr.astype(idx_dtype)), shape=(n, n))
        result[key] = m.toarray() if dense else m
    return result


def graphlet_adjacency(
    graph: Any, graphlet: int, num_nodes: int | None = None, backend: str | None = None
) -> sp.csr_array:
    """Graphlet adjacency of ``graphlet`` (0..8): the sum of its orbit adjacencies.

    From `"Graphlet Laplacians for topology-function and topology-disease relationships"
    <https://doi.org/10.1093/bioinformatics/btz455>`_ (Windels et al., 2019): entry ``[u, v]``
    counts the occurrences of the graphlet that hold both ``u`` and ``v``.
    """
    if not _is_int(graphlet) or not 0 <= graphlet <= 8:  # 1.5 failed in an IndexError
        raise ValueError(f"graphlet must be an integer in 0..8, got {graphlet!r}")
    keys = [k for k in KEYS if GRAPHLET_OF_ORBIT[k[1]] == graphlet]
    mats = orbit_adjacency(graph, num_nodes, keys=keys, backend=backend)
    total = mats[keys[0]].copy()
    for k in keys[1:]:
        total = total + mats[k]
    return sp.csr_array(total)
