"""Do two networks learn the same units? Correlation, matching and mapping tools.

From `Convergent Learning: Do different neural networks learn the same representations?
<https://arxiv.org/abs/1511.07543>`_ (Li, Yosinski, Clune, Lipson and Hopcroft, ICLR 2016).
Activations of two networks on the same inputs are compared unit by unit:

* :func:`unit_correlation`: Pearson correlation :math:`C_{ij}` between unit ``i`` of one net
  and unit ``j`` of the other, over all inputs (and spatial positions, for feature maps);
* :func:`bipartite_match`: one-to-one alignment maximising :math:`\\sum_i C_{i\\pi(i)}`
  (Hungarian algorithm);
* :func:`semi_match`: each unit's best partner, :math:`\\arg\\max_j C_{ij}`, repeats allowed;
* :func:`sparse_prediction`: one-to-many maps, an L1-regularised linear prediction of the
  other net's units;
* :func:`spectral_clusters`: many-to-many groups, by spectral clustering of the joint
  correlation matrix of both nets' units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from graphkit.extras._core.registry import register_model

PAPER = "Convergent Learning: Do different neural networks learn the same representations?"


def _as_samples_by_units(x: Tensor, name: str) -> Tensor:
    if x.dim() == 2:
        out = x
    elif x.dim() > 2:  # (B, C, *spatial): every position of every image is a sample
        out = x.movedim(1, -1).reshape(-1, x.shape[1])
    else:
        raise ValueError(f"{name} must be (samples, units) or (B, C, *), got {tuple(x.shape)}")
    if out.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples to correlate, got {out.shape[0]}")
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return out.double()


def _standardise(x: Tensor, eps: float) -> Tensor:
    x = x - x.mean(dim=0)
    # a unit that never varies has no defined correlation; it gets 0 with everything
    return x / x.std(dim=0, unbiased=False).clamp_min(eps)


@torch.no_grad()
def unit_correlation(a: Tensor, b: Tensor | None = None, eps: float = 1e-12) -> Tensor:
    """Pearson correlation between every unit of ``a`` and every unit of ``b``.

    Args:
        a: activations, ``(samples, units_a)`` or ``(B, C_a, *spatial)``.
        b: activations of the other net on the same inputs, same layout; ``None`` correlates
            ``a`` with itself (default: ``None``).
        eps: smallest standard deviation divided by; constant units correlate 0 with
            everything (default: ``1e-12``).

    Returns:
        Float64 tensor ``(units_a, units_b)`` with entries in ``[-1, 1]``.
    """
    if not 0 <= eps < math.inf:  # NaN made every correlation NaN
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    za = _standardise(_as_samples_by_units(a, "a"), eps)
    if b is None:
        zb = za
    else:
        zb = _standardise(_as_samples_by_units(b, "b"), eps)
        if zb.shape[0] != za.shape[0]:
            raise ValueError(
                f"a and b must hold the same samples, got {za.shape[0]} and {zb.shape[0]}"
            )
    return (za.t() @ zb / za.shape[0]).clamp(-1.0, 1.0)


def _check_corr(corr: Tensor) -> None:
    if corr.dim() != 2 or corr.numel() == 0:
        raise ValueError(
            f"corr must be a non-empty (units_a, units_b) matrix, got {tuple(corr.shape)}"
        )
    if not bool(torch.isfinite(corr).all()):
        raise ValueError("corr contains NaN or inf")


@dataclass(frozen=True)
class Matching:
    """Units ``rows[i]`` of net A paired with units ``cols[i]`` of net B, and their correlations."""

    rows: Tensor
    cols: Tensor
    correlation: Tensor

    def permutation(self) -> Tensor:
        """For a square one-to-one matching: ``perm[i]`` is the unit of B matched to unit ``i``."""
        perm = torch.full_like(self.rows, -1)
        perm[self.rows] = self.cols
        return perm


@register_model("convergent_learning", family="analysis", paper=PAPER)
def bipartite_match(corr: Tensor) -> Matching:
    """One-to-one unit alignment maximising the total correlation (Hungarian algorithm).

    Args:
        corr: ``(units_a, units_b)`` correlations, e.g. from :func:`unit_correlation`; with
            unequal sizes, ``min(units_a, units_b)`` pairs are returned.
    """
    from scipy.optimize import linear_sum_assignment

    _check_corr(corr)
    rows, cols = linear_sum_assignment(corr.detach().cpu().double().numpy(), maximize=True)
    rows_t = torch.as_tensor(rows, dtype=torch.long, device=corr.device)
    cols_t = torch.as_tensor(cols, dtype=torch.long, device=corr.device)
    return Matching(rows_t, cols_t, corr[rows_t, cols_t])


def semi_match(corr: Tensor) -> Matching:
    """Each unit of A paired with its most correlated unit of B (several may share one)."""
    _check_corr(corr)
    best, cols = corr.max(dim=1)
    rows = torch.arange(corr.shape[0], device=corr.device)
    return Matching(rows, cols, best)


@dataclass(frozen=True)
class SparsePrediction:
    """``weight[j, i]``: contribution of A's unit ``i`` to B's unit ``j`` (standardised units).

    ``r2[j]`` is the share of B's unit ``j`` variance the prediction explains. Units are
    centred, so no intercept is needed.
    """

    weight: Tensor
    r2: Tensor


@torch.no_grad()
def sparse_prediction(
    a: Tensor, b: Tensor, l1: float = 1e-2, max_iter: int = 2000, tol: float = 1e-9
) -> SparsePrediction:
    """L1-regularised linear prediction of B's units from A's units (one-to-many maps).

    Solves, on units standardised to zero mean and unit variance,

    .. math::
        \\min_{V}\\; \\frac{1}{2S}\\|Z_a V^\\top - Z_b\\|_F^2 + \\lambda \\|V\\|_1

    by accelerated proximal gradient (FISTA). A unit of B copied from one unit of A gets a
    single non-zero weight; a unit mixing several of A's units gets several.

    Args:
        a: activations of net A, ``(samples, units_a)`` or ``(B, C, *)``.
        b: activations of net B on the same inputs.
        l1: :math:`\\lambda \\ge 0` (default: ``1e-2``).
        max_iter: iteration limit (default: ``2000``).
        tol: stop when no weight moves more than this (default: ``1e-9``).
    """
    if not 0 <= l1 < math.inf:
        raise ValueError(f"l1 must be non-negative, got {l1}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be positive, got {max_iter}")
    za = _standardise(_as_samples_by_units(a, "a"), 1e-12)
    zb = _standardise(_as_samples_by_units(b, "b"), 1e-12)
    if za.shape[0] != zb.shape[0]:
        raise ValueError(f"a and b must hold the same samples, got {za.shape[0]} and {zb.shape[0]}")
    S = za.shape[0]
    gram = za.t() @ za / S
    cross = zb.t() @ za / S  # (units_b, units_a)
    step = 1.0 / max(torch.linalg.eigvalsh(gram).max().item(), 1e-12)
    V = torch.zeros_like(cross)
    Y, t = V.clone(), 1.0
    for _ in range(max_iter):
        # gradient of the smooth part at Y: (Y Z_a^T Z_a - Z_b^T Z_a) / S
        G = Y @ gram - cross
        V_new = Y - step * G
        V_new = V_new.sign() * (V_new.abs() - step * l1).clamp_min(0.0)
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        Y = V_new + ((t - 1.0) / t_new) * (V_new - V)
        moved = (V_new - V).abs().max().item()
        V, t = V_new, t_new
        if moved < tol:
            break
    resid = zb - za @ V.t()
    var = zb.pow(2).mean(dim=0)
    r2 = torch.where(var > 0, 1.0 - resid.pow(2).mean(dim=0) / var.clamp_min(1e-300), 0.0)
    return SparsePrediction(V, r2)


def _kmeans(x: Tensor, k: int, generator: torch.Generator, iters: int = 100) -> Tensor:
    # k-means++ seeding, then Lloyd iterations
    n = x.shape[0]
    centres = [x[torch.randint(n, (1,), generator=generator).item()]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).pow(2).min(dim=1).values
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        centres.append(x[torch.multinomial(probs, 1, generator=generator).item()])
    c = torch.stack(centres)
    labels = torch.cdist(x, c).argmin(dim=1)
    for _ in range(iters):
        for j in range(k):
            members = x[labels == j]
            if members.numel():
                c[j] = members.mean(dim=0)
        new = torch.cdist(x, c).argmin(dim=1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels


@torch.no_grad()
def spectral_clusters(corr: Tensor, k: int, seed: int = 0) -> Tensor:
    """Group units into ``k`` clusters by normalised spectral clustering of ``|corr|``.

    For many-to-many alignment pass the joint correlation of both nets' units,
    ``unit_correlation(torch.cat([a, b], dim=1))``; units of A and B that land in one cluster
    represent the same features. Uses the leading ``k`` eigenvectors of
    :math:`D^{-1/2} |C| D^{-1/2}` (Ng, Jordan and Weiss), row-normalised, then k-means.

    Args:
        corr: square symmetric ``(n, n)`` correlation (or any similarity) matrix.
        k: number of clusters, ``1 <= k <= n``.
        seed: seed of the k-means initialisation (default: ``0``).

    Returns:
        Long tensor ``(n,)`` of cluster ids in ``[0, k)``.
    """
    _check_corr(corr)
    n = corr.shape[0]
    if corr.shape != (n, n) or not torch.allclose(corr, corr.t(), atol=1e-8):
        raise ValueError(f"corr must be a square symmetric matrix, got shape {tuple(corr.shape)}")
    if isinstance(k, bool) or not float(k).is_integer() or not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}] and be an integer, got {k!r}")
    affinity = corr.detach().double().abs().cpu()
    deg = affinity.sum(dim=1).clamp_min(1e-12)
    inv_sqrt = deg.rsqrt()
    norm_aff = inv_sqrt[:, None] * affinity * inv_sqrt[None, :]
    _, vecs = torch.linalg.eigh(norm_aff)
    emb = torch.nn.functional.normalize(vecs[:, -k:], dim=1)
    labels = _kmeans(emb, k, torch.Generator().manual_seed(seed))
    return labels.to(corr.device)
