"""Numba kernel of :func:`graphkit.ops.dropout` (imported on its first CPU call)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["keep_mask"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, nogil=True)
def keep_mask(out, seed, threshold, scale):
    """``out[i] = scale`` where the top 53 bits of SplitMix64(seed, i + 1) are at least
    ``threshold``, else 0."""
    zero = out.dtype.type(0)
    for i in range(out.size):
        # the generator's state at step i + 1 is a function of i alone, so the loop vectorises
        z = seed + np.uint64(i + 1) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        out[i] = scale if (z >> np.uint64(11)) >= threshold else zero
