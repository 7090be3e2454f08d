"""One timed graphlet-counting job in a fresh process, for ``benchmarks/graphlets.py``.

Not a benchmark: an internal helper of ``graphlets.py`` and of the gradco parity tests, so it
takes the positional arguments below, not the shared benchmark flags (``--runs`` etc.).

Runs under graphkit's interpreter or under another one holding the peers (``gradco`` needs
numpy < 2, so it lives in its own virtual environment); it only needs NumPy and SciPy itself.
Prints one JSON line: wall and CPU seconds of the counting call, the process's peak RSS, and its
RSS just before counting. Usage::

    python graphlets_worker.py SYSTEM ADJ.npz OUT.npz
      SYSTEM: graphkit-{cpp,numba}-{memory,stream,gdv}, gradco-orbit, orca-gdv
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

if str(Path(__file__).resolve().parent) not in sys.path:  # imported, not run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process_stats import cpu_seconds, peak_mb, rss_mb  # noqa: E402

try:
    from graphkit.data.io import atomic_write, save_matrix  # NumPy and SciPy only
except ImportError:  # a peer interpreter without graphkit installed: the source tree's module
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from graphkit.data.io import atomic_write, save_matrix


def _save_csr(path: str, mats: dict, n: int) -> None:
    """The archive layout of ``graphkit.graphlets.save_orbit_adjacency``."""
    arrays = {"shape": np.array([n, n])}
    for (h, i, j), m in mats.items():
        m = sp.csr_array(m, dtype=np.int64, copy=True)  # never sort the caller's arrays
        m.eliminate_zeros()
        m.sort_indices()
        arrays.update({f"A{h}_{i}_{j}_indptr": m.indptr, f"A{h}_{i}_{j}_indices": m.indices,
                       f"A{h}_{i}_{j}_data": m.data})
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


SYSTEMS = [f"graphkit-{b}-{m}" for b in ("cpp", "numba") for m in ("memory", "stream", "gdv")]
SYSTEMS += ["gradco-orbit", "orca-gdv"]


def main(system: str, adj_path: str, out_path: str) -> None:
    if system not in SYSTEMS:
        raise SystemExit(f"unknown system {system!r}; choose one of {', '.join(SYSTEMS)}")
    a = sp.csr_array(sp.load_npz(adj_path))
    n = a.shape[0]
    result: dict = {"system": system}
    if system.startswith("graphkit-"):
        _, backend, mode = system.split("-")
        import graphkit.graphlets as gl

        if mode == "stream":
            import graphkit.data.io  # noqa: F401  (the writer's import, not timed)

        tiny = sp.csr_array(np.ones((3, 3), dtype=np.int32) - np.eye(3, dtype=np.int32))
        gl.gdv(tiny, backend=backend)  # compile (Numba) and warm up, untimed
        gl.orbit_adjacency(tiny, backend=backend)
        base, t0, c0 = rss_mb(), time.perf_counter(), cpu_seconds()
        if mode == "memory":
            mats = gl.orbit_adjacency(a, backend=backend)
        elif mode == "stream":
            gl.save_orbit_adjacency(a, out_path, backend=backend)
        else:
            counts = gl.gdv(a, backend=backend)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        peak = peak_mb()
        if mode == "memory":
            result["nnz"] = int(sum(m.nnz for m in mats.values()))
            _save_csr(out_path, mats, n)
        elif mode == "gdv":
            save_matrix(out_path, counts)
    elif system == "gradco-orbit":
        import gradco

        base, t0, c0 = rss_mb(), time.perf_counter(), cpu_seconds()
        with contextlib.redirect_stdout(sys.stderr):
            counter = gradco.Counter(a)
            counter.count()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        peak = peak_mb()
        if os.environ.get("GRAPHLETS_CHECK") == "1":
            _save_csr(out_path, {(h, i, j): m for h, i, j, m in
                                 counter.generate_orbit_adjacencies()}, n)
            save_matrix(out_path + ".gdv.npy", np.asarray(counter.get_GDVs()).astype(np.int64))
        result.update(seconds=seconds, cpu_seconds=cpu, peak_rss_mb=peak, base_rss_mb=base,
                      version=getattr(gradco, "__version__", "0.1.8"))
        print(json.dumps(result))
        return
    elif system == "orca-gdv":
        from orbit_count import _orca

        coo = sp.triu(a, k=1).tocoo()
        edges = np.ascontiguousarray(np.stack([coo.row, coo.col], axis=1), dtype=np.int32)
        base, t0, c0 = rss_mb(), time.perf_counter(), cpu_seconds()
        counts = _orca.motif_counts("node", 4, n, edges)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        peak = peak_mb()
        save_matrix(out_path, np.asarray(counts, dtype=np.int64))
    else:  # unreachable: SYSTEMS is checked first
        raise AssertionError(system)
    result.update(seconds=seconds, cpu_seconds=cpu, peak_rss_mb=peak, base_rss_mb=base)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {Path(sys.argv[0]).name} SYSTEM ADJ.npz OUT.npz "
                 f"(got {len(sys.argv) - 1} arguments)")
    main(*sys.argv[1:4])
