import pytest
import torch
from torch_geometric.nn import GATConv, GCNConv
from torch_geometric.utils import add_self_loops

from graphkit.nn.conv.graphnas_conv import (
    GRAPHNAS_AGGREGATIONS,
    GRAPHNAS_ATTENTIONS,
    GraphNASConv,
)


@pytest.fixture
def graph():
    # a path 0-1-2-3, a triangle 3-4-5 and an isolated node 6 (it keeps its self-loop)
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (3, 5)]
    ei = torch.tensor(pairs).t()
    torch.manual_seed(0)
    return torch.randn(7, 5), torch.cat([ei, ei.flip(0)], dim=1)


def neighbours(ei, n):
    """In-neighbours of each node, self included (the layer's self-loops)."""
    out = [{i} for i in range(n)]
    for j, i in ei.t().tolist():
        out[i].add(j)
    return [sorted(s) for s in out]


@pytest.mark.parametrize("attention", GRAPHNAS_ATTENTIONS)
@pytest.mark.parametrize("aggregation", GRAPHNAS_AGGREGATIONS)
def test_every_operator_shapes_and_gradients(graph, attention, aggregation):
    x, ei = graph
    conv = GraphNASConv(5, 3, heads=4, attention=attention, aggregation=aggregation,
                        pool_dim=6)
    out = conv(x, ei)
    assert out.shape == (7, 12)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert all(p.grad is not None for p in conv.parameters())
    mean = GraphNASConv(5, 3, heads=4, concat=False, attention=attention,
                        aggregation=aggregation)
    assert mean(x, ei).shape == (7, 3)
    # only the parameters the function reads exist
    names = {n for n, _ in conv.named_parameters()}
    assert ("att_l" in names) == (attention in ("gat", "sym-gat", "cos", "generalized_linear"))
    assert ("att_r" in names) == (attention not in ("const", "gcn"))
    assert ("pool1.weight" in names) == (aggregation != "sum")
    assert conv.lin.weight.shape == (12, 5)


@pytest.mark.parametrize("attention", GRAPHNAS_ATTENTIONS)
def test_node_permutation_equivariance(graph, attention):
    x, ei = graph
    conv = GraphNASConv(5, 3, heads=2, attention=attention, aggregation="max").eval()
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(7)
    out = conv(x, ei)
    out_p = conv(x[perm], inv[ei])
    assert torch.allclose(out_p, out[perm], atol=1e-5)


def test_const_sum_is_sum_over_closed_neighbourhood(graph):
    x, ei = graph
    conv = GraphNASConv(5, 3, attention="const", aggregation="sum")
    h = conv.lin(x)
    ref = torch.stack([h[nb].sum(0) for nb in neighbours(ei, 7)])
    assert torch.allclose(conv(x, ei), ref, atol=1e-5)


def test_const_max_pools_the_message_mlp(graph):
    x, ei = graph
    conv = GraphNASConv(5, 3, attention="const", aggregation="max", pool_dim=4)
    h = conv.lin(x)
    m = conv.pool2(torch.relu(conv.pool1(h)))
    ref = torch.stack([m[nb].max(0).values for nb in neighbours(ei, 7)])
    assert torch.allclose(conv(x, ei), ref, atol=1e-5)


def test_gcn_attention_equals_gcnconv(graph):
    x, ei = graph
    ours = GraphNASConv(5, 3, attention="gcn", aggregation="sum")
    ref = GCNConv(5, 3)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.lin.weight)
        ref.bias.zero_()
    assert torch.allclose(ours(x, ei), ref(x, ei), atol=1e-5)


def test_gat_attention_equals_gatconv(graph):
    x, ei = graph
    ours = GraphNASConv(5, 3, heads=2, attention="gat", aggregation="sum")
    ref = GATConv(5, 3, heads=2)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.lin.weight)
        ref.att_src.copy_(ours.att_r)  # a_r scores the source j
        ref.att_dst.copy_(ours.att_l)
        ref.bias.zero_()
    assert torch.allclose(ours(x, ei), ref(x, ei), atol=1e-5)


def test_sym_gat_coefficients_match_the_symmetric_formula(graph):
    x, ei = graph
    conv = GraphNASConv(5, 3, heads=2, attention="sym-gat")
    loops, _ = add_self_loops(ei, num_nodes=7)
    h = conv.lin(x).view(7, 2, 3)
    alpha = conv._attention(h, loops)
    left, right = (h * conv.att_l).sum(-1), (h * conv.att_r).sum(-1)
    lrelu = torch.nn.functional.leaky_relu
    # score[i, j] = e_ij + e_ji of GAT: symmetric in i and j
    score = lrelu(left[:, None] + right[None], 0.2) + lrelu(left[None] + right[:, None], 0.2)
    assert torch.allclose(score, score.transpose(0, 1))
    nbs = neighbours(ei, 7)
    for k, (j, i) in enumerate(loops.t().tolist()):
        ref = torch.softmax(score[i, nbs[i]], dim=0)[nbs[i].index(j)]
        assert torch.allclose(alpha[k], ref, atol=1e-6)


def test_sparse_input_matches_dense(graph):
    x, ei = graph
    x = torch.relu(x)  # zeros to store sparsely
    conv = GraphNASConv(5, 3, heads=2, attention="generalized_linear", aggregation="mlp")
    assert torch.allclose(conv(x.to_sparse_csr(), ei), conv(x, ei), atol=1e-5)


def test_reset_parameters_is_seed_deterministic(graph):
    x, ei = graph
    conv = GraphNASConv(5, 3, heads=2, attention="cos", aggregation="mean")
    torch.manual_seed(3)
    conv.reset_parameters()
    a = conv(x, ei)
    torch.manual_seed(3)
    conv.reset_parameters()
    assert torch.equal(conv(x, ei), a)
    assert "attention='cos'" in repr(conv)


def test_bad_inputs(graph):
    x, ei = graph
    with pytest.raises(ValueError, match="attention"):
        GraphNASConv(5, 3, attention="dot")
    with pytest.raises(ValueError, match="aggregation"):
        GraphNASConv(5, 3, aggregation="median")
    with pytest.raises(ValueError, match="positive"):
        GraphNASConv(5, 3, heads=0)
    with pytest.raises(ValueError, match="dropout"):
        GraphNASConv(5, 3, dropout=1.0)
    conv = GraphNASConv(5, 3)
    with pytest.raises(ValueError, match="x has 4 features, but in_channels is 5"):
        conv(x[:, :4], ei)
    with pytest.raises(ValueError, match="out of range"):
        conv(x, torch.tensor([[0, 9], [1, 0]]))
    with pytest.raises(ValueError, match="integer"):
        conv(x, ei.float())
    with pytest.raises(ValueError, match="empty"):
        conv(x[:0], ei[:, :0])
