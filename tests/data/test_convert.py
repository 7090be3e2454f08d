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


def test_networkx_weights_are_kept_when_weighted():
    # the "weight" attributes were dropped: to_csr(weighted=True) gave a 0/1 matrix
    g = nx.Graph()
    g.add_edge("a", "b", weight=2.5)
    g.add_edge("b", "c")  # no attribute: weighs 1, as in networkx
    g.add_edge("c", "c", weight=4.0)  # a self-loop is stored once
    a = to_csr(g, weighted=True).toarray()
    expected = nx.to_numpy_array(g, nodelist=["a", "b", "c"])
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(to_csr(g).toarray(), (expected != 0).astype(np.float32))
    _, w, _ = to_edge_index(nx.path_graph(3))
    assert w is None  # an unweighted graph stays unweighted
    d = nx.DiGraph()
    d.add_edge(0, 1, weight=3.0)
    ei, w, n = to_edge_index(d)
    assert ei.tolist() == [[0], [1]] and w.tolist() == [3.0] and n == 2
    g.add_edge("a", "c", weight=float("nan"))
    with pytest.raises(ValueError, match="edge_weight holds NaN"):
        to_edge_index(g)


def test_float64_weights_keep_their_precision():
    # float32 would round 1e-50 to 0, and graphlets would then drop that edge
    g = nx.Graph()
    g.add_edge(0, 1, weight=1e-50)
    g.add_edge(1, 2, weight=0.1)
    assert to_csr(g, weighted=True, dtype=np.float64)[0, 1] == 1e-50
    m = sp.csr_matrix(np.array([[0, 1e-50], [1e-50, 0]]))
    assert to_csr(m, weighted=True, dtype=np.float64)[0, 1] == 1e-50
    # to_edge_index feeds PyG layers: float32 weights whatever the input's precision
    assert to_edge_index(m)[1].dtype == to_edge_index(g)[1].dtype == torch.float32
    from graphkit.graphlets import gdv

    assert gdv(g)[:, 0].tolist() == [1, 2, 1]  # node 0 keeps its edge


def test_weighted_without_weights_is_named():
    # the 0/1 adjacency stood in for the weights asked for (fastrp(..., weighted=True) on a
    # Data whose weights sat in edge_attr differed from the weighted result by up to 1.25)
    from torch_geometric.data import Data

    from graphkit.data.convert import to_csr

    ei = torch.tensor([[0, 1], [1, 0]])
    for graph in (ei, Data(edge_index=ei, num_nodes=2),
                  Data(edge_index=ei, edge_attr=torch.tensor([2.0, 2.0]), num_nodes=2)):
        with pytest.raises(ValueError, match="weighted=True, but the graph has no edge weights"):
            to_csr(graph, weighted=True)
        assert to_csr(graph).toarray().tolist() == [[0, 1], [1, 0]]
    weighted = Data(edge_index=ei, edge_weight=torch.tensor([2.0, 2.0]), num_nodes=2)
    assert to_csr(weighted, weighted=True).toarray().tolist() == [[0, 2], [2, 0]]


@pytest.mark.parametrize("weighted", [False, True])
def test_to_csr_leaves_the_callers_matrix_alone(weighted):
    # csr_matrix shared a float CSR input's arrays: to_csr set the user's weights to 1
    w = sp.csr_matrix(np.array([[0, 2.5, 0], [2.5, 0, 0.5], [0, 0.5, 0]]))
    before = w.toarray().copy()
    to_csr(w, weighted=weighted, dtype=np.float64)
    np.testing.assert_array_equal(w.toarray(), before)


def test_a_stored_zero_is_no_edge():
    # SciPy keeps an entry set to 0: it became an edge of weight 1
    a = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], float))
    a[0, 1] = a[1, 0] = 0
    assert a.nnz == 6
    for weighted in (False, True):
        out = to_csr(a, weighted=weighted)
        assert out.nnz == 4 and out[0, 1] == 0


def test_a_networkx_graph_takes_more_nodes_as_isolated():
    # num_nodes above the graph's count took the edge-list path, which refused weighted=True
    # for an unweighted networkx graph ("the graph has no edge weights")
    out = to_csr(nx.path_graph(3), num_nodes=5, weighted=True)
    assert out.shape == (5, 5)
    np.testing.assert_array_equal(out.toarray()[:3, :3], nx.to_numpy_array(nx.path_graph(3)))
    assert out[3:].nnz == 0
