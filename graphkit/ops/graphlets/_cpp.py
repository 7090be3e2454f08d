"""The compiled backend: a thin wrapper around ``graphkit._cpp.OrbitCounter`` (``cpp/``)."""

from __future__ import annotations

import numpy as np

from graphkit.ops.graphlets._checks import check_count_rows, check_simple_csr

__all__ = ["orbit_counter", "CppOrbitCounter"]


class CppOrbitCounter:
    """The compiled counter behind a Python check of ``count_rows``'s arguments (the compiled
    code trusts them: an unknown ``hop3_mode`` was a segmentation fault)."""

    def __init__(self, counter) -> None:
        self._counter = counter
        self.num_nodes = counter.num_nodes
        self.num_edges = counter.num_edges

    def count_rows(self, r0: int, r1: int, mask: int, hop3_mode: int = 0) -> list:
        check_count_rows(r0, r1, mask, hop3_mode, self.num_nodes)
        return self._counter.count_rows(r0, r1, mask, hop3_mode)

    def gdv(self) -> np.ndarray:
        return self._counter.gdv()

    def edge_gdv(self) -> tuple[np.ndarray, np.ndarray]:
        return self._counter.edge_gdv()


def orbit_counter(indptr: np.ndarray, indices: np.ndarray) -> CppOrbitCounter:
    """A compiled counter over a simple undirected CSR graph (sorted, both directions)."""
    from graphkit._cpp import OrbitCounter

    check_simple_csr(indptr, indices)
    return CppOrbitCounter(OrbitCounter(
        np.ascontiguousarray(indptr, dtype=np.int64), np.ascontiguousarray(indices, dtype=np.int32)
    ))
