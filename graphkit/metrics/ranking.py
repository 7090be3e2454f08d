"""Ranking metrics for link prediction: MRR and Hits@K, with OGB's conventions."""

from __future__ import annotations

import numbers
from typing import Any

from torch import Tensor

from graphkit.metrics._utils import as_tensor, check_finite

__all__ = ["ranks", "mrr", "hits_at_k"]


def _pos_neg(pos: Any, neg: Any) -> tuple[Tensor, Tensor]:
    p = as_tensor(pos, "y_pred_pos")
    # no negatives: every positive ranks first, as OGB's evaluators count it
    n = as_tensor(neg, "y_pred_neg", allow_empty=True).to(p.device)
    if p.dim() != 1:
        raise ValueError(f"y_pred_pos must be 1-D, got shape {tuple(p.shape)}")
    if n.dim() not in (1, 2) or (n.dim() == 2 and n.size(0) != p.numel()):
        raise ValueError(
            f"y_pred_neg must be [M] (shared negatives) or [{p.numel()}, M] (per positive), "
            f"got shape {tuple(n.shape)}"
        )
    check_finite(p, "y_pred_pos")
    check_finite(n, "y_pred_neg")
    return p, n


def ranks(y_pred_pos: Any, y_pred_neg: Any) -> Tensor:
    r"""The rank of each positive among its negatives, ties counted half (OGB's rule).

    :math:`r_i = 1 + |\{j: s^-_{ij} > s^+_i\}| + \tfrac12 |\{j: s^-_{ij} = s^+_i\}|`, the mean of
    the optimistic and pessimistic ranks.

    Args:
        y_pred_pos: scores of the positives ``[N]``.
        y_pred_neg: scores of the negatives, ``[N, M]`` (per positive) or ``[M]`` (shared).

    Returns:
        A float tensor ``[N]`` of ranks :math:`\ge 1`.
    """
    p, n = _pos_neg(y_pred_pos, y_pred_neg)
    if n.dim() == 1:
        n = n.unsqueeze(0).expand(p.numel(), -1)
    p = p.view(-1, 1)
    optimistic = (n > p).sum(dim=1)
    pessimistic = (n >= p).sum(dim=1)
    return 0.5 * (optimistic + pessimistic).double() + 1


def mrr(y_pred_pos: Any, y_pred_neg: Any) -> float:
    r"""Mean reciprocal rank :math:`\frac1N \sum_i 1 / r_i` with the ranks of :func:`ranks`.

    Equals the mean of ``mrr_list`` of OGB's ``ogbl-citation2`` / ``ogbl-wikikg2`` evaluator.
    """
    return float((1.0 / ranks(y_pred_pos, y_pred_neg)).mean())


def hits_at_k(y_pred_pos: Any, y_pred_neg: Any, k: int) -> float:
    r"""Hits@K: the fraction of positives ranked in the top ``k``.

    * Shared negatives ``y_pred_neg`` of shape ``[M]`` (OGB's ``ogbl-collab/ppa/ddi``
      protocol): a positive counts when its score is strictly greater than the ``k``-th highest
      negative score; with fewer than ``k`` negatives every positive counts (1.0), as in OGB.
    * Per-positive negatives ``[N, M]``: a positive counts when its tie-averaged rank
      (:func:`ranks`) is at most ``k`` (OGB's ``hits@k_list``).
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)  # a NumPy integer as OGB's Evaluator takes it
    p, n = _pos_neg(y_pred_pos, y_pred_neg)
    if n.dim() == 2:
        return float((ranks(p, n) <= k).double().mean())
    if n.numel() < k:
        return 1.0
    kth = n.topk(k).values[-1]
    return float((p > kth).double().mean())
