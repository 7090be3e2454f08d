import pytest
import torch
from torch_geometric.utils import degree, to_undirected

from graphkit.robust import cosine_prune, cosine_similarity_edges, knn_add

EMB = torch.tensor([
    [1.0, 0.0],
    [1.0, 1.0],   # cos(0,1) = 0.7071
    [0.0, 1.0],   # cos(0,2) = 0
    [-1.0, 0.1],  # cos(0,3) < 0
    [1.0, 0.2],
])


def test_cosine_values():
    ei = torch.tensor([[0, 0, 0], [1, 2, 3]])
    sim = cosine_similarity_edges(EMB, ei)
    assert torch.allclose(sim[:2], torch.tensor([2 ** -0.5, 0.0]), atol=1e-6)
    assert float(sim[2]) < 0


def test_cosine_prune_deletes_at_or_below_threshold():
    ei = to_undirected(torch.tensor([[0, 0, 0, 1], [1, 2, 3, 2]]))
    kept, removed = cosine_prune(ei, EMB, threshold=0.0)  # cos = 0 is removed (<=)
    assert {tuple(e) for e in removed.t().tolist()} == {(0, 2), (2, 0), (0, 3), (3, 0)}
    assert kept.size(1) + removed.size(1) == ei.size(1)
    kept_hi, _ = cosine_prune(ei, EMB, threshold=2 ** -0.5)  # exactly equal: removed
    assert {tuple(e) for e in kept_hi.t().tolist()} == set()
    with pytest.raises(ValueError, match="cosine threshold"):
        cosine_prune(ei, EMB, 1.5)


def star_plus_path():
    # hub 0 joined to 1, 2, 3; path 4-5; degrees: 0->3, 1..3->1, 4,5->1; plus edge 1-2
    ei = to_undirected(torch.tensor([[0, 0, 0, 4, 1], [1, 2, 3, 5, 2]]))
    return ei, 6


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_never_picks_low_degree_nodes_or_self_loops(k):
    ei, n = star_plus_path()
    emb = torch.randn(n, 4, generator=torch.Generator().manual_seed(k))
    out = knn_add(ei, emb, k=k, min_degree=1)
    deg = degree(ei[1], n)
    new = {tuple(e) for e in out.t().tolist()} - {tuple(e) for e in ei.t().tolist()}
    assert all(deg[src] > 1 for src, _ in new)
    assert bool((out[0] != out[1]).all())
    assert {tuple(e) for e in ei.t().tolist()} <= {tuple(e) for e in out.t().tolist()}


def test_knn_adds_top_k_as_in_neighbours():
    ei, n = star_plus_path()  # candidates (degree > 1): 0, 1, 2
    emb = torch.eye(6)[[0, 1, 2, 0, 1, 2]].float() + 0.01
    out = knn_add(ei, emb, k=1, min_degree=1)
    pairs = {tuple(e) for e in out.t().tolist()}
    assert (0, 3) in pairs and (1, 4) in pairs and (2, 5) in pairs  # j -> i: row i gains j
    assert (3, 0) in pairs  # already an edge
    assert (4, 1) not in pairs  # additions are one-directional by default
    sym = {tuple(e) for e in knn_add(ei, emb, k=1, symmetric=True).t().tolist()}
    assert (4, 1) in sym and (5, 2) in sym


def test_knn_degree_counts_distinct_neighbours_only():
    # path 0-1-2-3: nodes 0 and 3 have one neighbour each; a repeated edge or a self-loop
    # made node 3 count as degree 2 and be picked as a new neighbour of node 0
    path = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.01]])
    plain = knn_add(path, emb, 2)
    for extra in (torch.tensor([[2, 3], [3, 2]]), torch.tensor([[3], [3]])):
        added = knn_add(torch.cat([path, extra], 1), emb, 2)
        assert not bool(((added[0] == 3) & (added[1] == 0)).any())
        assert not bool(((added[0] == 0) & (added[1] == 3)).any())
    assert not bool(((plain[0] == 3) & (plain[1] == 0)).any())


def test_knn_k0_is_identity_and_bad_k():
    ei, n = star_plus_path()
    emb = torch.randn(n, 3)
    assert knn_add(ei, emb, k=0).size(1) == ei.size(1)
    with pytest.raises(ValueError, match="non-negative"):
        knn_add(ei, emb, k=-1)
    with pytest.raises(ValueError, match="fewer than k"):
        knn_add(ei, emb, k=4, min_degree=1)


def test_knn_fractional_k_and_zero_chunk_are_named():
    ei, n = star_plus_path()
    emb = torch.randn(n, 3)
    with pytest.raises(ValueError, match="k must be a non-negative integer, got 1.5"):
        knn_add(ei, emb, k=1.5)  # failed in topk
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        knn_add(ei, emb, k=1, chunk_size=0)
