"""Numba kernels behind PRES's per-batch work on CPU.

Each replaces several small tensor operations per training batch by one call. Exactly the
results of the torch path they stand for (integer counts; the same float32 operations in the
same order, no fused multiply-add): :func:`read_steps` for
:func:`~graphkit.temporal.event_graph.earlier_events` on a batch's source, destination and
negative reads, :func:`observe_per_event` for
:meth:`~graphkit.temporal.pres.PredictionCorrection.observe` with one mixture component,
:func:`shifted_reads` and :func:`shifted_reads_backward` for the per-read memories
``z[inv] + step * shift[inv]`` and their gradients. To float round-off:
:func:`coherence_gradient`, the closed-form gradient of the memory-coherence term.
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


@numba.njit(cache=True)
def shifted_reads(z, shift, inv, step, out):
    """``out[r] = z[inv[r]] + float32(step[r]) * shift[inv[r]]`` (the per-read memory or
    embedding of :func:`~graphkit.temporal.pres.shifted_reads`, float32, one pass). Returns
    ``1`` (nothing written) when an index is outside ``z``, else ``0``."""
    n = z.shape[0]
    for r in range(inv.size):
        if inv[r] < 0 or inv[r] >= n:
            return 1
    for r in range(inv.size):
        v = inv[r]
        k = np.float32(step[r])
        for j in range(z.shape[1]):
            out[r, j] = z[v, j] + k * shift[v, j]
    return 0


@numba.njit(cache=True)
def shifted_reads_backward(grad, inv, step, grad_z, grad_shift, with_shift):
    """Backward of :func:`shifted_reads` into zeroed ``grad_z`` (and ``grad_shift`` when
    ``with_shift``): the rows of ``grad`` (times the read's step) added in read order, as
    ``index_add_`` does after the product of the torch path."""
    for r in range(inv.size):
        v = inv[r]
        k = np.float32(step[r])
        for j in range(grad.shape[1]):
            g = grad[r, j]
            grad_z[v, j] += g
            if with_shift:
                grad_shift[v, j] += g * k


@numba.njit(cache=True)
def coherence_gradient(s_new, s_prev, scale, eps, out):
    r"""``out[i] = scale * (cos_i * a_i - b_i) / |s_new_i|`` with :math:`a, b` the rows of
    ``s_new``, ``s_prev`` divided by their norms (each at least ``eps``): the gradient of
    ``scale * sum_i (1 - cos(s_new_i, s_prev_i))`` with respect to ``s_new`` (norms and dot
    products accumulated in float64)."""
    for i in range(s_new.shape[0]):
        na = 0.0
        nb = 0.0
        dot = 0.0
        for j in range(s_new.shape[1]):
            a = np.float64(s_new[i, j])
            b = np.float64(s_prev[i, j])
            na += a * a
            nb += b * b
            dot += a * b
        ca = max(np.sqrt(na), eps)
        cb = max(np.sqrt(nb), eps)
        cos = dot / (ca * cb)
        for j in range(s_new.shape[1]):
            out[i, j] = scale * (cos * s_new[i, j] / ca - s_prev[i, j] / cb) / ca
