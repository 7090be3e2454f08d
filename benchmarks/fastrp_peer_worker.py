"""PecanPy node2vec, timed in the interpreter that runs this file, for ``benchmarks/fastrp.py``.

Not a benchmark: an internal helper of ``fastrp.py``, so it takes the positional arguments below,
not the shared benchmark flags (``--runs`` etc.).

PecanPy's dependencies hold numpy < 2, so it lives in a virtual environment of its own
(``make pecanpy-venv``) and ``fastrp.py --peer-python`` runs this file there. It needs only NumPy,
SciPy and PecanPy (no graphkit, no torch). It compiles PecanPy's Numba code on a 20-node ring
first, untimed, then times the embedding of ``ADJ.npz``, saves it to ``OUT.npy`` and prints one
JSON line: wall and CPU seconds of the embedding, the process's peak RSS and its RSS just before
embedding. Usage::

    python fastrp_peer_worker.py ADJ.npz OUT.npy SEED WORKERS
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import scipy.sparse as sp

if str(Path(__file__).resolve().parent) not in sys.path:  # imported, not run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process_stats import cpu_seconds, peak_mb, rss_mb  # noqa: E402


def _pecanpy():
    """Import PecanPy; its ``nptyping`` dependency still names NumPy 1.x aliases."""
    if int(np.__version__.split(".")[0]) >= 2:  # under numpy < 2 they exist (some deprecated)
        for alias, target in dict(bool8=np.bool_, object0=np.object_, int0=np.intp,
                                  uint0=np.uintp, float_=np.float64, longfloat=np.longdouble,
                                  singlecomplex=np.complex64, complex_=np.complex128,
                                  cfloat=np.complex128, clongfloat=np.clongdouble,
                                  longcomplex=np.clongdouble, void0=np.void, string_=np.bytes_,
                                  bytes0=np.bytes_, unicode_=np.str_, str0=np.str_).items():
            if not hasattr(np, alias):
                setattr(np, alias, target)
    from pecanpy import pecanpy

    return pecanpy


def pecanpy_node2vec(adj: sp.csr_matrix, seed: int, workers: int = 2) -> np.ndarray:
    """PecanPy node2vec (p = q = 1: its FirstOrderUnweighted mode), 10 x 80 walks, d 128."""
    pecanpy = _pecanpy()
    g = pecanpy.FirstOrderUnweighted(p=1, q=1, workers=workers, random_state=seed)
    g.set_node_ids([str(i) for i in range(adj.shape[0])])
    g.indptr = adj.indptr.astype(np.uint32)
    g.indices = adj.indices.astype(np.uint32)
    g.data = adj.data.astype(np.float32)
    return np.asarray(g.embed(dim=128, num_walks=10, walk_length=80, window_size=10))


def warm_up_graph(n: int = 20) -> sp.csr_matrix:
    """A ring: enough for PecanPy to compile its walk code before the timed call."""
    i = np.arange(n)
    return sp.csr_matrix((np.ones(2 * n), (np.r_[i, i], np.r_[(i + 1) % n, (i - 1) % n])),
                         shape=(n, n))


def main(adj_path: str, out_path: str, seed: int, workers: int) -> dict:
    adj = sp.csr_matrix(sp.load_npz(adj_path))
    # stdout carries the result line only; anything PecanPy or gensim prints goes to stderr
    with contextlib.redirect_stdout(sys.stderr):
        pecanpy_node2vec(warm_up_graph(), seed, workers)
        base, t0, c0 = rss_mb(), time.perf_counter(), cpu_seconds()
        emb = pecanpy_node2vec(adj, seed, workers)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    peak = peak_mb()
    np.save(out_path, emb)
    try:
        pecanpy_version = version("pecanpy")
    except PackageNotFoundError:  # importable but not installed as a distribution
        pecanpy_version = "unknown"
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "base_rss_mb": base,
            "nodes": adj.shape[0], "stored_edges": int(adj.nnz),
            "pecanpy_version": pecanpy_version, "numpy_version": np.__version__,
            "python_version": platform.python_version()}


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(f"usage: {Path(sys.argv[0]).name} ADJ.npz OUT.npy SEED WORKERS "
                 f"(got {len(sys.argv) - 1} arguments)")
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
