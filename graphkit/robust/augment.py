"""STABLE's "recover" augmentation: put back a random share of the pruned edges.

Li et al., KDD 2022: the Jaccard pre-processing deletes edges that are probably adversarial;
each contrastive view re-adds a random ``ratio`` of them so the encoder learns embeddings that
do not depend on whether those edges are present.
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor
from torch_geometric.utils import coalesce, to_undirected

from graphkit.data.validation import check_edge_index, share_of

__all__ = ["recover_edges", "undirected_pairs"]


def undirected_pairs(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Distinct unordered pairs ``(u < v)`` of ``edge_index``, self-loops dropped, sorted."""
    u, v = check_edge_index(edge_index, num_nodes)
    lo, hi = torch.minimum(u, v), torch.maximum(u, v)
    keep = lo != hi
    return coalesce(torch.stack([lo[keep], hi[keep]]), num_nodes=num_nodes)


def recover_edges(
    edge_index: Tensor,
    removed_edge_index: Tensor,
    ratio: float = 0.2,
    num_nodes: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Return ``edge_index`` plus :math:`\lfloor \text{ratio} \cdot |A_{del}| \rfloor` removed
    undirected edges drawn uniformly without replacement (both directions added).

    Args:
        edge_index (Tensor): ``[2, E]`` edges of the pruned graph.
        removed_edge_index (Tensor): edges deleted by pruning (either or both directions);
            :math:`|A_{del}|` counts distinct undirected pairs.
        ratio (float): share of removed edges to recover, in ``[0, 1]`` (default: ``0.2``).
        num_nodes (int, optional): number of nodes (default: inferred).
        generator (torch.Generator, optional): source of randomness.

    Returns:
        The coalesced edge index of the augmented view.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"the recover ratio must lie in [0, 1], got {ratio}")
    if num_nodes is None:  # shapes first: a 1-D removed_edge_index failed in torch.cat
        edge_index = check_edge_index(edge_index)
        removed_edge_index = check_edge_index(removed_edge_index, name="removed")
        both = torch.cat([edge_index, removed_edge_index], dim=1)
        num_nodes = int(both.max()) + 1 if both.numel() else 0
    edge_index = check_edge_index(edge_index, num_nodes)
    removed = undirected_pairs(check_edge_index(removed_edge_index, num_nodes, "removed"),
                               num_nodes)
    count = share_of(removed.size(1), ratio)
    perm = torch.randperm(removed.size(1), generator=generator)[:count].to(removed.device)
    back = to_undirected(removed[:, perm], num_nodes=num_nodes)
    return coalesce(torch.cat([edge_index, back], dim=1), num_nodes=num_nodes)

def _is_count(value) -> bool:
    """A non-negative integer (Python, NumPy or a 0-d integer tensor)."""
    try:
        return operator.index(value) >= 0
    except TypeError:
        return False
