"""Locality of forward learning: no gradient, and no update, crosses layers."""

import pytest
import torch

from graphkit.train.forward import (
    ForwardLayer,
    LayerwiseTrainer,
    handoff,
    make_conv,
    node_model,
    sf_loss,
)


class SnapshotTrainer(LayerwiseTrainer):
    """Checks, around every per-layer fit, that only the trained layer's parameters change."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net, self.checked = net, 0

    def fit(self, module, epoch_fn, score_fn):
        before = {k: v.clone() for k, v in self.net.named_parameters()}
        grads = {k: None if v.grad is None else v.grad.clone()
                 for k, v in self.net.named_parameters()}
        own = {id(p) for p in module.parameters()}
        log = super().fit(module, epoch_fn, score_fn)
        for name, p in self.net.named_parameters():
            if id(p) in own:
                continue
            assert torch.equal(p, before[name]), f"{name} changed while training another layer"
            same = p.grad is None if grads[name] is None else torch.equal(p.grad, grads[name])
            assert same, f"{name} received a gradient from another layer's loss"
        changed = [not torch.equal(p, before[n]) for n, p in self.net.named_parameters()
                   if id(p) in own]
        assert any(changed), "the trained layer did not change"
        self.checked += 1
        return log


@pytest.mark.parametrize("scheme", ["sf", "ff-la", "ff-vn"])
@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
def test_step_on_one_layer_leaves_others_bit_identical(two_blobs, scheme, model):
    torch.manual_seed(0)
    net = node_model(scheme, model, 8, 8, 2, num_layers=3)
    trainer = SnapshotTrainer(net, epochs=3, val_every=1, patience=5)
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask, trainer)
    assert trainer.checked == 3


def test_no_autograd_path_to_the_layer_below(two_blobs):
    torch.manual_seed(0)
    below = ForwardLayer(make_conv("gcn", 8, 8))
    above = ForwardLayer(make_conv("gcn", 8, 8))
    h = below(two_blobs.x, two_blobs.edge_index)
    assert h.requires_grad
    inp = handoff(h)
    assert inp.grad_fn is None and not inp.requires_grad
    out = above(inp, two_blobs.edge_index)
    loss = sf_loss(out[:20], out[20:22], two_blobs.y[:20])
    grads = torch.autograd.grad(loss, list(below.parameters()) + list(above.parameters()),
                                allow_unused=True)
    n_below = len(list(below.parameters()))
    assert all(g is None for g in grads[:n_below])
    assert all(g is not None for g in grads[n_below:])


def test_handoff_is_row_normalised_and_detached():
    h = torch.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True) * 1
    out = handoff(h)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert not out.requires_grad


def test_top_down_steps_touch_each_layer_with_its_own_optimiser(two_blobs):
    torch.manual_seed(0)
    for scheme in ("sf-top2loss", "sf-top2input"):
        net = node_model(scheme, "gcn", 8, 8, 2, num_layers=3)
        states = None
        params = [list(layer.parameters()) for layer in net.layers]
        net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
                LayerwiseTrainer(epochs=2, val_every=1, patience=5))
        states = net._init_states()
        optimizers = [torch.optim.SGD(layer.parameters(), lr=0.1) for layer in net.layers]
        # step only layer 1: its loss must give no gradient to layers 0 and 2
        for p in net.parameters():
            p.grad = None
        l = 1
        # the training path of a time step (row split: the loss rows' block)
        if scheme == "sf-top2loss":
            out, _ = net._train_forward(l, states[l - 1].detach())
            loss = net._loss(net._mixed(l, out, [s.detach() for s in states]))
        else:
            out, _ = net._train_forward(l, net._input(l, states[l], states[l + 2]),
                                        prepared=True)
            loss = net._loss(out)
        loss.backward()
        optimizers[l].step()
        for j, ps in enumerate(params):
            for p in ps:
                assert (p.grad is None) == (j != l), (scheme, j)


@pytest.mark.parametrize("scheme", ["sf-top2loss", "sf-top2input"])
def test_a_real_time_step_moves_each_layer_with_its_own_optimiser_only(two_blobs, scheme):
    # the fitted scheme's own time step, with one optimiser that moves (lr > 0) and the others
    # frozen (lr = 0): exactly the layer of that optimiser changes
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 8, 2, num_layers=3)
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask, LayerwiseTrainer(epochs=2))
    trainer = LayerwiseTrainer()
    for moving in range(3):
        with torch.no_grad():
            states = net._init_states()
        before = [[p.detach().clone() for p in layer.parameters()] for layer in net.layers]
        opts = [torch.optim.SGD(layer.parameters(), lr=0.5 if j == moving else 0.0)
                for j, layer in enumerate(net.layers)]
        net._time_step(states, opts, trainer)
        for j, layer in enumerate(net.layers):
            same = all(torch.equal(a, b) for a, b in zip(before[j], layer.parameters()))
            assert same == (j != moving), (moving, j)
