"""A tolerant, strict-where-it-matters edge-list reader for command-line tools.

Accepted format, one edge per line::

    # a comment line; text after '#' is ignored on any line
    u v            whitespace separated
    u,v,0.5        or comma separated, with an optional third weight column

A first line whose node fields are not integers while every later line's are (``source,target``,
``u v weight``) is a column header: it is skipped with a warning, not read as an edge. Every edge
line must have the same number of fields (2, or 3 with weights). Without
``relabel`` node ids must be non-negative integers and are used as row indices as given (ids
``1..n`` give ``n + 1`` nodes, node 0 without edges); with ``relabel`` any token is a label and
nodes are numbered ``0..n-1`` in sorted order: by value when every label is an integer, else as
text (the numbering ``graphkit graphlets --relabel`` gives the same file, so the rows of the two
commands' outputs line up). A malformed line raises a
:class:`ValueError` naming the file and its 1-based line number.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphkit.data.text import INTEGER, is_number, text_lines

__all__ = ["EdgeList", "header_warning", "looks_like_header", "read_edgelist"]

_MAX_ID = 2**63 - 1
_INT = INTEGER


def looks_like_header(fields: list[str]) -> bool:
    """Whether an edge list's first line reads as column names: neither of its two node fields
    is an integer, and a third (weight) field, if any, is not a number. The caller decides with
    the other lines: it is a header only where their node fields are integers."""
    if len(fields) < 2 or any(_INT.fullmatch(t) for t in fields[:2]):
        return False
    return len(fields) == 2 or not is_number(fields[2])


def header_warning(path: str | os.PathLike, lineno: int, line: str) -> None:
    """Say that ``line`` was taken for a header and skipped (nothing is dropped silently)."""
    warnings.warn(f"{path}, line {lineno}: {line!r} skipped as a column header (every other "
                  "line holds integer node ids)", stacklevel=3)


@dataclass
class EdgeList:
    """Parsed edges: ``src``/``dst`` int64 arrays, optional ``weight``, node count and labels.

    ``labels[i]`` is the original token of node ``i`` (only with ``relabel``).
    """

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray | None
    num_nodes: int
    labels: list[str] | None = None

    @property
    def num_edges(self) -> int:
        return int(self.src.size)

    def to_csr(self, symmetric: bool = True) -> sp.csr_matrix:
        """The ``n x n`` adjacency matrix (float64).

        Duplicate lines are merged (weights summed, or set to 1 without a weight column). With
        ``symmetric`` each edge is made undirected: a pair listed in one direction gets that
        weight both ways, a pair listed in both the larger of the two (``max(A, A^T)`` over the
        listed entries, negative weights included), so a file that lists both directions and one
        that lists each edge once give the same matrix.
        """
        n = self.num_nodes
        w = np.ones(self.num_edges) if self.weight is None else self.weight
        a = sp.csr_matrix((w, (self.src, self.dst)), shape=(n, n), dtype=np.float64)
        a.sum_duplicates()
        if self.weight is None:
            a.data[:] = 1.0
        if symmetric:
            a = _symmetric_max(a)
        a.sort_indices()
        return a


def _symmetric_max(a: sp.csr_matrix) -> sp.csr_matrix:
    """``max(A, A^T)`` over the stored entries only: a missing entry is no edge, not a 0 that
    would beat a negative weight."""
    coo = a.tocoo()
    rows = np.concatenate([coo.row, coo.col]).astype(np.int64)
    cols = np.concatenate([coo.col, coo.row]).astype(np.int64)
    vals = np.concatenate([coo.data, coo.data])
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    if rows.size == 0:
        return sp.csr_matrix(a.shape, dtype=np.float64)
    first = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])])
    return sp.csr_matrix((np.maximum.reduceat(vals, first), (rows[first], cols[first])),
                         shape=a.shape)


def _split(line: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        delimiter = "," if "," in line else None
    return [f.strip() for f in line.split(delimiter)]


def _sorted_labels(tokens: list[str], src: np.ndarray, dst: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Renumber nodes numbered in order of first appearance (``tokens``) in sorted order."""
    if all(INTEGER.fullmatch(t) for t in tokens):
        order = sorted(range(len(tokens)), key=lambda i: int(tokens[i]))
    else:
        order = sorted(range(len(tokens)), key=lambda i: tokens[i])
    new = np.empty(len(tokens), dtype=np.int64)
    new[order] = np.arange(len(tokens))
    return new[src], new[dst], [tokens[i] for i in order]


def read_edgelist(
    path: str | os.PathLike,
    *,
    relabel: bool = False,
    delimiter: str | None = None,
    comments: str = "#",
    num_nodes: int | None = None,
) -> EdgeList:
    """Read an edge list (see the module docstring for the format).

    Args:
        path: the text file.
        relabel (bool): treat node tokens as arbitrary labels and number the nodes ``0..n-1``
            in sorted order (by value when every label is an integer, else as text).
            (default: ``False``: integer ids used as given)
        delimiter (str, optional): field separator; default: a comma if the line holds one,
            else any whitespace.
        comments (str): comment marker. (default: ``"#"``)
        num_nodes (int, optional): the node count, at least ``max id + 1`` (integer ids only).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file and line number of the first malformed line.
    """
    path = Path(path)
    if num_nodes is not None and (isinstance(num_nodes, bool) or not isinstance(
            num_nodes, (int, np.integer)) or num_nodes < 0):
        raise ValueError(f"num_nodes must be a non-negative integer, got {num_nodes!r}")
    if not path.is_file():
        raise FileNotFoundError(f"edge list {path} does not exist")
    src: list[int] = []
    dst: list[int] = []
    weights: list[float] = []
    index: dict[str, int] = {}
    ncols: int | None = None
    # the first data line, if it may be a header: (line number, text, fields); with relabel
    # it is read as an edge until every later line has shown integer ids
    header: tuple[int, str, list[str]] | None = None
    later_ints = True

    def node(token: str, lineno: int) -> int:
        if relabel:
            if token not in index:
                index[token] = len(index)
            return index[token]
        try:
            v = int(token)
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: node id {token!r} is not an integer "
                             "(relabel=True, or --relabel on the command line, numbers "
                             "arbitrary node labels)") from None
        if v < 0:
            raise ValueError(f"{path}, line {lineno}: negative node id {v}")
        if v > _MAX_ID:
            raise ValueError(f"{path}, line {lineno}: node id {v} does not fit in 64 bits "
                             "(relabel=True, or --relabel on the command line, numbers "
                             "arbitrary node labels)")
        return v

    for lineno, raw in text_lines(path):
        if lineno == 1:
            raw = raw.removeprefix("\ufeff")  # a byte-order mark is not part of the first id
        line = raw.split(comments, 1)[0].strip() if comments else raw.strip()
        if not line:
            continue
        fields = _split(line, delimiter)
        if len(fields) not in (2, 3) or any(not tok for tok in fields):
            raise ValueError(f"{path}, line {lineno}: expected 'u v' or 'u v weight', "
                             f"got {raw.strip()!r}")
        if ncols is None and header is None and looks_like_header(fields):
            header = (lineno, line, fields)
            if not relabel:  # integer ids expected: column names are no edge
                continue
        elif relabel and later_ints:
            later_ints = all(_INT.fullmatch(t) for t in fields[:2])
        if ncols is None:
            ncols = len(fields)
        elif len(fields) != ncols:
            raise ValueError(f"{path}, line {lineno}: {len(fields)} fields, but earlier "
                             f"lines have {ncols}")
        src.append(node(fields[0], lineno))
        dst.append(node(fields[1], lineno))
        if header is not None and header[0] == lineno:
            weights.append(math.nan)  # a header's: dropped below, or its error raised there
            continue
        if ncols == 3:
            try:
                w = float(fields[2])
            except ValueError:
                raise ValueError(f"{path}, line {lineno}: weight {fields[2]!r} is not a "
                                 "number") from None
            if not math.isfinite(w):
                raise ValueError(f"{path}, line {lineno}: weight {fields[2]!r} is not finite")
            weights.append(w)
    if header is not None and relabel:
        if not later_ints:  # label tokens throughout: the first line is an edge after all
            if ncols == 3:
                raise ValueError(f"{path}, line {header[0]}: weight {header[2][2]!r} is not a "
                                 "number")
            header = None
        else:  # its labels were numbered first, and no later line uses them
            k = len(set(header[2][:2]))
            src, dst, weights = [v - k for v in src[1:]], [v - k for v in dst[1:]], weights[1:]
            index = {t: i - k for t, i in index.items() if i >= k}
    if header is not None:
        header_warning(path, header[0], header[1])
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    if relabel:
        if num_nodes is not None:
            raise ValueError("num_nodes cannot be combined with relabel")
        n = len(index)
        s, d, labels = _sorted_labels(list(index), s, d)
    else:
        n = int(max(s.max(), d.max())) + 1 if s.size else 0
        labels = None
        if num_nodes is not None:
            if num_nodes < n:
                raise ValueError(f"{path}: node id {n - 1} is out of range for "
                                 f"num_nodes={num_nodes}")
            n = int(num_nodes)
    w_arr = np.asarray(weights, dtype=np.float64) if ncols == 3 else None
    return EdgeList(s, d, w_arr, n, labels)
