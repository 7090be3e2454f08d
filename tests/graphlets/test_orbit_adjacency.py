import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from graphlet_cases import all_graphs, random_graphs

from graphkit.graphlets import (
    GRAPHLET_OF_ORBIT,
    KEYS,
    GraphletInputWarning,
    gdv,
    graphlet_adjacency,
    orbit_adjacency,
    select_keys,
)
from graphkit.ops.graphlets.python_ref import brute_force_counts, connected_subsets


def dense_ref(g: nx.Graph) -> dict:
    n = g.number_of_nodes()
    adj = [set(g[u]) for u in range(n)]
    out = {}
    for key, entries in brute_force_counts(adj).items():
        m = np.zeros((n, n), dtype=np.int64)
        for (u, v), c in entries.items():
            m[u, v] = c
        out[key] = m
    return out


def assert_equal_ref(g: nx.Graph) -> None:
    got = orbit_adjacency(g, num_nodes=g.number_of_nodes(), dense=True)
    ref = dense_ref(g)
    for key in KEYS:
        np.testing.assert_array_equal(got[key], ref[key], err_msg=str(key))


def test_keys_match_gradco_table():
    assert len(KEYS) == 28
    upper = {k for k in KEYS if k[1] <= k[2]}
    assert len(upper) == 20
    assert {k for k in KEYS if k[0] == 3} == {(3, 4, 4)}
    for h, i, j in KEYS:
        assert (h, j, i) in KEYS


def test_all_five_node_graphs_equal_brute_force():
    for g in all_graphs(5):
        assert_equal_ref(g)


def test_random_six_node_graphs_equal_brute_force():
    for g in random_graphs(6, 300, seed=1):
        assert_equal_ref(g)


@pytest.mark.slow
def test_2000_random_six_node_graphs_equal_brute_force():
    for g in random_graphs(6, 2000, seed=2):
        assert_equal_ref(g)


@pytest.mark.parametrize("n,p,seed", [(60, 0.1, 0), (40, 0.3, 1)])
def test_erdos_renyi_equal_brute_force(n, p, seed):
    assert_equal_ref(nx.gnp_random_graph(n, p, seed=seed))


def test_barabasi_albert_equal_brute_force():
    assert_equal_ref(nx.barabasi_albert_graph(100, 3, seed=0))


@pytest.mark.slow
def test_50_erdos_renyi_and_20_barabasi_albert_equal_brute_force():
    for s in range(50):
        assert_equal_ref(nx.gnp_random_graph(60, (0.05, 0.1, 0.3)[s % 3], seed=s))
    for s in range(20):
        assert_equal_ref(nx.barabasi_albert_graph(200, 3, seed=100 + s))


def test_closed_forms_and_symmetry():
    g = nx.gnp_random_graph(80, 0.15, seed=3)
    m = orbit_adjacency(g)
    a = nx.to_numpy_array(g, nodelist=range(80), dtype=np.int64)
    a2 = a @ a
    np.testing.assert_array_equal(m[(2, 1, 1)].toarray(), a2 * (1 - a - np.eye(80, dtype=int)))
    np.testing.assert_array_equal(m[(1, 3, 3)].toarray(), a * a2)
    np.testing.assert_array_equal(m[(1, 0, 0)].toarray(), a)
    k4 = sum(1 for c in nx.enumerate_all_cliques(g) if len(c) == 4)
    assert m[(1, 14, 14)].sum() == 12 * k4
    for h, i, j in KEYS:
        x = m[(h, i, j)]
        assert x.dtype == np.int32 and x.has_sorted_indices and (x.data > 0).all()
        assert x.diagonal().sum() == 0
        assert (x != m[(h, j, i)].T).nnz == 0


def test_graphlet_adjacency_totals_count_occurrences():
    g = nx.gnp_random_graph(30, 0.25, seed=4)
    adj = [set(g[u]) for u in range(30)]
    occurrences = np.zeros(9, dtype=np.int64)
    for s in connected_subsets(adj):
        edges = sum(1 for u in s for v in adj[u] if v in s) // 2
        degs = sorted(sum(1 for v in adj[u] if v in s) for u in s)
        if len(s) < 4:
            graphlet = {(2, 1): 0, (3, 2): 1, (3, 3): 2}[(len(s), edges)]
        elif edges == 3:
            graphlet = 4 if degs[-1] == 3 else 3
        elif edges == 4:
            graphlet = 5 if degs == [2, 2, 2, 2] else 6
        else:
            graphlet = {5: 7, 6: 8}[edges]
        occurrences[graphlet] += 1
    pairs = [2, 6, 6, 12, 12, 12, 12, 12, 12]  # ordered node pairs per graphlet
    for graphlet in range(9):
        assert graphlet_adjacency(g, graphlet).sum() == occurrences[graphlet] * pairs[graphlet]
    assert GRAPHLET_OF_ORBIT[14] == 8


def test_gdv_is_row_sums_over_divisors(small_graph):
    m = orbit_adjacency(small_graph, hops=1)
    table = [((1, 0, 0), 1), ((1, 1, 2), 1), ((1, 2, 1), 2), ((1, 3, 3), 2), ((1, 4, 5), 1),
             ((1, 5, 5), 1), ((1, 6, 7), 1), ((1, 7, 6), 3), ((1, 8, 8), 2), ((1, 9, 11), 1),
             ((1, 10, 10), 1), ((1, 11, 9), 1), ((1, 12, 13), 2), ((1, 13, 12), 2),
             ((1, 14, 14), 3)]
    expected = np.stack([m[k].sum(axis=1) // d for k, d in table], axis=1)
    np.testing.assert_array_equal(gdv(small_graph), expected)


def test_inputs_agree_and_hops_filter(small_graph):
    n = small_graph.number_of_nodes()
    a = nx.to_scipy_sparse_array(small_graph, nodelist=range(n), format="csr")
    ei = torch.tensor(list(small_graph.edges)).t()
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    ref = orbit_adjacency(small_graph)
    for graph in (a, ei, ei.numpy()):
        got = orbit_adjacency(graph, num_nodes=n)
        assert all((got[k] != ref[k]).nnz == 0 for k in KEYS)
    assert set(orbit_adjacency(small_graph, hops=2)) == {k for k in KEYS if k[0] == 2}
    assert set(orbit_adjacency(small_graph, hops=[1, 3])) == {k for k in KEYS if k[0] != 2}
    only = orbit_adjacency(small_graph, keys=[(2, 9, 10)])
    assert list(only) == [(2, 9, 10)]


def test_empty_and_isolated_nodes():
    m = orbit_adjacency(torch.empty(2, 0, dtype=torch.long), num_nodes=4)
    assert all(x.shape == (4, 4) and x.nnz == 0 for x in m.values())
    m = orbit_adjacency(nx.empty_graph(0))
    assert all(x.shape == (0, 0) for x in m.values())
    g = nx.path_graph(4)
    g.add_nodes_from([4, 5])
    m = orbit_adjacency(g)
    assert m[(3, 4, 4)].toarray()[0, 3] == 1 and m[(3, 4, 4)].nnz == 2
    assert gdv(g)[4:].sum() == 0


def test_self_loops_duplicates_and_direction_warn_then_simplify(small_graph):
    ref = orbit_adjacency(small_graph)
    ei = torch.tensor(list(small_graph.edges)).t()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        orbit_adjacency(ei, num_nodes=9)  # each edge once: symmetrised silently
    messy = torch.cat([ei, ei[:, :3].flip(0), ei[:, :2], torch.tensor([[4], [4]])], dim=1)
    with pytest.warns(GraphletInputWarning, match="self-loop.*duplicate.*directed"):
        got = orbit_adjacency(messy, num_nodes=9)
    assert all((got[k] != ref[k]).nnz == 0 for k in KEYS)
    weighted = sp.csr_array(nx.to_scipy_sparse_array(small_graph, nodelist=range(9)) * 3.0)
    with pytest.warns(GraphletInputWarning, match="weights ignored"):
        got = orbit_adjacency(weighted)
    assert (got[(2, 6, 6)] != ref[(2, 6, 6)]).nnz == 0


def test_bad_inputs_raise_clear_errors(small_graph):
    with pytest.raises(ValueError, match="hops"):
        orbit_adjacency(small_graph, hops=4)
    with pytest.raises(ValueError, match="unknown orbit-adjacency key"):
        select_keys(keys=[(2, 3, 3)])
    with pytest.raises(ValueError, match="square"):
        orbit_adjacency(sp.csr_array(np.ones((2, 3))))
    with pytest.raises(ValueError, match="out of range"):
        orbit_adjacency(torch.tensor([[0, 5], [5, 0]]), num_nodes=3)
    with pytest.raises(ValueError, match="unknown graphlet backend"):
        orbit_adjacency(small_graph, backend="fortran")
    with pytest.raises(ValueError, match="graphlet must be"):
        graphlet_adjacency(small_graph, 9)


def test_bad_values_of_hops_keys_graphlet_and_weights(small_graph):
    # 1.5 was read as hop 1 and hops=[] returned no matrix at all, without an error
    for hops in (1.5, [], [1, "2"]):
        with pytest.raises(ValueError, match="hops must be in"):
            orbit_adjacency(small_graph, hops=hops)
    with pytest.raises(ValueError, match="keys must be .* triples"):
        select_keys(keys="abc")
    # graphlet=1.5 passed the range check and failed in an IndexError
    with pytest.raises(ValueError, match="graphlet must be an integer in 0..8, got 1.5"):
        graphlet_adjacency(small_graph, 1.5)
    # a NaN entry is neither an edge nor no edge: it used to count as an edge
    a = nx.to_scipy_sparse_array(small_graph, nodelist=range(9), format="csr", dtype=float)
    a.data[0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite edge weight \(nan\) at edge \(0, "):
        orbit_adjacency(a)
    with pytest.raises(ValueError, match="NaN or infinite"):
        gdv(sp.csr_array(np.array([[0.0, np.inf], [np.inf, 0.0]])))
