"""The compiled backend: a thin wrapper around ``graphkit._cpp.OrbitCounter`` (``cpp/``)."""

from __future__ import annotations

import numpy as np

from graphkit.ops.graphlets._checks import check_simple_csr

__all__ = ["orbit_counter"]


def orbit_counter(indptr: np.ndarray, indices: np.ndarray):
    """A compiled counter over a simple undirected CSR graph (sorted, both directions)."""
    from graphkit._cpp import OrbitCounter

    check_simple_csr(indptr, indices)
    return OrbitCounter(
        np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int32)
    )
