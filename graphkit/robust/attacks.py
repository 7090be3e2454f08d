"""Random structure attack: perturb a share of a graph's edges at random.

For graphs without a pre-attacked version (DeepRobust's ``Random`` attack; the "Random"
setting of Li et al., KDD 2022). The budget is ``int(rate * |E|)`` undirected edges, ``|E|``
the number of undirected edges of the input.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import to_undirected

from graphkit.data.validation import check_edge_index, share_of
from graphkit.robust.augment import _is_count, undirected_pairs

__all__ = ["random_attack"]

_MODES = ("add", "remove", "flip")


def random_attack(
    edge_index: Tensor,
    num_nodes: int,
    rate: float,
    mode: str = "add",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add, remove or flip ``int(rate * |E|)`` random undirected edges.

    ``"add"`` inserts uniformly random non-edges (no self-loops); ``"remove"`` deletes random
    existing edges; ``"flip"`` does each perturbation as an addition or a removal with equal
    chance. The result is symmetric and coalesced.

    Args:
        edge_index (Tensor): ``[2, E]`` edges of an undirected graph.
        num_nodes (int): number of nodes.
        rate (float): perturbation budget as a share of the undirected edges, ``>= 0``.
        mode (str): ``"add"``, ``"remove"`` or ``"flip"`` (default: ``"add"``).
        generator (torch.Generator, optional): source of randomness.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if not 0 <= rate < float("inf"):  # NaN and inf failed in int() naming neither
        raise ValueError(f"rate must be a finite non-negative number, got {rate}")
    if not _is_count(num_nodes):  # 6.5 failed in torch, -1 returned an empty graph
        raise ValueError(f"num_nodes must be a non-negative integer, got {num_nodes!r}")
    edge_index = check_edge_index(edge_index, num_nodes)
    pairs = undirected_pairs(edge_index, num_nodes)
    budget = share_of(pairs.size(1), rate)
    n_add = budget
    if mode == "remove":
        n_add = 0
    elif mode == "flip":
        n_add = int(torch.rand(budget, generator=generator).lt(0.5).sum())
    n_remove = budget - n_add
    if n_remove > pairs.size(1):
        raise ValueError(f"cannot remove {n_remove} edges from a graph with {pairs.size(1)}")
    max_pairs = num_nodes * (num_nodes - 1) // 2
    if n_add > max_pairs - pairs.size(1):
        raise ValueError(f"cannot add {n_add} edges: only {max_pairs - pairs.size(1)} non-edges")
    keep = torch.ones(pairs.size(1), dtype=torch.bool)
    keep[torch.randperm(pairs.size(1), generator=generator)[:n_remove]] = False
    keep = keep.to(pairs.device)  # the draws stay on the generator's CPU
    keys = pairs[0] * num_nodes + pairs[1]
    removed_keys = set(keys[~keep].tolist())  # a removed edge is not added back
    pairs = pairs[:, keep]
    existing = set(keys[keep].tolist())
    added: list[int] = []
    while len(added) < n_add:
        u = torch.randint(num_nodes, (2 * (n_add - len(added)) + 8,), generator=generator)
        v = torch.randint(num_nodes, u.shape, generator=generator)
        for a, b in zip(torch.minimum(u, v).tolist(), torch.maximum(u, v).tolist()):
            key = a * num_nodes + b
            if a == b or key in existing or key in removed_keys:
                continue
            existing.add(key)
            added.append(key)
            if len(added) == n_add:
                break
    new = torch.tensor(added, dtype=torch.long, device=pairs.device)
    pairs = torch.cat([pairs, torch.stack([new // num_nodes, new % num_nodes])], dim=1)
    return to_undirected(pairs, num_nodes=num_nodes)
