"""Hypergraph utilities on ``hyperedge_index``: exact values on small hypergraphs, bad inputs."""

import numpy as np
import pytest
import torch

from graphkit.data.hypergraph import (
    add_singleton_hyperedges,
    check_hyperedge_index,
    clique_expansion,
    hyperedge_degree,
    hyperedge_index_from_list,
    hyperedge_to_vertex,
    incidence_matrix,
    sample_hyperedges,
    subhypergraph,
    unique_hyperedges,
    vertex_degree,
    vertex_to_hyperedge,
)

# 6 vertices; vertex 5 is isolated. e0 = {0,1,2}, e1 = {2,3}, e2 = {3,4,0}, e3 = {1}.
EDGES = [[0, 1, 2], [2, 3], [3, 4, 0], [1]]
N = 6


@pytest.fixture
def hg():
    index, m = hyperedge_index_from_list(EDGES, num_nodes=N)
    return index, m


def test_from_list_builds_coordinate_list(hg):
    index, m = hg
    assert m == 4
    assert index.dtype == torch.long
    assert index.tolist() == [[0, 1, 2, 2, 3, 3, 4, 0, 1], [0, 0, 0, 1, 1, 2, 2, 2, 3]]


def test_from_empty_list():
    index, m = hyperedge_index_from_list([], num_nodes=3)
    assert m == 0 and index.shape == (2, 0)


@pytest.mark.parametrize(
    "edges, match",
    [
        ([[0, 1], []], "hyperedge 1 is empty"),
        ([[0, 0, 1]], "more than once"),
        ([[0, -1]], "negative vertex id"),
        ([[0, 7]], "out of range"),
        ([[0.5, 1.0]], "non-integer"),
        ("abc", "string"),
        ([[0, [1, 2]]], "hyperedge 0 must be a flat collection"),
        ([3, 4], "hyperedge 0 must be a flat collection"),  # ids where lists belong
    ],
)
def test_from_list_rejects_bad_hyperedges(edges, match):
    with pytest.raises(ValueError, match=match):
        hyperedge_index_from_list(edges, num_nodes=N)


@pytest.mark.parametrize(
    "index, match",
    [
        (torch.tensor([[0, 1], [0, 0]], dtype=torch.float), "integers"),
        (torch.tensor([0, 1]), "shape"),
        (torch.tensor([[0, -1], [0, 0]]), "negative"),
        (torch.tensor([[0, 9], [0, 0]]), "vertex id 9"),
        (torch.tensor([[0, 1], [0, 8]]), "hyperedge id 8"),
        # counted twice by every degree and in H before
        (torch.tensor([[0, 1, 1, 2], [0, 0, 0, 0]]), "lists vertex 1 in hyperedge 0 more than"),
        (torch.tensor([[3, 0, 3], [2, 1, 2]]), "lists vertex 3 in hyperedge 2 more than"),
    ],
)
def test_check_hyperedge_index_names_the_problem(index, match):
    with pytest.raises(ValueError, match=match):
        check_hyperedge_index(index, num_nodes=N, num_hyperedges=4)


def test_incidence_matrix_and_degrees(hg):
    index, m = hg
    H = incidence_matrix(index, N, m, layout="dense")
    expected = np.zeros((N, m))
    for e, members in enumerate(EDGES):
        expected[members, e] = 1
    np.testing.assert_array_equal(H.numpy(), expected)
    assert incidence_matrix(index, N, m).is_sparse
    np.testing.assert_array_equal(vertex_degree(index, N).numpy(), expected.sum(1))
    np.testing.assert_array_equal(hyperedge_degree(index, m).numpy(), expected.sum(0))
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    np.testing.assert_allclose(vertex_degree(index, N, w).numpy(), expected @ w.numpy())
    # float64 weights stay float64: float32 would round 1e-50 to 0, an infinite D_v^-1/2
    tiny = vertex_degree(torch.tensor([[0, 1, 1], [0, 0, 1]]), 2,
                         torch.tensor([1e-50, 1.0], dtype=torch.float64))
    assert tiny.dtype == torch.float64 and tiny[0] == 1e-50
    with pytest.raises(ValueError, match="layout"):
        incidence_matrix(index, N, m, layout="csr")


def test_vertex_hyperedge_aggregation_equals_dense(hg):
    index, m = hg
    H = incidence_matrix(index, N, m, layout="dense").double()
    x = torch.randn(N, 3, dtype=torch.float64)
    torch.testing.assert_close(vertex_to_hyperedge(x, index, m), (H.T @ x) / H.sum(0)[:, None])
    torch.testing.assert_close(vertex_to_hyperedge(x, index, m, reduce="sum"), H.T @ x)
    xe = torch.randn(m, 3, dtype=torch.float64)
    out = hyperedge_to_vertex(xe, index, N)
    deg = H.sum(1)
    ref = (H @ xe) / deg.clamp(min=1)[:, None]
    torch.testing.assert_close(out, ref)
    assert out[5].abs().sum() == 0  # the isolated vertex gets zeros


def test_add_singleton_hyperedges_covers_isolated_vertices(hg):
    index, m = hg
    fixed, m2 = add_singleton_hyperedges(index, N, m)
    assert m2 == m + 1
    assert fixed[:, -1].tolist() == [5, 4]
    assert bool((vertex_degree(fixed, N) > 0).all())
    same, m3 = add_singleton_hyperedges(fixed, N, m2)
    assert m3 == m2 and torch.equal(same, fixed)


def test_unique_hyperedges_merges_equal_member_sets_in_first_order():
    # e1 repeats e0 in another order, e3 repeats e2; id 4 has no members.
    edges = [[0, 1, 2], [2, 0, 1], [3, 4], [4, 3], [1]]
    index, m = hyperedge_index_from_list(edges, num_nodes=N)
    index = index[:, index[1] != 4]  # drop [1]: hyperedge id 4 stays without members
    out, k = unique_hyperedges(index, m)
    assert k == 2
    sets = [sorted(out[0, out[1] == e].tolist()) for e in range(k)]
    assert sets == [[0, 1, 2], [3, 4]]
    again, k2 = unique_hyperedges(out, k)  # idempotent
    assert k2 == k and torch.equal(again, out)
    empty, k0 = unique_hyperedges(torch.empty(2, 0, dtype=torch.long))
    assert k0 == 0 and empty.shape == (2, 0)
    with pytest.raises(ValueError, match="hyperedge id"):
        unique_hyperedges(index, 3)


def test_clique_expansion_equals_offdiagonal_of_HHt(hg):
    index, m = hg
    edge_index, weight = clique_expansion(index, N, m)
    H = incidence_matrix(index, N, m, layout="dense")
    A = H @ H.T
    A.fill_diagonal_(0)
    dense = torch.zeros(N, N)
    dense[edge_index[0], edge_index[1]] = weight
    torch.testing.assert_close(dense, A)
    assert not bool((edge_index[0] == edge_index[1]).any())
    # Shared twice: {0, 3} lie together in e2 only; add e4 = {0, 3} and the weight becomes 2.
    index2, m2 = hyperedge_index_from_list(EDGES + [[0, 3]], num_nodes=N)
    ei2, w2 = clique_expansion(index2, N, m2)
    pos = ((ei2[0] == 0) & (ei2[1] == 3)).nonzero().item()
    assert w2[pos] == 2


def test_sample_hyperedges_keeps_by_probability(hg):
    index, m = hg
    kept, mask = sample_hyperedges(index, torch.tensor([1.0, 0.0, 1.0, 0.0]), m)
    assert mask.tolist() == [True, False, True, False]
    assert sorted(set(kept[1].tolist())) == [0, 2]
    relabelled, _ = sample_hyperedges(index, torch.tensor([1.0, 0.0, 1.0, 0.0]), m, relabel=True)
    assert sorted(set(relabelled[1].tolist())) == [0, 1]
    all_kept, mask1 = sample_hyperedges(index, 1.0, m)
    assert torch.equal(all_kept, index) and bool(mask1.all())
    g = torch.Generator().manual_seed(0)
    _, half = sample_hyperedges(torch.stack([torch.zeros(4000, dtype=torch.long),
                                             torch.arange(4000)]), 0.5, generator=g)
    assert abs(half.float().mean().item() - 0.5) < 0.05
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sample_hyperedges(index, 1.5, m)
    with pytest.raises(ValueError, match="shape"):
        sample_hyperedges(index, torch.ones(3), m)


def test_subhypergraph_restricts_and_renumbers(hg):
    index, m = hg
    sub, k, mask = subhypergraph(torch.tensor([3, 0, 2]), index, N, m)
    # e0 -> {0,2} -> {1,2}; e1 -> {2,3} -> {2,0}; e2 -> {3,0} -> {0,1}; e3 = {1} dropped.
    assert k == 3 and mask.tolist() == [True, True, True, False]
    edges = {}
    for v, e in sub.t().tolist():
        edges.setdefault(e, set()).add(v)
    assert edges == {0: {1, 2}, 1: {2, 0}, 2: {0, 1}}
    boolmask = torch.zeros(N, dtype=torch.bool)
    boolmask[[0, 2, 3]] = True
    sub2, k2, _ = subhypergraph(boolmask, index, N, m)
    assert k2 == 3 and sub2.size(1) == sub.size(1)
    with pytest.raises(ValueError, match="more than once"):
        subhypergraph(torch.tensor([0, 0]), index, N, m)
    with pytest.raises(ValueError, match="out of range"):
        subhypergraph(torch.tensor([0, 9]), index, N, m)


def test_bad_layouts_subsets_and_node_counts_are_named(hg):
    index, m = hg
    x = torch.randn(N, 3)
    # a float index used to fail inside the indexing with no name
    with pytest.raises(ValueError, match="hyperedge_index must hold integer"):
        vertex_to_hyperedge(x, index.float(), m)
    with pytest.raises(ValueError, match="hyperedge_index must have shape"):
        hyperedge_to_vertex(torch.randn(m, 3), index[0], N)
    # a float subset used to be truncated to ids, a 2-D one flattened
    with pytest.raises(ValueError, match="subset must be a vector of vertex ids"):
        subhypergraph(torch.tensor([0.5, 2.7]), index, N, m)
    with pytest.raises(ValueError, match="subset must be a vector of vertex ids"):
        subhypergraph(torch.tensor([[0, 1]]), index, N, m)
    with pytest.raises(ValueError, match="num_nodes must be >= 0"):
        add_singleton_hyperedges(torch.empty(2, 0, dtype=torch.long), -1)


def test_repeated_incidences_are_refused_by_the_degrees_and_h():
    dup = torch.tensor([[0, 1, 1, 2], [0, 0, 0, 0]])
    for fn in (lambda: incidence_matrix(dup, 3, layout="dense"), lambda: hyperedge_degree(dup),
               lambda: vertex_degree(dup, 3)):
        with pytest.raises(ValueError, match="more than once"):
            fn()
