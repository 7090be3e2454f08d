"""graphkit.data.convert: every supported graph input gives the same edges; bad input is named."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from graphkit.data.convert import to_csr, to_edge_index

EDGES = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])


def _pairs(ei):
    return sorted(map(tuple, ei.t().tolist()))


@pytest.mark.parametrize("form", ["tensor", "numpy", "scipy", "networkx", "data"])
def test_every_input_form_gives_the_same_edges(form):
    graph = {
        "tensor": EDGES,
        "numpy": EDGES.numpy(),
        "scipy": sp.csr_matrix((np.ones(4), EDGES.numpy()), shape=(3, 3)),
        "networkx": nx.path_graph(3),
        "data": Data(edge_index=EDGES, num_nodes=3),
    }[form]
    ei, _, n = to_edge_index(graph)
    assert n == 3 and _pairs(ei) == _pairs(EDGES)
    assert (to_csr(graph).toarray() == np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])).all()


def test_to_csr_sums_duplicates_only_when_weighted():
    ei = torch.tensor([[0, 0, 1], [1, 1, 0]])
    assert to_csr(ei, 2).toarray().tolist() == [[0, 1], [1, 0]]
    weights = sp.csr_matrix((np.array([2.0, 3.0]), (np.array([0, 0]), np.array([1, 1]))),
                            shape=(2, 2))
    assert to_csr(weights, weighted=True)[0, 1] == 5.0


def test_bad_inputs_are_named():
    a = sp.csr_matrix(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, np.nan], [0.0, 1.0, 0.0]]))
    for weighted in (True, False):  # a NaN weight is malformed even where weights are ignored
        with pytest.raises(ValueError, match=r"NaN or infinite edge weights \(first in row 1\)"):
            to_csr(a, weighted=weighted)
    with pytest.raises(ValueError, match="square"):
        to_edge_index(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="does not match"):
        to_edge_index(sp.eye(3, format="csr"), num_nodes=4)
    with pytest.raises(ValueError, match="out of range"):
        to_edge_index(EDGES, num_nodes=2)


def test_edge_weight_of_the_wrong_length_is_named():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    # used to fail inside SciPy: "all index and data arrays must have the same length"
    for w in (torch.ones(2), torch.ones(3, 1)):
        with pytest.raises(ValueError, match=r"edge_weight must have shape \[3\]"):
            to_csr(Data(edge_index=ei, edge_weight=w, num_nodes=3), weighted=True)
    a = to_csr(Data(edge_index=ei, edge_weight=torch.tensor([1.0, 2.0, 3.0]), num_nodes=3),
               weighted=True)
    assert a[1, 2] == 2.0


def test_num_nodes_must_be_a_non_negative_integer():
    ei = torch.tensor([[0, 1], [1, 0]])
    # -3 used to come back as the node count; 2.5 was truncated to 2
    for bad in (-3, 2.5):
        with pytest.raises(ValueError, match="num_nodes must be a non-negative integer"):
            to_edge_index(ei, num_nodes=bad)
    assert to_edge_index(ei, num_nodes=np.int64(4))[2] == 4
