"""Per-layer density allocation: how a global density budget is split over layers.

Every function returns ``{layer name: density}`` whose parameter-weighted mean is the global
density; :func:`round_counts` turns densities into whole weight counts with the same total.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence

import torch
from torch import Tensor


def _check_density(density: float) -> float:
    density = float(density)
    if not 0.0 <= density <= 1.0:  # also rejects NaN
        raise ValueError(f"density must lie in [0, 1], got {density}")
    return density


def _check_shapes(shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    if not shapes:
        raise ValueError("no layers to allocate a density to")
    out = {}
    for name, shape in shapes.items():
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2 or min(shape) < 1:
            raise ValueError(f"layer {name!r}: need a weight of >= 2 positive dims, got {shape}")
        out[name] = shape
    return out


def uniform(
    shapes: Mapping[str, Sequence[int]], density: float, dense: Collection[str] = ()
) -> dict[str, float]:
    """Every layer at ``density``; layers in ``dense`` kept whole and the rest lowered to match.

    Raises ``ValueError`` when the dense layers alone exceed the budget.
    """
    return _solve(_check_shapes(shapes), density, dense, lambda shape: 1.0)


def erdos_renyi(
    shapes: Mapping[str, Sequence[int]],
    density: float,
    kernel: bool = True,
    power_scale: float = 1.0,
    dense: Collection[str] = (),
) -> dict[str, float]:
    r"""Erdős–Rényi(-Kernel) densities (Evci et al., "Rigging the Lottery",
    https://arxiv.org/abs/1911.11134; used by Liu et al., "The Unreasonable Effectiveness of
    Random Pruning", https://arxiv.org/abs/2202.02643).

    .. math::
        d_l = \min\left(1,\ \varepsilon\left(\frac{n^{in}_l + n^{out}_l + k^h_l + k^w_l}
              {n^{in}_l\, n^{out}_l\, k^h_l\, k^w_l}\right)^{p}\right),
        \qquad \sum_l d_l N_l = D \sum_l N_l

    i.e. the sum of the weight's dimensions over their product (ERK, ``kernel=True``) or of its
    first two only (ER, ``kernel=False``), raised to ``power_scale`` ``p``. ``ε`` is solved so
    the global density is ``D``; layers whose density would exceed 1 are made dense and ``ε``
    is solved again over the others, until none exceeds 1.

    Args:
        shapes: ``{layer name: weight shape}`` (``(out, in, *kernel)``).
        density: the global density ``D``.
        kernel: ERK (kernel dimensions count) or ER. (default: ``True``)
        power_scale: the exponent ``p``. (default: ``1.0``)
        dense: names of layers kept dense from the start. (default: none)
    """
    if not 0 <= power_scale < math.inf:
        raise ValueError(f"power_scale must be a finite number >= 0, got {power_scale}")

    def raw(shape: tuple[int, ...]) -> float:
        dims = shape if kernel else shape[:2]
        return (sum(dims) / math.prod(dims)) ** power_scale

    return _solve(_check_shapes(shapes), density, dense, raw)


def _solve(
    shapes: dict[str, tuple[int, ...]],
    density: float,
    dense: Collection[str],
    raw: Callable[[tuple[int, ...]], float],
) -> dict[str, float]:
    density = _check_density(density)
    unknown = set(dense) - set(shapes)
    if unknown:
        raise ValueError(f"dense layers {sorted(unknown)} are not among the layers")
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    budget = density * sum(sizes.values())
    rates = {name: raw(shape) for name, shape in shapes.items()}
    full = set(dense)
    while True:
        free = [name for name in shapes if name not in full]
        left = budget - sum(sizes[name] for name in full)
        if left < -1e-9 * budget or (not free and left > 1e-9 * max(budget, 1.0)):
            raise ValueError(f"density {density} cannot be met with layers {sorted(full)} dense")
        if not free:
            return {name: 1.0 for name in shapes}
        eps = left / sum(rates[name] * sizes[name] for name in free)
        # Making a saturated layer dense frees budget, so eps only grows: every layer over 1
        # now stays over 1, and all of them can be fixed at once.
        over = {name for name in free if eps * rates[name] > 1.0}
        if not over:
            out = {name: 1.0 for name in full}
            out.update({name: eps * rates[name] for name in free})
            return {name: out[name] for name in shapes}
        full |= over


@torch.no_grad()
def global_magnitude(scores: Mapping[str, Tensor], density: float) -> dict[str, float]:
    """Densities from one global threshold: the ``round(D * N)`` largest scores of all layers.

    Ties at the threshold are broken by :func:`torch.topk`, so the counts are exact.
    """
    density = _check_density(density)
    if not scores:
        raise ValueError("no layers to allocate a density to")
    empty = [name for name, s in scores.items() if s.numel() == 0]
    if empty:
        raise ValueError(f"layers {empty} have empty scores")
    flat = torch.cat([s.detach().flatten().float() for s in scores.values()])
    if torch.isnan(flat).any():
        raise ValueError("global_magnitude got NaN scores")
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[flat.topk(keep_count(density, flat.numel())).indices] = True
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = float(keep[start : start + s.numel()].sum()) / s.numel()
        start += s.numel()
    return out


def keep_count(density: float, total: int) -> int:
    """Weights kept out of ``total`` at ``density``: ``density * total`` rounded half up."""
    return min(int(math.floor(density * total + 0.5)), total)


def round_counts(densities: Mapping[str, float], sizes: Mapping[str, int]) -> dict[str, int]:
    """Whole kept counts per layer whose sum is the rounded global count (largest remainder).

    Each layer gets ``floor(d_l N_l)`` or one more; the layers with the largest fractional parts
    get the extra weights, so the total is ``round(sum_l d_l N_l)`` and no layer passes
    ``N_l``.
    """
    missing_sizes = sorted(set(densities) - set(sizes))
    if missing_sizes:
        raise ValueError(f"sizes lacks the layers {missing_sizes}")
    for name in densities:
        size = sizes[name]
        if isinstance(size, bool) or int(size) != size or size < 0:
            raise ValueError(f"sizes[{name!r}] must be an integer >= 0, got {size!r}")
    exact = {name: _check_density(densities[name]) * int(sizes[name]) for name in densities}
    counts = {name: min(int(math.floor(v)), int(sizes[name])) for name, v in exact.items()}
    missing = int(math.floor(sum(exact.values()) + 0.5)) - sum(counts.values())
    by_remainder = sorted(exact, key=lambda name: counts[name] - exact[name])
    for name in by_remainder[: max(missing, 0)]:
        counts[name] += 1
    return counts
