import pytest
import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj

from graphkit.nn.conv import DegreePowerGCNConv, degree_power_norm


@pytest.fixture
def graph():
    # a path 0-1-2-3 plus a triangle 3-4-5 and an isolated node 6
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (3, 5)]
    ei = torch.tensor(pairs).t()
    return torch.cat([ei, ei.flip(0)], dim=1), 7


def dense(ei, w, n):
    return to_dense_adj(ei, edge_attr=w, max_num_nodes=n)[0].t()  # row = target


def test_alpha_minus_half_is_gcn_norm(graph):
    ei, n = graph
    a = dense(*degree_power_norm(ei, num_nodes=n, alpha=-0.5), n)
    b = dense(*gcn_norm(ei, num_nodes=n), n)
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("alpha", [-0.3, 0.0, 0.3, 0.6, 2.0])
def test_rows_sum_to_one(graph, alpha):
    ei, n = graph
    a = dense(*degree_power_norm(ei, num_nodes=n, alpha=alpha), n)
    assert torch.allclose(a.sum(dim=1), torch.ones(n), atol=1e-6)


def test_matches_dense_formula_on_asymmetric_graph():
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])  # j -> i means row i, column j
    n, alpha = 3, 0.3
    a = torch.zeros(n, n)
    a[ei[1], ei[0]] = 1
    a_hat = a + torch.eye(n)
    d = a_hat.sum(dim=1).pow(alpha)
    ref = d.view(-1, 1) * a_hat * d.view(1, -1)
    ref = ref / ref.sum(dim=1, keepdim=True)
    assert torch.allclose(dense(*degree_power_norm(ei, num_nodes=n, alpha=alpha), n), ref)


def test_positive_alpha_favours_high_degree_neighbours():
    # node 0 hears from node 1 (degree 1) and node 2 (degree 3)
    pairs = [(0, 1), (0, 2), (2, 3), (2, 4)]
    ei = torch.tensor(pairs).t()
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    a = dense(*degree_power_norm(ei, num_nodes=5, alpha=0.6), 5)
    assert a[0, 2] > a[0, 1]


def test_layer_at_minus_half_equals_gcnconv(graph):
    from torch_geometric.nn import GCNConv

    ei, n = graph
    torch.manual_seed(0)
    x = torch.randn(n, 4)
    ours = DegreePowerGCNConv(4, 3, alpha=-0.5)
    ref = GCNConv(4, 3)
    with torch.no_grad():
        ref.lin.weight.copy_(ours.weight.t())
        ref.bias.copy_(ours.bias)
    assert torch.allclose(ours(x, ei), ref(x, ei), atol=1e-6)
    assert "alpha=-0.5" in repr(ours)


def test_layer_cached_and_reset(graph):
    ei, n = graph
    conv = DegreePowerGCNConv(4, 2, alpha=0.3, cached=True)
    x = torch.randn(n, 4)
    out = conv(x, ei)
    assert out.shape == (n, 2)
    cache = conv._cache
    assert torch.equal(conv(x, ei.clone()), out) and conv._cache is cache  # the same graph
    # another graph used to get the first graph's normalisation silently
    with pytest.raises(ValueError, match="DegreePowerGCNConv .*cached=True.*edge_index differs"):
        conv(x, ei[:, :2])
    with pytest.raises(ValueError, match=f"graph of {n} nodes but got {n + 2}.*cached=False"):
        conv(torch.randn(n + 2, 4), ei)
    with pytest.raises(ValueError, match="edge_weight differs"):
        conv(x, ei, torch.rand(ei.size(1)))
    conv.reset_parameters()
    assert conv._cache is None
    uncached = DegreePowerGCNConv(4, 2, alpha=0.3)
    uncached.load_state_dict(conv.state_dict())
    assert torch.allclose(conv(x, ei[:, :2]), uncached(x, ei[:, :2]))


def test_bad_inputs(graph):
    ei, n = graph
    with pytest.raises(ValueError, match="alpha"):
        degree_power_norm(ei, num_nodes=n, alpha=float("nan"))
    with pytest.raises(ValueError, match="edge_weight"):
        degree_power_norm(ei, torch.ones(3), num_nodes=n)
    with pytest.raises(ValueError, match="in_channels"):
        DegreePowerGCNConv(0, 2)
    with pytest.raises(ValueError, match="features"):
        DegreePowerGCNConv(4, 2)(torch.randn(n, 5), ei)


def test_out_of_range_target_is_named_not_merged():
    # Edge 0 -> 4 on 4 nodes: coalesce's key 0 * 4 + 4 equals that of edge 1 -> 0, so before
    # the check the bad edge was summed into another one and the layer returned output.
    x, ei = torch.randn(4, 3), torch.tensor([[0, 1, 0], [1, 0, 4]])
    with pytest.raises(ValueError, match="node id 4, out of range for num_nodes=4"):
        DegreePowerGCNConv(3, 2, alpha=0.5)(x, ei)
    with pytest.raises(ValueError, match="must hold integers"):
        degree_power_norm(ei.float(), num_nodes=4)


def test_edge_weight_of_shape_e_by_one_is_read_as_e(graph):
    """``[E, 1]`` weights (PyG's GCNConv takes them) failed inside torch.cat with a message
    naming neither argument nor shape; other shapes are named."""
    ei, n = graph
    w = torch.rand(ei.size(1), generator=torch.Generator().manual_seed(0))
    conv, x = DegreePowerGCNConv(4, 2, alpha=0.3), torch.randn(n, 4)
    assert torch.equal(conv(x, ei, w.view(-1, 1)), conv(x, ei, w))
    for bad in (w.view(-1, 1).repeat(1, 2), w[:-1]):
        with pytest.raises(ValueError, match=rf"edge_weight must have shape \[{ei.size(1)}\]"):
            conv(x, ei, bad)
