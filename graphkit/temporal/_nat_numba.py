"""Numba kernel behind NAT's dictionary join on the CPU.

:func:`group_pairs` groups entries by ``(pair, key)`` as
:func:`~graphkit.temporal.nat.joint_codes` does with ``torch.unique``, in time linear in the
entries (no sort): groups come pair by pair, within a pair in order of first appearance.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def group_pairs(pair, key, code, num_pairs, num_nodes):
    """Group entries by ``(pair, key)``: returns ``(g_pair, g_key, g_code, inverse)``."""
    n = pair.size
    start = np.zeros(num_pairs + 1, np.int64)
    for i in range(n):
        start[pair[i] + 1] += 1
    for p in range(num_pairs):
        start[p + 1] += start[p]
    order = np.empty(n, np.int64)  # entries bucketed by pair (a stable counting sort)
    fill = start[:-1].copy()
    for i in range(n):
        order[fill[pair[i]]] = i
        fill[pair[i]] += 1
    seen = np.full(num_nodes, -1, np.int64)  # the pair that last saw each key ...
    group_of = np.empty(num_nodes, np.int64)  # ... and the group it has there
    g_pair = np.empty(n, np.int64)
    g_key = np.empty(n, np.int64)
    g_code = np.zeros(n, np.int64)
    inverse = np.empty(n, np.int64)
    groups = 0
    for j in range(n):
        i = order[j]
        p, k = pair[i], key[i]
        if seen[k] != p:
            seen[k] = p
            group_of[k] = groups
            g_pair[groups] = p
            g_key[groups] = k
            groups += 1
        g = group_of[k]
        g_code[g] += code[i]
        inverse[i] = g
    return g_pair[:groups], g_key[:groups], g_code[:groups], inverse


@numba.njit(cache=True)
def apply_writes(t_key, t_eid, t_time, t_rep, slot, key, eid, time, rep, draw, replace_prob,
                 stored):
    """:meth:`~graphkit.temporal.ncache.NCache.write` on CPU tables, in place: a candidate may
    write when its key is valid and its slot (as it was before the batch) is empty, holds its
    key, or its draw is below ``replace_prob``; the last allowed candidate of a slot wins.
    ``stored[i]`` is set for the winners (the tensor rule of ``NCache.write``, exactly)."""
    c = slot.size
    allowed = np.empty(c, np.bool_)
    for i in range(c):  # every decision against the tables before the batch
        held = t_key[slot[i]]
        allowed[i] = key[i] >= 0 and (held < 0 or held == key[i] or draw[i] < replace_prob)
    for i in range(c):  # in batch order, so that a later writer overwrites an earlier one
        if allowed[i]:
            j = slot[i]
            t_key[j] = key[i]
            t_eid[j] = eid[i]
            t_time[j] = time[i]
            t_rep[j, :] = rep[i, :]
    size = 1
    while size < 2 * c:
        size *= 2
    seen = np.full(size, -1, np.int64)  # open addressing over the slots already won
    for i in range(c - 1, -1, -1):
        stored[i] = False
        if not allowed[i]:
            continue
        h = (slot[i] * 0x9E3779B1) & (size - 1)
        while seen[h] >= 0 and seen[h] != slot[i]:
            h = (h + 1) & (size - 1)
        if seen[h] < 0:
            seen[h] = slot[i]
            stored[i] = True
