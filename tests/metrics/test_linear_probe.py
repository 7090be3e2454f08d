import numpy as np
import pytest
import torch

from graphkit.metrics import linear_probe


def test_linear_probe_separable_multilabel_is_perfect():
    rng = np.random.default_rng(0)
    y = (rng.random((120, 3)) < 0.5).astype(int)
    y[y.sum(1) == 0, 0] = 1
    emb = 4.0 * y + 0.1 * rng.standard_normal((120, 3))  # each label linearly separable
    rows = linear_probe(emb, y, train_ratios=(0.5, 0.8), num_shuffles=2, C=10.0)
    assert [r["train_ratio"] for r in rows] == [0.5, 0.8]
    for r in rows:
        assert r["micro_f1"] == 1.0 and r["macro_f1"] == 1.0 and r["shuffles"] == 2


def test_linear_probe_single_label_and_random_embeddings():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    rows = linear_probe(torch.randn(200, 8, generator=g), y, train_ratios=(0.5,), seed=1)
    assert 0.0 <= rows[0]["macro_f1"] <= 1.0
    assert rows[0]["micro_f1"] < 0.5  # random features carry no label information
    again = linear_probe(torch.randn(200, 8, generator=torch.Generator().manual_seed(0)), y,
                         train_ratios=(0.5,), seed=1)
    assert again == rows  # deterministic given the seed


def test_linear_probe_bad_inputs():
    emb = np.zeros((10, 2))
    with pytest.raises(ValueError, match="labels cover"):
        linear_probe(emb, np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="train_ratios"):
        linear_probe(emb, np.arange(10) % 2, train_ratios=(1.0,))
    with pytest.raises(ValueError, match="embeddings must be"):
        linear_probe(np.zeros(10), np.arange(10) % 2)
    with pytest.raises(ValueError, match="NaN"):
        linear_probe(np.full((10, 2), np.nan), np.arange(10) % 2)


def test_linear_probe_single_class_and_fractional_shuffles():
    emb = np.random.default_rng(0).standard_normal((10, 2))
    # one class used to fail deep inside with a shape mismatch of scikit-learn's probabilities
    with pytest.raises(ValueError, match="single class"):
        linear_probe(emb, np.zeros(10, dtype=int), train_ratios=(0.5,), num_shuffles=1)
    with pytest.raises(ValueError, match="num_shuffles must be an integer"):
        linear_probe(emb, np.arange(10) % 2, train_ratios=(0.5,), num_shuffles=1.5)
