"""Streaming the orbit adjacency matrices of a large graph to one ``.npz`` file.

The 2- and 3-hop matrices of a dense graph hold up to ``n^2`` entries each, so holding all 28 at
once can exhaust memory. :func:`save_orbit_adjacency` counts row blocks, appends each block of each
matrix to a temporary file, and finally copies every matrix into the archive in turn; memory stays
O(m + n + one block). The archive holds, for key ``(h, i, j)``, the arrays
``A{h}_{i}_{j}_indptr``, ``..._indices``, ``..._data`` (CSR) and one ``shape`` array.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphkit.graphlets._input import simple_graph
from graphkit.graphlets.orbit_adjacency import select_keys
from graphkit.ops.graphlets import KEYS, mask_of, orbit_counter

__all__ = ["key_name", "save_orbit_adjacency", "load_orbit_adjacency"]


def key_name(key: tuple[int, int, int]) -> str:
    """Array-name prefix of a key in the archive: ``(2, 4, 5) -> "A2_4_5"``."""
    return "A{}_{}_{}".format(*key)


def _write_npy_member(zf: zipfile.ZipFile, name: str, dtype, source: Path | np.ndarray) -> None:
    """Write one ``.npy`` member, copying its data from a raw file without loading it."""
    if isinstance(source, np.ndarray):
        length, raw = len(source), None
    else:
        length, raw = os.path.getsize(source) // np.dtype(dtype).itemsize, source
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (length,)}
    with zf.open(name + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, header)
        if raw is None:
            member.write(np.ascontiguousarray(source, dtype=dtype).tobytes())
        else:
            with open(raw, "rb") as f:
                shutil.copyfileobj(f, member, 1 << 22)


def save_orbit_adjacency(
    graph: Any,
    path: str | os.PathLike,
    num_nodes: int | None = None,
    hops: int | Iterable[int] | None = None,
    *,
    keys: Iterable[tuple[int, int, int]] | None = None,
    chunk_rows: int | None = None,
    progress: bool = False,
    backend: str | None = None,
) -> list[tuple[int, int, int]]:
    """Count the orbit adjacencies of ``graph`` and write them, atomically, to ``path`` (.npz).

    Args:
        graph, num_nodes, hops, keys, backend: as for :func:`orbit_adjacency`.
        chunk_rows: rows counted per block (default: all rows for small graphs, else 128).
        progress: report progress on stderr.

    Returns:
        The keys written.
    """
    if Path(path).is_dir():  # found only at the final rename, after all the counting
        raise ValueError(f"output {path} is a directory, not a file")
    a = simple_graph(graph, num_nodes)
    n = a.shape[0]
    chosen = select_keys(hops, keys)
    index = [KEYS.index(k) for k in chosen]
    if chunk_rows is None:
        chunk_rows = max(n, 1) if n * n * len(chosen) <= 1 << 26 else 128  # n = 0: empty archive
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    counter = orbit_counter(a.indptr, a.indices, backend)
    mask = mask_of(chosen)
    from graphkit.data.io import atomic_write  # imported on use: graphkit.data loads torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        tmp = Path(tmp)
        row_nnz = {k: np.zeros(n + 1, dtype=np.int64) for k in index}
        files = {k: (open(tmp / f"{k}.indices", "wb"), open(tmp / f"{k}.data", "wb"))
                 for k in index}
        try:
            for r0 in range(0, n, chunk_rows):
                r1 = min(n, r0 + chunk_rows)
                block = counter.count_rows(r0, r1, mask, 0)
                for k in index:
                    indptr, indices, data = block[k]
                    row_nnz[k][r0 + 1:r1 + 1] = np.diff(indptr)
                    indices.tofile(files[k][0])
                    data.tofile(files[k][1])
                del block
                if progress:
                    print(f"\rgraphlets: {r1}/{n} rows, {time.perf_counter() - t0:.1f} s",
                          end="", file=sys.stderr, flush=True)
        finally:
            for fi, fd in files.values():
                fi.close()
                fd.close()
        if progress:
            print(file=sys.stderr)
        with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED,
                                                           allowZip64=True) as zf:
            _write_npy_member(zf, "shape", np.int64, np.array([n, n], dtype=np.int64))
            for key, k in zip(chosen, index):
                name = key_name(key)
                _write_npy_member(zf, f"{name}_indptr", np.int64, np.cumsum(row_nnz[k]))
                _write_npy_member(zf, f"{name}_indices", np.int32, tmp / f"{k}.indices")
                _write_npy_member(zf, f"{name}_data", np.int32, tmp / f"{k}.data")
                (tmp / f"{k}.indices").unlink()
                (tmp / f"{k}.data").unlink()
    return chosen


def load_orbit_adjacency(path: str | os.PathLike) -> dict[tuple[int, int, int], sp.csr_array]:
    """Read an archive written by :func:`save_orbit_adjacency` (or ``graphkit graphlets``)."""
    try:
        z = np.load(path)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError)):
            raise
        raise ValueError(f"{path} is not an orbit-adjacency archive (.npz): {exc}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not an orbit-adjacency archive (.npz): it holds one array")
    with z:
        def member(name: str) -> np.ndarray:
            if name not in z.files:
                raise ValueError(f"{path} is not a complete orbit-adjacency archive: it has no "
                                 f"'{name}' array")
            return z[name]

        shape = member("shape")
        if shape.shape != (2,) or shape.dtype.kind not in "iu" or shape[0] != shape[1] \
                or shape[0] < 0:
            raise ValueError(f"{path}: 'shape' must hold [n, n], got {shape.tolist()}")
        n = tuple(int(x) for x in shape)
        out = {}
        for key in KEYS:
            name = key_name(key)
            if f"{name}_indptr" in z.files:
                parts = [member(f"{name}_{part}") for part in ("data", "indices", "indptr")]
                try:
                    m = sp.csr_array(tuple(parts), shape=n)
                    m.check_format(full_check=True)  # column ids in range, indptr consistent
                except ValueError as exc:
                    raise ValueError(f"{path}: matrix {name} is corrupt ({exc})") from None
                out[key] = m
    if not out:
        raise ValueError(f"{path} holds no orbit adjacency matrices")
    return out
