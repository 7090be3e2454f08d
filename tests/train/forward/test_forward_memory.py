"""The memory-lean SF / BP trainers compute what the straightforward code computes.

``SingleForward.fit`` builds its first-layer input without full-size intermediate copies, frees
each layer's gradients once applied and drops a layer's output before the next layer trains;
none of this may change a loss, a parameter or a prediction. The reference below is the plain
loop of Park et al. (ICLR 2024): ``handoff(cat(x, class-node features))`` as the dense input,
one Adam per layer, ``sf_loss`` on the training and class nodes, the detached normalised output
as the next input.
"""

import copy

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

from graphkit.train.forward import (
    LayerwiseTrainer,
    SingleForward,
    handoff,
    link_model,
    link_split,
    local_step,
    node_model,
    sf_loss,
)
from graphkit.train.forward.layers import handoff_rows, propagation_input


def _bag_of_words(n=50, f=40, classes=3, seed=0):
    """A graph with sparse non-negative features (about 5% non-zero) and some empty rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=g) * (torch.rand(n, f, generator=g) < 0.05)
    x[:3] = 0.0
    y = torch.arange(n) % classes
    ei = torch.randint(0, n, (2, 160), generator=g)
    ei = coalesce(torch.cat([ei, ei.flip(0)], dim=1))
    ei = ei[:, ei[0] != ei[1]]  # a simple graph: no duplicate edge, no self-loop
    idx = torch.arange(n)
    return Data(x=x, edge_index=ei, y=y), idx < 30, (idx >= 30) & (idx < 40)


def _reference_sf(net: SingleForward, data, train, epochs, lr, weight_decay):
    """Plain SF training: dense augmented input, ``epochs`` local steps per layer."""
    n = data.num_nodes
    graph = net.virtual.augment(data.x, data.edge_index, train.nonzero().view(-1),
                                data.y[train])
    inp, losses = handoff(graph.x), []
    for layer in net.layers:
        opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
        layer_losses = []
        for _ in range(epochs):
            out = layer(inp, graph.edge_index)
            loss = sf_loss(out[:n][train], out[n:], data.y[train])
            opt.zero_grad()
            loss.backward()
            opt.step()
            layer_losses.append(float(loss.detach()))
        losses.append(layer_losses)
        with torch.no_grad():
            inp = handoff(layer(inp, graph.edge_index))
    return losses


@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
@pytest.mark.parametrize("sparse_input", [True, False])
def test_sf_fit_matches_the_plain_loop(model, sparse_input):
    data, train, val = _bag_of_words()
    torch.manual_seed(0)
    net = node_model("sf", model, 40, 8, 3, num_layers=3, sparse_input=sparse_input)
    ref = copy.deepcopy(net)
    # no validation check within the budget: no checkpoint is restored, every step counts
    logs = net.fit(data, train, val, LayerwiseTrainer(epochs=6, val_every=10, lr=0.01))
    losses = _reference_sf(ref, data, train, epochs=6, lr=0.01, weight_decay=5e-4)
    for log, expected in zip(logs, losses):
        torch.testing.assert_close(torch.tensor(log.losses), torch.tensor(expected))
    for (name, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    # first-layer input: the normalised augmented features, one copy, sparse only if asked
    dense = handoff(ref.virtual.augment(data.x, data.edge_index, train.nonzero().view(-1),
                                        data.y[train]).x)
    x = net.graph.x
    sparse = sparse_input and model in ("gcn", "gat")
    assert (x.layout == torch.sparse_csr) == sparse
    torch.testing.assert_close(x.to_dense() if sparse else x, dense, rtol=0, atol=0)
    # frozen layers keep no gradients
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_handoff_rows_equals_the_one_shot_expression(sparse, normalize):
    data, _, _ = _bag_of_words()
    extra = torch.randn(3, 40)
    expected = torch.cat([data.x, extra])
    if normalize:
        expected = handoff(expected)
    for chunk in (7, 40 * 11, 2**20):  # chunks of one row, of 11 rows, of everything
        out = handoff_rows([data.x, extra], sparse=sparse, normalize=normalize,
                           chunk_elements=chunk)
        assert (out.layout == torch.sparse_csr) == sparse
        assert torch.equal(out.to_dense() if sparse else out, expected)
    # dense features (above the density threshold) stay dense even when sparse is asked for
    dense = torch.rand(10, 6) + 0.1
    assert handoff_rows([dense], sparse=True).layout == torch.strided
    # a single block that needs no normalisation is returned as is (no copy)
    assert handoff_rows([dense], normalize=False).data_ptr() == dense.data_ptr()


def test_local_step_frees_gradients_once_applied():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(lin.parameters(), lr=0.1)
    before = lin.weight.detach().clone()
    local_step(lin, opt, lin(torch.randn(5, 4)).pow(2).sum())
    assert not torch.equal(lin.weight, before)
    assert all(p.grad is None for p in lin.parameters())


@pytest.mark.parametrize("scheme", ["sf", "bp"])
@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_sparse_adjacency_trains_the_same_function(scheme, model):
    data, train, val = _bag_of_words()
    nets = {}
    for adjacency in ("edges", "sparse"):
        torch.manual_seed(0)
        nets[adjacency] = node_model(scheme, model, 40, 8, 3, num_layers=2, adjacency=adjacency)
        nets[adjacency].fit(data, train, val, LayerwiseTrainer(epochs=4, val_every=10))
    for p, q in zip(nets["edges"].parameters(), nets["sparse"].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    test = ~(train | val)
    torch.testing.assert_close(nets["edges"].predict(test), nets["sparse"].predict(test),
                               rtol=1e-4, atol=1e-5)


def test_sparse_adjacency_is_built_once_and_checked():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    adj = propagation_input(ei, 3, "sparse")
    assert adj.layout == torch.sparse_csr
    assert adj.to_dense()[1, 0] == 1 and adj.to_dense()[0, 1] == 0  # row = target
    assert propagation_input(ei, 3, "edges") is ei
    with pytest.raises(ValueError, match="adjacency"):
        propagation_input(ei, 3, "dense")
    with pytest.raises(ValueError, match="gat"):
        node_model("sf", "gat", 4, 8, 2, adjacency="sparse")
    # a CSR matrix held a repeated edge once, and GCN's sparse normalisation added a second
    # self-loop: not "the same function" as the edge list (predictions 1e-2 apart)
    with pytest.raises(ValueError, match=r"got 1 self-loop\(s\) and 0 repeated"):
        propagation_input(torch.cat([ei, torch.tensor([[1], [1]])], 1), 3, "sparse")
    with pytest.raises(ValueError, match=r"got 0 self-loop\(s\) and 1 repeated"):
        propagation_input(torch.cat([ei, ei[:, :1]], 1), 3, "sparse")


def test_a_float64_model_propagates_over_a_float64_sparse_adjacency():
    # the sparse adjacency was always float32: a .double() model with adjacency="sparse" (and
    # the top-down link models on GCN / SAGE) failed inside torch on the dtype mismatch
    g = torch.Generator().manual_seed(0)
    n = 40
    ei = torch.randint(0, n, (2, 120), generator=g)
    ei = coalesce(to_undirected(ei[:, ei[0] != ei[1]]))
    data = Data(x=torch.randn(n, 6, generator=g).double(), edge_index=ei,
                y=torch.arange(n) % 2)
    train, val = torch.arange(n) < 20, (torch.arange(n) >= 20) & (torch.arange(n) < 30)
    for scheme in ("sf", "bp"):
        for model in ("gcn", "sage"):
            net = node_model(scheme, model, 6, 8, 2, num_layers=2, adjacency="sparse").double()
            net.fit(data, train, val, LayerwiseTrainer(epochs=2))
            assert net.predict(~train).dtype == torch.float64
    splits = link_split(data, 0)
    for scheme in ("sf-top2loss", "sf-top2input"):
        for model in ("gcn", "sage"):
            net = link_model(scheme, model, 6, 8, num_layers=2).double()
            net.fit(splits[0], splits[1], LayerwiseTrainer(epochs=2))
            assert net.predict(splits[2]).dtype == torch.float64
