"""Node classification from embeddings: the DeepWalk/node2vec linear-probe protocol."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from graphkit.metrics._utils import as_tensor, check_finite
from graphkit.metrics.classification import top_k_f1
from graphkit.typing import require

__all__ = ["linear_probe"]


def _indicator(labels: Any, num_nodes: int) -> np.ndarray:
    y = as_tensor(labels, "labels")
    if y.dim() == 2 and y.size(1) > 1:  # multi-label indicator matrix
        if not bool(((y == 0) | (y == 1)).all()):
            raise ValueError("multi-label labels must be a 0/1 indicator matrix")
        out = y.cpu().numpy().astype(np.int64)
    else:
        y = y.view(-1)
        if y.is_floating_point() or int(y.min()) < 0:
            raise ValueError("single-label labels must be non-negative integers")
        out = np.zeros((y.numel(), int(y.max()) + 1), dtype=np.int64)
        out[np.arange(y.numel()), y.cpu().numpy()] = 1
    if out.shape[0] != num_nodes:
        raise ValueError(f"labels cover {out.shape[0]} nodes but embeddings {num_nodes}")
    if out.shape[1] < 2:
        raise ValueError("labels hold a single class: the probe needs at least two")
    return out


def linear_probe(
    embeddings: Any,
    labels: Any,
    train_ratios: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    num_shuffles: int = 5,
    C: float = 1.0,
    seed: int = 0,
    solver: str = "liblinear",
    max_iter: int = 100,
    n_jobs: int | None = None,
) -> list[dict[str, float]]:
    """Micro- and macro-F1 of one-vs-rest logistic regression on node embeddings.

    The protocol of DeepWalk's ``scoring.py`` (also node2vec, FastRP): for each training ratio
    and each of ``num_shuffles`` random shuffles of the nodes, fit
    ``OneVsRestClassifier(LogisticRegression(C))`` on the first ``ratio * N`` nodes, predict for
    each remaining node its ``k`` most probable labels where ``k`` is its true label count
    (:func:`~graphkit.metrics.top_k_predictions`; ``k = 1`` for single-label data), and score
    micro- and macro-F1. Needs scikit-learn (the ``dev`` extra).

    Args:
        embeddings: node embeddings ``[N, d]``.
        labels: integer classes ``[N]`` or a 0/1 multi-label indicator matrix ``[N, L]``.
        train_ratios (sequence of float): fractions of nodes used for training, in (0, 1).
        num_shuffles (int): random splits per ratio. (default: :obj:`5`)
        C (float): inverse regularisation strength. (default: :obj:`1.0`)
        seed (int): seed of the shuffles and the solver. (default: :obj:`0`)
        solver (str): scikit-learn solver. (default: ``"liblinear"``)
        max_iter (int): solver iterations. (default: :obj:`100`)
        n_jobs (int, optional): parallel one-vs-rest fits.

    Returns:
        One dict per ratio: ``train_ratio``, ``micro_f1``, ``macro_f1`` (means over shuffles),
        ``micro_f1_std``, ``macro_f1_std`` (sample std; 0 for one shuffle), ``shuffles``.
    """
    require("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    x = as_tensor(embeddings, "embeddings")
    if x.dim() != 2:
        raise ValueError(f"embeddings must be [N, d], got shape {tuple(x.shape)}")
    check_finite(x, "embeddings")
    x_np = x.cpu().to(torch.float64).numpy()
    y = _indicator(labels, x_np.shape[0])
    if isinstance(num_shuffles, bool) or not isinstance(num_shuffles, (int, np.integer)) \
            or num_shuffles < 1:
        raise ValueError(f"num_shuffles must be an integer >= 1, got {num_shuffles!r}")
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    ratios = [float(r) for r in train_ratios]
    if not ratios or any(not 0.0 < r < 1.0 for r in ratios):
        raise ValueError(f"train_ratios must be non-empty fractions in (0, 1), got {ratios}")
    n = x_np.shape[0]
    rng = np.random.default_rng(seed)
    results = []
    for ratio in ratios:
        n_train = int(ratio * n)
        if n_train < 1 or n_train >= n:
            raise ValueError(f"train ratio {ratio} leaves no training or no test node of {n}")
        micro, macro = [], []
        for _ in range(num_shuffles):
            perm = rng.permutation(n)
            train, test = perm[:n_train], perm[n_train:]
            clf = OneVsRestClassifier(
                LogisticRegression(C=C, solver=solver, max_iter=max_iter, random_state=seed),
                n_jobs=n_jobs,
            )
            clf.fit(x_np[train], y[train])
            scores = clf.predict_proba(x_np[test])
            f1 = top_k_f1(scores, y[test])
            micro.append(f1["micro_f1"])
            macro.append(f1["macro_f1"])
        results.append({
            "train_ratio": ratio,
            "micro_f1": statistics.fmean(micro),
            "macro_f1": statistics.fmean(macro),
            "micro_f1_std": statistics.stdev(micro) if len(micro) > 1 else 0.0,
            "macro_f1_std": statistics.stdev(macro) if len(macro) > 1 else 0.0,
            "shuffles": num_shuffles,
        })
    return results
