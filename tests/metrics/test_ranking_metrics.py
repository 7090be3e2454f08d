import numpy as np
import pytest
import torch
from ogb.linkproppred import Evaluator as OGBLinkEvaluator
from ogb.nodeproppred import Evaluator as OGBNodeEvaluator

from graphkit.metrics import Evaluator, hits_at_k, mrr, ranks
from graphkit.metrics.evaluator import OGB_METRICS


def test_ranks_count_ties_half():
    pos = torch.tensor([0.5, 0.9, 0.1])
    neg = torch.tensor([[0.5, 0.2, 0.7], [0.1, 0.2, 0.3], [0.2, 0.3, 0.4]])
    assert ranks(pos, neg).tolist() == [2.5, 1.0, 4.0]
    assert mrr(pos, neg) == pytest.approx((1 / 2.5 + 1 + 1 / 4) / 3)
    assert hits_at_k(pos, neg, 3) == pytest.approx(2 / 3)


def test_hits_with_shared_negatives():
    pos = torch.tensor([0.95, 0.8, 0.5])
    neg = torch.tensor([0.9, 0.8, 0.1])
    assert hits_at_k(pos, neg, 2) == pytest.approx(1 / 3)  # strictly above the 2nd negative
    assert hits_at_k(pos, neg, 3) == 1.0  # every positive beats 0.1
    assert hits_at_k(pos, neg, 4) == 1.0  # fewer negatives than k, as in OGB
    assert hits_at_k(pos, neg, np.int64(2)) == pytest.approx(1 / 3)  # as OGB's Evaluator takes


@pytest.mark.parametrize("name", ["ogbl-collab", "ogbl-ppa", "ogbl-ddi", "ogbl-vessel"])
@pytest.mark.parametrize("numpy_input", [False, True])
def test_link_evaluator_equals_ogb(name, numpy_input):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(300, generator=g).round(decimals=1)
    neg = torch.randn(500, generator=g).round(decimals=1)
    if numpy_input:
        pos, neg = pos.numpy(), neg.numpy()
    inputs = {"y_pred_pos": pos, "y_pred_neg": neg}
    ours, theirs = Evaluator(name), OGBLinkEvaluator(name)
    expected = theirs.eval(inputs)
    assert ours.eval(inputs) == pytest.approx(expected)
    if name != "ogbl-vessel":
        ours.K = theirs.K = 10
        assert ours.eval(inputs) == pytest.approx(theirs.eval(inputs))


@pytest.mark.parametrize("name, neg", [("ogbl-collab", torch.empty(0)),
                                       ("ogbl-ddi", np.empty(0)),
                                       ("ogbl-citation2", torch.empty(5, 0))])
def test_no_negatives_rank_every_positive_first_as_ogb(name, neg):
    # the shared hits@K check refused empty negatives, which OGB scores as 1.0 / rank 1
    pos = torch.rand(5) if isinstance(neg, torch.Tensor) else np.random.rand(5)
    inputs = {"y_pred_pos": pos, "y_pred_neg": neg}
    ours, theirs = Evaluator(name).eval(inputs), OGBLinkEvaluator(name).eval(inputs)
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert np.array_equal(np.asarray(ours[key]), np.asarray(value)), key
    assert hits_at_k(pos, neg.reshape(-1), 3) == 1.0


@pytest.mark.parametrize("name", ["ogbl-citation2", "ogbl-wikikg2", "ogbl-biokg"])
def test_mrr_evaluator_equals_ogb(name):
    g = torch.Generator().manual_seed(1)
    inputs = {"y_pred_pos": torch.randn(200, generator=g).round(decimals=1),
              "y_pred_neg": torch.randn(200, 50, generator=g).round(decimals=1)}
    ours, theirs = Evaluator(name).eval(inputs), OGBLinkEvaluator(name).eval(inputs)
    assert set(ours) == set(theirs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
    numpy_out = Evaluator(name).eval({k: v.numpy() for k, v in inputs.items()})
    assert np.allclose(numpy_out["mrr_list"], theirs["mrr_list"].numpy())


@pytest.mark.parametrize("name", ["ogbn-arxiv", "ogbn-products", "ogbn-proteins"])
@pytest.mark.parametrize("tensor_input", [False, True])
def test_node_evaluator_equals_ogb(name, tensor_input):
    rng = np.random.default_rng(0)
    if name == "ogbn-proteins":
        y_true = rng.integers(0, 2, (100, 112))
        y_true[:, 5] = 1  # a task without negatives is skipped
        y_pred = rng.standard_normal((100, 112))
    else:
        y_true, y_pred = rng.integers(0, 5, (100, 1)), rng.integers(0, 5, (100, 1))
    if tensor_input:
        y_true, y_pred = torch.from_numpy(y_true), torch.from_numpy(y_pred)
    inputs = {"y_true": y_true, "y_pred": y_pred}
    assert Evaluator(name).eval(inputs) == pytest.approx(OGBNodeEvaluator(name).eval(inputs))


def test_evaluator_bad_inputs():
    with pytest.raises(ValueError, match="Invalid dataset name"):
        Evaluator("ogbn-unknown")
    with pytest.raises(ValueError, match="Missing key of y_pred"):
        Evaluator("ogbn-arxiv").eval({"y_true": np.zeros((3, 1))})
    with pytest.raises(ValueError, match="shape"):
        Evaluator("ogbn-arxiv").eval({"y_true": np.zeros((3, 1)), "y_pred": np.zeros((4, 1))})
    with pytest.raises(ValueError, match="2-dim"):
        Evaluator("ogbl-citation2").eval({"y_pred_pos": torch.zeros(3),
                                          "y_pred_neg": torch.zeros(3)})
    with pytest.raises(ValueError, match="numpy ndarray or a torch tensor"):
        Evaluator("ogbl-collab").eval({"y_pred_pos": [1.0], "y_pred_neg": torch.zeros(3)})
    with pytest.raises(ValueError, match="k must be"):
        hits_at_k(torch.zeros(2), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="y_pred_neg must be"):
        mrr(torch.zeros(2), torch.zeros(3, 4))


def test_evaluator_hits_and_acc_reject_nan_empty_and_bad_k():
    nan = float("nan")
    ev = Evaluator("ogbl-collab")
    neg = torch.rand(60)
    # a NaN negative used to become the K-th highest and make every positive a miss
    with pytest.raises(ValueError, match="y_pred_neg contains NaN"):
        ev.eval({"y_pred_pos": torch.rand(5), "y_pred_neg": torch.full((60,), nan)})
    with pytest.raises(ValueError, match="y_pred_pos contains NaN"):
        ev.eval({"y_pred_pos": torch.tensor([nan]), "y_pred_neg": neg})
    with pytest.raises(ValueError, match="y_pred_pos is empty"):  # was ZeroDivisionError
        ev.eval({"y_pred_pos": torch.empty(0), "y_pred_neg": neg})
    for k in (0, 2.5):  # OGB lets users set K; 0 gave an IndexError, 2.5 a TypeError
        ev.K = k
        with pytest.raises(ValueError, match="K must be a positive integer"):
            ev.eval({"y_pred_pos": torch.rand(5), "y_pred_neg": neg})
    with pytest.raises(ValueError, match="y_pred contains NaN"):  # was counted as a miss
        Evaluator("ogbn-arxiv").eval({"y_true": np.array([[0], [1]]),
                                      "y_pred": np.array([[nan], [1.0]])})
    # NaN in y_true still marks unlabelled nodes, as in OGB
    out = Evaluator("ogbn-arxiv").eval({"y_true": np.array([[nan], [1.0]]),
                                        "y_pred": np.array([[0.0], [1.0]])})
    assert out == {"acc": 1.0}


@pytest.mark.parametrize("name", sorted(OGB_METRICS))
def test_evaluator_describes_its_formats_as_ogb_does(name):
    # OGB's Evaluator has these attributes; a user switching to graphkit's calls them
    import re

    ev = Evaluator(name)
    inp, out = ev.expected_input_format, ev.expected_output_format
    assert inp.startswith(f"==== Expected input format of Evaluator for {name}\n")
    assert out.startswith(f"==== Expected output format of Evaluator for {name}\n")
    keys = re.findall(r"'(\w+)': \w+", inp.splitlines()[1])
    n = 6
    if name.startswith("ogbn-"):
        y = torch.randint(0, 2, (n, ev.num_tasks)).float()
        y[:2], y[2:4] = 0, 1
        inputs = {"y_true": y, "y_pred": y.clone()}
    else:
        neg = torch.rand(n, 4) if ev.eval_metric == "mrr" else torch.rand(100)
        inputs = {"y_pred_pos": torch.rand(n) + 1, "y_pred_neg": neg}
    assert keys == list(inputs)
    result = ev.eval(inputs)
    described = re.findall(r"'([\w@]+)'", out.splitlines()[1])
    assert described == list(result)
