"""Clustering metrics: accuracy and macro-F1 after Hungarian matching, NMI and ARI.

A clustering names its groups arbitrarily, so accuracy and F1 first match each predicted
cluster to one true class by the Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`
on the contingency table, maximising the matched count), as in the evaluation of DEC, SDCN and
their successors. NMI and ARI are invariant to the names and need no matching.

All functions take integer label vectors (tensors, arrays or sequences) of one length, return a
Python ``float`` and raise ``ValueError`` naming the problem for empty, mis-shaped or non-integer
input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from graphkit.metrics._utils import as_tensor
from graphkit.metrics.classification import f1_score

__all__ = [
    "contingency_matrix",
    "match_clusters",
    "clustering_accuracy",
    "clustering_f1",
    "normalized_mutual_info",
    "adjusted_rand_index",
    "clustering_scores",
]


def _label_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true = as_tensor(y_true, "y_true")
    pred = as_tensor(y_pred, "y_pred")
    for name, t in (("y_true", true), ("y_pred", pred)):
        if t.dim() != 1:
            raise ValueError(f"{name} must be a label vector [N], got shape {tuple(t.shape)}")
        if t.is_floating_point() or t.is_complex():
            raise ValueError(f"{name} must hold integer labels, got dtype {t.dtype}")
    if true.numel() != pred.numel():
        raise ValueError(f"y_true has {true.numel()} labels but y_pred has {pred.numel()}")
    return true.cpu().numpy().astype(np.int64), pred.cpu().numpy().astype(np.int64)


def contingency_matrix(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table ``C[a, b]`` = number of items of true class ``a`` put in cluster ``b``.

    Returns:
        ``(C, classes, clusters)``: ``C`` of shape ``[num_classes, num_clusters]`` (int64) and
        the sorted class and cluster labels its rows and columns stand for.
    """
    true, pred = _label_pair(y_true, y_pred)
    classes, t_idx = np.unique(true, return_inverse=True)
    clusters, p_idx = np.unique(pred, return_inverse=True)
    table = np.zeros((classes.size, clusters.size), dtype=np.int64)
    np.add.at(table, (t_idx, p_idx), 1)
    return table, classes, clusters


def match_clusters(y_true: Any, y_pred: Any) -> np.ndarray:
    """``y_pred`` renamed to true classes by the matching that maximises agreement.

    Every cluster is matched to at most one class and every class to at most one cluster
    (Hungarian algorithm on the contingency table; a rectangular table is fine). Clusters left
    unmatched, when there are more clusters than classes, get the label ``-1`` (never correct).

    Returns:
        The relabelled predictions ``[N]`` (int64 NumPy array).
    """
    table, classes, clusters = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = np.full(clusters.size, -1, dtype=np.int64)
    mapping[cols] = classes[rows]
    _, pred = _label_pair(y_true, y_pred)
    return mapping[np.searchsorted(clusters, pred)]


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    r"""Accuracy under the best one-to-one matching of clusters to classes,
    :math:`\max_{m} \frac{1}{N}\sum_i [y_i = m(\hat y_i)]`."""
    table, _, _ = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def clustering_f1(y_true: Any, y_pred: Any) -> float:
    """Macro-F1 of the matched predictions (:func:`match_clusters`), as SDCN's evaluation
    reports it: the labels averaged over are those in either vector (an unmatched cluster's
    ``-1`` counts with F1 0, as scikit-learn would count it)."""
    true, _ = _label_pair(y_true, y_pred)
    return f1_score(true, match_clusters(y_true, y_pred), average="macro")


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalized_mutual_info(y_true: Any, y_pred: Any) -> float:
    r"""Normalised mutual information with the arithmetic-mean normaliser,
    :math:`\mathrm{NMI} = I(Y; \hat Y) / \tfrac12 (H(Y) + H(\hat Y))` (scikit-learn's default,
    ``average_method="arithmetic"``). Two single-cluster labelings score 1."""
    table, _, _ = contingency_matrix(y_true, y_pred)
    h_true, h_pred = _entropy(table.sum(1)), _entropy(table.sum(0))
    if h_true == 0.0 and h_pred == 0.0:  # both constant: identical partitions
        return 1.0
    n = table.sum()
    a, b = np.nonzero(table)
    nij = table[a, b].astype(np.float64)
    outer = table.sum(1)[a].astype(np.float64) * table.sum(0)[b]
    mi = float((nij / n * (np.log(nij) + np.log(n) - np.log(outer))).sum())
    return float(np.clip(mi / (0.5 * (h_true + h_pred)), 0.0, 1.0))


def adjusted_rand_index(y_true: Any, y_pred: Any) -> float:
    r"""Adjusted Rand index (Hubert and Arabie), the pair-counting agreement corrected for
    chance: :math:`(\sum_{ij}\binom{n_{ij}}{2} - E) / (\tfrac12(\sum_i\binom{a_i}{2} +
    \sum_j\binom{b_j}{2}) - E)` with :math:`E = \sum_i\binom{a_i}{2}\sum_j\binom{b_j}{2} /
    \binom{N}{2}`. It lies in :math:`[-1, 1]`; identical partitions score 1."""
    table, _, _ = contingency_matrix(y_true, y_pred)

    def pairs(c: np.ndarray) -> float:
        c = c.astype(np.float64)
        return float((c * (c - 1) / 2).sum())

    n = float(table.sum())
    index = pairs(table)
    rows, cols = pairs(table.sum(1)), pairs(table.sum(0))
    total = n * (n - 1) / 2
    expected = rows * cols / total if total > 0 else 0.0
    max_index = 0.5 * (rows + cols)
    if max_index == expected:  # e.g. both single-cluster or both all-singletons
        return 1.0
    return float((index - expected) / (max_index - expected))


def clustering_scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``{"acc", "nmi", "ari", "f1"}``: the four figures deep graph clustering papers report."""
    return {
        "acc": clustering_accuracy(y_true, y_pred),
        "nmi": normalized_mutual_info(y_true, y_pred),
        "ari": adjusted_rand_index(y_true, y_pred),
        "f1": clustering_f1(y_true, y_pred),
    }
