"""The compiled backend: a thin wrapper around ``graphkit._cpp.OrbitCounter`` (``cpp/``)."""

from __future__ import annotations

import numpy as np

__all__ = ["orbit_counter"]


def orbit_counter(indptr: np.ndarray, indices: np.ndarray):
    """A compiled counter over a simple undirected CSR graph (sorted, both directions)."""
    from graphkit._cpp import OrbitCounter

    return OrbitCounter(
        np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int32)
    )
