import copy

import pytest
import torch

from graphkit.nn.models import GCN
from graphkit.train import seed_everything, train_node_classifier


def _model(data, dropout=0.0):
    seed_everything(0)
    return GCN(data.num_features, 16, 2, dropout=dropout)


def test_learns_separable_graph(two_blobs):
    result = train_node_classifier(_model(two_blobs), two_blobs, epochs=50)
    assert result.val_acc == 1.0 and result.history[-1]["test_acc"] == 1.0
    assert result.epochs_run == 50 == len(result.epoch_times)
    assert result.train_seconds > 0
    assert set(result.history[0]) == {"epoch", "loss", "train_loss", "train_acc", "val_loss",
                                      "val_acc", "test_loss", "test_acc"}


@pytest.mark.parametrize("selection", ["val_acc", "val_loss"])
def test_selection_is_first_best_epoch(two_blobs, selection):
    result = train_node_classifier(_model(two_blobs, 0.5), two_blobs, epochs=30,
                                   selection=selection)
    values = [h[selection] for h in result.history]
    target = max(values) if selection == "val_acc" else min(values)
    assert result.best_epoch == values.index(target) + 1
    best = result.history[result.best_epoch - 1]
    assert (result.val_acc, result.test_acc, result.val_loss) == (
        best["val_acc"], best["test_acc"], best["val_loss"])


def test_patience_stops_patience_epochs_after_best(two_blobs):
    result = train_node_classifier(_model(two_blobs), two_blobs, epochs=500, patience=5)
    assert result.epochs_run == result.best_epoch + 5 < 500


def test_pyg_citation_rule_matches_its_definition(two_blobs):
    epochs, window = 200, 10
    result = train_node_classifier(_model(two_blobs, 0.5), two_blobs, epochs=epochs,
                                   patience=window, early_stopping="pyg_citation",
                                   weight_decay=0.0, lr=0.05)
    losses = [h["val_loss"] for h in result.history]
    stop = None
    for t in range(epochs // 2 + 1, len(losses) + 1):  # epochs are 1-based
        prev = losses[max(0, t - 1 - window):t - 1]
        if losses[t - 1] > sum(prev) / len(prev):
            stop = t
            break
    assert stop == result.epochs_run if stop is not None else result.epochs_run == epochs
    assert result.epochs_run > epochs // 2
    assert result.best_epoch == losses.index(min(losses)) + 1  # selection defaults to val_loss


def test_restores_best_weights(two_blobs):
    model = _model(two_blobs, 0.5)
    result = train_node_classifier(model, two_blobs, epochs=40, selection="val_loss")
    model.eval()
    with torch.no_grad():
        out = model(two_blobs.x, two_blobs.edge_index)
    val_loss = torch.nn.functional.cross_entropy(out[two_blobs.val_mask],
                                                 two_blobs.y[two_blobs.val_mask])
    assert float(val_loss) == pytest.approx(result.val_loss, abs=1e-6)


def test_mask_forms_agree_and_data_is_untouched(two_blobs):
    original = copy.copy(two_blobs)
    a = train_node_classifier(_model(two_blobs), two_blobs, epochs=20)
    index_data = copy.copy(two_blobs)
    for name in ("train", "val", "test"):
        index_data[f"{name}_mask"] = two_blobs[f"{name}_mask"].nonzero().view(-1)
    b = train_node_classifier(_model(two_blobs), index_data, epochs=20)
    split_data = copy.copy(two_blobs)
    for name in ("train", "val", "test"):
        m = two_blobs[f"{name}_mask"]
        split_data[f"{name}_mask"] = torch.stack([~m, m], dim=1)
    c = train_node_classifier(_model(two_blobs), split_data, epochs=20, split=1)
    assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in b.history])
    assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in c.history])
    for key in original.keys():
        assert two_blobs[key] is original[key]


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_integer_01_masks_are_not_read_as_node_indices(two_blobs, dtype):
    # mask.long() read as indices trained and evaluated on nodes {0, 1}: val_acc 1.0
    for name in ("train", "val", "test"):
        bad = copy.copy(two_blobs)
        bad[f"{name}_mask"] = two_blobs[f"{name}_mask"].to(dtype)
        with pytest.raises(ValueError, match=rf"{name}_mask .*looks like a 0/1 mask.*"
                                             rf"pass {name}_mask\.bool\(\)"):
            train_node_classifier(_model(two_blobs), bad, epochs=1)
    bad = copy.copy(two_blobs)
    bad.val_mask = torch.tensor([20, 21, 21, 22], dtype=dtype)
    with pytest.raises(ValueError, match="val_mask repeats node indices"):
        train_node_classifier(_model(two_blobs), bad, epochs=1)
    ok = copy.copy(two_blobs)  # distinct ids, in any order, still train
    ok.val_mask = torch.tensor([22, 20, 21], dtype=dtype)
    train_node_classifier(_model(two_blobs), ok, epochs=1)


def test_custom_forward_loss_and_optimizer(two_blobs):
    calls = []

    def forward(model, data):
        calls.append(1)
        return torch.log_softmax(model(data.x, data.edge_index), dim=-1)

    model = _model(two_blobs)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    result = train_node_classifier(model, two_blobs, epochs=5, forward=forward,
                                   loss_fn=torch.nn.functional.nll_loss, optimizer=opt)
    assert len(calls) == 10  # one training and one evaluation pass per epoch
    assert result.epochs_run == 5


def test_train_loss_fn_gets_all_scores_and_replaces_the_step_loss(two_blobs):
    values = []

    def objective(out, data):  # trains on the test labels only: the default would never see them
        assert out.size(0) == data.num_nodes == two_blobs.num_nodes
        loss = torch.nn.functional.cross_entropy(out[data.test_mask], data.y[data.test_mask])
        values.append(float(loss))
        return loss

    result = train_node_classifier(_model(two_blobs), two_blobs, epochs=20,
                                   train_loss_fn=objective)
    assert [h["loss"] for h in result.history] == values and len(values) == 20
    last = result.history[-1]  # evaluation losses are still the per-split loss_fn
    assert last["test_loss"] < values[0] and last["train_loss"] != last["loss"]


def test_without_test_mask_reports_nan(two_blobs):
    del two_blobs.test_mask
    result = train_node_classifier(_model(two_blobs), two_blobs, epochs=3)
    assert result.test_acc != result.test_acc


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"),
    ({"patience": 0}, "patience"),
    ({"epochs": 2.5}, r"^epochs must be an integer, got 2\.5$"),  # a TypeError in range()
    ({"epochs": True}, "epochs must be an integer, got True"),
    ({"patience": 2.5}, r"^patience must be None or an integer, got 2\.5$"),
    ({"patience": 2.5, "early_stopping": "pyg_citation"}, "patience must be None or an integer"),
    ({"selection": "test_acc"}, "selection"),
    ({"early_stopping": "never"}, "early_stopping"),
    ({"lr": 0.0}, "lr"),
])
def test_bad_arguments(two_blobs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_node_classifier(_model(two_blobs), two_blobs, **kwargs)


def test_bad_data(two_blobs):
    model = _model(two_blobs)
    bad = copy.copy(two_blobs)
    del bad.val_mask
    with pytest.raises(ValueError, match="no val_mask"):
        train_node_classifier(model, bad, epochs=1)
    bad = copy.copy(two_blobs)
    bad.train_mask = torch.zeros(two_blobs.num_nodes, dtype=torch.bool)
    with pytest.raises(ValueError, match="train_mask selects no nodes"):
        train_node_classifier(model, bad, epochs=1)
    bad = copy.copy(two_blobs)
    bad.val_mask = torch.stack([two_blobs.val_mask] * 2, dim=1)
    with pytest.raises(ValueError, match="split="):
        train_node_classifier(model, bad, epochs=1)
    bad = copy.copy(two_blobs)
    bad.test_mask = torch.tensor([0, 999])
    with pytest.raises(ValueError, match="test_mask holds node indices outside"):
        train_node_classifier(model, bad, epochs=1)
    bad = copy.copy(two_blobs)
    bad.y = two_blobs.y.float()
    with pytest.raises(ValueError, match="integer class"):
        train_node_classifier(model, bad, epochs=1)
    # the graph itself: NaN features and out-of-range node ids fail before training
    bad = copy.copy(two_blobs)
    bad.x = two_blobs.x.clone()
    bad.x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"x holds NaN values \(first in row 3\)"):
        train_node_classifier(model, bad, epochs=1)
    bad = copy.copy(two_blobs)
    bad.edge_index = torch.cat([two_blobs.edge_index,
                                torch.tensor([[0], [two_blobs.num_nodes]])], 1)
    with pytest.raises(ValueError, match="out of range"):
        train_node_classifier(model, bad, epochs=1)


def test_bad_labels_and_missing_inputs(two_blobs):
    model = _model(two_blobs)  # 2 output classes
    for y, match in [(two_blobs.y[:50], "data.y has 50 rows but the graph has 60 nodes"),
                     (two_blobs.y.bool(), "integer class"),
                     (two_blobs.y + 1, "data.y holds class 2 at a node of train_mask, out of "
                                       "range for the model's 2 output classes"),
                     (torch.where(torch.arange(60) == 25, -1, two_blobs.y),
                      "data.y holds class -1 at a node of val_mask")]:
        bad = copy.copy(two_blobs)
        bad.y = y
        with pytest.raises(ValueError, match=match):
            train_node_classifier(model, bad, epochs=1)
    for key in ("x", "edge_index"):
        bad = copy.copy(two_blobs)
        del bad[key]
        if key == "x":
            bad.num_nodes = 60
        with pytest.raises(ValueError, match=f"data has no {key}: the default forward"):
            train_node_classifier(model, bad, epochs=1)


def test_int32_labels_train_as_int64(two_blobs):
    ref = train_node_classifier(_model(two_blobs), two_blobs, epochs=3)
    data = copy.copy(two_blobs)
    data.y = two_blobs.y.int()
    assert train_node_classifier(_model(data), data, epochs=3).history == ref.history


def test_verbose_prints_every_n_epochs(two_blobs, capsys):
    train_node_classifier(_model(two_blobs), two_blobs, epochs=6, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["0002", "0004", "0006"]


def test_a_diverged_model_is_named_with_its_epoch(two_blobs):
    # the metric's "y_pred contains NaN or inf" named neither the epoch nor the cause
    def diverging(model, data):
        return model(data.x, data.edge_index) * float("inf")

    with pytest.raises(ValueError, match="epoch 1: the model's output holds NaN or infinite"):
        train_node_classifier(_model(two_blobs), two_blobs, epochs=3, forward=diverging)
