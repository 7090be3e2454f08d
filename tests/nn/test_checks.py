import pytest
import torch

from graphkit.nn._checks import check_edge_index_layout, check_node_features


def test_node_features_of_the_right_width_pass():
    check_node_features(torch.randn(4, 3), 3)
    check_node_features(torch.randn(0, 3), 3)
    check_node_features(torch.randn(4, 7), -1)  # lazy width


@pytest.mark.parametrize("x, match", [
    (torch.randn(4, 5), "x has 5 features, but in_channels is 3"),
    (torch.randn(4), r"x must have shape \[num_nodes, 3\], got \[4\]"),
    (torch.randn(2, 4, 3), r"got \[2, 4, 3\]"),
])
def test_node_features_of_the_wrong_shape_are_named(x, match):
    with pytest.raises(ValueError, match=match):
        check_node_features(x, 3)


def test_node_features_must_be_a_tensor():
    with pytest.raises(TypeError, match="hops must be a tensor"):
        check_node_features([[1.0, 2.0]], 2, name="hops")


def test_edge_index_layout():
    check_edge_index_layout(torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="integer node ids"):
        check_edge_index_layout(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \[2, num_edges\]"):
        check_edge_index_layout(torch.tensor([0, 1, 2]))


EDGES = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
HYPEREDGES = torch.tensor([[0, 1, 2, 2, 3], [0, 0, 0, 1, 1]])


def _models():
    from graphkit.nn import (
        APPNPAIR,
        DAGNN,
        GCN,
        GCNAIR,
        HGNN,
        HGNNP,
        DegreePowerGCNConv,
        GCNLinkPredictor,
        GraphNASConv,
        HGNNConv,
        HGNNPConv,
        InitialResidualMLP,
        LightHGNN,
    )
    return {
        "DAGNN": (DAGNN(3, 8, 2, K=2), (EDGES,)),
        "APPNPAIR": (APPNPAIR(3, 8, 2, K=2), (EDGES,)),
        "GCNAIR": (GCNAIR(3, 8, 2, num_layers=2), (EDGES,)),
        "GCN": (GCN(3, 8, 2), (EDGES,)),
        "HGNN": (HGNN(3, 8, 2), (HYPEREDGES,)),
        "HGNNP": (HGNNP(3, 8, 2), (HYPEREDGES,)),
        "HGNNConv": (HGNNConv(3, 2), (HYPEREDGES,)),
        "HGNNPConv": (HGNNPConv(3, 2), (HYPEREDGES,)),
        "LightHGNN": (LightHGNN(3, 8, 2), ()),
        "InitialResidualMLP": (InitialResidualMLP(3, 8, 2, num_layers=3), ()),
        "DegreePowerGCNConv": (DegreePowerGCNConv(3, 2), (EDGES,)),
        "GraphNASConv": (GraphNASConv(3, 2), (EDGES,)),
        "GCNLinkPredictor": (GCNLinkPredictor(3, 8), (EDGES, EDGES)),
    }


@pytest.mark.parametrize("name", sorted(_models()))
def test_models_name_a_wrong_feature_width(name):
    model, args = _models()[name]
    model.eval()
    model(torch.randn(4, 3), *args)  # the right width runs
    with pytest.raises(ValueError, match="x has 5 features, but in_channels is 3"):
        model(torch.randn(4, 5), *args)
    with pytest.raises(ValueError, match=r"x must have shape \[num_nodes, 3\]"):
        model(torch.randn(4), *args)


def test_sgc_air_names_a_wrong_hop_width():
    from graphkit.nn import SGCAIR
    model = SGCAIR(3, 2, num_hops=2)
    model(torch.randn(4, 3, 3))
    with pytest.raises(ValueError, match="hops have 5 features, but in_channels is 3"):
        model(torch.randn(4, 3, 5))


def _graph_models():
    from graphkit.nn import APPNPAIR, DAGNN, GCN, GCNAIR, DegreePowerGCNConv
    return {
        "DAGNN": DAGNN(3, 8, 2, K=2),
        "APPNPAIR": APPNPAIR(3, 8, 2, K=2, cached=False),
        "GCNAIR": GCNAIR(3, 8, 2, num_layers=2, cached=False),
        "GCN": GCN(3, 8, 2),
        "DegreePowerGCNConv": DegreePowerGCNConv(3, 2, alpha=0.3),
    }


@pytest.mark.parametrize("name", sorted(_graph_models()))
def test_models_take_a_sparse_adjacency_like_pyg_layers(name):
    from torch_geometric.utils import to_torch_csr_tensor
    model = _graph_models()[name].eval()
    x = torch.randn(4, 3)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0])
    adj_t = to_torch_csr_tensor(EDGES.flip(0), weight, size=(4, 4))  # row i: i's in-edges
    if name not in ("APPNPAIR", "GCNAIR"):  # these two take no edge_weight argument
        torch.testing.assert_close(model(x, adj_t), model(x, EDGES, weight))
    binary = to_torch_csr_tensor(EDGES.flip(0), size=(4, 4))
    torch.testing.assert_close(model(x, binary), model(x, EDGES))


def test_sparse_adjacency_with_separate_weights_is_refused():
    from torch_geometric.utils import to_torch_csr_tensor

    from graphkit.nn._checks import as_edge_index
    adj_t = to_torch_csr_tensor(EDGES.flip(0), size=(4, 4))
    index, weight = as_edge_index(adj_t)
    assert sorted(map(tuple, index.t().tolist())) == sorted(map(tuple, EDGES.t().tolist()))
    assert torch.equal(weight, torch.ones(4))
    with pytest.raises(ValueError, match="pass edge_weight=None"):
        as_edge_index(adj_t, torch.ones(4))


def test_graphnas_conv_names_a_sparse_adjacency():
    from torch_geometric.utils import to_torch_csr_tensor

    from graphkit.nn import GraphNASConv
    with pytest.raises(ValueError, match="takes an edge_index"):
        GraphNASConv(3, 2)(torch.randn(4, 3), to_torch_csr_tensor(EDGES.flip(0), size=(4, 4)))
