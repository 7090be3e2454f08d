"""Feature-similarity edge pruning (GCN-Jaccard, STABLE's rough pre-processing).

Wu et al., "Adversarial Examples for Graph Data: Deep Insights into Attack and Defense",
IJCAI 2019: an adversarial edge tends to join nodes with dissimilar features, so edges whose
endpoints' binary features have a low Jaccard similarity are dropped.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index, check_features

__all__ = ["jaccard_similarity", "jaccard_prune", "split_edges"]


def jaccard_similarity(x: Tensor, edge_index: Tensor, chunk_size: int = 4096) -> Tensor:
    r"""Jaccard similarity of the binarised features at the two ends of every edge.

    .. math::
        J(u, v) = \frac{|x_u \wedge x_v|}{|x_u \vee x_v|},

    where a feature is "on" when it is non-zero. Two featureless nodes have an undefined
    similarity, returned as ``nan`` (so no threshold prunes their edge).

    Args:
        x (Tensor): ``[N, F]`` node features (dense or sparse COO / CSR).
        edge_index (Tensor): ``[2, E]`` edges.
        chunk_size (int): edges processed at once, to bound memory (default: ``4096``).

    Returns:
        ``[E]`` float tensor of similarities.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if x.layout != torch.strided:  # COO and CSR alike (CSR was torch's "unsupported layout")
        x = x.to_dense()
    x = check_features(x)
    edge_index = check_edge_index(edge_index, x.size(0))
    on = (x != 0).to(torch.float32)
    count = on.sum(dim=1)
    out = torch.empty(edge_index.size(1), dtype=torch.float32, device=x.device)
    for start in range(0, edge_index.size(1), chunk_size):
        u, v = edge_index[:, start:start + chunk_size]
        inter = (on[u] * on[v]).sum(dim=1)
        union = count[u] + count[v] - inter
        out[start:start + chunk_size] = inter / union  # 0 / 0 -> nan
    return out


def split_edges(edge_index: Tensor, drop: Tensor) -> tuple[Tensor, Tensor]:
    """Split ``edge_index`` into ``(kept, dropped)`` by the boolean mask ``drop``."""
    if drop.dtype != torch.bool or drop.numel() != edge_index.size(1):
        raise ValueError(
            f"drop must be a boolean mask with one entry per edge ({edge_index.size(1)}), "
            f"got dtype {drop.dtype} and {drop.numel()} entries"
        )
    return edge_index[:, ~drop], edge_index[:, drop]


def jaccard_prune(edge_index: Tensor, x: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Delete every edge whose Jaccard similarity is strictly below ``threshold``.

    Each directed edge is judged on its own; the similarity is symmetric, so both directions
    of an undirected edge share one fate.

    Args:
        edge_index (Tensor): ``[2, E]`` edges.
        x (Tensor): ``[N, F]`` node features; binarised (non-zero means present).
        threshold (float): keep ``J >= threshold``; ``0`` keeps every edge.

    Returns:
        ``(kept, removed)`` edge indices.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the Jaccard threshold must lie in [0, 1], got {threshold}")
    sim = jaccard_similarity(x, edge_index)
    return split_edges(edge_index, sim < threshold)
