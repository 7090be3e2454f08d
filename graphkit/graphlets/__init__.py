"""Graphlet features: GRADCO's orbit adjacencies, graphlet degree vectors and PMI embeddings.

Counting runs on the fastest available backend (:mod:`graphkit.ops.graphlets`): the compiled
core, else Numba, else the brute-force Python oracle; ``GRAPHKIT_BACKEND`` forces one.
"""

from graphkit.graphlets._input import GraphletInputWarning, simple_graph
from graphkit.graphlets.embedding import pmi_matrix, svd_embedding
from graphkit.graphlets.gdv import EDGE_ORBITS, edge_gdv, gdv
from graphkit.graphlets.io import load_orbit_adjacency, save_orbit_adjacency
from graphkit.graphlets.orbit_adjacency import (
    GRAPHLET_OF_ORBIT,
    KEYS,
    graphlet_adjacency,
    orbit_adjacency,
    select_keys,
)

__all__ = [
    "KEYS",
    "GRAPHLET_OF_ORBIT",
    "EDGE_ORBITS",
    "GraphletInputWarning",
    "simple_graph",
    "select_keys",
    "orbit_adjacency",
    "graphlet_adjacency",
    "gdv",
    "edge_gdv",
    "save_orbit_adjacency",
    "load_orbit_adjacency",
    "pmi_matrix",
    "svd_embedding",
]
