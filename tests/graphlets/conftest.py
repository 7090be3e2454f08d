import networkx as nx
import pytest


@pytest.fixture
def small_graph() -> nx.Graph:
    """A 9-node graph holding every graphlet on 2 to 4 nodes."""
    g = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 2), (0, 6), (6, 7),
                  (7, 0), (1, 7), (1, 6), (3, 8)])
    return g
