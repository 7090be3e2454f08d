"""DGMLP/AIR: hop features, hop attention, the initial-residual MLP and the AIR models."""

import math

import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from graphkit.nn import APPNPAIR, GCNAIR, SGCAIR, HopAttention, InitialResidualMLP
from graphkit.nn.hop_features import (
    normalized_adjacency,
    propagate_hops,
    sparse_matmul,
    transpose_csr,
)


@pytest.fixture
def graph():
    # A directed star into node 0, a 2-cycle 3<->4 with a self-loop on 3, isolated node 5.
    src = [1, 2, 4, 3, 0, 3]
    dst = [0, 0, 3, 4, 1, 3]
    return torch.tensor([src, dst]), 6


def test_sym_adjacency_equals_gcn_norm(graph):
    edge_index, n = graph
    adj = normalized_adjacency(edge_index, n, "sym", dtype=torch.float64).to_dense()
    ei, w = gcn_norm(edge_index, None, n, add_self_loops=True, dtype=torch.float64)
    torch.testing.assert_close(adj, to_dense_adj(ei, edge_attr=w, max_num_nodes=n)[0].t())


def test_mean_adjacency_averages_in_neighbours(graph):
    edge_index, n = graph
    adj = normalized_adjacency(edge_index, n, "mean").to_dense()
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    out = (adj @ x).squeeze(1)
    # Node 0 receives from 1 and 2; node 3 from 4 and itself; node 2 receives nothing.
    torch.testing.assert_close(out[[0, 3, 2, 5]], torch.tensor([1.5, 3.5, 0.0, 0.0]))


def test_precomputed_hops_equal_repeated_sparse_products(graph):
    edge_index, n = graph
    adj = normalized_adjacency(edge_index, n)
    x = torch.randn(n, 4)
    hops = propagate_hops(x, adj, 5)
    assert hops.shape == (n, 6, 4)
    expected = x
    dense = adj.to_dense()
    for k in range(6):
        torch.testing.assert_close(hops[:, k], expected, atol=1e-5, rtol=1e-5)
        expected = dense @ expected


def test_sparse_matmul_gradient_uses_the_transpose(graph):
    """The directed graph makes A != A^T: the gradient must be A^T G, as for a dense A."""
    edge_index, n = graph
    adj = normalized_adjacency(edge_index, n, dtype=torch.float64)
    dense = adj.to_dense()
    assert not torch.equal(dense, dense.t())
    x = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(n, 3, dtype=torch.float64)
    (sparse_matmul(adj, x, transpose_csr(adj)) * g).sum().backward()
    torch.testing.assert_close(x.grad, dense.t() @ g)
    torch.testing.assert_close(sparse_matmul(adj, x.detach()), dense @ x.detach())
    with pytest.raises(ValueError, match="transpose"):
        sparse_matmul(adj, x, normalized_adjacency(edge_index[:, :0], n + 1))
    hops = propagate_hops(x, adj, 3, alpha=0.1, adj_t=transpose_csr(adj))
    torch.testing.assert_close(hops, propagate_hops(x, adj, 3, alpha=0.1))


def test_ppr_hops_follow_the_appnp_recursion(graph):
    edge_index, n = graph
    adj = normalized_adjacency(edge_index, n)
    x = torch.randn(n, 3)
    hops = propagate_hops(x, adj, 3, alpha=0.1)
    torch.testing.assert_close(hops[:, 2], 0.9 * (adj @ hops[:, 1]) + 0.1 * x)


def test_hop_attention_is_a_softmax_over_hops():
    att = HopAttention(4)
    hops = torch.randn(7, 5, 4) * 3
    out, w = att(hops, return_weights=True)
    assert bool((w >= 0).all())
    torch.testing.assert_close(w.sum(1), torch.ones(7))
    torch.testing.assert_close(out, (w.unsqueeze(-1) * hops).sum(1))


def test_hop_attention_scores_the_concatenation_with_hop_zero():
    att = HopAttention(3, activation="none")
    hops = torch.randn(4, 3, 3)
    cat = torch.cat([hops[:, :1].expand(-1, 3, -1), hops], dim=-1)
    torch.testing.assert_close(att.scores(hops), att.lin(cat).squeeze(-1))


def test_constant_score_gives_uniform_hop_average():
    att = HopAttention(3)
    with torch.no_grad():
        att.lin.weight.zero_()
    hops = torch.randn(5, 4, 3)
    torch.testing.assert_close(att(hops), hops.mean(1))


def test_sigmoid_scores_bound_the_hop_weights():
    # softmax of scores in [0, 1]: any two hop weights differ by at most a factor e, so with
    # K + 1 hops every weight lies in [1 / (1 + K e), e / (e + K)], however large the inputs
    # (the bounds are reached once the sigmoid saturates).
    att = HopAttention(3)
    with torch.no_grad():
        att.lin.weight.mul_(1e3)
    hops = torch.randn(50, 3, 3) * 10
    w = att.weights(hops)
    ratio = w.max(1).values / w.min(1).values
    eps = 1e-6
    assert bool((ratio <= math.e + eps).all())
    assert bool((w >= 1 / (1 + 2 * math.e) - eps).all())
    assert bool((w <= math.e / (math.e + 2) + eps).all())
    unbounded = HopAttention(3, activation="none")  # without the sigmoid a hop can dominate
    with torch.no_grad():
        unbounded.lin.load_state_dict(att.lin.state_dict())
    assert float(unbounded.weights(hops).min().detach()) < 1 / (1 + 2 * math.e) - eps


def test_skip_last_hop_reproduces_the_official_sum():
    att = HopAttention(3, skip_last_hop=True)
    hops = torch.randn(5, 4, 3)
    out, w = att(hops, return_weights=True)
    torch.testing.assert_close(w.sum(1), torch.ones(5))  # the last hop stays in the softmax
    torch.testing.assert_close(out, (w[:, :3, None] * hops[:, :3]).sum(1))


def test_initial_residual_mlp_depths_and_residual():
    x = torch.randn(6, 5)
    lin = InitialResidualMLP(5, 8, 3, num_layers=1)
    torch.testing.assert_close(lin(x), lin.lins[0](x))
    deep = InitialResidualMLP(5, 8, 3, num_layers=6).eval()
    assert deep(x).shape == (6, 3) and len(deep.lins) == 6
    plain = InitialResidualMLP(5, 8, 3, num_layers=6, initial_residual=False).eval()
    plain.load_state_dict(deep.state_dict())
    assert not torch.allclose(plain(x), deep(x))
    two = InitialResidualMLP(5, 8, 3, num_layers=2, initial_residual=False).eval()
    two_ir = InitialResidualMLP(5, 8, 3, num_layers=2).eval()
    two_ir.load_state_dict(two.state_dict())
    torch.testing.assert_close(two(x), two_ir(x))  # no middle layer: nothing to add h0 to


def test_sgc_air_official_mode_is_attention_plus_logistic_regression():
    model = SGCAIR(4, 3, num_layers=1, skip_last_hop=True).eval()
    hops = torch.randn(5, 4, 4)
    r = model.attention(hops)
    torch.testing.assert_close(model(hops), model.mlp.lins[0](r))
    assert sum(p.numel() for p in model.parameters()) == (2 * 4 + 1) + (4 * 3 + 3)


def test_sgc_air_pre_process_and_deep_mlp():
    model = SGCAIR(4, 3, hidden_channels=16, num_layers=6, pre_process=True, num_hops=3,
                   activation="leaky_relu", att_dropout=0.5, dropout=0.5)
    out = model(torch.randn(10, 4, 4))
    out.sum().backward()
    assert out.shape == (10, 3)
    with pytest.raises(ValueError, match="expected 4 hops"):
        model(torch.randn(10, 3, 4))


def test_appnp_air_matches_manual_computation(graph):
    edge_index, n = graph
    model = APPNPAIR(4, 8, 3, K=3, alpha=0.05).eval()
    x = torch.randn(n, 4)
    h0 = model.lin2(torch.relu(model.lin1(x)))
    hops = propagate_hops(h0, normalized_adjacency(edge_index, n), 3, 0.05)
    torch.testing.assert_close(model(x, edge_index), model.attention(hops))


def test_gcn_air_shapes_and_gradients(graph):
    edge_index, n = graph
    model = GCNAIR(4, 8, 3, num_layers=4)
    out = model(torch.randn(n, 4), edge_index)
    assert out.shape == (n, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("build, match", [
    (lambda: HopAttention(0), "channels"),
    (lambda: HopAttention(3, activation="softplus"), "activation"),
    (lambda: HopAttention(3, att_dropout=1.0), "att_dropout"),
    (lambda: InitialResidualMLP(3, 4, 2, num_layers=0), "num_layers"),
    (lambda: SGCAIR(3, 2, pre_process=True), "num_hops"),
    (lambda: SGCAIR(3, 2, num_hops=-1), r"^num_hops must be >= 0, got -1$"),  # not first_hop
    (lambda: SGCAIR(3, 2, input_dropout=1.5), "input_dropout"),
    (lambda: APPNPAIR(3, 4, 2, K=-1), "K"),
    (lambda: APPNPAIR(3, 4, 2, K=2, alpha=2.0), "alpha"),
    (lambda: GCNAIR(3, 4, 2, num_layers=0), "num_layers"),
])
def test_bad_arguments_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_inputs_raise(graph):
    edge_index, n = graph
    with pytest.raises(ValueError, match="normalization"):
        normalized_adjacency(edge_index, n, "rw")
    with pytest.raises(ValueError, match="out of range"):
        normalized_adjacency(edge_index, 3)
    adj = normalized_adjacency(edge_index, n)
    with pytest.raises(ValueError, match="num_hops"):
        propagate_hops(torch.randn(n, 2), adj, -1)
    with pytest.raises(ValueError, match="x must have shape"):
        propagate_hops(torch.randn(n + 1, 2), adj, 2)
    with pytest.raises(ValueError, match="hops must have shape"):
        HopAttention(3)(torch.randn(4, 3))


def test_sgc_air_first_hop_leaves_the_raw_features_out():
    model = SGCAIR(4, 3, num_layers=1, first_hop=1, num_hops=3).eval()
    hops = torch.randn(5, 4, 4)
    out, w = model.combine(hops, return_weights=True)
    assert w.shape == (5, 3)  # hops 1..3 only
    torch.testing.assert_close(out, model.attention(hops[:, 1:]))
    torch.testing.assert_close(model(hops), model.mlp(model.attention(hops[:, 1:])))
    changed = hops.clone()
    changed[:, 0] = 1e3  # the raw features no longer reach the output
    torch.testing.assert_close(model(changed), model(hops))
    with pytest.raises(ValueError, match="first_hop"):
        SGCAIR(4, 3, num_hops=2, first_hop=3)
    with pytest.raises(ValueError, match="first_hop"):
        SGCAIR(4, 3, first_hop=2)(torch.randn(5, 2, 4))


@pytest.mark.parametrize("cached", [False, True])
def test_gcn_air_names_an_out_of_range_node_id(cached):
    # failed inside PyG with a RuntimeError; DAGNN and APPNPAIR named the id
    x = torch.randn(5, 5)
    model = GCNAIR(5, 8, 3, 2, cached=cached)
    with pytest.raises(ValueError, match="edge_index holds node id 9, out of range for "
                                         "num_nodes=5"):
        model(x, torch.tensor([[0], [9]]))
    model(x, torch.tensor([[0], [4]]))


@pytest.mark.parametrize("build", [lambda: APPNPAIR(4, 8, 3, K=2),
                                   lambda: GCNAIR(4, 8, 3, 2)])
def test_air_models_name_integer_features(build):
    # Linear failed with "result type Float can't be cast to the desired output type Long"
    with pytest.raises(ValueError, match=r"^x must be floating point, got dtype torch.int64$"):
        build()(torch.ones(5, 4, dtype=torch.long), torch.tensor([[0], [1]]))
