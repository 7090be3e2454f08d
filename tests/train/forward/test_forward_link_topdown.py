"""Top-down link prediction (LinkTop2Input, LinkTop2Loss) and the FF link learner, checked
against independent re-computations of their scoring rules and for locality."""

import copy
import io

import pytest
import torch

from graphkit.train.forward import (
    FFLink,
    LayerwiseTrainer,
    LinkTop2Input,
    LinkTop2Loss,
    StoppingLog,
    link_split,
)


def _norm(x):
    return x / (x.norm(dim=1, keepdim=True) + 1e-8)


@pytest.fixture
def blocks(block_link_graph):
    return link_split(block_link_graph(60, 6, 600, 1.0), 0)


def _sigmoid_dot(h, pairs):
    return (h[pairs[0]] * h[pairs[1]]).sum(1).sigmoid()


def test_top2input_layers_read_below_and_above(blocks):
    net = LinkTop2Input("gcn", 6, 8, num_layers=3)
    # [x | h2], [h1 | h3], [h2]: nothing above the top layer
    assert [layer.conv.in_channels for layer in net.layers] == [6 + 8, 8 + 8, 8]
    assert net._order() == [0, 2, 1]
    assert LinkTop2Input("gcn", 6, 8, num_layers=5)._order() == [0, 2, 4, 1, 3]
    assert net.weight_decay == 0.0  # the official top-down link script's Adam
    x = torch.randn(4, 6, requires_grad=True)
    assert not net._input(x * 2, torch.randn(4, 8)).requires_grad  # no path to the layer below


def test_top2input_scores_follow_the_official_recurrence(blocks):
    train, val, test = blocks
    torch.manual_seed(0)
    net = LinkTop2Input("gcn", 6, 8, num_layers=3, test_time_steps=5, skip_steps=2)
    net.fit(train, val, LayerwiseTrainer(epochs=6, lr=0.01, val_every=2, patience=5))
    convs = [layer.conv for layer in net.layers]

    # official GNNTowDownForward.eval_model, written out: bottom-up with zero top-down input,
    # then alternating steps (even layers, then odd ones reading the fresh states)
    def run(j, below, above):
        x = _norm(below) if above is None else torch.cat([_norm(below), _norm(above)], 1)
        return convs[j](x, test.edge_index).relu()

    with torch.no_grad():
        states = [test.x]
        for j in range(3):
            width = convs[j].in_channels - states[-1].size(1)
            states.append(run(j, states[-1], torch.zeros(test.num_nodes, width) if width
                              else None))
        states.append(None)
        kept = []
        for t in range(5):
            new = [None] * 5
            new[0] = test.x
            for group in ([0, 2], [1]):
                for j in group:
                    below = new[j] if new[j] is not None else states[j]
                    above = new[j + 2] if new[j + 2] is not None else states[j + 2]
                    new[j + 1] = run(j, below, above)
                    if t >= 2:
                        kept.append(_sigmoid_dot(new[j + 1], test.edge_label_index))
            states = new
        expected = torch.stack(kept).mean(0)
    torch.testing.assert_close(net.predict(test), expected, rtol=1e-5, atol=1e-6)


def test_top2loss_scores_mix_each_layer_with_the_layers_above(blocks):
    train, val, test = blocks
    torch.manual_seed(0)
    net = LinkTop2Loss("gcn", 6, 8, num_layers=3)
    net.fit(train, val, LayerwiseTrainer(epochs=6, lr=0.01, val_every=2, patience=5))
    with torch.no_grad():
        h, states = test.x, []
        for layer in net.layers:
            h = layer.conv(_norm(h), test.edge_index).relu()
            states.append(h)
        per_layer = [_sigmoid_dot(torch.stack([states[l], *map(_norm, states[l + 1:])]).mean(0),
                                  test.edge_label_index) for l in range(3)]
    scores = net.layer_scores(test)
    for l in range(3):
        torch.testing.assert_close(scores[l], torch.stack(per_layer[:l + 1]).mean(0))


def test_ff_link_scores_are_the_mean_goodness_sigmoid(blocks):
    train, val, test = blocks
    torch.manual_seed(0)
    net = FFLink("gcn", 6, 8, num_layers=2, theta=1.5)
    net.fit(train, val, LayerwiseTrainer(epochs=4, lr=0.01, val_every=2, patience=5))
    with torch.no_grad():
        h1 = net.layers[0].conv(_norm(test.x), test.edge_index).relu()
        h2 = net.layers[1].conv(_norm(h1), test.edge_index).relu()
        p = test.edge_label_index
        good = [((h[p[0]] * h[p[1]]) ** 2).sum(1) - 1.5 for h in (h1, h2)]
    torch.testing.assert_close(net.predict(test), (good[0].sigmoid() + good[1].sigmoid()) / 2)


@pytest.mark.parametrize("cls", [LinkTop2Input, LinkTop2Loss])
def test_a_time_step_moves_each_layer_with_its_own_optimiser_only(blocks, cls):
    train, val, _ = blocks
    torch.manual_seed(0)
    net = cls("gcn", 6, 8, num_layers=3)
    trainer = LayerwiseTrainer(epochs=2)
    net.fit(train, val, trainer)
    for moving in range(3):
        with torch.no_grad():
            states = net._init_states(train)
        before = [[p.detach().clone() for p in layer.parameters()] for layer in net.layers]
        opts = [torch.optim.SGD(layer.parameters(), lr=0.5 if j == moving else 0.0)
                for j, layer in enumerate(net.layers)]
        new, _ = net._time_step(states, train, opts, trainer)
        for j, layer in enumerate(net.layers):
            same = all(torch.equal(a, b) for a, b in zip(before[j], layer.parameters()))
            assert same == (j != moving), (moving, j)
        assert all(not s.requires_grad for s in new if s is not None)
        # every local step frees its layer's gradients: none may reach another layer
        assert all(p.grad is None for p in net.parameters())


def test_top_down_link_refuses_bad_arguments():
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        LinkTop2Input("gcn", 6, 8, num_layers=0)
    with pytest.raises(ValueError, match="skip_steps"):
        LinkTop2Input("gcn", 6, 8, test_time_steps=2, skip_steps=2)
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        LinkTop2Loss("gcn", 6, 8, num_layers=0)


def test_top2input_sparse_first_input_gives_the_dense_scores(blocks):
    # bag-of-words features reach the first layer as sparse CSR [norm(x) | norm(h2)]
    train, val, test = blocks
    g = torch.Generator().manual_seed(1)
    words = (torch.rand(test.num_nodes, 200, generator=g) < 0.03).float()
    for d in (train, val, test):
        d.x = words
    torch.manual_seed(0)
    net = LinkTop2Input("gcn", 200, 8, num_layers=2)
    net.fit(train, val, LayerwiseTrainer(epochs=4, lr=0.01, val_every=2, patience=5))
    assert net.layers[0].sparse_input
    assert net._input(test.x, torch.ones(test.num_nodes, 8), first=True).layout == \
        torch.sparse_csr
    sparse = net.predict(test)
    net.layers[0].sparse_input = False
    net._below0 = None
    assert net._input(test.x, torch.ones(test.num_nodes, 8), first=True).layout == torch.strided
    torch.testing.assert_close(sparse, net.predict(test), rtol=1e-5, atol=1e-6)


def test_dense_block_appender_is_the_concatenation():
    from graphkit.train.forward.link_topdown import _DenseBlockAppender

    g = torch.Generator().manual_seed(0)
    a = (torch.rand(6, 7, generator=g) < 0.3).float() * torch.rand(6, 7, generator=g)
    a[2] = 0.0  # an empty row
    append = _DenseBlockAppender(a.to_sparse_csr(), 10)
    for _ in range(2):  # the structure is reused
        b = torch.randn(6, 3, generator=g)
        b[1, 1] = 0.0
        assert torch.equal(append(b).to_dense(), torch.cat([a, b], 1))
    assert torch.equal(append(None).to_dense(), a)


@pytest.mark.parametrize("cls", [LinkTop2Input, LinkTop2Loss, FFLink])
def test_fit_without_a_trainer_uses_the_schemes_weight_decay(blocks, cls, monkeypatch):
    # LinkTop2Input's official script has no weight decay; a plain fit(train, val) took 5e-4
    train, val, _ = blocks
    seen = []

    def record(self, module, epoch_fn, score_fn):
        seen.append(self.weight_decay)
        return StoppingLog()

    monkeypatch.setattr(LayerwiseTrainer, "fit", record)
    net = cls("gcn", 6, 8, num_layers=2)
    net.fit(train, val)
    assert seen and set(seen) == {net.weight_decay}
    assert LinkTop2Input.weight_decay == 0.0 and FFLink.weight_decay == 5e-4


@pytest.mark.parametrize("cls", [LinkTop2Input, LinkTop2Loss])
def test_cached_inputs_follow_in_place_edits_and_pickle(blocks, cls):
    train, val, test = blocks
    torch.manual_seed(0)
    net = cls("gcn", 6, 8, num_layers=2)
    net.fit(train, val, LayerwiseTrainer(epochs=4, lr=0.01, val_every=2, patience=5))
    before = net.predict(test)
    fresh = copy.deepcopy(net)  # the copy caches nothing
    test.x.mul_(2.0).add_(0.5)  # in place: the same tensor object, new values
    # another simple graph in the same tensor (node ids shifted: no self-loop or repeat made)
    test.edge_index.copy_((test.edge_index + 1) % test.num_nodes)
    after = net.predict(test)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, fresh.predict(test))
    buffer = io.BytesIO()
    torch.save(net, buffer)  # the cached input builder pickles (was a local lambda)


@pytest.mark.parametrize("cls", [LinkTop2Input, LinkTop2Loss])
def test_gcn_normalises_the_adjacency_once_with_the_same_scores(blocks, cls, monkeypatch):
    # 10 recurrent test steps x L layers all propagate over one graph: gcn_norm once, not per call
    from torch_geometric.nn.conv import gcn_conv

    from graphkit.train.forward import link_topdown

    train, val, test = blocks
    torch.manual_seed(0)
    net = cls("gcn", 6, 8, num_layers=3)
    net.fit(train, val, LayerwiseTrainer(epochs=4, lr=0.01, val_every=2, patience=5))
    calls = []

    def counted(original):
        def wrapper(*args, **kwargs):
            calls.append(1)
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(gcn_conv, "gcn_norm", counted(gcn_conv.gcn_norm))
    monkeypatch.setattr(link_topdown, "gcn_norm",
                        counted(getattr(link_topdown, "gcn_norm", gcn_conv.gcn_norm)),
                        raising=False)
    once = net.predict(test)
    assert len(calls) == 1
    net.predict(test)
    assert len(calls) == 1  # cached with the graph
    net.normalize_once = False  # each GCNConv call normalises, as PyG does by default
    per_call = net.predict(test)
    assert len(calls) > 3
    assert torch.equal(once, per_call)
    assert all(layer.conv.normalize for layer in net.layers)
