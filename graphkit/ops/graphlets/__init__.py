"""Backend dispatch for graphlet-orbit counting.

Three interchangeable backends build a counter over a simple undirected CSR graph:

* ``cpp``: the compiled core in ``cpp/graphlets.cpp`` (``graphkit._cpp``), the fastest;
* ``numba``: the same algorithm in Numba (:mod:`.numba_impl`), used when the extension is absent;
* ``python``: a brute-force oracle (:mod:`.python_ref`), for tests and tiny graphs.

``GRAPHKIT_BACKEND=cpp|numba|python`` forces one; by default the fastest available is used, and
falling back to Numba is reported once. Every counter offers ``count_rows(r0, r1, mask,
hop3_mode)``, ``gdv()`` and ``edge_gdv()`` with identical results.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from graphkit import typing as gk_typing
from graphkit.ops.graphlets.keys import ALL_MASK, KEY_INDEX, KEYS, SYMMETRIC_KEYS, mask_of

__all__ = [
    "BACKENDS",
    "KEYS",
    "KEY_INDEX",
    "SYMMETRIC_KEYS",
    "ALL_MASK",
    "mask_of",
    "available_backends",
    "resolve_backend",
    "orbit_counter",
]

BACKENDS = ("cpp", "numba", "python")
_warned_fallback = False


def available_backends() -> list[str]:
    """The backends this installation can run, fastest first."""
    found = []
    if gk_typing.WITH_CPP:
        found.append("cpp")
    if gk_typing.WITH_NUMBA:
        found.append("numba")
    found.append("python")
    return found


def resolve_backend(backend: str | None = None) -> str:
    """``backend``, else ``$GRAPHKIT_BACKEND``, else the fastest available one."""
    global _warned_fallback
    name = backend or os.environ.get("GRAPHKIT_BACKEND") or None
    if name is not None:
        name = name.lower()
        if name not in BACKENDS:
            raise ValueError(f"unknown graphlet backend '{name}'; choose one of {BACKENDS}")
        if name not in available_backends():
            raise ImportError(
                f"graphlet backend '{name}' is not available here "
                f"(available: {available_backends()}); "
                "the 'cpp' backend needs graphkit built with a C++ compiler"
            )
        return name
    name = available_backends()[0]
    if name != "cpp" and not _warned_fallback:
        _warned_fallback = True
        warnings.warn(
            "graphkit's compiled extension (graphkit._cpp) is not available; graphlet counting "
            f"uses the {name} backend. Reinstall graphkit with a C++ compiler for full speed.",
            RuntimeWarning,
            stacklevel=3,
        )
    return name


def orbit_counter(indptr: np.ndarray, indices: np.ndarray, backend: str | None = None):
    """A counter over the CSR graph ``(indptr, indices)`` from the chosen backend."""
    name = resolve_backend(backend)
    if name == "cpp":
        from graphkit.ops.graphlets._cpp import orbit_counter as make
    elif name == "numba":
        from graphkit.ops.graphlets.numba_impl import orbit_counter as make
    else:
        from graphkit.ops.graphlets.python_ref import PythonOrbitCounter as make
    return make(indptr, indices)
