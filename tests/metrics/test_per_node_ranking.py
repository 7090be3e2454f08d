"""Per-node Hits@K, Recall@K, Precision@K and NDCG@K against a NumPy reference written as the
official per-node evaluation (sorted candidates, binary relevance, LightGCN-style NDCG)."""

import numpy as np
import pytest
import torch

from graphkit.metrics.per_node import per_node_ranking


def numpy_reference(scores, truth, k, exclude):
    s = scores.astype(np.float64).copy()
    b, n = s.shape
    rel = [set() for _ in range(b)]
    for r, c in truth.T:
        rel[r].add(c)
    for r, c in exclude.T:
        s[r, c] = -np.inf
    out = {"hits": [], "recall": [], "precision": [], "ndcg": []}
    for r in range(b):
        order = np.argsort(-s[r], kind="stable")[:k]
        hit = np.array([c in rel[r] for c in order], dtype=float)
        dcg = float(np.sum(hit / np.log2(np.arange(2, k + 2))))
        idcg = float(np.sum(1 / np.log2(np.arange(2, min(k, len(rel[r])) + 2))))
        out["hits"].append(float(hit.sum() > 0))
        out["recall"].append(hit.sum() / len(rel[r]))
        out["precision"].append(hit.sum() / k)
        out["ndcg"].append(dcg / idcg)
    return {key: np.array(v) for key, v in out.items()}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_matches_numpy_reference(k):
    rng = np.random.default_rng(k)
    b, n = 12, 30
    # rounded scores: ties, which both break towards the lower candidate id
    scores = np.round(rng.normal(size=(b, n)), 1)
    truth = np.stack([np.repeat(np.arange(b), 4), rng.integers(0, n, b * 4)])
    ex = np.stack([rng.integers(0, b, 40), rng.integers(0, n, 40)])
    relevant = {tuple(p) for p in truth.T}
    exclude = np.array([p for p in ex.T if tuple(p) not in relevant]).T
    got = per_node_ranking(torch.from_numpy(scores), torch.from_numpy(truth), k,
                           torch.from_numpy(exclude))
    want = numpy_reference(scores, truth, k, exclude)
    for key, value in got._asdict().items():
        assert value.dtype == torch.float64 and value.shape == (b,)
        np.testing.assert_allclose(value.numpy(), want[key], rtol=0, atol=1e-12, err_msg=key)
    assert 0 < float(got.hits.mean()) < 1  # the draw exercises both outcomes


def test_hand_computed_row():
    # candidates ranked 3, 0, 2, 1; relevant {0, 1}; candidate 3 excluded -> ranking 0, 2, 1
    scores = torch.tensor([[0.9, 0.1, 0.5, 2.0]])
    truth = torch.tensor([[0, 0], [0, 1]])
    r = per_node_ranking(scores, truth, 2, exclude=torch.tensor([[0], [3]]))
    assert r.hits.item() == 1 and r.recall.item() == 0.5 and r.precision.item() == 0.5
    assert r.ndcg.item() == pytest.approx(1 / (1 + 1 / np.log2(3)))
    r = per_node_ranking(scores, truth, 2)  # 3 not excluded: top-2 is 3, 0
    assert r.ndcg.item() == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def test_bad_inputs():
    scores, truth = torch.zeros(2, 4), torch.tensor([[0, 1], [1, 2]])
    for k in (0, 5, True, 2.0):
        with pytest.raises(ValueError, match="k must be"):
            per_node_ranking(scores, truth, k)
    for got, want in zip(per_node_ranking(scores, truth, np.int64(2)),
                         per_node_ranking(scores, truth, 2), strict=True):
        assert torch.equal(got, want)  # a NumPy integer k, as OGB's Evaluator takes it
    with pytest.raises(ValueError, match="row 1 has no relevant"):
        per_node_ranking(scores, torch.tensor([[0], [1]]), 2)
    with pytest.raises(ValueError, match="candidate id 4"):
        per_node_ranking(scores, torch.tensor([[0, 1], [1, 4]]), 2)
    with pytest.raises(ValueError, match="row id 2"):
        per_node_ranking(scores, torch.tensor([[0, 2], [1, 1]]), 2)
    with pytest.raises(ValueError, match="NaN"):
        per_node_ranking(torch.tensor([[float("nan"), 0.0]]), torch.tensor([[0], [1]]), 1)
    with pytest.raises(ValueError, match="both relevant and excluded"):
        per_node_ranking(scores, truth, 2, exclude=torch.tensor([[1], [2]]))
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        per_node_ranking(torch.zeros(4), truth, 2)
    with pytest.raises(ValueError, match="integer"):
        per_node_ranking(scores, truth.float(), 2)
    with pytest.raises(ValueError, match="empty"):
        per_node_ranking(torch.zeros(0, 4), truth, 2)
