"""The ``graphkit`` command (also ``python -m graphkit``).

Each sub-command lives in its own module of this package exposing ``add_parser(subparsers)``,
which registers the command and sets ``func``; add a new one to ``SUBCOMMANDS``.
It never prompts.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from graphkit.device import check_device

__all__ = ["main", "build_parser", "check_device", "check_output"]

SUBCOMMANDS = ["datasets", "demo", "embed", "graphlets"]


def build_parser() -> argparse.ArgumentParser:
    from graphkit import __version__

    parser = argparse.ArgumentParser(
        prog="graphkit", description="graphkit: recent graph-learning methods on PyG"
    )
    parser.add_argument("--version", action="version", version=f"graphkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"graphkit.cli.{name}").add_parser(sub)
    return parser


def check_output(path: str | os.PathLike, suffixes: Sequence[str] = (),
                 inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Fail before any work if ``path`` cannot be an output file of a command.

    The folder must exist already: a mistyped folder is an error, not a new folder tree.
    ``suffixes`` (lower case, with the dot) restricts the accepted extensions; ``inputs`` are
    the files the command reads, which the output must not overwrite.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a directory, not a file")
    for source in map(Path, inputs):
        if _same_file(path, source):
            raise ValueError(f"output {path} is the input file {source}: writing it would "
                             "destroy the input (choose another output)")
    if suffixes and path.suffix.lower() not in suffixes:
        *head, last = suffixes
        raise ValueError(f"output {path} must end in {', '.join(head) + ' or ' if head else ''}"
                         f"{last}")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} does not exist (create it first)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {folder} is not writable")
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # also through links and other spellings
    return a.resolve() == b.resolve()


def write_label_map(path: Path, labels: Sequence[object] | None, row_name: str) -> str | None:
    """Write the ``row -> label`` table of an output at ``path`` (``labels`` in row order), or,
    for an output without labels, remove the table an earlier run left there: it would name
    these rows wrongly. Returns what was done, for the command's log."""
    from graphkit.data.io import atomic_write

    if labels is None:
        if path.is_file():
            path.unlink()
            return f"removed {path}, an earlier run's labels (these rows are the ids themselves)"
        return None
    with atomic_write(path) as f:
        f.write(f"{row_name}\tlabel\n")
        for i, label in enumerate(labels):
            f.write(f"{i}\t{label}\n")
    return f"wrote {path}"


SPARSE_IDS = 1_000_000  # above this many rows, mostly-unused integer ids need --relabel


def sparse_ids(ids) -> int | None:
    """The number of distinct ids when integer node ids would give over a million output
    rows, 16 or more per node that exists (a raw database key used as an id), else ``None``:
    such a file needs ``--relabel`` instead of an allocation that fails or a mostly empty
    output."""
    import numpy as np

    ids = np.asarray(ids)
    n = int(ids.max()) + 1 if ids.size else 0
    if n <= SPARSE_IDS:
        return None
    distinct = len(np.unique(ids))
    return distinct if n > 16 * distinct else None


def load_sparse_npz(path: Path):
    """A SciPy sparse matrix saved with ``scipy.sparse.save_npz``; any other file is a
    ``ValueError`` naming it (NumPy's own advice to unpickle an unknown file is left out)."""
    import zipfile

    import scipy.sparse as sp

    try:
        return sp.load_npz(path)
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        why = "" if "pickle" in str(exc) else f" ({exc})"
        raise ValueError(f"{path} is not a SciPy sparse .npz matrix{why}") from None


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"graphkit: warning: {message}\n"


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """Print warnings as ``graphkit: warning: ...``, not with graphkit's source file and line.
    Only the printed form changes: recorded warnings (``pytest.warns``, ``catch_warnings``)
    and warning filters are untouched."""
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        with _plain_warnings():
            return int(args.func(args) or 0)
    except (ValueError, OSError, ImportError) as exc:  # OSError: e.g. a full disk while writing
        print(f"graphkit: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError as exc:
        print(f"graphkit: error: out of memory ({exc})", file=sys.stderr)
        return 1
