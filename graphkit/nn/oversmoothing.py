"""Measures of over-smoothing: how alike node representations have become."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["mean_average_distance"]


def mean_average_distance(h: Tensor, block: int = 4096) -> float:
    r"""Mean Average Distance (MAD) of `"Measuring and Relieving the Over-smoothing Problem for
    Graph Neural Networks from the Topological View" <https://arxiv.org/abs/1909.03211>`_
    (Chen et al., AAAI 2020), over all node pairs:

    .. math::
        D_{ij} = 1 - \frac{\mathbf{h}_i^{\top}\mathbf{h}_j}{\lVert\mathbf{h}_i\rVert
        \lVert\mathbf{h}_j\rVert}, \qquad
        \mathrm{MAD} = \frac{1}{|\{i : \bar{D}_i > 0\}|} \sum_{i} \bar{D}_i, \quad
        \bar{D}_i = \frac{\sum_j D_{ij}}{|\{j : D_{ij} > 0\}|}.

    Values near 0 mean the representations have collapsed (over-smoothing). Zero rows are left
    out. Computed in row blocks of ``block`` to bound memory.
    """
    if h.dim() != 2:
        raise ValueError(f"h must have shape (num_nodes, channels), got {tuple(h.shape)}")
    h = h.detach().float()
    h = h[h.norm(dim=1) > 0]
    if h.size(0) < 2:
        raise ValueError("MAD needs at least two non-zero representations")
    z = F.normalize(h, dim=1)
    row_means = []
    for start in range(0, z.size(0), block):
        d = (1 - z[start:start + block] @ z.t()).clamp_min(0)
        d = torch.where(d > 1e-7, d, torch.zeros_like(d))
        count = (d > 0).sum(1)
        row_means.append(torch.where(count > 0, d.sum(1) / count.clamp_min(1), count.float()))
    means = torch.cat(row_means)
    nonzero = means > 0
    return float(means[nonzero].mean()) if bool(nonzero.any()) else 0.0
