"""Robert Floyd's sampling step for the Numba samplers (the torch paths use
:func:`graphkit.sampling._random.floyd_sample`)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def floyd_draw(chosen: np.ndarray, j: int, m: int) -> int:
    """Round ``j`` of Floyd's algorithm (Bentley & Floyd, CACM 1987): a uniform draw from
    ``[0, m]``, replaced by ``m`` when ``chosen[:j]`` already holds it; stored in ``chosen[j]``
    and returned. Rounds ``j = 0 .. k-1`` with ``m = n - k + j`` give ``k`` distinct values of
    ``[0, n)``, each subset equally likely."""
    r = np.random.randint(0, m + 1)
    for q in range(j):
        if chosen[q] == r:
            r = m
            break
    chosen[j] = r
    return r
