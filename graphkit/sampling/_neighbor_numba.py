"""Numba kernel for one hop of uniform neighbour sampling (CPU).

Works on NumPy views of a CSR (``rowptr``, ``col``, ``eid``) and a persistent global-to-local
map ``assoc`` (``-1`` for nodes not yet in the mini-batch). The caller resets the entries it
used after each mini-batch, so a batch costs time proportional to its size, not to the graph.
"""

from __future__ import annotations

import numba
import numpy as np

from graphkit.sampling._floyd_numba import floyd_draw


@numba.njit(cache=True)
def seed_numba(seed: int) -> None:
    np.random.seed(seed)


@numba.njit(cache=True)
def mark_seeds(seeds: np.ndarray, assoc: np.ndarray) -> int:
    """Give seeds local ids ``0 .. B-1``; return the index of the first duplicate, or -1."""
    for i in range(seeds.size):
        if assoc[seeds[i]] >= 0:
            for j in range(i):
                assoc[seeds[j]] = -1
            return i
        assoc[seeds[i]] = i
    return -1


@numba.njit(cache=True)
def sample_hop(
    rowptr: np.ndarray,
    col: np.ndarray,
    eid: np.ndarray,
    frontier: np.ndarray,
    frontier_offset: int,
    k: int,
    replace: bool,
    assoc: np.ndarray,
    num_local: int,
):
    """Sample up to ``k`` neighbours of each frontier node (``k < 0``: all of them).

    Without replacement a node of degree ``d > k`` gets ``k`` distinct positions by Robert
    Floyd's algorithm; with replacement it gets ``k`` independent uniform positions.

    Returns ``(new_nodes, row, col, e_id)``: the global ids of nodes first reached in this hop
    (in order of first appearance, with local ids from ``num_local``), and for every sampled
    edge ``u -> v`` the local ids ``row = local(u)``, ``col = local(v)`` and its edge id.
    """
    b = frontier.size
    counts = np.empty(b, dtype=np.int64)
    for i in range(b):
        d = rowptr[frontier[i] + 1] - rowptr[frontier[i]]
        if k < 0:
            counts[i] = d
        elif replace:
            counts[i] = k if d > 0 else 0
        else:
            counts[i] = min(k, d)
    total = counts.sum()
    out_row = np.empty(total, dtype=np.int64)
    out_col = np.empty(total, dtype=np.int64)
    out_eid = np.empty(total, dtype=np.int64)
    new_nodes = np.empty(total, dtype=np.int64)
    chosen = np.empty(max(k, 1), dtype=np.int64)
    num_new = 0
    pos = 0
    for i in range(b):
        start = rowptr[frontier[i]]
        d = rowptr[frontier[i] + 1] - start
        c = counts[i]
        for j in range(c):
            if c == d and (k < 0 or not replace):
                off = j
            elif replace:
                off = np.random.randint(0, d)
            else:  # Floyd: round j draws from [0, d - c + j]
                off = floyd_draw(chosen, j, d - c + j)
            p = start + off
            u = col[p]
            if assoc[u] < 0:
                assoc[u] = num_local + num_new
                new_nodes[num_new] = u
                num_new += 1
            out_row[pos] = assoc[u]
            out_col[pos] = frontier_offset + i
            out_eid[pos] = eid[p]
            pos += 1
    return new_nodes[:num_new], out_row, out_col, out_eid


@numba.njit(cache=True)
def reset(nodes: np.ndarray, assoc: np.ndarray) -> None:
    for i in range(nodes.size):
        assoc[nodes[i]] = -1
