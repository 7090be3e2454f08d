"""Every scheme learns a separable toy problem; FF separates positives from negatives."""

import copy

import pytest
import torch
from torch_geometric.data import Data

from graphkit.metrics import accuracy, roc_auc
from graphkit.train.forward import (
    LINK_SCHEMES,
    SCHEMES,
    FFLink,
    LayerwiseTrainer,
    SFTop2Loss,
    link_model,
    link_split,
    node_model,
    wrong_classes,
)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_learns_two_blobs(two_blobs, scheme):
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=2)
    logs = net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
                   LayerwiseTrainer(epochs=60, lr=0.01, val_every=2, patience=30))
    assert all(log.epochs == 60 for log in logs)
    test = two_blobs.test_mask
    per_layer = net.layer_scores(test, two_blobs.train_mask | two_blobs.val_mask)
    assert len(per_layer) == (1 if scheme == "bp" else 2)
    assert accuracy(per_layer[-1], two_blobs.y[test]) >= 0.9


@pytest.mark.parametrize("scheme", SCHEMES)
def test_labelled_nodes_are_predicted_too(two_blobs, scheme):
    # predicting the training nodes themselves (labelled by default): an evaluated node takes
    # each candidate class, so its scores differ between classes and follow its label
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=2)
    train = two_blobs.train_mask
    net.fit(two_blobs, train, two_blobs.val_mask,
            LayerwiseTrainer(epochs=60, lr=0.01, val_every=2, patience=30))
    scores = net.predict(train)
    assert (scores.max(1).values - scores.min(1).values > 1e-6).all()
    assert accuracy(scores, two_blobs.y[train]) >= 0.9


@pytest.mark.parametrize("scheme", ["ff-la", "ff-vn"])
def test_ff_positive_goodness_above_negative_at_every_layer(two_blobs, scheme):
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=3)
    # a single validation check at the end: each layer keeps its final (trained) state
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
            LayerwiseTrainer(epochs=60, lr=0.01, val_every=60, patience=1))
    assert len(net.goodness_gap) == 3
    assert all(gap > 0 for gap in net.goodness_gap), net.goodness_gap


@pytest.mark.parametrize("scheme", ["ff-la", "ff-vn"])
def test_ff_goodness_trace(two_blobs, scheme):
    """Per layer and epoch, the positive and negative mean goodness of the step's own forward
    pass (the official Pos / Neg); the last epoch's difference is ``goodness_gap_last``."""
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=2)
    logs = net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
                   LayerwiseTrainer(epochs=10, lr=0.01, val_every=2, patience=2))
    assert len(net.goodness_trace) == 2
    for l, (log, trace) in enumerate(zip(logs, net.goodness_trace)):
        assert len(trace) == log.epochs and len(log.val_scores) == log.epochs // 2
        assert log.best_score == max(log.val_scores)
        assert trace[-1][0] - trace[-1][1] == pytest.approx(net.goodness_gap_last[l], abs=1e-6)
        assert len({p for p, _ in trace}) > 1  # a fresh forward pass every epoch
    # the trace of the first layer's first epoch: its initial, untrained state
    torch.manual_seed(0)
    fresh = node_model(scheme, "gcn", 8, 16, 2, num_layers=2)
    pos = fresh._normalised(fresh._positive(two_blobs, two_blobs.train_mask))
    fresh._train_idx = two_blobs.train_mask.nonzero().view(-1)
    first = net.goodness_trace[0][0]
    with torch.no_grad():
        hp = fresh.layers[0](*pos)[fresh._train_idx]
    assert first[0] == pytest.approx(float((hp.pow(2).sum(-1) - 2.0).mean()), rel=1e-5)


@pytest.mark.parametrize("scheme", ["ff-la", "ff-vn"])
def test_ff_negative_inputs_at_every_layer(two_blobs, scheme):
    """FF-VN (official ``GNN_VNLA``): at every layer each negative copy reads the *positive*
    copy's features and differs from it only in its virtual-node links; FF-LA's negatives differ
    in their features (the appended label) and carry their own outputs forward."""
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=3)
    seen = {}  # layer -> (positive copy, negative copies) of its last training step
    train_outputs = net._train_outputs

    def record(layer, pos, negs):
        seen[id(layer)] = (pos, negs)
        return train_outputs(layer, pos, negs)

    net._train_outputs = record
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
            LayerwiseTrainer(epochs=4, lr=0.01, val_every=2, patience=1))
    assert len(net.goodness_gap_last) == 3
    for layer in net.layers:
        (x_pos, ei_pos), [(x_neg, ei_neg)] = seen[id(layer)]
        if scheme == "ff-vn":
            assert torch.equal(x_neg, x_pos)
            assert not torch.equal(ei_neg, ei_pos)  # linked to the wrong class node
        else:
            assert not torch.equal(x_neg, x_pos)
            assert torch.equal(ei_neg, ei_pos)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_link_prediction_learns_blocks(block_link_graph, scheme):
    train, val, test = link_split(block_link_graph(120, 8, 1200, 2.0), 0)
    torch.manual_seed(0)
    net = link_model(scheme, "gcn", 8, 16, num_layers=2)
    net.fit(train, val, LayerwiseTrainer(epochs=100, lr=0.01, val_every=2, patience=20))
    assert roc_auc(test.edge_label, net.predict(test)) >= 0.7


def test_bad_inputs(two_blobs):
    with pytest.raises(ValueError, match="unknown scheme"):
        node_model("ff", "gcn", 8, 16, 2)
    with pytest.raises(ValueError, match="link prediction"):
        link_model("ff", "gcn", 8, 16)
    # every scheme name the benchmark takes works for links; both FF names are the FF learner
    assert set(LINK_SCHEMES) == set(SCHEMES)
    assert type(link_model("ff-la", "gcn", 8, 16)) is type(link_model("ff-vn", "gcn", 8, 16)) \
        is FFLink
    net = node_model("sf", "gcn", 8, 16, 2)
    with pytest.raises(ValueError, match="call fit"):
        net.predict(two_blobs.test_mask)
    with pytest.raises(ValueError, match="boolean mask"):
        net.fit(two_blobs, two_blobs.train_mask.long(), two_blobs.val_mask)
    with pytest.raises(ValueError, match="selects no node"):
        net.fit(two_blobs, torch.zeros_like(two_blobs.train_mask), two_blobs.val_mask)
    with pytest.raises(ValueError, match="more classes"):
        node_model("sf", "gcn", 8, 16, 2).fit(
            Data(x=two_blobs.x, edge_index=two_blobs.edge_index, y=two_blobs.y * 2),
            two_blobs.train_mask, two_blobs.val_mask)
    with pytest.raises(ValueError, match="num_layers"):
        node_model("sf-top2input", "gcn", 8, 16, 2, num_layers=0)
    with pytest.raises(ValueError, match="edge_label"):
        link_model("sf", "gcn", 8, 16).fit(two_blobs, two_blobs)
    x = two_blobs.x.clone()
    x[5, 0] = float("inf")
    nan_graph = Data(x=x, edge_index=two_blobs.edge_index, y=two_blobs.y)
    for scheme in ("sf", "bp", "ff-la", "sf-top2input"):
        with pytest.raises(ValueError, match=r"x holds infinite values \(first in row 5\)"):
            node_model(scheme, "gcn", 8, 16, 2).fit(nan_graph, two_blobs.train_mask,
                                                    two_blobs.val_mask)
    n = two_blobs.num_nodes
    far = Data(x=two_blobs.x, edge_index=torch.tensor([[0, 1], [1, n + 3]]), y=two_blobs.y)
    with pytest.raises(ValueError, match=f"node id {n + 3}, out of range"):
        node_model("sf", "gcn", 8, 16, 2).fit(far, two_blobs.train_mask, two_blobs.val_mask)
    link = Data(x=two_blobs.x, edge_index=two_blobs.edge_index,
                edge_label_index=torch.tensor([[0], [n]]), edge_label=torch.ones(1))
    with pytest.raises(ValueError, match="train.edge_label_index holds node id"):
        link_model("sf", "gcn", 8, 16).fit(link, link)


def test_top2loss_mixes_raw_output_with_normalised_upper_states():
    # official GNNTop2LossSF: mean of the fresh (raw) output and the L2-normalised states above
    out = torch.tensor([[3.0, 4.0]])
    states = [torch.tensor([[9.0, 9.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([[5.0, 0.0]])]
    mixed = SFTop2Loss._mixed(0, out, states)
    torch.testing.assert_close(mixed, torch.tensor([[4.0 / 3.0, 5.0 / 3.0]]))
    torch.testing.assert_close(SFTop2Loss._mixed(2, out, states), out)


def _unit_rows(x):
    return x / (x.norm(dim=1, keepdim=True) + 1e-8)


@pytest.mark.parametrize("row_split", [True, False])
def test_top2loss_raw_bottom_up_follows_the_official_rule(two_blobs, row_split):
    # official GNNTop2LossSF.bottom_up: relu(conv(.)) chained on raw outputs (the first layer on
    # the raw features), only the stored states normalised; eval_model then scores layer l on
    # the normalised state below it, mixed with the normalised states above
    torch.manual_seed(0)
    net = SFTop2Loss("gcn", 8, 16, 2, num_layers=3, bottom_up="raw", row_split=row_split)
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
            LayerwiseTrainer(epochs=6, lr=0.01))
    graph, convs = net.graph, [layer.conv for layer in net.layers]
    with torch.no_grad():
        h, stored = graph.x, []
        for conv in convs:
            h = conv(h, graph.edge_index).relu()
            stored.append(_unit_rows(h))
        below = [_unit_rows(graph.x), *stored[:-1]]
        n, test, total = graph.num_real, two_blobs.test_mask, 0.0
        for l, conv in enumerate(convs):
            cur = conv(below[l], graph.edge_index).relu()
            mixed = torch.stack([cur, *stored[l + 1:]]).mean(dim=0)
            total = total + (mixed[:n][test] @ mixed[n:].T).softmax(dim=-1)
            torch.testing.assert_close(net.layer_scores(test)[l], total)
    # the rule matters: the normalised chain gives other scores with the same parameters
    net.bottom_up = "normalized"
    assert not torch.allclose(net.layer_scores(test)[-1], total)


def test_top2loss_rejects_an_unknown_bottom_up():
    with pytest.raises(ValueError, match="bottom_up"):
        SFTop2Loss("gcn", 8, 16, 2, bottom_up="official")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_node_schemes_name_bad_features_labels_and_masks(two_blobs, scheme):
    train, val = two_blobs.train_mask, two_blobs.val_mask
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=1)
    wide = Data(x=torch.randn(60, 9), edge_index=two_blobs.edge_index, y=two_blobs.y)
    with pytest.raises(ValueError, match="data.x has 9 features, but in_channels is 8"):
        net.fit(wide, train, val)  # was a matrix-product error inside the first layer
    int32 = Data(x=two_blobs.x, edge_index=two_blobs.edge_index, y=two_blobs.y.int())
    with pytest.raises(ValueError, match="data.y must be a vector of int64 class ids"):
        net.fit(int32, train, val)
    with pytest.raises(ValueError, match="val_mask selects no node"):
        net.fit(two_blobs, train, torch.zeros_like(val))  # was 'y_true is empty' after training
    net.fit(two_blobs, train, val, LayerwiseTrainer(epochs=2, val_every=1, patience=1))
    with pytest.raises(ValueError, match=r"eval_mask must be a boolean mask of length "
                                         r"num_nodes=60, got dtype torch.bool and shape \(5,\)"):
        net.predict(val[:5])
    with pytest.raises(ValueError, match="eval_mask must be a boolean mask"):
        net.predict(val.nonzero().view(-1))
    with pytest.raises(ValueError, match="labelled must be a boolean mask"):
        net.layer_scores(val, train[:10])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_link_schemes_name_bad_features_labels_and_pairs(two_blobs, scheme):
    from torch_geometric.utils import coalesce, remove_self_loops

    # link_split refuses the fixture's repeated random pairs and self-loops
    graph = two_blobs.clone()
    graph.edge_index = remove_self_loops(coalesce(graph.edge_index))[0]
    train, val, test = link_split(graph, 0)
    with pytest.raises(ValueError, match="train.x has 8 features, but in_channels is 5"):
        link_model(scheme, "gcn", 5, 16, num_layers=1).fit(train, val)
    threes = train.clone()
    threes.edge_label = train.edge_label * 3
    with pytest.raises(ValueError, match="train.edge_label must hold 0/1 labels"):
        link_model(scheme, "gcn", 8, 16, num_layers=1).fit(threes, val)
    net = link_model(scheme, "gcn", 8, 16, num_layers=1)
    net.fit(train, val, LayerwiseTrainer(epochs=2, val_every=1, patience=1))
    far = test.clone()
    far.edge_label_index = test.edge_label_index + two_blobs.num_nodes
    with pytest.raises(ValueError, match="data.edge_label_index holds node id"):
        net.predict(far)  # was an IndexError
    wide = test.clone()
    wide.x = torch.randn(two_blobs.num_nodes, 9)
    with pytest.raises(ValueError, match="data.x has 9 features, but in_channels is 8"):
        net.predict(wide)


def test_ff_needs_two_classes_and_wrong_classes_checks_its_labels():
    with pytest.raises(ValueError, match="Forward-Forward needs at least 2 classes, got 1"):
        node_model("ff-la", "gcn", 8, 16, 1)  # fit failed later: 'needs one negative copy'
    with pytest.raises(ValueError, match=r"y holds class ids outside \[0, 3\)"):
        wrong_classes(torch.tensor([0, 5]), 3, 2)  # was an IndexError
    with pytest.raises(ValueError, match="num_classes must be >= 2, got 1"):
        wrong_classes(torch.tensor([0, 0]), 1, 2)  # gave no negatives silently


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("features", ["dense", "bag-of-words"])
def test_fitted_schemes_deep_copy(two_blobs, scheme, features):
    # the row-split schemes cache sparse CSR inputs, which torch cannot deep-copy
    import copy

    data = two_blobs.clone()
    if features == "bag-of-words":
        data.x = (data.x > 1.5).float()  # mostly zero
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 8, 2, num_layers=2)
    net.fit(data, data.train_mask, data.val_mask, LayerwiseTrainer(epochs=2))
    twin = copy.deepcopy(net)
    test = data.test_mask
    assert torch.equal(twin.predict(test), net.predict(test))
    first = next(net.parameters())
    assert next(twin.parameters()).data_ptr() != first.data_ptr()
    if scheme == "sf-top2input" and features == "dense":
        assert net._below0_csr is None  # no CSR copy of dense features


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_loaded_state_dict_says_how_to_reuse_a_fitted_scheme(two_blobs, scheme, tmp_path):
    # "call fit() before predicting" sent a user who had loaded the weights back to training
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 8, 2, num_layers=2)
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask, LayerwiseTrainer(epochs=2))
    fresh = node_model(scheme, "gcn", 8, 8, 2, num_layers=2)
    fresh.load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match=r"holds the weights only.*torch.save\(model\)"):
        fresh.predict(two_blobs.test_mask)
    torch.save(net, tmp_path / "net.pt")  # what the message advises
    whole = torch.load(tmp_path / "net.pt", weights_only=False)
    assert torch.equal(whole.predict(two_blobs.test_mask), net.predict(two_blobs.test_mask))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_fitted_scheme_predicts_with_the_state_dict_it_loads(two_blobs, scheme):
    # SF and the top-down schemes cached the augmented graph, with the virtual class nodes'
    # features, at fit(): a loaded state_dict changed the buffer but not the cached copy
    trainer = LayerwiseTrainer(epochs=4, val_every=2, patience=10)
    train, val, test = two_blobs.train_mask, two_blobs.val_mask, two_blobs.test_mask
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 8, 2, num_layers=2)
    net.fit(two_blobs, train, val, trainer)
    torch.manual_seed(9)
    other = node_model(scheme, "gcn", 8, 8, 2, num_layers=2)
    other.fit(two_blobs, train, val, trainer)
    other.load_state_dict(net.state_dict())
    assert torch.equal(other.predict(test), net.predict(test))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("task", ["node", "link"])
def test_reset_parameters_reinitialises_every_parameter_and_buffer(two_blobs, scheme, task):
    torch.manual_seed(0)
    net = (node_model(scheme, "gcn", 8, 8, 2, num_layers=2) if task == "node"
           else link_model(scheme, "gcn", 8, 8, num_layers=2))
    with torch.no_grad():
        for t in [*net.parameters(), *net.buffers()]:
            if t.is_floating_point():
                t.fill_(0.123)
    net.reset_parameters()
    stale = [name for name, t in [*net.named_parameters(), *net.named_buffers()]
             if t.is_floating_point() and t.numel() > 1 and bool((t == 0.123).all())]
    assert not stale
    if task == "node":  # a fitted scheme predicts from the new state
        trainer = LayerwiseTrainer(epochs=2)
        net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask, trainer)
        before = net.predict(two_blobs.test_mask)
        torch.manual_seed(1)
        net.reset_parameters()
        twin = copy.deepcopy(net)
        twin._build_fitted_inputs()  # the cached inputs as the reset state gives them
        assert not torch.equal(net.predict(two_blobs.test_mask), before)
        assert torch.equal(net.predict(two_blobs.test_mask), twin.predict(two_blobs.test_mask))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_features_of_another_dtype_than_the_model_are_named(two_blobs, scheme):
    # float64 features with a float32 model failed inside torch ("expected m1 and m2 to have
    # the same dtype"), naming neither data.x nor the fix
    train, val, test = two_blobs.train_mask, two_blobs.val_mask, two_blobs.test_mask
    trainer = LayerwiseTrainer(epochs=2, val_every=1, patience=1)
    wide = Data(x=two_blobs.x.double(), edge_index=two_blobs.edge_index, y=two_blobs.y)
    with pytest.raises(ValueError, match=r"data.x has dtype torch.float64, but the model's "
                                         r"parameters have dtype torch.float32: call "
                                         r"\.double\(\) on the model or \.float\(\) on data.x"):
        node_model(scheme, "gcn", 8, 16, 2, num_layers=1).fit(wide, train, val, trainer)
    net = node_model(scheme, "gcn", 8, 16, 2, num_layers=1).double()  # the advised fix
    net.fit(wide, train, val, trainer)
    assert net.predict(test).dtype == torch.float64
    if scheme == "ff-la":  # its float32 labels promote half features: they still work
        half = Data(x=two_blobs.x.half(), edge_index=two_blobs.edge_index, y=two_blobs.y)
        node_model(scheme, "gcn", 8, 16, 2, num_layers=1).fit(half, train, val, trainer)

    from torch_geometric.utils import coalesce, remove_self_loops

    graph = Data(x=two_blobs.x, edge_index=remove_self_loops(coalesce(two_blobs.edge_index))[0])
    parts = link_split(graph, 0)
    doubled = [p.clone() for p in parts]
    for p in doubled:
        p.x = p.x.double()
    net = link_model(scheme, "gcn", 8, 16, num_layers=1)
    with pytest.raises(ValueError, match=r"train.x has dtype torch.float64, .* torch.float32: "
                                         r"call \.double\(\) on the model or \.float\(\) on "
                                         r"train.x"):
        net.fit(doubled[0], doubled[1], trainer)
    net.fit(parts[0], parts[1], trainer)
    with pytest.raises(ValueError, match=r"data.x has dtype torch.float64"):
        net.predict(doubled[2])
    assert net.predict(parts[2]).dtype == torch.float32
