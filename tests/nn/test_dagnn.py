"""DAGNNProp and DAGNN: structure, propagation and retention scores."""

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from graphkit.nn import DAGNN, DAGNNProp


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def graph():
    # A path 0-1-2-3, a triangle 4-5-6 with an existing self-loop on 4, and isolated node 7.
    src = [0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6, 4, 4]
    dst = [1, 0, 2, 1, 3, 2, 5, 4, 6, 5, 4, 6, 4]
    return torch.tensor([src, dst]), 8


def dense_gcn(edge_index, n, dtype=torch.float64):
    ei, w = gcn_norm(edge_index, None, n, add_self_loops=True, dtype=dtype)
    return to_dense_adj(ei, edge_attr=w, max_num_nodes=n)[0].t()  # row i gathers into i


def test_parameter_count_matches_official_models():
    assert n_params(DAGNN(128, 256, 40, K=16, batch_norm=True)) == 43_857  # ogbn-arxiv
    assert n_params(DAGNN(1433, 64, 7, K=10)) == 92_239  # Cora


def test_input_dropout_follows_the_official_variants():
    assert DAGNN(10, 8, 3, K=2, dropout=0.8).input_dropout == 0.8
    assert DAGNN(10, 8, 3, K=2, dropout=0.2, batch_norm=True).input_dropout == 0.0


def test_hops_equal_powers_of_gcn_norm_with_self_loops(graph):
    edge_index, n = graph
    prop = DAGNNProp(3, K=4)
    x = torch.randn(n, 3, dtype=torch.float64)
    hops = prop.double().propagate_hops(x, edge_index)
    a = dense_gcn(edge_index, n)
    assert hops.shape == (n, 5, 3)
    for k in range(5):
        torch.testing.assert_close(hops[:, k], torch.linalg.matrix_power(a, k) @ x)
    # The isolated node keeps a self-loop of weight 1; the existing self-loop is not doubled.
    assert a[7, 7] == 1.0
    torch.testing.assert_close(a[4, 4], torch.tensor(1 / 3, dtype=torch.float64))


def test_output_is_score_weighted_sum_of_hops(graph):
    edge_index, n = graph
    prop = DAGNNProp(3, K=3)
    x = torch.randn(n, 3)
    out, scores = prop(x, edge_index, return_retention_scores=True)
    hops = prop.propagate_hops(x, edge_index)
    expected = (scores.unsqueeze(-1) * hops).sum(1)
    torch.testing.assert_close(out, expected)
    s, b = prop.proj.weight[0], prop.proj.bias
    torch.testing.assert_close(scores, torch.sigmoid(hops @ s + b))


def test_retention_scores_in_unit_interval_and_not_normalised(graph):
    edge_index, n = graph
    prop = DAGNNProp(4, K=5)
    _, scores = prop(torch.randn(n, 4) * 5, edge_index, return_retention_scores=True)
    assert scores.shape == (n, 6)
    assert bool(((scores > 0) & (scores < 1)).all())
    assert not torch.allclose(scores.sum(1), torch.ones(n))


def test_k0_is_mlp_logits_times_their_own_gate():
    model = DAGNN(5, 8, 3, K=0).eval()
    x = torch.randn(6, 5)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    z = model.transform(x)
    gate = torch.sigmoid(model.prop.proj(z))
    torch.testing.assert_close(model(x, edge_index), z * gate)


def test_cached_normalisation_is_reused(graph):
    edge_index, n = graph
    prop = DAGNNProp(2, K=2, cached=True)
    x = torch.randn(n, 2)
    out = prop(x, edge_index)
    # A second call with a different graph still uses the first graph's normalisation.
    torch.testing.assert_close(prop(x, edge_index[:, :2]), out)
    prop.reset_parameters()
    assert prop._cache is None


def test_sparse_adjacency_input_matches_edge_index(graph):
    from torch_geometric.utils import to_torch_csr_tensor

    edge_index, n = graph
    ei, w = gcn_norm(edge_index, None, n)
    adj_t = to_torch_csr_tensor(ei.flip(0), w, size=(n, n))
    prop = DAGNNProp(3, K=3, normalize=False)
    x = torch.randn(n, 3)
    torch.testing.assert_close(prop(x, adj_t), prop(x, ei, w))


def test_gradients_reach_every_parameter(graph):
    edge_index, n = graph
    model = DAGNN(4, 8, 3, K=3, batch_norm=True)
    model(torch.randn(n, 4), edge_index).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_repr():
    assert repr(DAGNNProp(7, K=10)) == "DAGNNProp(7, K=10)"
    assert "K=10" in repr(DAGNN(3, 4, 2, K=10))


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=0, K=2), "channels"),
    (dict(channels=3, K=-1), "K"),
])
def test_prop_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DAGNNProp(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_channels=0, hidden_channels=4, out_channels=2, K=2), "in_channels"),
    (dict(in_channels=3, hidden_channels=4, out_channels=2, K=2, dropout=1.0), "dropout"),
    (dict(in_channels=3, hidden_channels=4, out_channels=2, K=2, input_dropout=-0.1),
     "input_dropout"),
])
def test_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DAGNN(**kwargs)


def test_prop_rejects_wrong_feature_size(graph):
    edge_index, n = graph
    with pytest.raises(ValueError, match="x must have shape"):
        DAGNNProp(3, K=2)(torch.randn(n, 4), edge_index)
