"""Local losses, layers, trainer and splits on exact small inputs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from graphkit.train.forward import (
    EarlyStopping,
    ForwardLayer,
    LayerwiseTrainer,
    ff_link_logits,
    ff_link_loss,
    ff_loss,
    goodness,
    l2_normalize_rows,
    link_logits,
    link_loss,
    link_split,
    make_conv,
    node_split,
    sf_logits,
    sf_loss,
)


def test_goodness_and_ff_loss():
    h = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    assert goodness(h, theta=2.0).tolist() == [0.0, 2.0]
    assert goodness(h, reduce="mean").tolist() == [1.0, 2.0]
    pos, neg = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]])
    expected = -math.log(0.5) - math.log(1 - 1 / (1 + math.exp(-2.0)))
    assert ff_loss(pos, [neg], theta=2.0).item() == pytest.approx(expected)
    # negatives are averaged
    assert ff_loss(pos, [neg, neg]).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="negative"):
        ff_loss(pos, [])
    with pytest.raises(ValueError, match="reduce"):
        goodness(h, reduce="max")


def test_sf_and_link_losses():
    h = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 1.0], [-1.0, 0.0]])
    assert sf_logits(h, v, temperature=2.0).tolist() == [[0.5, -0.5], [1.0, 0.0]]
    y = torch.tensor([0, 1])
    assert sf_loss(h, v, y).item() == pytest.approx(F.cross_entropy(h @ v.t(), y).item())
    pairs = torch.tensor([[0, 0], [1, 0]])
    assert link_logits(h, pairs).tolist() == [0.0, 1.0]
    assert link_loss(h, pairs, torch.tensor([0, 1])).item() == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(-1))) / 2)
    with pytest.raises(ValueError, match="temperature"):
        sf_logits(h, v, temperature=0.0)


def test_ff_link_loss_is_goodness_bce_of_edges_and_negatives():
    # official GNN_FL with its FF loss: goodness of h_u * h_v, BCE means of each set, summed
    h = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    pairs = torch.tensor([[0, 1, 0], [1, 2, 2]])
    labels = torch.tensor([1, 1, 0])
    g = [2.0**2 + 0.0 - 2.0, 0.0 + 3.0**2 - 2.0, 0.0 - 2.0]  # (1*2, 0*1); (2*0, 1*3); (0, 0)
    assert ff_link_logits(h, pairs).tolist() == g

    def bce(z, t):
        return -(t * math.log(1 / (1 + math.exp(-z))) + (1 - t) * math.log(
            1 - 1 / (1 + math.exp(-z))))

    expected = (bce(g[0], 1) + bce(g[1], 1)) / 2 + bce(g[2], 0)
    assert ff_link_loss(h, pairs, labels).item() == pytest.approx(expected, rel=1e-6)


def test_link_losses_keep_the_dtype_and_refuse_a_missing_label():
    # link_loss cast the labels to float32, so float64 embeddings gave a float32 loss
    h = torch.tensor([[1.0, 0.5], [2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    pairs = torch.tensor([[0, 1, 0], [1, 2, 2]])
    labels = torch.tensor([1, 1, 0])
    loss = link_loss(h, pairs, labels)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(
        link_logits(h, pairs), labels.double()).item(), rel=1e-12)
    assert link_loss(h.float(), pairs, labels).dtype == torch.float32  # as before
    assert ff_link_loss(h, pairs, labels).dtype == torch.float64
    # ff_link_loss read NaN with no negative (or no edge), where ff_loss raises
    with pytest.raises(ValueError, match=r"ff_link_loss needs at least one negative pair "
                                         r"\(label 0\) in edge_label, got 3 edges and 0"):
        ff_link_loss(h, pairs, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"needs at least one edge \(label 1\) in edge_label, "
                                         r"got 0 edges and 3 negatives"):
        ff_link_loss(h, pairs, torch.zeros(3))


def test_layers_and_bad_models():
    x = torch.tensor([[3.0, 4.0]])
    torch.testing.assert_close(l2_normalize_rows(x), torch.tensor([[0.6, 0.8]]))
    with pytest.raises(ValueError, match="2-D"):
        l2_normalize_rows(torch.ones(3))
    with pytest.raises(ValueError, match="unknown model"):
        make_conv("gin", 4, 4)
    with pytest.raises(ValueError, match="divisible by 4"):
        make_conv("gat", 4, 6)
    assert make_conv("gat", 4, 8).heads == 4
    layer = ForwardLayer(make_conv("gcn", 2, 3))
    out = layer(torch.randn(4, 2), torch.tensor([[0, 1], [1, 0]]))
    assert out.shape == (4, 3) and bool((out >= 0).all())
    # scaling a row does not change the output of a normalising layer
    x = torch.randn(4, 2)
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    torch.testing.assert_close(layer(x, ei), layer(x * 5, ei))


def test_trainer_restores_best_checkpoint_and_validates():
    layer = torch.nn.Linear(1, 1)
    scores = iter([0.1, 0.9, 0.2, 0.3])
    states = []
    trainer = LayerwiseTrainer(epochs=10, val_every=1, patience=2, lr=0.5)
    opt = trainer.optimizer(layer)

    def epoch():
        loss = trainer.step(layer, opt, (layer(torch.ones(1, 1)) - 10).pow(2).sum())
        states.append(layer.weight.detach().clone())
        return loss

    log = trainer.fit(layer, epoch, lambda: next(scores))
    assert log.epochs == 4 and log.best_epoch == 1 and log.best_score == 0.9
    assert log.val_scores == [0.1, 0.9, 0.2, 0.3]  # every check, in order
    # losses stay tensors during training (no device sync per step), floats in the log
    assert len(log.losses) == 4 and all(type(v) is float for v in log.losses)
    torch.testing.assert_close(layer.weight.detach(), states[1])
    for bad in ({"epochs": 0}, {"patience": 0}, {"val_every": 0}, {"lr": 0.0}):
        with pytest.raises(ValueError):
            LayerwiseTrainer(**bad)
    with pytest.raises(ValueError, match="lr must be positive and finite, got nan"):
        LayerwiseTrainer(lr=float("nan"))
    with pytest.raises(ValueError, match="grad_clip must be None or positive and finite, got 0"):
        LayerwiseTrainer(grad_clip=0.0)  # silently zeroed every gradient
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping("max", patience=0)  # the shared graphkit.train.EarlyStopping


def test_trainer_refuses_fractional_counts_and_non_finite_rates():
    # epochs=2.5 failed inside fit (range), val_every=1.5 validated every third epoch, lr=inf
    # trained to NaN and failed in the metrics
    for name, bad in [("epochs", 2.5), ("val_every", 1.5), ("patience", 3.0),
                      ("epochs", True), ("val_every", "2")]:
        with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1, got {bad!r}"):
            LayerwiseTrainer(**{name: bad})
    for name, bad, rule in [("lr", math.inf, "positive and finite"),
                            ("lr", True, "positive and finite"),
                            ("weight_decay", math.inf, "non-negative and finite"),
                            ("weight_decay", -1e-4, "non-negative and finite"),
                            ("grad_clip", math.inf, "None or positive and finite"),
                            ("grad_clip", math.nan, "None or positive and finite")]:
        with pytest.raises(ValueError, match=rf"{name} must be {rule}, got {bad!r}"):
            LayerwiseTrainer(**{name: bad})
    # integers of either kind, finite rates, and a zero weight decay are as before
    trainer = LayerwiseTrainer(epochs=np.int64(3), lr=1, weight_decay=0, val_every=np.int32(1),
                               patience=2, grad_clip=np.float64(1.0))
    log = trainer.fit(torch.nn.Linear(1, 1), lambda: 0.0, lambda: 0.5)
    assert log.epochs == 3 and log.val_scores == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("model", ["gcn", "sage", "gat"])
def test_forward_layer_names_bad_shapes(model):
    layer = ForwardLayer(make_conv(model, 4, 8))
    ei = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="x has 3 features, but in_channels is 4"):
        layer(torch.randn(5, 3), ei)  # was a matrix-product error inside the convolution
    with pytest.raises(ValueError, match="edge_index must hold integer node ids"):
        layer(torch.randn(5, 4), ei.float())  # was a scatter() dtype error
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, num_edges\]"):
        layer(torch.randn(5, 4), ei[0])


def test_node_split_is_64_16_20_and_deterministic():
    n = 1000
    folds = [node_split(n, i) for i in range(5)]
    tests = torch.stack([f[2] for f in folds])
    assert bool((tests.sum(0) == 1).all()), "the five test folds partition the nodes"
    for train, val, test in folds:
        assert (int(train.sum()), int(val.sum()), int(test.sum())) == (640, 160, 200)
        assert not bool((train & val).any() | (train & test).any() | (val & test).any())
    assert all(torch.equal(a, b) for a, b in zip(node_split(n, 3), folds[3]))
    with pytest.raises(ValueError, match="split"):
        node_split(n, 5)
    with pytest.raises(ValueError, match="num_nodes must be an integer, got float"):
        node_split(100.0, 0)


def test_node_split_refuses_a_non_integer_split():
    # 1.5 matched no fold (a bare StopIteration) and True was taken as fold 1
    for bad in (1.5, True, -1, 5):
        with pytest.raises(ValueError, match=rf"split must be an integer in \[0, 5\), got "
                                             rf"{bad!r}"):
            node_split(20, bad)
    assert all(torch.equal(a, b) for a, b in zip(node_split(20, np.int64(2)), node_split(20, 2)))


def test_link_split_has_fixed_one_to_one_negatives():
    g = torch.Generator().manual_seed(0)
    src, dst = torch.randint(0, 50, (2, 200), generator=g)
    keep = src < dst
    ei = torch.stack([src[keep], dst[keep]])
    ei = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1)
    data = Data(x=torch.randn(50, 4), edge_index=ei, num_nodes=50)
    state = torch.get_rng_state()
    train, val, test = link_split(data, 1)
    assert torch.equal(torch.get_rng_state(), state)
    for d in (train, val, test):
        assert int(d.edge_label.sum()) * 2 == d.edge_label.numel()
    again = link_split(data, 1)[2]
    assert torch.equal(again.edge_label_index, test.edge_label_index)
    assert not torch.equal(link_split(data, 2)[2].edge_label_index, test.edge_label_index)


def test_link_split_checks_the_graph_first():
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    x = torch.randn(5, 2)
    # each of these was split silently (a float edge_index, node ids past num_nodes, NaN x)
    for data, match in [(Data(x=x, edge_index=ei.float()), "edge_index must hold integers"),
                        (Data(x=x, edge_index=ei + 3), "node id 7, out of range for num_nodes=5"),
                        (Data(x=x.index_fill(0, torch.tensor([2]), float("nan")),
                              edge_index=ei), r"x holds NaN values \(first in row 2\)")]:
        with pytest.raises(ValueError, match=match):
            link_split(data, 0)
    # listed in one direction only: RandomLinkSplit(is_undirected=True) would drop the u > v half
    one_way = torch.tensor([[0, 3, 2], [1, 1, 4]])
    with pytest.raises(ValueError, match="needs an undirected graph with both directions"):
        link_split(Data(x=x, edge_index=one_way), 0)
    both = torch.cat([one_way, one_way.flip(0)], 1)
    assert link_split(Data(x=x, edge_index=both), 0)[0].edge_index.size(1) > 0


def test_forward_layer_passes_edge_weights_by_name_or_refuses_them():
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    ones, fives = torch.ones(4), torch.full((4,), 5.0)
    gcn = ForwardLayer(make_conv("gcn", 4, 8))
    assert not torch.allclose(gcn(x, ei, ones), gcn(x, ei, fives))  # the weights are used
    for model in ("sage", "gat"):  # positionally they landed in `size` / `edge_attr`
        layer = ForwardLayer(make_conv(model, 4, 8))
        with pytest.raises(ValueError, match="takes no edge weights"):
            layer(x, ei, ones)
        assert layer(x, ei).shape == (5, 8)


def test_forward_layer_names_what_it_cannot_use():
    with pytest.raises(TypeError, match="needs a graph convolution"):
        ForwardLayer(torch.nn.Sequential(torch.nn.Linear(4, 8)))
    with pytest.raises(TypeError, match=r"Linear.forward cannot be called as conv\(x, edge_"):
        ForwardLayer(torch.nn.Linear(4, 8))
    layer = ForwardLayer(make_conv("gcn", 4, 8))  # normalises its input rows by default
    sparse_x = torch.randn(5, 4).to_sparse_csr()
    with pytest.raises(ValueError, match="row L2 normalisation needs a dense feature matrix"):
        layer(sparse_x, torch.tensor([[0, 1], [1, 0]]))


def test_link_training_refuses_a_split_with_one_label():
    from graphkit.train.forward.link import check_link_data

    x = torch.randn(4, 2)
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    only_edges = Data(x=x, edge_index=ei, edge_label_index=ei[:, :2], edge_label=torch.ones(2))
    with pytest.raises(ValueError, match=r"val.edge_label needs both edges \(1\) and negatives"):
        check_link_data(only_edges, "val")
    empty = Data(x=x, edge_index=ei, edge_label_index=ei[:, :0], edge_label=torch.ones(0))
    with pytest.raises(ValueError, match="val.edge_label needs both"):
        check_link_data(empty, "val")


def test_link_split_refuses_repeats_self_loops_and_bad_shares():
    # a repeated edge leaked test positives into the training graph (inflated ROC-AUC), and a
    # self-loop became a positive to predict
    ring = torch.arange(6)
    ei = torch.cat([torch.stack([ring, (ring + 1) % 6]), torch.stack([(ring + 1) % 6, ring])], 1)
    x = torch.randn(6, 2)
    with pytest.raises(ValueError, match="got 12 repeated edge"):
        link_split(Data(x=x, edge_index=torch.cat([ei, ei], 1)), 0)
    with pytest.raises(ValueError, match="got 1 self-loop"):
        link_split(Data(x=x, edge_index=torch.cat([ei, torch.tensor([[2], [2]])], 1)), 0)
    for kwargs, match in [({"num_val": -0.1}, "num_val must be a fraction"),
                          ({"num_test": 1.5}, "num_test must be a fraction")]:
        with pytest.raises(ValueError, match=match):
            link_split(Data(x=x, edge_index=ei), 0, **kwargs)
    with pytest.raises(ValueError, match="split must be an integer >= 0, got 1.5"):
        link_split(Data(x=x, edge_index=ei), 1.5)
