"""Numba kernels behind :class:`~graphkit.sampling.TemporalNeighborSampler` on CPU.

They operate in place on NumPy views of the sampler's torch storage (the per-node segments
``start``/``size``/``cap`` and the flat ``nbr``/``eid``/``ts`` arrays) and implement exactly
the same layout and rules as the vectorised torch path.
"""

from __future__ import annotations

import numba
import numpy as np

from graphkit.sampling._floyd_numba import floyd_draw


@numba.njit(cache=True)
def check_events(src, dst, t, num_nodes, last_t, has_last):
    """0 if the events are valid, else 1 (node id out of range) or 2 (timestamps negative,
    unsorted, not finite or earlier than ``last_t``)."""
    for i in range(src.size):
        if src[i] < 0 or src[i] >= num_nodes or dst[i] < 0 or dst[i] >= num_nodes:
            return 1
    for i in range(t.size):
        if not (t[i] >= 0) or not np.isfinite(t[i]) or (i > 0 and t[i] < t[i - 1]):
            return 2
    if has_last and t.size and t[0] < last_t:
        return 2
    return 0


@numba.njit(cache=True)
def plan_insert(src, dst, size, cap, count):
    """Space needed in the flat arrays to append events ``(src, dst)``.

    ``count`` is an all-zero scratch array of length ``num_nodes``; it is left holding the
    number of new entries per node (consumed and reset by :func:`apply_insert`).
    """
    extra = 0
    for i in range(src.size):
        count[src[i]] += 1
        count[dst[i]] += 1
    for i in range(src.size):
        for v in (src[i], dst[i]):
            c = count[v]
            if c > 0 and size[v] + c > cap[v]:
                extra += max(2 * cap[v], size[v] + c, 4)
                count[v] = -c  # mark as planned (sign flipped back in apply_insert)
    for i in range(src.size):
        for v in (src[i], dst[i]):
            if count[v] < 0:
                count[v] = -count[v]
    return extra


@numba.njit(cache=True)
def apply_insert(src, dst, t, first_eid, start, size, cap, used, nbr, eid, ts, count):
    """Relocate overflowing segments, append the events in order; return the new ``used``."""
    for i in range(src.size):
        for v in (src[i], dst[i]):
            c = count[v]
            if c > 0:
                if size[v] + c > cap[v]:
                    new_cap = max(2 * cap[v], size[v] + c, 4)
                    s0 = start[v]
                    for j in range(size[v]):
                        nbr[used + j] = nbr[s0 + j]
                        eid[used + j] = eid[s0 + j]
                        ts[used + j] = ts[s0 + j]
                    start[v] = used
                    cap[v] = new_cap
                    used += new_cap
                count[v] = 0
    for i in range(src.size):
        s, d = src[i], dst[i]
        p = start[s] + size[s]
        nbr[p] = d
        eid[p] = first_eid + i
        ts[p] = t[i]
        size[s] += 1
        p = start[d] + size[d]
        nbr[p] = s
        eid[p] = first_eid + i
        ts[p] = t[i]
        size[d] += 1
    return used


@numba.njit(cache=True)
def sample(start, size, nbr, eid, ts, nodes, times, k, uniform, all_after, seed,
           out_nbr, out_eid, out_ts):
    """Fill ``out_*`` (``[B, k]``, pre-set to -1) with each query's sampled interactions.

    Returns -1, or the index of the first query node out of range (nothing is sampled then).

    Most recent first; ``uniform`` draws ``k`` of the earlier interactions without
    replacement (Robert Floyd's algorithm), otherwise the ``k`` latest are taken.
    """
    for i in range(nodes.size):
        if nodes[i] < 0 or nodes[i] >= start.size:
            return i
    if uniform:
        np.random.seed(seed)
    chosen = np.empty(k, dtype=np.int64)
    for i in range(nodes.size):
        v = nodes[i]
        lo = start[v]
        if all_after:
            c = size[v]
        else:  # number of entries with ts < times[i] (binary search)
            a, b = lo, lo + size[v]
            while a < b:
                m = (a + b) // 2
                if ts[m] < times[i]:
                    a = m + 1
                else:
                    b = m
            c = a - lo
        if uniform and c > k:
            for j in range(k):
                floyd_draw(chosen, j, c - k + j)
            chosen.sort()
            take = k
        else:
            take = min(k, c)
            for j in range(take):
                chosen[j] = j
        for j in range(take):
            p = lo + c - 1 - chosen[j]
            out_nbr[i, j] = nbr[p]
            out_eid[i, j] = eid[p]
            out_ts[i, j] = ts[p]
    return -1
