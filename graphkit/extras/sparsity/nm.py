"""N:M fine-grained sparsity: in every group of ``m`` consecutive weights keep the ``n`` largest.

Groups run along one dimension of the weight (``dim``); for a ``Linear`` weight of shape
``(out, in)`` ``dim=1`` groups along the input (the reduction dimension of ``x @ W.T``) and
``dim=0`` along the output (the reduction dimension of ``dY @ W``). For a convolution weight
``(out, in/groups, *kernel)`` the same two choices group along input or output channels, one
group per kernel position.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_nm_args(weight: Tensor, n: int, m: int, dim: int) -> int:
    if not isinstance(n, int) or not isinstance(m, int) or m < 1 or not 0 <= n <= m:
        raise ValueError(f"N:M sparsity needs integers 0 <= n <= m and m >= 1, got n={n}, m={m}")
    if weight.dim() == 0:
        raise ValueError("N:M sparsity needs a weight with at least one dimension")
    if not -weight.dim() <= dim < weight.dim():
        raise ValueError(f"dim {dim} is out of range for a weight of shape {tuple(weight.shape)}")
    dim = dim % weight.dim()
    if weight.shape[dim] % m:
        raise ValueError(
            f"dimension {dim} of the weight has size {weight.shape[dim]}, "
            f"not a multiple of the group size m={m}"
        )
    return dim


def _groups(weight: Tensor, m: int, dim: int) -> Tensor:
    """View ``weight`` as (..., groups, m) with the groups running along ``dim``."""
    moved = weight.movedim(dim, -1)
    return moved.reshape(*moved.shape[:-1], moved.shape[-1] // m, m)


@torch.no_grad()
def nm_select(scores: Tensor, n: int, m: int, dim: int = 1) -> Tensor:
    """Boolean mask keeping the ``n`` highest ``scores`` of every ``m`` consecutive along ``dim``.

    Exactly ``n`` entries per group are kept, also when scores tie (ties resolved by
    :func:`torch.topk`), so the pattern is a valid N:M pattern for any input.
    """
    dim = _check_nm_args(scores, n, m, dim)
    if torch.isnan(scores).any():
        raise ValueError("N:M selection got NaN scores")
    groups = _groups(scores, m, dim)
    keep = torch.zeros(groups.shape, dtype=torch.bool, device=scores.device)
    if n > 0:
        keep.scatter_(-1, groups.topk(n, dim=-1).indices, True)
    return keep.reshape(scores.movedim(dim, -1).shape).movedim(-1, dim)


def nm_mask(weight: Tensor, n: int, m: int, dim: int = 1) -> Tensor:
    """Boolean mask keeping the ``n`` largest ``|weight|`` of every ``m`` consecutive along ``dim``.

    Args:
        weight: the weight (any shape); only magnitudes are read.
        n: weights kept per group.
        m: group size; ``weight.shape[dim]`` must be a multiple of it.
        dim: the dimension the groups run along. (default: ``1``, the input dimension)

    Returns:
        A ``torch.bool`` tensor of ``weight``'s shape with exactly ``n`` ``True`` per group.
    """
    return nm_select(weight.detach().abs(), n, m, dim)


def check_nm(weight: Tensor, n: int, m: int, dim: int = 1, exact: bool = True) -> None:
    """Raise ``AssertionError`` unless every ``m``-group along ``dim`` has ``n`` non-zeros.

    With ``exact=False`` a group may hold fewer (a weight that was already zero counts as
    pruned). Works on a weight or on a boolean mask.
    """
    dim = _check_nm_args(weight, n, m, dim)
    counts = (_groups(weight, m, dim) != 0).sum(-1)
    bad = counts != n if exact else counts > n
    if bad.any():
        raise AssertionError(
            f"{int(bad.sum())} of {counts.numel()} groups of {m} along dim {dim} hold "
            f"{'a count other than' if exact else 'more than'} {n} non-zeros "
            f"(counts seen: {sorted(set(counts.flatten().tolist()))})"
        )
