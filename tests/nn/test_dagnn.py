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
    cache = prop._cache
    torch.testing.assert_close(prop(x, edge_index.clone()), out)  # same graph, other tensor
    assert prop._cache is cache
    # another graph of the same size used to get the first graph's normalisation silently
    with pytest.raises(ValueError, match="DAGNNProp .*cache holds another graph .*edge_index"):
        prop(x, edge_index[:, :2])
    prop.reset_parameters()
    assert prop._cache is None
    fresh = DAGNNProp(2, K=2)
    fresh.load_state_dict(prop.state_dict())
    torch.testing.assert_close(prop(x, edge_index[:, :2]), fresh(x, edge_index[:, :2]))


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


def test_model_names_integer_features(graph):
    # Linear failed with "result type Float can't be cast to the desired output type Long"
    edge_index, n = graph
    with pytest.raises(ValueError, match=r"^x must be floating point, got dtype torch.int64$"):
        DAGNN(4, 8, 3, K=2)(torch.ones(n, 4, dtype=torch.long), edge_index)


def test_gradient_reaches_learned_edge_weights(graph):
    # x requires grad inside DAGNN (the MLP's logits), which takes the fast sparse path
    edge_index, n = graph
    prop = DAGNNProp(2, K=3).double()
    x = torch.randn(n, 2, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(edge_index.size(1), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: prop(x, edge_index, w), (x, weight))


def test_cached_graph_is_a_constant(graph):
    edge_index, n = graph
    prop = DAGNNProp(2, K=2, cached=True)
    weight = torch.rand(edge_index.size(1), requires_grad=True)
    for _ in range(2):  # a graph kept from the first call would fail the second backward
        prop(torch.randn(n, 2, requires_grad=True), edge_index, weight).sum().backward()
    assert weight.grad is None


def test_edge_weight_is_promoted_to_the_feature_dtype(graph):
    # PyG datasets store float32 weights; a model in float64 still runs, in float64
    edge_index, n = graph
    weight = torch.rand(edge_index.size(1))
    model = DAGNN(3, 4, 2, K=2).double()
    assert model(torch.randn(n, 3, dtype=torch.float64), edge_index, weight).dtype == \
        torch.float64


def test_prop_rejects_edge_weight_of_wrong_length(graph):
    edge_index, n = graph
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        DAGNNProp(2, K=2)(torch.randn(n, 2), edge_index, torch.rand(3))


def test_cached_prop_names_a_graph_of_another_size(graph):
    edge_index, n = graph
    prop = DAGNNProp(2, K=2, cached=True)
    prop(torch.randn(n, 2), edge_index)
    with pytest.raises(ValueError, match="cached for a graph of 8 nodes but got 9"):
        prop(torch.randn(n + 1, 2), edge_index)


def test_pyg_explainer_masks_dagnn_edges(graph):
    from torch_geometric.explain import Explainer, GNNExplainer

    edge_index, n = graph
    torch.manual_seed(0)
    model = DAGNN(3, 8, 2, K=3).eval()
    explainer = Explainer(model, GNNExplainer(epochs=5), explanation_type="model",
                          edge_mask_type="object",
                          model_config=dict(mode="multiclass_classification",
                                            task_level="node", return_type="raw"))
    explanation = explainer(torch.randn(n, 3), edge_index, index=1)
    # node 1's receptive field (the path 0-1-2-3) gets a mask; the triangle does not
    assert explanation.edge_mask[:6].abs().sum() > 0
    assert explanation.edge_mask[6:].abs().sum() == 0
