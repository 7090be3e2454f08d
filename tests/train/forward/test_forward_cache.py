"""The propagation cache of a frozen-input GCN layer computes the same function and gradients."""

import pytest
import torch
from torch_geometric.data import Data

from graphkit.train.forward import (
    ForwardLayer,
    LayerwiseTrainer,
    frozen_input_forward,
    make_conv,
    node_model,
    supports_propagation_cache,
)


def _graph():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 12, (2, 40), generator=g)  # duplicates and self-loops included
    return torch.randn(12, 5, generator=g), ei


@pytest.mark.parametrize("normalize, act", [(True, True), (False, False)])
def test_cached_gcn_layer_matches_layer_and_its_gradients(normalize, act):
    torch.manual_seed(0)
    x, ei = _graph()
    layer = ForwardLayer(make_conv("gcn", 5, 4), normalize=normalize, act=act)
    assert supports_propagation_cache(layer)
    cached = frozen_input_forward(layer, x, ei)
    expected = layer(x, ei)
    grads = torch.autograd.grad(expected.pow(2).sum(), list(layer.parameters()))
    out = cached()
    torch.testing.assert_close(out, expected)
    for g, h in zip(torch.autograd.grad(out.pow(2).sum(), list(layer.parameters())), grads):
        torch.testing.assert_close(g, h)


def test_uncacheable_layer_runs_unchanged():
    torch.manual_seed(0)
    x, ei = _graph()
    layer = ForwardLayer(make_conv("sage", 5, 4))
    assert not supports_propagation_cache(layer)
    torch.testing.assert_close(frozen_input_forward(layer, x, ei)(), layer(x, ei))


def test_sf_with_cache_trains_the_same_model(two_blobs):
    scores = []
    for cache in (False, True):
        torch.manual_seed(0)
        net = node_model("sf", "gcn", 8, 16, 2, num_layers=2, cache_propagation=cache)
        net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
                LayerwiseTrainer(epochs=10, lr=0.01, val_every=2, patience=10))
        scores.append(net.predict(two_blobs.test_mask))
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)


def test_wide_input_is_cached_only_when_asked():
    torch.manual_seed(0)
    x, ei = _graph()
    wide = torch.randn(12, 200)  # 12 x 200 cache > (40 + 12) x 4 messages
    layer = ForwardLayer(make_conv("gcn", 200, 4))
    calls = []
    layer.register_forward_hook(lambda *a: calls.append(1))
    frozen_input_forward(layer, wide, ei)()
    assert calls == [1]  # ran the layer: not cached
    out = frozen_input_forward(layer, wide, ei, always=True)()
    assert calls == [1]
    torch.testing.assert_close(out, layer(wide, ei))


def test_sparse_input_gets_a_sparse_cache_with_the_same_function_and_gradients():
    torch.manual_seed(0)
    _, ei = _graph()
    dense = torch.rand(12, 30) * (torch.rand(12, 30) < 0.1)  # bag-of-words-like, empty rows
    dense[[2, 7]] = torch.rand(2, 30) + 0.1  # and two dense rows (as the class nodes' features)
    x = dense.to_sparse_csr()
    layer = ForwardLayer(make_conv("gcn", 30, 64), normalize=False)
    calls = []
    layer.register_forward_hook(lambda *a: calls.append(1))
    cached = frozen_input_forward(layer, x, ei)  # sparse cache < (40 + 12) x 64 messages
    out = cached()
    assert calls == []  # the layer itself did not run
    expected = layer(dense, ei)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(expected.pow(2).sum(), list(layer.parameters()))
    for g, h in zip(torch.autograd.grad(out.pow(2).sum(), list(layer.parameters())), grads):
        torch.testing.assert_close(g, h)
    # a layer whose sparse cache would exceed one step's messages runs uncached
    narrow = ForwardLayer(make_conv("gcn", 30, 1), normalize=False)
    calls.clear()
    narrow.register_forward_hook(lambda *a: calls.append(1))
    torch.testing.assert_close(frozen_input_forward(narrow, x, ei)(), narrow(dense, ei))
    assert calls == [1, 1]


def test_sf_with_cache_on_bag_of_words_trains_the_same_model():
    g = torch.Generator().manual_seed(0)
    n = 40
    y = torch.arange(n) % 2
    x = torch.rand(n, 50, generator=g) * (torch.rand(n, 50, generator=g) < 0.08)
    x[:, :2] += torch.nn.functional.one_hot(y, 2).float()  # a class signal
    ei = torch.randint(0, n, (2, 120), generator=g)
    data = Data(x=x, edge_index=torch.cat([ei, ei.flip(0)], dim=1), y=y)
    idx = torch.arange(n)
    train, val, test = idx < 20, (idx >= 20) & (idx < 30), idx >= 30
    scores, inputs = [], []
    for cache in (False, True):
        torch.manual_seed(0)
        net = node_model("sf", "gcn", 50, 64, 2, num_layers=2, cache_propagation=cache)
        net.fit(data, train, val, LayerwiseTrainer(epochs=10, lr=0.01, val_every=2))
        scores.append(net.predict(test))
        inputs.append(net.graph.x)
    assert inputs[1].layout == torch.sparse_csr  # the first layer's input is sparse ...
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)  # ... and cached
