"""The one input check every graphlet counter runs on its CSR graph.

The counters index arrays with the CSR entries and derive counts from closed forms that hold
only for a simple undirected graph: an out-of-range id crashed the compiled and Numba backends
(a segmentation fault), and a self-loop, a duplicate or a one-way edge gave negative or wrong
counts without an error. :func:`~graphkit.graphlets.simple_graph` always produces valid
input; this check is for callers of :func:`~graphkit.ops.graphlets.orbit_counter` who build
the CSR arrays themselves. It costs ``O(m log m)`` time, small beside the counting.
"""

from __future__ import annotations

import operator

import numpy as np

from graphkit.ops.graphlets.keys import ALL_MASK

__all__ = ["check_simple_csr", "check_count_rows"]


def check_simple_csr(indptr, indices) -> None:
    """Reject ``(indptr, indices)`` unless it is a simple undirected graph in CSR form.

    That is: integer one-dimensional arrays, ``indptr`` starting at 0, non-decreasing and
    ending at ``len(indices)``; every id in ``[0, n)`` with ``n = len(indptr) - 1``; each row
    strictly increasing (sorted, no duplicates), no self-loops, and every edge ``(u, v)``
    stored in both directions.
    """
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    for name, a in (("indptr", indptr), ("indices", indices)):
        if a.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {list(a.shape)}")
        if a.size and a.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    if indptr.size < 1:
        raise ValueError("indptr must have at least one entry (len(indptr) = num_nodes + 1)")
    n, m = indptr.size - 1, indices.size
    if indptr[0] != 0 or indptr[-1] != m:
        raise ValueError(f"indptr must run from 0 to len(indices) = {m}, got "
                         f"{int(indptr[0])} .. {int(indptr[-1])}")
    steps = np.diff(indptr)
    if (steps < 0).any():
        raise ValueError(f"indptr decreases at row {int(np.argmax(steps < 0))}")
    if m == 0:
        return
    lo, hi = int(indices.min()), int(indices.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise ValueError(f"indices holds node id {bad}, out of range for num_nodes={n}")
    rows = np.repeat(np.arange(n, dtype=np.int64), steps)
    cols = indices.astype(np.int64)
    loop = rows == cols
    if loop.any():
        raise ValueError(f"the graph has a self-loop at node {int(rows[np.argmax(loop)])}: "
                         "graphlet counting needs a simple graph")
    keys = rows * n + cols  # ascending exactly when every row is sorted without duplicates
    unsorted = np.diff(keys) <= 0
    if unsorted.any():
        raise ValueError(f"row {int(rows[np.argmax(unsorted) + 1])} of indices is not sorted "
                         "ascending or repeats a node id")
    reverse = np.sort(cols * n + rows)
    if not np.array_equal(keys, reverse):
        # some stored (u, v) lacks its reverse: (v, u) is not among the keys
        pos = np.minimum(np.searchsorted(reverse, keys), m - 1)
        u, v = divmod(int(keys[np.argmax(reverse[pos] != keys)]), n)
        raise ValueError(f"the graph is not undirected: edge ({u}, {v}) is stored but "
                         f"({v}, {u}) is not")


def check_count_rows(r0, r1, mask, hop3_mode, num_nodes: int) -> None:
    """Check the arguments of a counter's ``count_rows`` (an unknown ``hop3_mode`` crashed
    the compiled counter; a negative ``r0`` was read from the end by the Python oracle)."""
    try:
        r0, r1, mask, hop3_mode = (operator.index(v) for v in (r0, r1, mask, hop3_mode))
    except TypeError:
        raise ValueError("count_rows takes integers r0, r1, mask and hop3_mode, got "
                         f"{r0!r}, {r1!r}, {mask!r}, {hop3_mode!r}") from None
    if not 0 <= r0 <= r1 <= num_nodes:
        raise ValueError(f"row range [{r0}, {r1}) out of bounds for {num_nodes} rows")
    if not 0 <= mask <= ALL_MASK:
        raise ValueError(f"mask must select keys with bits 0..{ALL_MASK.bit_length() - 1} "
                         f"(0 <= mask <= {ALL_MASK}), got {mask}")
    if hop3_mode not in (0, 1, 2):
        raise ValueError(f"hop3_mode must be 0 (automatic), 1 or 2, got {hop3_mode}")
