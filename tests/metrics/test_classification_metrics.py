import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from graphkit.metrics import (
    accuracy,
    average_precision,
    f1_score,
    roc_auc,
    top_k_f1,
    top_k_predictions,
)


def test_accuracy_on_labels_and_scores():
    y = torch.tensor([0, 1, 2, 1])
    assert accuracy(torch.tensor([0, 1, 1, 1]), y) == 0.75
    scores = torch.tensor([[2.0, 1, 0], [0, 3, 1], [0, 0, 1], [1, 0, 0]])
    assert accuracy(scores, y) == 0.75
    assert accuracy(np.array([[1], [2]]), np.array([[1], [1]])) == 0.5
    assert accuracy(torch.tensor([1.0, 0.0]), y[:2].flip(0)) == 1.0  # labels stored as floats


def test_accuracy_refuses_scores_shaped_like_labels():
    # a probability per node compared with == to the labels gave 0.0 without a word
    with pytest.raises(ValueError, match=r"y_pred holds a value that is no class label \(0.9\)"):
        accuracy(torch.tensor([0.9, 0.2, 0.6]), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="y_true holds a value that is no class label"):
        accuracy(torch.tensor([1, 0]), torch.tensor([0.5, 0.0]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("average", ["micro", "macro"])
def test_single_label_f1_equals_sklearn(seed, average):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 6, 50)
    y_pred = rng.integers(1, 7, 50)  # labels 0 and 6 occur in only one of them
    expected = skm.f1_score(y_true, y_pred, average=average)
    assert f1_score(torch.from_numpy(y_true), y_pred, average=average) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("average", ["micro", "macro"])
def test_multilabel_f1_equals_sklearn(seed, average):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((40, 7)) < 0.3).astype(int)
    y_pred = (rng.random((40, 7)) < 0.3).astype(int)
    y_true[:, 3] = y_pred[:, 3] = 0  # a label neither true nor predicted counts as F1 = 0
    expected = skm.f1_score(y_true, y_pred, average=average, zero_division=0)
    assert f1_score(y_true, y_pred, average=average) == pytest.approx(expected)


def test_micro_f1_equals_accuracy_single_label():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    assert f1_score(y_true, y_pred) == pytest.approx(accuracy(y_pred, y_true))


def test_top_k_predictions_takes_true_label_count():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.4, 0.2, 0.8, 0.6], [0.5, 0.5, 0.5, 0.5]])
    y_true = torch.tensor([[1, 0, 0, 1], [1, 1, 1, 0], [0, 0, 0, 0]])
    expected = torch.tensor([[0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0]])
    assert torch.equal(top_k_predictions(scores, y_true), expected)
    assert (top_k_predictions(scores, y_true).sum(1) == y_true.sum(1)).all()


def test_top_k_f1_matches_sklearn_on_top_k_predictions():
    rng = np.random.default_rng(1)
    y_true = (rng.random((30, 5)) < 0.4).astype(int)
    scores = rng.random((30, 5))
    pred = top_k_predictions(scores, y_true).numpy()
    got = top_k_f1(scores, y_true)
    assert got["micro_f1"] == pytest.approx(skm.f1_score(y_true, pred, average="micro"))
    assert got["macro_f1"] == pytest.approx(
        skm.f1_score(y_true, pred, average="macro", zero_division=0))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_and_ap_equal_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    y[:2] = [0, 1]
    score = np.round(rng.random(200) + 0.3 * y, 1)  # coarse scores: many ties
    assert roc_auc(y, torch.from_numpy(score)) == pytest.approx(skm.roc_auc_score(y, score))
    assert average_precision(torch.from_numpy(y), score) == pytest.approx(
        skm.average_precision_score(y, score))


def test_roc_auc_and_ap_of_several_tasks_average_them_as_sklearn():
    # each column ranked perfectly: pooling the entries (the old behaviour) gave 0.75
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    s = np.array([[0.9, 5.0], [0.1, 6.0], [0.8, 4.0], [0.2, 7.0]])
    assert roc_auc(y, s) == 1.0 and average_precision(y, s) == 1.0
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, (60, 4)), rng.normal(size=(60, 4))
    assert roc_auc(torch.from_numpy(y), s) == pytest.approx(skm.roc_auc_score(y, s))
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))
    assert roc_auc(y[:, :1], s[:, 0]) == pytest.approx(skm.roc_auc_score(y[:, 0], s[:, 0]))
    with pytest.raises(ValueError, match=r"shape \(60, 4\) but y_score has shape \(60, 2\)"):
        roc_auc(y, s[:, :2])
    with pytest.raises(ValueError, match="shape"):
        average_precision(y[:, 0], s)
    y[:, 2] = 1
    with pytest.raises(ValueError, match=r"task \(column\) 2: .*both positives and negatives"):
        roc_auc(y, s)


def test_perfect_and_reversed_rankings():
    y = [0, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc(y, [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert average_precision(y, [0.1, 0.2, 0.3, 0.4]) == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ValueError, match="shape"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="average"):
        f1_score([0, 1], [0, 1], average="weighted")
    with pytest.raises(ValueError, match=r"y_true holds a value that is no class label"):
        f1_score([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="integer labels"):
        f1_score([1.0, 0.0], [0, 1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        f1_score([[0, 2], [1, 0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="both positives and negatives"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        average_precision([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="entries"):
        roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="shape"):
        top_k_predictions(np.zeros((3, 2)), np.zeros((3, 3)))


def test_nan_scores_and_labels_are_rejected():
    # a NaN score wins the arg-max, so it used to count as a confident (often right) prediction
    nan = float("nan")
    scores = torch.tensor([[nan, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        accuracy(scores, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        f1_score(torch.tensor([0, 1]), scores)
    with pytest.raises(ValueError, match="y_true contains NaN"):
        accuracy(torch.tensor([0.0, 1.0]), torch.tensor([nan, 1.0]))
