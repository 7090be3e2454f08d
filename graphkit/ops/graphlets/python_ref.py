"""Plain-Python brute-force oracle for graphlet-orbit adjacencies (2- to 4-node graphlets).

It enumerates every connected induced subgraph on 2, 3 and 4 nodes, names the graphlet and each
node's orbit from the node degrees inside it (Przulj's numbering), measures the distance between
every ordered pair of its nodes inside the graphlet, and adds one to entry ``[u, v]`` of matrix
``(distance, orbit(u), orbit(v))``. Slow (it visits every occurrence) but obviously correct; the
tests hold the compiled and Numba backends to it.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np

from graphkit.ops.graphlets._checks import check_count_rows, check_simple_csr
from graphkit.ops.graphlets.keys import KEY_INDEX, KEYS

__all__ = ["ORBIT_OF", "connected_subsets", "brute_force_counts", "PythonOrbitCounter"]

# (number of nodes, number of edges, degree inside the graphlet) -> orbit
ORBIT_OF: dict[tuple[int, int, int], int] = {
    (2, 1, 1): 0,
    (3, 2, 1): 1, (3, 2, 2): 2,
    (3, 3, 2): 3,
    # 4 nodes: the path, star and 4-cycle are told apart in _orbit
    (4, 4, 2): 10, (4, 4, 1): 9, (4, 4, 3): 11,
    (4, 5, 2): 12, (4, 5, 3): 13,
    (4, 6, 3): 14,
}


def _orbit(size: int, edges: int, degree: int, degrees: list[int]) -> int:
    if size == 4 and edges == 3:
        if 3 in degrees:  # star
            return 7 if degree == 3 else 6
        return 4 if degree == 1 else 5
    if size == 4 and edges == 4 and all(d == 2 for d in degrees):
        return 8  # 4-cycle
    return ORBIT_OF[(size, edges, degree)]


def connected_subsets(adj: list[set[int]], max_size: int = 4) -> list[frozenset[int]]:
    """Every node set of size 2..``max_size`` whose induced subgraph is connected."""
    level = {frozenset((u, v)) for u in range(len(adj)) for v in adj[u] if u < v}
    found = list(level)
    for _ in range(max_size - 2):
        grown = set()
        for s in level:
            for u in s:
                for w in adj[u]:
                    if w not in s:
                        grown.add(s | {w})
        found.extend(grown)
        level = grown
    return found


def _distances(nodes: list[int], adj: list[set[int]]) -> dict[tuple[int, int], int]:
    dist = {}
    for s in nodes:
        seen, frontier, d = {s: 0}, [s], 0
        while frontier:
            d += 1
            nxt = []
            for a in frontier:
                for b in adj[a]:
                    if b in nodes and b not in seen:
                        seen[b] = d
                        nxt.append(b)
            frontier = nxt
        for t, dt in seen.items():
            if t != s:
                dist[(s, t)] = dt
    return dist


def brute_force_counts(adj: list[set[int]]) -> dict[tuple[int, int, int], dict]:
    """``{(hop, orbit_i, orbit_j): {(u, v): count}}`` for all 28 keys of a simple graph."""
    counts: dict[tuple[int, int, int], dict] = {k: defaultdict(int) for k in KEYS}
    for subset in connected_subsets(adj):
        nodes = sorted(subset)
        degrees = [sum(1 for b in adj[a] if b in subset) for a in nodes]
        edges = sum(degrees) // 2
        orbit = {a: _orbit(len(nodes), edges, d, degrees) for a, d in zip(nodes, degrees)}
        for (a, b), h in _distances(nodes, adj).items():
            counts[(h, orbit[a], orbit[b])][(a, b)] += 1
    return counts


class PythonOrbitCounter:
    """The oracle behind the backend interface shared with the compiled and Numba counters."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray) -> None:
        check_simple_csr(indptr, indices)
        n = len(indptr) - 1
        self.num_nodes = n
        self._adj = [set(indices[indptr[u]:indptr[u + 1]].tolist()) for u in range(n)]
        self.num_edges = sum(len(a) for a in self._adj) // 2
        self._counts = brute_force_counts(self._adj)

    def count_rows(self, r0: int, r1: int, mask: int, hop3_mode: int = 0) -> list:
        check_count_rows(r0, r1, mask, hop3_mode, self.num_nodes)
        out: list = [None] * len(KEYS)
        for key, entries in self._counts.items():
            k = KEY_INDEX[key]
            if not mask >> k & 1:
                continue
            rows: list[list[tuple[int, int]]] = [[] for _ in range(r1 - r0)]
            for (u, v), c in entries.items():
                if r0 <= u < r1:
                    rows[u - r0].append((v, c))
            indptr = np.zeros(r1 - r0 + 1, dtype=np.int64)
            cols, vals = [], []
            for i, row in enumerate(sorted(r) for r in rows):
                cols += [v for v, _ in row]
                vals += [c for _, c in row]
                indptr[i + 1] = len(cols)
            out[k] = (indptr, np.array(cols, dtype=np.int32), np.array(vals, dtype=np.int32))
        return out

    def gdv(self) -> np.ndarray:
        """Orbit counts per node, straight from the enumeration (ORCA's numbering)."""
        out = np.zeros((self.num_nodes, 15), dtype=np.int64)
        for subset in connected_subsets(self._adj):
            degrees = [sum(1 for b in self._adj[a] if b in subset) for a in subset]
            edges = sum(degrees) // 2
            for a, d in zip(subset, degrees):
                out[a, _orbit(len(subset), edges, d, degrees)] += 1
        return out

    def edge_gdv(self) -> tuple[np.ndarray, np.ndarray]:
        """Edge orbit counts for the edges ``u < v``, from the enumeration."""
        edges = [(u, v) for u in range(self.num_nodes) for v in sorted(self._adj[u]) if u < v]
        index = {e: i for i, e in enumerate(edges)}
        out = np.zeros((len(edges), 12), dtype=np.int64)
        for subset in connected_subsets(self._adj):
            if len(subset) == 2:
                continue
            nodes = sorted(subset)
            degrees = [sum(1 for b in self._adj[a] if b in subset) for a in nodes]
            n_edges = sum(degrees) // 2
            orbit = {a: _orbit(len(nodes), n_edges, d, degrees) for a, d in zip(nodes, degrees)}
            for a, b in combinations(nodes, 2):
                if b in self._adj[a]:
                    out[index[(a, b)], EDGE_ORBIT[frozenset((orbit[a], orbit[b]))]] += 1
        return np.array(edges, dtype=np.int32).reshape(-1, 2), out


# Unordered pair of node orbits at the ends of an edge -> edge orbit (gradco's / ORCA's order).
EDGE_ORBIT: dict[frozenset, int] = {
    frozenset((1, 2)): 0, frozenset((3,)): 1, frozenset((4, 5)): 2, frozenset((5,)): 3,
    frozenset((6, 7)): 4, frozenset((8,)): 5, frozenset((9, 11)): 6, frozenset((10,)): 7,
    frozenset((10, 11)): 8, frozenset((12, 13)): 9, frozenset((13,)): 10, frozenset((14,)): 11,
}
