import pytest
import torch
from torch_geometric.data import Data

from graphkit.transforms import STABLERefine


def community_graph():
    gen = torch.Generator().manual_seed(0)
    n = 24
    y = torch.arange(n) // 12
    same = y.view(-1, 1) == y.view(1, -1)
    adj = torch.triu((torch.rand(n, n, generator=gen) < 0.4) & same, diagonal=1)
    adj[0, 12] = adj[5, 20] = True  # two cross-community edges
    ei = adj.nonzero().t()
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    x = torch.zeros(n, 8)
    x[y == 0, :4] = 1.0
    x[y == 1, 4:] = 1.0
    return Data(x=x, edge_index=ei, edge_weight=torch.ones(ei.size(1)), y=y, num_nodes=n)


def test_returns_refined_copy():
    data = community_graph()
    data.edge_type = torch.zeros(data.num_edges, dtype=torch.long)
    data.edge_time = torch.arange(data.num_edges)
    t = STABLERefine(embedding_dim=16, max_embedding_epochs=30, k=2, seed=0)
    out = t(data)
    assert out is not data and torch.equal(data.edge_index, community_graph().edge_index)
    assert "edge_type" in data  # the input keeps its attributes
    assert out.stable_emb.shape == (24, 16)
    # every edge-level attribute went with the old edges, not only edge_weight
    assert "edge_weight" not in out and "edge_type" not in out and "edge_time" not in out
    assert bool((out.edge_index[0] != out.edge_index[1]).all())
    # features are disjoint across communities: Jaccard removes both cross edges
    assert out.stable_info["jaccard_removed"] == 4
    assert out.stable_info["edges_out"] == out.edge_index.size(1)
    assert "k=2" in repr(t)


def test_reproducible_with_seed():
    data = community_graph()
    a = STABLERefine(embedding_dim=8, max_embedding_epochs=10, seed=1)(data)
    b = STABLERefine(embedding_dim=8, max_embedding_epochs=10, seed=1)(data)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.stable_emb, b.stable_emb)


def test_bad_inputs():
    data = community_graph()
    with pytest.raises(ValueError, match="features"):
        STABLERefine()(Data(edge_index=data.edge_index, num_nodes=24))
    with pytest.raises(ValueError, match="embedding_attr"):
        STABLERefine(embedding_attr="")
    with pytest.raises(ValueError, match="k must"):
        STABLERefine(k=-1)
