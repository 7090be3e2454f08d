"""A layer's propagation split by target rows computes what the whole-graph layer computes.

``RowSplitForward`` propagates only the edges into a block of rows (GCN with its normalisation
of the whole graph given as edge weights); ``SingleForward(row_split=True)`` trains on the loss
rows' block and must reproduce, to float tolerance, the losses, parameters and predictions of
the whole-graph training.
"""

import copy

import pytest
import torch
from torch_geometric.nn import GATConv, GCNConv, GraphConv, SAGEConv
from torch_geometric.utils import degree

from graphkit.train.forward import ForwardLayer, LayerwiseTrainer, make_conv, node_model
from graphkit.train.forward.rowsplit import RowSplitForward, supports_row_split


def _graph(n=30, f=12, seed=0):
    """Random directed edges with duplicates and self-loops; nodes 25..29 have no edge."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, 25, (2, 90), generator=g)
    ei = torch.cat([ei, ei[:, :10], torch.tensor([[3, 4], [3, 4]])], dim=1)
    return torch.randn(n, f, generator=g), ei


def _blocks(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    block = torch.randint(0, 3, (n,), generator=g)
    return [block == k for k in range(3)]


@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
def test_rows_and_gradients_match_the_whole_graph(model):
    x, ei = _graph()
    torch.manual_seed(0)
    layer = ForwardLayer(make_conv(model, 12, 8), normalize=False)
    ref = copy.deepcopy(layer)
    assert supports_row_split(layer)
    blocks = _blocks(30)
    split = RowSplitForward(layer, x, ei, blocks)
    expected = ref(x, ei)
    for k, mask in enumerate(blocks):
        torch.testing.assert_close(split.rows(k)[mask], expected[mask])
    torch.testing.assert_close(split(), expected)
    # a loss on block 0's rows: the same gradient as through the whole-graph layer
    split.rows(0)[blocks[0]].pow(2).sum().backward()
    expected[blocks[0]].pow(2).sum().backward()
    for (name, p), q in zip(layer.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    # the GCN's own normalisation is back on after each call
    if model == "gcn":
        assert layer.conv.normalize


def test_block_edges_are_the_edges_into_the_block():
    x, ei = _graph()
    layer = ForwardLayer(SAGEConv(12, 8), normalize=False)
    blocks = _blocks(30)
    split = RowSplitForward(layer, x, ei, blocks)
    assert sum(part.size(1) for part, _ in split.parts) == ei.size(1)
    for mask, (part, weight) in zip(blocks, split.parts):
        assert weight is None and bool(mask[part[1]].all())
    # GCN: the weights are the symmetric normalisation of the whole graph with self-loops
    gcn = RowSplitForward(ForwardLayer(GCNConv(12, 8), normalize=False), x, ei, blocks)
    index = torch.cat([p for p, _ in gcn.parts], dim=1)
    weight = torch.cat([w for _, w in gcn.parts])
    # the edges that are not self-loops, and one self-loop for every node
    assert index.size(1) == int((ei[0] != ei[1]).sum()) + 30
    isolated = (index[0] == 27) & (index[1] == 27)
    assert weight[isolated].item() == pytest.approx(1.0)  # degree 1: only its self-loop
    deg = degree(index[1], 30)
    torch.testing.assert_close(weight, deg[index[0]].rsqrt() * deg[index[1]].rsqrt())


class _SubclassedGCN(GCNConv):
    """A subclass may compute its rows differently (here: messages scaled by a global mean)."""

    def message(self, x_j, edge_weight):
        return super().message(x_j, edge_weight) / (1 + x_j.abs().mean())


def test_only_row_local_layers_are_split():
    assert not supports_row_split(ForwardLayer(GraphConv(4, 4)))  # not a detected layer
    assert not supports_row_split(ForwardLayer(_SubclassedGCN(4, 4)))
    assert not supports_row_split(ForwardLayer(GCNConv(4, 4, cached=True)))
    assert not supports_row_split(ForwardLayer(GATConv(4, 4, dropout=0.5)))
    assert not supports_row_split(ForwardLayer(SAGEConv(4, 4, aggr="lstm")))
    assert not supports_row_split(ForwardLayer(GCNConv(4, 4, flow="target_to_source")))
    x, ei = _graph()
    with pytest.raises(ValueError, match="incoming"):
        RowSplitForward(ForwardLayer(GraphConv(12, 4)), x, ei, _blocks(30))
    layer = ForwardLayer(GCNConv(12, 4))
    blocks = _blocks(30)
    with pytest.raises(ValueError, match="partition"):
        RowSplitForward(layer, x, ei, [blocks[0], blocks[1]])
    with pytest.raises(ValueError, match="boolean"):
        RowSplitForward(layer, x, ei, [b.long() for b in blocks])


def _assert_identical_fits(nets, logs, test, val_scores=False):
    """Every row sums the same terms in the same order with and without the row split, so on
    the CPU the two fits are bit-identical: losses (and validation scores), stopping points,
    parameters and test predictions."""
    for a, b in zip(logs[True], logs[False]):
        assert a.losses == b.losses
        if val_scores:
            assert a.val_scores == b.val_scores
        assert (a.best_epoch, a.best_score) == (b.best_epoch, b.best_score)
    for (name, p), q in zip(nets[True].named_parameters(), nets[False].parameters()):
        assert torch.equal(p, q), name
    assert torch.equal(nets[True].predict(test), nets[False].predict(test))


def _citation_like(n=60, f=30, classes=3, seed=0):
    from torch_geometric.data import Data
    from torch_geometric.utils import coalesce

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=g) * (torch.rand(n, f, generator=g) < 0.1)
    y = torch.randint(0, classes, (n,), generator=g)
    ei = torch.randint(0, n - 4, (2, 200), generator=g)  # the last 4 nodes are isolated
    ei = coalesce(torch.cat([ei, ei.flip(0)], dim=1))
    idx = torch.randperm(n, generator=g)
    train = torch.zeros(n, dtype=torch.bool)
    val = torch.zeros(n, dtype=torch.bool)
    train[idx[:38]], val[idx[38:48]] = True, True
    return Data(x=x, edge_index=ei, y=y), train, val


@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
def test_sf_with_row_split_trains_the_same_model(model, monkeypatch):
    data, train, val = _citation_like()
    blocks_called = []
    rows = RowSplitForward.rows
    monkeypatch.setattr(RowSplitForward, "rows",
                        lambda self, k: blocks_called.append(k) or rows(self, k))
    nets, logs = {}, {}
    for row_split in (True, False):
        torch.manual_seed(0)
        nets[row_split] = node_model("sf", model, 30, 16, 3, num_layers=3, row_split=row_split)
        # validation every 2 epochs: the early-stopping choices must agree too
        logs[row_split] = nets[row_split].fit(data, train, val,
                                              LayerwiseTrainer(epochs=8, lr=0.01))
    # the split path ran: loss-row block for training, both blocks for validation / hand-off
    assert blocks_called.count(0) > blocks_called.count(1) > 0
    _assert_identical_fits(nets, logs, ~(train | val))


def test_sf_with_an_undetected_layer_propagates_over_the_whole_graph():
    data, train, val = _citation_like()
    nets = {}
    for row_split in (True, False):
        torch.manual_seed(0)
        net = node_model("sf", "gcn", 30, 16, 3, num_layers=2, row_split=row_split)
        for layer in net.layers:  # a layer whose rows also depend on other rows' edges
            layer.conv = _SubclassedGCN(layer.conv.in_channels, 16)
        net.fit(data, train, val, LayerwiseTrainer(epochs=4, lr=0.01))
        nets[row_split] = net
    for p, q in zip(nets[True].parameters(), nets[False].parameters()):
        assert torch.equal(p, q)


def test_cat_csr_is_the_csr_of_the_dense_concatenation():
    from graphkit.train.forward.node_topdown import cat_csr

    g = torch.Generator().manual_seed(0)
    a = torch.rand(7, 5, generator=g) * (torch.rand(7, 5, generator=g) < 0.3)
    b = torch.rand(7, 3, generator=g) * (torch.rand(7, 3, generator=g) < 0.5)
    a[2], b[2], b[4] = 0.0, 0.0, 0.0  # an empty row, and rows empty in one part only
    out = cat_csr(a.to_sparse_csr(), b.to_sparse_csr())
    ref = torch.cat([a, b], dim=1).to_sparse_csr()
    for get in ("crow_indices", "col_indices", "values"):
        assert torch.equal(getattr(out, get)(), getattr(ref, get)()), get
    assert out.shape == ref.shape


def _bag_of_words(n=60, f=150, classes=3, seed=0):
    """``_citation_like`` with wide, sparse features: a top-down first layer's input (features
    and the state above) stays under the sparse-input density."""
    data, train, val = _citation_like(n, f, classes, seed)
    g = torch.Generator().manual_seed(seed + 1)
    data.x = torch.rand(n, f, generator=g) * (torch.rand(n, f, generator=g) < 0.04)
    return data, train, val


@pytest.mark.parametrize("scheme", ["sf-top2loss", "sf-top2input"])
@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
def test_topdown_with_row_split_trains_the_same_model(scheme, model, monkeypatch):
    data, train, val = _bag_of_words()
    blocks_called = []
    rows = RowSplitForward.rows
    monkeypatch.setattr(RowSplitForward, "rows",
                        lambda self, k: blocks_called.append((len(self.blocks), k))
                        or rows(self, k))
    nets, logs = {}, {}
    for row_split in (True, False):
        torch.manual_seed(0)
        nets[row_split] = node_model(scheme, model, 150, 16, 3, num_layers=3,
                                     row_split=row_split)
        # validation every 2 time steps: the early-stopping choices must agree too
        logs[row_split] = nets[row_split].fit(data, train, val,
                                              LayerwiseTrainer(epochs=8, lr=0.01))
    # training differentiated the loss rows' block and filled in the others; inference and
    # the initial states ran over the whole graph as one block
    assert blocks_called.count((2, 0)) == 8 * 3 and blocks_called.count((2, 1)) == 8 * 3
    assert blocks_called.count((1, 0)) > 0
    _assert_identical_fits(nets, logs, ~(train | val), val_scores=True)


def test_topdown_first_input_is_sparse_where_the_layer_takes_it():
    """SF-Top2Input's first layer reads ``[norm(x) | norm(state above)]``: with ``row_split``
    it is assembled from the features' CSR, normalised once, and equals the layer's own
    conversion of the dense concatenation."""
    from graphkit.train.forward.layers import l2_normalize_rows

    data, train, val = _bag_of_words()
    torch.manual_seed(0)
    net = node_model("sf-top2input", "gcn", 150, 16, 3, num_layers=2)
    net.fit(data, train, val, LayerwiseTrainer(epochs=2, lr=0.01))
    above = torch.rand(net.graph.x.size(0), 16) * (torch.rand(net.graph.x.size(0), 16) < 0.5)
    x = net._input(0, net.graph.x, above)
    assert x.layout == torch.sparse_csr
    ref = net.layers[0].prepare(torch.cat([l2_normalize_rows(net.graph.x),
                                           l2_normalize_rows(above)], dim=1))
    assert ref.layout == torch.sparse_csr
    for get in ("crow_indices", "col_indices", "values"):
        assert torch.equal(getattr(x, get)(), getattr(ref, get)()), get
    # a dense state above: over the density, a dense input, as the layer would keep it
    dense = net._input(0, net.graph.x, torch.rand(net.graph.x.size(0), 600))
    assert dense.layout == torch.strided
