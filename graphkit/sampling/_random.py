"""Vectorised random subsets and distinct values, shared by the torch code paths of the
samplers."""

from __future__ import annotations

import torch
from torch import Tensor


def floyd_sample(count: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """Per row ``i``, ``min(k, count[i])`` distinct integers from ``[0, count[i])``, uniformly.

    Robert Floyd's algorithm (Bentley & Floyd, "A sample of brilliance", CACM 1987), vectorised
    over rows: ``k`` rounds of ``O(rows * k)`` work. Rows with ``count <= k`` get ``0 .. k-1``;
    entries ``>= count`` are padding for the caller to mask. Returns ``[rows, k]`` int64.
    """
    b = count.numel()
    out = torch.empty((b, k), dtype=torch.long, device=count.device)
    full = count <= k
    for j in range(k):
        m = count - k + j  # round j draws from [0, m]
        r = torch.rand(b, generator=generator, device=count.device, dtype=torch.float64)
        r = torch.minimum((r * (m + 1).clamp(min=1)).long(), m.clamp(min=0))
        if j:
            taken = (out[:, :j] == r.unsqueeze(1)).any(dim=1)
            r = torch.where(taken, m, r)
        out[:, j] = r
    out[full] = torch.arange(k, device=count.device)
    return out


def first_occurrences(x: Tensor) -> Tensor:
    """The distinct values of ``x`` in order of first appearance."""
    if x.numel() == 0:
        return x
    uniq, inv = torch.unique(x, return_inverse=True)
    first = torch.full((uniq.numel(),), x.numel(), dtype=torch.long, device=x.device)
    first.scatter_reduce_(0, inv, torch.arange(x.numel(), device=x.device), reduce="amin")
    return uniq[torch.argsort(first)]
