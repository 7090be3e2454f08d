import pytest
import torch

from graphkit.nn.models import GCN
from graphkit.train import seed_everything


@pytest.fixture
def graph():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    return x, edge_index


def _dense_norm_adj(edge_index, n, weight=None):
    a = torch.zeros(n, n)
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a[edge_index[1], edge_index[0]] = w
    a = a + torch.eye(n)
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]


def test_one_layer_equals_normalised_propagation(graph):
    x, edge_index = graph
    model = GCN(3, 8, 2, num_layers=1, dropout=0.0)
    conv = model.convs[0]
    expected = _dense_norm_adj(edge_index, 5) @ (x @ conv.lin.weight.t()) + conv.bias
    assert torch.allclose(model(x, edge_index), expected, atol=1e-6)
    w = torch.rand(edge_index.size(1))
    expected = _dense_norm_adj(edge_index, 5, w) @ (x @ conv.lin.weight.t()) + conv.bias
    assert torch.allclose(model(x, edge_index, w), expected, atol=1e-6)


def test_two_layers_apply_relu_between(graph):
    x, edge_index = graph
    model = GCN(3, 8, 2, dropout=0.0)
    a = _dense_norm_adj(edge_index, 5)
    c1, c2 = model.convs
    h = (a @ (x @ c1.lin.weight.t()) + c1.bias).relu()
    expected = a @ (h @ c2.lin.weight.t()) + c2.bias
    assert torch.allclose(model(x, edge_index), expected, atol=1e-6)


def test_shapes_dropout_and_reset(graph):
    x, edge_index = graph
    seed_everything(0)
    model = GCN(3, 16, 4, num_layers=3, dropout=0.5)
    assert len(model.convs) == 3
    assert model(x, edge_index).shape == (5, 4)
    model.eval()
    assert torch.equal(model(x, edge_index), model(x, edge_index))  # no dropout in eval
    before = [p.clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert repr(model) == "GCN(3, 16, 4, num_layers=3, dropout=0.5, input_dropout=0.5)"


def test_input_dropout_only_touches_the_input(graph):
    x, edge_index = graph
    seed_everything(0)
    model = GCN(3, 8, 2, num_layers=1, dropout=0.9, input_dropout=0.0).train()
    assert torch.equal(model(x, edge_index), model.eval()(x, edge_index))
    model = GCN(3, 8, 2, num_layers=1, dropout=0.0, input_dropout=0.9).train()
    assert not torch.equal(model(x, edge_index), model.eval()(x, edge_index))


@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 0}, "num_layers"),
    ({"dropout": 1.0}, "dropout"),
    ({"input_dropout": -0.1}, "input_dropout"),
    ({"hidden_channels": 0}, "hidden_channels"),
])
def test_bad_arguments(kwargs, match):
    args = {"in_channels": 3, "hidden_channels": 8, "out_channels": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        GCN(**args)
