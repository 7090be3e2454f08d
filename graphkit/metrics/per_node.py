r"""Per-node link-prediction ranking metrics: Hits@K, Recall@K, Precision@K and NDCG@K of each
source node, as in the per-node evaluation of `A Topological Perspective on Demystifying
GNN-Based Link Prediction Performance <https://arxiv.org/abs/2310.04612>`_ (Wang et al., ICLR
2024) and the LightGCN-style recommendation metrics it follows.

Each source node ``u`` (a row of ``scores``) ranks every candidate node by score, excluded
candidates (e.g. its training neighbours) removed; with :math:`T_u` its relevant candidates and
:math:`r_1, \dots, r_K \in \{0, 1\}` the relevance of its top ``K``:

.. math::
    \mathrm{Hits@K}_u = [\textstyle\sum_p r_p > 0], \quad
    \mathrm{Recall@K}_u = \frac{\sum_p r_p}{|T_u|}, \quad
    \mathrm{Precision@K}_u = \frac{\sum_p r_p}{K}, \quad
    \mathrm{NDCG@K}_u = \frac{\sum_p r_p / \log_2(p + 1)}
                             {\sum_{p=1}^{\min(K, |T_u|)} 1 / \log_2(p + 1)}.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import torch
from torch import Tensor

from graphkit.metrics._utils import as_tensor, check_finite

__all__ = ["NodeRanking", "per_node_ranking"]


class NodeRanking(NamedTuple):
    """Per-row metrics, each ``[B]`` float64 in ``[0, 1]``."""

    hits: Tensor
    recall: Tensor
    precision: Tensor
    ndcg: Tensor


def _pairs(pairs: Any, shape: tuple[int, int], name: str, device: torch.device) -> Tensor:
    """``[2, P]`` (row, candidate) pairs as a ``[B, N]`` bool mask, ids checked."""
    p = torch.as_tensor(pairs, device=device)
    if p.dim() != 2 or p.size(0) != 2 or p.is_floating_point() or p.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer [2, P] tensor of (row, candidate) pairs, "
                         f"got dtype {p.dtype} and shape {tuple(p.shape)}")
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    if p.numel() == 0:
        return mask
    for axis, (size, what) in enumerate(zip(shape, ("row", "candidate"))):
        lo, hi = int(p[axis].min()), int(p[axis].max())
        if lo < 0 or hi >= size:
            raise ValueError(f"{name} holds {what} id {lo if lo < 0 else hi}, out of range "
                             f"[0, {size})")
    mask[p[0], p[1]] = True
    return mask


def per_node_ranking(scores: Any, truth: Any, k: int, exclude: Any | None = None) -> NodeRanking:
    """Hits@K, Recall@K, Precision@K and NDCG@K of every row of ``scores`` (module docstring).

    Ties are broken towards the lower candidate id (a stable descending sort), so results do
    not depend on the backend.

    Args:
        scores: ``[B, N]`` scores of ``N`` candidates for ``B`` source nodes.
        truth: ``[2, T]`` (row, candidate) pairs of relevant candidates (duplicates count
            once); every row needs at least one.
        k: cut-off ``K``, ``1 <= K <= N``.
        exclude: ``[2, X]`` (row, candidate) pairs removed from the ranking, e.g. the known
            (training and validation) neighbours (default: ``None``, nothing removed). A pair
            may not be both relevant and excluded.

    Returns:
        :class:`NodeRanking` of ``[B]`` float64 tensors on ``scores``' device.

    Raises:
        ValueError: ``scores`` is not 2-D or holds NaN/inf, ``k`` is out of range, a pair is out
            of range, a row has no relevant candidate, or a pair is relevant and excluded.
    """
    s = as_tensor(scores, "scores")
    if s.dim() != 2:
        raise ValueError(f"scores must be [B, N], got shape {tuple(s.shape)}")
    check_finite(s, "scores")
    b, n = s.shape
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, {n}] (the number of candidates), got {k!r}")
    k = int(k)  # a NumPy integer as OGB's Evaluator takes it
    relevant = _pairs(truth, (b, n), "truth", s.device)
    num_true = relevant.sum(dim=1)
    if bool((num_true == 0).any()):
        row = int((num_true == 0).nonzero()[0, 0])
        raise ValueError(f"row {row} has no relevant candidate in truth")
    s = s.double()
    if exclude is not None:
        removed = _pairs(exclude, (b, n), "exclude", s.device)
        if bool((removed & relevant).any()):
            row, col = (removed & relevant).nonzero()[0].tolist()
            raise ValueError(f"pair ({row}, {col}) is both relevant and excluded")
        s = s.masked_fill(removed, float("-inf"))
    top = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    rel = relevant.gather(1, top).double()
    found = rel.sum(dim=1)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=s.device, dtype=torch.float64))
    ideal = torch.cumsum(discount, 0)[num_true.clamp(max=k) - 1]
    return NodeRanking(hits=(found > 0).double(), recall=found / num_true,
                       precision=found / k, ndcg=(rel * discount).sum(dim=1) / ideal)
