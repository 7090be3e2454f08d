"""Atomic file output: results are written to a temporary file and renamed into place."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import scipy.sparse as sp

__all__ = ["atomic_write", "save_matrix"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    A failure inside the block leaves any existing ``path`` untouched and no partial file behind.
    The file gets the permissions of the file it replaces, else those of a new file (umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # text in UTF-8 whatever the locale: the readers decode every input as UTF-8
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _file_mode(path))  # mkstemp's 0600 would hide it from others
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0o022)  # the only portable way to read it: set and restore at once
        os.umask(umask)
        return 0o666 & ~umask


def save_matrix(path: str | os.PathLike, matrix, fmt: str | None = None) -> None:
    """Write a dense or sparse matrix as ``.npy``, ``.npz`` or ``.csv``, chosen by suffix
    (a ``.csv`` keeps every digit: reading it back in the matrix's dtype gives it exactly)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt == "npz":
        with atomic_write(path, "wb") as f:
            if sp.issparse(matrix):
                sp.save_npz(f, sp.csr_matrix(matrix))
            else:
                np.savez_compressed(f, embedding=np.asarray(matrix))
    elif fmt == "npy":
        with atomic_write(path, "wb") as f:
            np.save(f, matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix))
    elif fmt == "csv":
        arr = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
        with atomic_write(path, "w") as f:
            # as many significant digits as the dtype needs to read back exactly
            fmt_ = "%d" if arr.dtype.kind in "iub" else \
                "%.17g" if arr.dtype.itemsize > 4 else "%.9g"
            np.savetxt(f, arr, delimiter=",", fmt=fmt_)
    else:
        raise ValueError(f"unsupported output format '{fmt}' for {path}: use .npy, .npz or .csv")
