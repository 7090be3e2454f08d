"""Readers for whitespace- or comma-separated text tables (edge lists, label files).

Every reader reports a malformed line with its 1-based line number in a :class:`ValueError`.
Blank lines are skipped; everything else must parse.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["INTEGER", "is_number", "read_table", "read_ragged", "text_lines"]

#: a decimal integer field, sign allowed (what ``int()`` reads): the edge-list readers' test
#: of whether node fields are ids
INTEGER = re.compile(r"[+-]?[0-9]+")


def _parse(token: str, dtype: np.dtype) -> None:
    if np.dtype(dtype).kind in "iu":
        np.dtype(dtype).type(int(token))  # OverflowError past the dtype's range
    else:
        float(token)


def is_number(token: str) -> bool:
    """Whether a text field parses as a (float) number."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(1-based line number, line)`` of a UTF-8 text file.

    Raises:
        ValueError: naming the file and line of the first bytes that are not UTF-8 text (a
            binary, compressed or truncated-mid-character file), instead of a bare
            ``UnicodeDecodeError``.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    f"{path}, line {lineno}: not UTF-8 text (is it a binary or compressed file?)"
                ) from None
            yield lineno, line


def _first_bad_line(
    path: Path, ncols: int, dtype: np.dtype, delimiter: str | None, skip_header: int,
    usecols: tuple[int, ...] | None,
) -> str:
    for lineno, line in text_lines(path):
        if lineno <= skip_header or not line.strip():
            continue
        fields = line.strip().split(delimiter)
        if len(fields) != ncols:
            return f"{path}, line {lineno}: expected {ncols} fields, got {line.strip()!r}"
        try:
            for i in usecols if usecols is not None else range(ncols):
                _parse(fields[i].strip(), dtype)
        except OverflowError:
            return (f"{path}, line {lineno}: {fields[i].strip()} is out of range for "
                    f"{np.dtype(dtype)}")
        except ValueError:
            kind = "integers" if np.dtype(dtype).kind in "iu" else "numbers"
            return f"{path}, line {lineno}: expected {kind}, got {line.strip()!r}"
    return f"{path}: could not be parsed as a table of {ncols} columns"


def read_table(
    path: str | os.PathLike,
    ncols: int,
    *,
    dtype: type | np.dtype = np.int64,
    delimiter: str | None = None,
    skip_header: int = 0,
    usecols: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Read a text table with exactly ``ncols`` fields per line into a ``[rows, k]`` array.

    Args:
        path: the text file.
        ncols: the number of fields every non-blank line must have.
        dtype: the dtype of the returned columns (integers by default).
        delimiter: the field separator (default: any whitespace).
        skip_header: number of leading lines to skip.
        usecols: the columns to return (default: all ``ncols``).

    Raises:
        ValueError: naming the file and the line number of the first malformed line.
    """
    path = Path(path)
    cols = list(usecols) if usecols is not None else list(range(ncols))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(
                path, dtype=dtype, delimiter=delimiter, skiprows=skip_header, ndmin=2,
                comments=None,
            )
    except ValueError:
        table = None
    if table is not None and table.size == 0:
        return np.empty((0, len(cols)), dtype=dtype)
    if table is None or table.shape[1] != ncols:
        raise ValueError(_first_bad_line(path, ncols, dtype, delimiter, skip_header, usecols))
    return np.ascontiguousarray(table[:, cols])


def read_ragged(
    path: str | os.PathLike, *, delimiter: str | None = None, skip_header: int = 0
) -> list[tuple[int, list[int]]]:
    """Read lines of integers of varying length as ``[(line_number, [ints...]), ...]``.

    Raises:
        ValueError: naming the file and line number of the first field that is not an integer.
    """
    path = Path(path)
    rows: list[tuple[int, list[int]]] = []
    for lineno, line in text_lines(path):
        if lineno <= skip_header or not line.strip():
            continue
        try:
            rows.append((lineno, [int(tok) for tok in line.strip().split(delimiter)]))
        except ValueError:
            raise ValueError(
                f"{path}, line {lineno}: expected integers, got {line.strip()!r}"
            ) from None
    return rows
