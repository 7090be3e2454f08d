"""Classification metrics: accuracy, micro/macro-F1 (single- and multi-label), ROC-AUC, AP.

All functions take tensors, NumPy arrays or sequences, return a Python ``float`` in [0, 1],
and raise ``ValueError`` naming the problem for empty, mis-shaped or invalid inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphkit.metrics._utils import as_tensor, check_binary, check_finite

__all__ = [
    "accuracy",
    "f1_score",
    "top_k_predictions",
    "top_k_f1",
    "roc_auc",
    "average_precision",
]


def _labels(y_pred: Any, y_true: Any) -> tuple[Tensor, Tensor]:
    """Integer labels from ``y_true`` and ``y_pred`` (class scores ``[N, C]`` are arg-maxed)."""
    true = as_tensor(y_true, "y_true")
    pred = as_tensor(y_pred, "y_pred").to(true.device)
    if true.dim() == 2 and true.size(1) == 1:
        true = true.view(-1)
    if pred.dim() == 2 and pred.size(1) == 1:  # a label column, as OGB stores them
        pred = pred.view(-1)
    check_finite(true, "y_true")
    check_finite(pred, "y_pred")  # a NaN score would win the arg-max and count as a class
    if pred.dim() == true.dim() + 1:
        pred = pred.argmax(dim=-1)
    if pred.shape != true.shape:
        raise ValueError(
            f"y_pred has shape {tuple(pred.shape)} but y_true has shape {tuple(true.shape)}; "
            "pass labels of the same shape or class scores of shape [N, C]"
        )
    for name, t in (("y_pred", pred), ("y_true", true)):
        # scores of the same shape as the labels (a probability per node) match no label:
        # comparing them with == gave a silently wrong accuracy
        if t.is_floating_point() and not bool((t == t.round()).all()):
            value = float(t[t != t.round()][0])
            raise ValueError(f"{name} holds a value that is no class label ({value:g}); pass "
                             "labels, or class scores of shape [N, C] (threshold binary "
                             "scores first)")
    return pred, true


def accuracy(y_pred: Any, y_true: Any) -> float:
    """Fraction of correct predictions.

    Args:
        y_pred: predicted labels ``[N]`` or class scores ``[N, C]`` (arg-maxed).
        y_true: true labels ``[N]`` (or ``[N, 1]``).
    """
    pred, true = _labels(y_pred, y_true)
    return float((pred == true).double().mean())


def _f1_from_counts(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    """Per-entry :math:`F_1 = 2TP / (2TP + FP + FN)`, taken as 0 where the denominator is 0."""
    den = 2 * tp + fp + fn
    return torch.where(den > 0, 2 * tp / den.clamp(min=1), torch.zeros_like(den))


def f1_score(y_true: Any, y_pred: Any, average: str = "micro") -> float:
    r"""Micro- or macro-averaged :math:`F_1`, as :func:`sklearn.metrics.f1_score`.

    * Single-label: ``y_true`` and ``y_pred`` are label vectors ``[N]``; the labels averaged
      over are those occurring in either (micro-F1 then equals accuracy).
    * Multi-label: both are 0/1 indicator matrices ``[N, L]``; every column is a label, and a
      label never true nor predicted counts with :math:`F_1 = 0` in the macro average.

    Micro: :math:`F_1` of the summed counts,
    :math:`2\sum_l TP_l / (2\sum_l TP_l + \sum_l FP_l + \sum_l FN_l)`; macro: the mean of the
    per-label :math:`F_1`.

    Args:
        y_true: true labels.
        y_pred: predicted labels (for single-label, class scores ``[N, C]`` are arg-maxed).
        average (str): ``"micro"`` or ``"macro"``. (default: ``"micro"``)
    """
    if average not in ("micro", "macro"):
        raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")
    true = as_tensor(y_true, "y_true")
    if true.dim() == 2 and true.size(1) > 1:  # multi-label indicator matrix
        pred = as_tensor(y_pred, "y_pred").to(true.device)
        if pred.shape != true.shape:
            raise ValueError(
                f"multi-label y_pred has shape {tuple(pred.shape)} but y_true has shape "
                f"{tuple(true.shape)}"
            )
        t = check_binary(true, "y_true").double()
        p = check_binary(pred, "y_pred").double()
        tp = (t * p).sum(0)
        fp = ((1 - t) * p).sum(0)
        fn = (t * (1 - p)).sum(0)
    else:
        pred, true = _labels(y_pred, y_true)
        if true.is_floating_point() or pred.is_floating_point():
            raise ValueError("single-label y_true and y_pred must hold integer labels")
        labels, inverse = torch.unique(torch.cat([true, pred]), return_inverse=True)
        n = true.numel()
        t_idx, p_idx = inverse[:n], inverse[n:]
        hit = (t_idx == p_idx).double()
        num = labels.numel()
        tp = torch.zeros(num, dtype=torch.float64, device=true.device).index_add_(0, t_idx, hit)
        true_count = torch.bincount(t_idx, minlength=num).double()
        pred_count = torch.bincount(p_idx, minlength=num).double()
        fp, fn = pred_count - tp, true_count - tp
    if average == "micro":
        return float(_f1_from_counts(tp.sum(), fp.sum(), fn.sum()))
    return float(_f1_from_counts(tp, fp, fn).mean())


def top_k_predictions(scores: Any, y_true: Any) -> Tensor:
    """The multi-label top-k protocol of DeepWalk/node2vec evaluation.

    For each row ``i`` predict its ``k_i`` highest-scored labels, where ``k_i`` is the number of
    true labels of row ``i`` (DeepWalk's ``scoring.py``, ``TopKRanker``). Ties are broken by the
    lower column index.

    Args:
        scores: label scores ``[N, L]``.
        y_true: 0/1 indicator matrix ``[N, L]`` (only its row sums are used).

    Returns:
        A 0/1 ``long`` indicator matrix ``[N, L]`` with ``k_i`` ones in row ``i``.
    """
    s = as_tensor(scores, "scores")
    t = check_binary(as_tensor(y_true, "y_true"), "y_true").to(s.device)
    if s.dim() != 2 or s.shape != t.shape:
        raise ValueError(
            f"scores and y_true must both have shape [N, L]; got {tuple(s.shape)} and "
            f"{tuple(t.shape)}"
        )
    check_finite(s, "scores")
    k = t.sum(dim=1, keepdim=True)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    position = torch.arange(s.size(1), device=s.device).expand_as(s)
    return torch.zeros_like(order).scatter_(1, order, (position < k).long())


def top_k_f1(scores: Any, y_true: Any) -> dict[str, float]:
    """Micro- and macro-F1 of :func:`top_k_predictions` (the DeepWalk/node2vec protocol).

    Returns:
        ``{"micro_f1": ..., "macro_f1": ...}``.
    """
    pred = top_k_predictions(scores, y_true)
    true = as_tensor(y_true, "y_true").to(pred.device)
    return {
        "micro_f1": f1_score(true, pred, average="micro"),
        "macro_f1": f1_score(true, pred, average="macro"),
    }


def _binary_inputs(y_true: Any, y_score: Any) -> tuple[Tensor, Tensor]:
    true = check_binary(as_tensor(y_true, "y_true"), "y_true").view(-1)
    score = as_tensor(y_score, "y_score").to(true.device).double().view(-1)
    if true.numel() != score.numel():
        raise ValueError(
            f"y_true has {true.numel()} entries but y_score has {score.numel()}"
        )
    check_finite(score, "y_score")
    n_pos = int(true.sum())
    if n_pos == 0 or n_pos == true.numel():
        raise ValueError("y_true must contain both positives and negatives")
    return true, score


def _macro_over_tasks(score_fn, y_true: Any, y_score: Any) -> float:
    """``score_fn`` of ``[N]`` inputs; ``[N, L]`` inputs (one column per binary task, as
    multi-label sets store them) give the mean over tasks, sklearn's ``average="macro"``."""
    true, score = as_tensor(y_true, "y_true"), as_tensor(y_score, "y_score")
    true = true.view(-1) if true.dim() == 2 and true.size(1) == 1 else true
    score = score.view(-1) if score.dim() == 2 and score.size(1) == 1 else score
    if true.dim() > 2 or score.dim() > 2 or true.dim() != score.dim() or (
            true.dim() == 2 and true.shape != score.shape):
        raise ValueError(f"y_true has shape {tuple(true.shape)} but y_score has shape "
                         f"{tuple(score.shape)}; both must be [N], or [N, L] for L binary tasks")
    if true.dim() < 2:
        return score_fn(*_binary_inputs(true, score))
    if true.size(1) == 0:
        raise ValueError("y_true has no tasks (shape [N, 0])")
    values = []
    for task in range(true.size(1)):
        try:
            values.append(score_fn(*_binary_inputs(true[:, task], score[:, task])))
        except ValueError as exc:
            raise ValueError(f"task (column) {task}: {exc}") from None
    return sum(values) / len(values)


def roc_auc(y_true: Any, y_score: Any) -> float:
    r"""Area under the ROC curve of binary labels, as :func:`sklearn.metrics.roc_auc_score`.

    Computed as the Mann-Whitney statistic with tied scores given their average rank,
    :math:`\mathrm{AUC} = (\sum_{i \in P} r_i - |P|(|P|+1)/2) / (|P|\,|N|)`.

    Args:
        y_true: 0/1 labels ``[N]`` with at least one of each, or ``[N, L]`` for ``L`` binary
            tasks (each with both classes): the mean of the tasks' AUCs, as sklearn's default
            ``average="macro"``.
        y_score: real-valued scores of the same shape (higher means more likely positive).
    """
    return _macro_over_tasks(_roc_auc, y_true, y_score)


def _roc_auc(true: Tensor, score: Tensor) -> float:
    sorted_score, order = torch.sort(score)
    _, counts = torch.unique_consecutive(sorted_score, return_counts=True)
    end = torch.cumsum(counts, 0).double()  # 1-based rank of each tie group's last element
    group_rank = end - (counts.double() - 1) / 2  # average rank of each tie group
    ranks = torch.empty_like(score)
    ranks[order] = torch.repeat_interleave(group_rank, counts)
    n_pos = float(true.sum())
    n_neg = true.numel() - n_pos
    return float((ranks[true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y_true: Any, y_score: Any) -> float:
    r"""Average precision, as :func:`sklearn.metrics.average_precision_score`.

    :math:`\mathrm{AP} = \sum_n (R_n - R_{n-1}) P_n` over the distinct score thresholds in
    decreasing order, where :math:`P_n` and :math:`R_n` are the precision and recall of
    predicting positive every score :math:`\ge` the :math:`n`-th threshold (no interpolation).

    Args:
        y_true: 0/1 labels ``[N]`` with at least one of each, or ``[N, L]`` for ``L`` binary
            tasks: the mean of the tasks' APs, as sklearn's default ``average="macro"``.
        y_score: real-valued scores of the same shape.
    """
    return _macro_over_tasks(_average_precision, y_true, y_score)


def _average_precision(true: Tensor, score: Tensor) -> float:
    sorted_score, order = torch.sort(score, descending=True)
    hits = true[order].double()
    _, counts = torch.unique_consecutive(sorted_score, return_counts=True)
    last = torch.cumsum(counts, 0) - 1  # last index of each threshold group
    tps = torch.cumsum(hits, 0)[last]
    precision = tps / (last + 1).double()
    recall = tps / tps[-1]
    recall_step = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_step * precision).sum())
