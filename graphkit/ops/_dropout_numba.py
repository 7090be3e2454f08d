"""Numba kernels of :mod:`graphkit.ops.dropout` (imported on their first CPU call): one
SplitMix64 keep decision per element, shared by the mask and the fused dropout-and-sum."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["keep_mask", "dropout_index_add", "dropout_gather"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@numba.njit(inline="always")
def _kept(seed, i, threshold):
    """Whether element ``i`` is kept: the top 53 bits of SplitMix64(seed, i + 1) are at least
    ``threshold`` (the generator's state at step i + 1 is a function of i alone, so loops
    over elements vectorise)."""
    z = seed + np.uint64(i + 1) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)) >= threshold


@numba.njit(cache=True, nogil=True)
def keep_mask(out, seed, threshold, scale):
    """``out[i] = scale`` where element ``i`` is kept, else 0."""
    zero = out.dtype.type(0)
    for i in range(out.size):
        out[i] = scale if _kept(seed, i, threshold) else zero


@numba.njit(cache=True, nogil=True)
def dropout_index_add(x, index, out, seed, threshold, scale):
    """``out[index[g]] += keep[g] * scale * x[g]`` row by row, ``keep`` the mask
    :func:`keep_mask` gives ``x`` (flat counter ``g * C + j``)."""
    n, c = x.shape
    for g in range(n):
        r = index[g]
        for j in range(c):
            if _kept(seed, g * c + j, threshold):
                out[r, j] += x[g, j] * scale


@numba.njit(cache=True, nogil=True)
def dropout_gather(grad_out, index, grad_x, seed, threshold, scale):
    """The gradient of :func:`dropout_index_add`: ``grad_x[g] = keep[g] * scale *
    grad_out[index[g]]``, the mask recomputed from the seed."""
    n, c = grad_x.shape
    zero = grad_x.dtype.type(0)
    for g in range(n):
        r = index[g]
        for j in range(c):
            grad_x[g, j] = grad_out[r, j] * scale if _kept(seed, g * c + j, threshold) else zero
