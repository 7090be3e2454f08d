"""Numba kernels behind PRES's per-batch bookkeeping on CPU.

Each replaces a dozen small tensor operations per training batch by one call, with exactly the
results of the torch path it stands for (integer counts; the same float32 operations in the
same order, no fused multiply-add): :func:`read_steps` for
:func:`~graphkit.temporal.event_graph.earlier_events` on a batch's source, destination and
negative reads, :func:`observe_per_event` for
:meth:`~graphkit.temporal.pres.PredictionCorrection.observe` with one mixture component.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def read_steps(src, dst, neg, counter, out):
    """``out[r]``: events of the batch before read ``r``'s event that touch its node, reads in
    the order sources, destinations, negatives (a self-loop counts once). ``counter`` is a
    zeroed scratch array of one slot per node and is zeroed again on return. Returns ``1``
    (nothing written) when a node id is outside ``counter``, else ``0``."""
    b = src.size
    n = counter.size
    for e in range(b):
        if src[e] < 0 or src[e] >= n or dst[e] < 0 or dst[e] >= n or neg[e] < 0 or \
                neg[e] >= n:
            return 1
    for e in range(b):
        s, d = src[e], dst[e]
        out[e] = counter[s]
        out[b + e] = counter[d]
        out[2 * b + e] = counter[neg[e]]
        counter[s] += 1
        if d != s:
            counter[d] += 1
    for e in range(b):
        counter[src[e]] = 0
        counter[dst[e]] = 0
    return 0


@numba.njit(cache=True)
def observe_per_event(count, mean, m2, nodes, s_new, s_prev, events):
    """Welford update of one component with the per-event increments
    ``(s_new[i] - s_prev[i]) / events[i]`` of the distinct ``nodes[i]`` (float32, in place)."""
    one = np.float32(1.0)
    for i in range(nodes.size):
        v = nodes[i]
        c = count[v] + one
        ev = np.float32(events[i])
        for j in range(mean.shape[1]):
            delta = (s_new[i, j] - s_prev[i, j]) / ev
            mu = mean[v, j]
            diff = delta - mu
            new_mu = mu + diff / c
            mean[v, j] = new_mu
            m2[v, j] += diff * (delta - new_mu)
        count[v] = c
