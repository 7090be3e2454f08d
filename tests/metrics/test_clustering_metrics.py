import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from graphkit.metrics.clustering import (
    adjusted_rand_index,
    clustering_accuracy,
    clustering_f1,
    clustering_scores,
    contingency_matrix,
    match_clusters,
    normalized_mutual_info,
)


def test_renamed_clusters_score_one():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    renamed = np.array([5, 5, 3, 3, 9, 9, 9])  # a permutation of the names
    assert clustering_scores(y, renamed) == pytest.approx({"acc": 1, "nmi": 1, "ari": 1, "f1": 1})
    assert match_clusters(y, renamed).tolist() == y.tolist()


def test_hand_computed_example():
    # classes   0 0 0 1 1 2 ; clusters  a a b b b b  (a=7, b=4)
    y = [0, 0, 0, 1, 1, 2]
    p = [7, 7, 4, 4, 4, 4]
    table, classes, clusters = contingency_matrix(y, p)
    assert table.tolist() == [[1, 2], [2, 0], [1, 0]]
    assert classes.tolist() == [0, 1, 2] and clusters.tolist() == [4, 7]
    # best matching: cluster 7 -> class 0 (2 right), cluster 4 -> class 1 (2 right): 4 / 6
    assert clustering_accuracy(y, p) == pytest.approx(4 / 6)
    assert match_clusters(y, p).tolist() == [0, 0, 1, 1, 1, 1]
    # macro-F1 over classes 0, 1, 2 of the matched labels: F1 = 2/3, 2/3, 0
    assert clustering_f1(y, p) == pytest.approx((2 * 2 / 5 + 2 * 2 / 6 + 0) / 3)
    # ARI by pair counting: sum C(n_ij, 2) = 2, rows 3 + 1 + 0 = 4, cols 1 + 6 = 7, C(6,2) = 15
    expected = 4 * 7 / 15
    assert adjusted_rand_index(y, p) == pytest.approx((2 - expected) / (5.5 - expected))
    # NMI: I / mean(H(Y), H(C)) with natural logs
    pij = np.array([[1, 2], [2, 0], [1, 0]]) / 6
    pi, pj = pij.sum(1, keepdims=True), pij.sum(0, keepdims=True)
    nz = pij > 0
    mi = (pij[nz] * np.log(pij[nz] / (pi @ pj)[nz])).sum()
    h = lambda v: -(v * np.log(v)).sum()  # noqa: E731
    assert normalized_mutual_info(y, p) == pytest.approx(mi / (0.5 * (h(pi) + h(pj))))


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn_on_random_labelings(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, size=200)
    p = rng.integers(0, 7, size=200)  # more clusters than classes
    assert normalized_mutual_info(y, p) == pytest.approx(skm.normalized_mutual_info_score(y, p))
    assert adjusted_rand_index(y, p) == pytest.approx(skm.adjusted_rand_score(y, p))
    matched = match_clusters(y, p)
    assert clustering_accuracy(y, p) == pytest.approx(skm.accuracy_score(y, matched))
    assert clustering_f1(y, p) == pytest.approx(skm.f1_score(y, matched, average="macro"))
    # the matching is optimal: no permutation of the 7 cluster names does better
    table, _, _ = contingency_matrix(y, p)
    from itertools import permutations

    best = max(sum(table[r, c] for r, c in enumerate(perm)) for perm in permutations(range(7), 5))
    assert clustering_accuracy(y, p) == pytest.approx(best / 200)


def test_extra_clusters_are_unmatched_and_wrong():
    y = [0, 0, 1, 1]
    p = [0, 2, 1, 1]  # cluster 2 has no class left
    assert match_clusters(y, p).tolist() == [0, -1, 1, 1]
    assert clustering_accuracy(y, p) == 0.75


def test_degenerate_partitions():
    assert normalized_mutual_info([1, 1, 1], [0, 0, 0]) == 1.0
    assert adjusted_rand_index([1, 1, 1], [0, 0, 0]) == 1.0
    assert normalized_mutual_info([0, 1, 2], [0, 0, 0]) == pytest.approx(
        skm.normalized_mutual_info_score([0, 1, 2], [0, 0, 0]))
    assert adjusted_rand_index([0, 1, 2], [0, 0, 0]) == skm.adjusted_rand_score([0, 1, 2],
                                                                               [0, 0, 0])


def test_tensor_input():
    y = torch.tensor([0, 1, 1, 2])
    assert clustering_scores(y, torch.tensor([2, 0, 0, 1]))["acc"] == 1.0


@pytest.mark.parametrize("y_true, y_pred, message", [
    ([], [], "y_true is empty"),
    ([0, 1], [0], "y_true has 2 labels but y_pred has 1"),
    ([0.5, 1.0], [0, 1], "must hold integer labels"),
    ([[0, 1]], [[0, 1]], "must be a label vector"),
])
def test_bad_input(y_true, y_pred, message):
    for fn in (clustering_accuracy, normalized_mutual_info, adjusted_rand_index, clustering_f1):
        with pytest.raises(ValueError, match=message):
            fn(y_true, y_pred)
