"""``graphkit graphlets``: orbit adjacencies and graphlet degree vectors of a graph file.

    graphkit graphlets orbit-adjacency INPUT -o OUT.npz [--hops 1 2] [--backend cpp]
    graphkit graphlets gdv INPUT -o OUT.{npy,csv} [--edges] [--format orca]

INPUT is an edge list (two node labels per line, whitespace- or comma-separated, ``#`` comments,
extra columns ignored), ORCA's input format (first line ``n e``, then ``e`` lines ``u v``), or a
SciPy sparse adjacency matrix (``.npz``). A text file is read as ORCA's format when its first
line ``n e`` (``e >= 1``) matches the number of lines after it and every id lies below ``n``
(with a notice unless the file ends in ORCA's ``.in``: ``--input-format edgelist`` overrides);
a file that matches the count only is read as an edge list, with a warning. Integer labels
``>= 0`` are node ids (a negative integer in an all-integer file is an error); any other labels
are numbered in sorted order and the mapping is written beside the output (the output's name
plus ``.nodes.tsv``, e.g. ``gdv.csv.nodes.tsv``); ``--relabel`` numbers integer labels, negative
ones included, the same way (needed when they are sparse: a file whose ids would give over a
million rows, mostly isolated nodes, is refused without it).
Self-loops are dropped, duplicate edges merged and directed input made undirected, each with a
warning. Progress goes to stderr; every output is written atomically, into an existing folder.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from graphkit.data.edgelist import header_warning, looks_like_header
from graphkit.data.text import INTEGER

__all__ = ["add_parser", "read_graph"]

_SPLIT = re.compile(r"[,\s]+")
_INT = INTEGER  # the same fields as graphkit embed's reader: "+2" is the id 2, not a label
_MAX_ID = 2**62  # ids index arrays of num_nodes = max id + 1 entries


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graphlets", help="graphlet-orbit adjacencies (GRADCO) and GDVs")
    gsub = p.add_subparsers(dest="graphlets_command", metavar="ACTION", required=True)
    oa = gsub.add_parser("orbit-adjacency",
                         help="the orbit adjacency matrices (all 28, or those of --hops) to one "
                              ".npz")
    oa.add_argument("input")
    oa.add_argument("-o", "--output", required=True, help="output archive (.npz)")
    oa.add_argument("--hops", type=int, nargs="+", choices=[1, 2, 3], default=None,
                    help="only the matrices whose two orbits lie these many hops apart "
                         "(default: all)")
    oa.set_defaults(func=_orbit_adjacency)
    gd = gsub.add_parser("gdv", help="node (or edge) graphlet degree vectors")
    gd.add_argument("input")
    gd.add_argument("-o", "--output", required=True, help="output file (.npy, .csv or any)")
    gd.add_argument("--edges", action="store_true", help="edge GDVs (12 edge orbits)")
    gd.add_argument("--format", choices=["auto", "npy", "csv", "orca"], default="auto",
                    help="orca: ORCA's output (space-separated counts, one line per node/edge)")
    gd.set_defaults(func=_gdv)
    for q in (oa, gd):
        q.add_argument("--input-format", choices=["auto", "edgelist", "orca", "npz"],
                       default="auto")
        q.add_argument("--backend", choices=["cpp", "numba", "python"], default=None)
        q.add_argument("--relabel", action="store_true",
                       help="number the nodes 0..n-1 in sorted order even when the labels are "
                            "integers (the mapping goes to OUTPUT's name + .nodes.tsv)")
        q.add_argument("-q", "--quiet", action="store_true",
                       help="no progress or warnings on stderr")


def _tokens(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, tokens)`` of every data line; comments and blank lines are skipped."""
    rows = []
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: a BOM is not part of a label
            for lineno, line in enumerate(f, start=1):
                line = line.split("#", 1)[0].strip()
                if line:
                    rows.append((lineno, [t for t in _SPLIT.split(line) if t]))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text graph ({exc.reason} at byte {exc.start}); "
                         "a binary adjacency matrix must end in .npz") from None
    return rows


def _int_pairs(path: Path, rows: list[tuple[int, list[str]]], ids: bool = True
               ) -> np.ndarray | None:
    """The first two tokens of each row as an ``[E, 2]`` int64 array, or None if some token
    is not an integer. As node ids (``ids``), negative or over-long ones are errors naming
    their line; as labels to number (``--relabel``), any integer is one."""
    if not all(_INT.fullmatch(t) for _, r in rows for t in r[:2]):
        return None
    values = [(int(r[0]), int(r[1])) for _, r in rows]
    if not ids:
        if any(abs(v) > _MAX_ID for pair in values for v in pair):
            return None  # numbered as text labels: np.unique needs no int64
        return np.array(values, dtype=np.int64).reshape(-1, 2)
    for (lineno, _), pair in zip(rows, values):
        v = min(pair)
        if v < 0:
            raise ValueError(f"{path}, line {lineno}: negative node id {v} (node ids must be "
                             ">= 0; --relabel numbers any labels, and labels that are not "
                             "all integers are numbered anyway)")
        if max(pair) > _MAX_ID:
            raise ValueError(f"{path}, line {lineno}: node id {max(pair)} is too large")
    return np.array(values, dtype=np.int64).reshape(-1, 2)


def _looks_like_orca(rows: list[tuple[int, list[str]]]) -> bool:
    """The first line is ``n e`` with ``e >= 1`` equal to the number of lines after it."""
    head = rows[0][1]
    return (len(head) == 2 and all(t.isascii() and t.isdigit() for t in head)
            and int(head[1]) == len(rows) - 1 >= 1)


def _read_orca(path: Path, rows: list[tuple[int, list[str]]]):
    (line0, head), body = rows[0], rows[1:]
    if len(head) != 2 or not all(t.isascii() and t.isdigit() for t in head):
        raise ValueError(f"{path}, line {line0}: ORCA's first line is 'n e' (node and edge "
                         f"counts), got {' '.join(head)!r}")
    n, e = int(head[0]), int(head[1])
    if n > _MAX_ID:
        raise ValueError(f"{path}, line {line0}: node count {n} is too large")
    if e != len(body):
        raise ValueError(f"{path}: the header announces {e} edges but {len(body)} edge lines "
                         "follow")
    wrong = next((ln for ln, r in body if len(r) != 2), None)
    if wrong is not None:
        raise ValueError(f"{path}, line {wrong}: ORCA's edge lines hold two node ids")
    pairs = _int_pairs(path, body)
    if pairs is None:
        raise ValueError(f"{path}: ORCA's node ids must be integers")
    out = np.flatnonzero(pairs.max(axis=1, initial=-1) >= n)
    if out.size:
        raise ValueError(f"{path}, line {body[out[0]][0]}: node id {pairs[out[0]].max()} is "
                         f"out of range for the header's {n} nodes")
    return pairs, n, None, pairs


def _read_npz(path: Path):
    import scipy.sparse as sp

    from graphkit.cli import load_sparse_npz

    a = load_sparse_npz(path)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"{path}: adjacency matrix must be square, got shape {a.shape}")
    coo = sp.coo_array(a)
    if not np.isfinite(coo.data).all():
        raise ValueError(f"{path}: the matrix holds NaN or infinite entries")
    keep = coo.data != 0  # a stored zero is no edge
    lo = np.minimum(coo.row[keep], coo.col[keep]).astype(np.int64)
    hi = np.maximum(coo.row[keep], coo.col[keep]).astype(np.int64)
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0).reshape(-1, 2)
    return a, a.shape[0], None, pairs


def read_graph(path: str | Path, fmt: str = "auto", relabel: bool = False):
    """Read a graph file; returns ``(adjacency or pairs, num_nodes, labels or None, pairs)``.

    ``pairs`` is the ``[E, 2]`` array of input edges in file order (node ids), ``labels`` the
    original label of each node when the labels were not plain non-negative integers or
    ``relabel`` is set (edge lists only).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"input {path} is a directory, not a graph file")
    if not path.is_file():
        raise FileNotFoundError(f"input graph {path} does not exist")
    if fmt == "npz" or (fmt == "auto" and path.suffix.lower() == ".npz"):
        if relabel:
            raise ValueError("--relabel applies to edge lists, not to .npz matrices")
        result = _read_npz(path)
    else:
        result = _read_text(path, fmt, relabel)
    if result[1] == 0:
        raise ValueError(f"{path} holds an empty graph (no nodes)")
    return result


def _read_text(path: Path, fmt: str, relabel: bool = False):
    rows = _tokens(path)
    if not rows:
        raise ValueError(f"{path} holds no edges")
    bad = next(((ln, r) for ln, r in rows if len(r) < 2), None)
    if bad is not None:
        raise ValueError(f"{path}, line {bad[0]}: needs two node labels, got {bad[1]}")
    if fmt == "orca":
        if relabel:
            raise ValueError("--relabel applies to edge lists, not to ORCA's format")
        return _read_orca(path, rows)
    if len(rows) > 1 and looks_like_header(rows[0][1]) and all(
            _INT.fullmatch(t) for _, r in rows[1:] for t in r[:2]):
        # `source,target`: column names, not an edge between two nodes called so
        header_warning(path, rows[0][0], " ".join(rows[0][1]))
        rows = rows[1:]
    head = rows[0][1]
    if (fmt == "auto" and not relabel and path.suffix == ".in" and len(head) == 2
            and all(t.isascii() and t.isdigit() for t in head)):
        # ORCA's own suffix and an 'n e' first line: read strictly, so that a truncated or
        # edited file is named rather than read as an edge list with its header as an edge
        try:
            return _read_orca(path, rows)
        except ValueError as exc:
            raise ValueError(f"{exc} (read as ORCA's format for its .in suffix; "
                             "--input-format edgelist reads it as an edge list)") from None
    orca_error = None
    if fmt == "auto" and not relabel and _looks_like_orca(rows):
        try:
            graph = _read_orca(path, rows)
            if path.suffix != ".in":  # ORCA's own suffix: expected there, surprising elsewhere
                warnings.warn(f"{path}: read as ORCA's format (first line {' '.join(rows[0][1])!r}"
                              " taken as the node and edge counts); --input-format edgelist "
                              "reads it as an edge list", stacklevel=2)
            return graph
        except ValueError as exc:
            orca_error = exc  # an edge list whose first edge happens to match the line count
    result = _read_edge_list(path, rows, relabel)
    if orca_error is not None:  # said only when the edge list reads: else its error says it all
        warnings.warn(f"{orca_error}; read as an edge list instead (the first line only looks "
                      "like ORCA's header; --input-format chooses)", stacklevel=2)
    return result


def _read_edge_list(path: Path, rows: list[tuple[int, list[str]]], relabel: bool):
    pairs = _int_pairs(path, rows, ids=not relabel)
    if pairs is not None and not relabel:
        from graphkit.cli import sparse_ids

        n = int(pairs.max()) + 1
        distinct = sparse_ids(pairs)
        if distinct is not None:
            line = rows[int(np.argmax(pairs.max(axis=1)))][0]
            raise ValueError(f"{path}, line {line}: node id {n - 1} would give {n} output rows "
                             f"for {distinct} distinct nodes; pass --relabel to number the "
                             "nodes 0..n-1 (the mapping is written beside the output)")
        return pairs, n, None, pairs
    labels = pairs if pairs is not None else np.array([[r[0], r[1]] for _, r in rows])
    names, ids = np.unique(labels, return_inverse=True)
    pairs = ids.reshape(-1, 2).astype(np.int64)
    return pairs, len(names), names, pairs


def _load(args: argparse.Namespace):
    graph, n, labels, pairs = read_graph(args.input, args.input_format, args.relabel)
    if not isinstance(graph, np.ndarray):
        return graph, n, labels, pairs
    import torch

    ei = torch.from_numpy(np.ascontiguousarray(graph.T))
    return ei, n, labels, pairs


def _write_labels(output: Path, labels, quiet: bool) -> None:
    from graphkit.cli import write_label_map

    path = output.with_name(output.name + ".nodes.tsv")
    said = write_label_map(path, labels, "node")
    if said and not quiet:
        print(f"node labels: {path}" if labels is not None else said, file=sys.stderr)


def _orbit_adjacency(args: argparse.Namespace) -> int:
    from graphkit.cli import check_output
    from graphkit.graphlets import save_orbit_adjacency

    out = check_output(args.output, (".npz",), inputs=[args.input])
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        graph, n, labels, _ = _load(args)
        keys = save_orbit_adjacency(graph, out, num_nodes=n, hops=args.hops,
                                    progress=not args.quiet, backend=args.backend)
    _write_labels(out, labels, args.quiet)
    if not args.quiet:
        print(f"wrote {len(keys)} matrices for {n} nodes to {out}", file=sys.stderr)
    return 0


def _gdv(args: argparse.Namespace) -> int:
    from graphkit.cli import check_output
    from graphkit.data.io import atomic_write, save_matrix
    from graphkit.graphlets import edge_gdv, gdv

    out = check_output(args.output, inputs=[args.input])
    fmt = args.format
    if fmt == "auto":
        fmt = out.suffix.lstrip(".").lower()
        if fmt not in ("npy", "csv"):
            raise ValueError(f"cannot tell the output format from '{out.name}': use .npy, "
                             ".csv or --format orca")
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        graph, n, labels, pairs = _load(args)
        if args.edges:
            edges, counts = edge_gdv(graph, num_nodes=n, backend=args.backend)
        else:
            counts = gdv(graph, num_nodes=n, backend=args.backend)
    if args.edges and fmt == "orca":
        # ORCA writes one line per input edge, in input order.
        keys = edges[:, 0] * max(n, 1) + edges[:, 1]
        p = pairs[pairs[:, 0] != pairs[:, 1]]
        lo, hi = np.minimum(p[:, 0], p[:, 1]), np.maximum(p[:, 0], p[:, 1])
        counts = counts[np.searchsorted(keys, lo * max(n, 1) + hi)]
    elif args.edges:
        counts = np.concatenate([edges, counts], axis=1)
    if fmt == "orca":
        with atomic_write(out) as f:
            for row in counts:
                f.write(" ".join(map(str, row.tolist())) + "\n")
    else:
        save_matrix(out, counts, fmt)
    _write_labels(out, labels, args.quiet)
    if not args.quiet:
        kind = "edge" if args.edges else "node"
        print(f"wrote {kind} GDVs ({counts.shape[0]} x {counts.shape[1]}) to {out}",
              file=sys.stderr)
    return 0
