"""Graph families shared by the graphlet tests."""

import itertools

import networkx as nx
import numpy as np


def all_graphs(n: int) -> list[nx.Graph]:
    """Every labelled graph on ``n`` nodes (upper-triangle bit vectors)."""
    pairs = list(itertools.combinations(range(n), 2))
    graphs = []
    for bits in range(1 << len(pairs)):
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(p for b, p in enumerate(pairs) if bits >> b & 1)
        graphs.append(g)
    return graphs


def random_graphs(n: int, count: int, seed: int) -> list[nx.Graph]:
    rng = np.random.default_rng(seed)
    return [nx.gnp_random_graph(n, float(rng.uniform(0.1, 0.9)), seed=int(rng.integers(1 << 31)))
            for _ in range(count)]
