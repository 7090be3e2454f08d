"""``graphkit graphlets``: orbit adjacencies and graphlet degree vectors of a graph file.

    graphkit graphlets orbit-adjacency INPUT -o OUT.npz [--hops 1 2] [--backend cpp]
    graphkit graphlets gdv INPUT -o OUT.{npy,csv} [--edges] [--format orca]

INPUT is an edge list (two node labels per line, whitespace- or comma-separated, ``#`` comments,
extra columns ignored), ORCA's input format (first line ``n e``, then ``e`` lines ``u v``), or a
SciPy sparse adjacency matrix (``.npz``). Integer labels ``>= 0`` are node ids; any other labels
are numbered in sorted order and the mapping is written beside the output (``OUT.nodes.tsv``).
Self-loops are dropped, duplicate edges merged and directed input made undirected, each with a
warning. Progress goes to stderr; every output is written atomically.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "read_graph"]

_SPLIT = re.compile(r"[,\s]+")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graphlets", help="graphlet-orbit adjacencies (GRADCO) and GDVs")
    gsub = p.add_subparsers(dest="graphlets_command", metavar="ACTION", required=True)
    oa = gsub.add_parser("orbit-adjacency", help="all 28 orbit adjacency matrices to one .npz")
    oa.add_argument("input")
    oa.add_argument("-o", "--output", required=True, help="output archive (.npz)")
    oa.add_argument("--hops", type=int, nargs="+", choices=[1, 2, 3], default=None)
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
        q.add_argument("--quiet", action="store_true", help="no progress or warnings on stderr")


def _tokens(path: Path) -> list[list[str]]:
    rows = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                rows.append([t for t in _SPLIT.split(line) if t])
    return rows


def read_graph(path: str | Path, fmt: str = "auto"):
    """Read a graph file; returns ``(adjacency or pairs, num_nodes, labels or None, pairs)``.

    ``pairs`` is the ``[E, 2]`` array of input edges in file order (node ids), ``labels`` the
    original label of each node when the labels were not plain non-negative integers.
    """
    import scipy.sparse as sp

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input graph {path} does not exist")
    if fmt == "npz" or (fmt == "auto" and path.suffix == ".npz"):
        a = sp.load_npz(path)
        coo = sp.triu(sp.coo_array(a) + sp.coo_array(a).T, k=0).tocoo()
        return a, a.shape[0], None, np.stack([coo.row, coo.col], axis=1)
    rows = _tokens(path)
    if not rows:
        raise ValueError(f"{path} holds no edges")
    bad = next((i for i, r in enumerate(rows) if len(r) < 2), None)
    if bad is not None:
        raise ValueError(f"{path}: line {bad + 1} of data needs two node labels, got {rows[bad]}")
    head = rows[0]
    is_orca = (len(head) == 2 and all(t.isdigit() for t in head)
               and int(head[1]) == len(rows) - 1)
    if fmt == "orca" and not is_orca:
        raise ValueError(f"{path} is not in ORCA's format (first line 'n e', then e edges)")
    if fmt == "orca" or (fmt == "auto" and is_orca):
        n = int(head[0])
        pairs = np.array([[int(r[0]), int(r[1])] for r in rows[1:]], dtype=np.int64)
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
            raise ValueError(f"{path}: node ids must lie in 0..{n - 1}")
        return pairs.reshape(-1, 2), n, None, pairs.reshape(-1, 2)
    labels = np.array([[r[0], r[1]] for r in rows])
    if all(t.isdigit() for t in labels.ravel()):
        pairs = labels.astype(np.int64)
        return pairs, int(pairs.max()) + 1, None, pairs
    names, ids = np.unique(labels, return_inverse=True)
    pairs = ids.reshape(-1, 2).astype(np.int64)
    return pairs, len(names), names, pairs


def _load(args: argparse.Namespace):
    graph, n, labels, pairs = read_graph(args.input, args.input_format)
    if not isinstance(graph, np.ndarray):
        return graph, n, labels, pairs
    import torch

    ei = torch.from_numpy(np.ascontiguousarray(graph.T))
    return ei, n, labels, pairs


def _write_labels(output: Path, labels) -> None:
    if labels is None:
        return
    from graphkit.data.io import atomic_write

    path = output.with_name(output.name + ".nodes.tsv")
    with atomic_write(path) as f:
        f.write("node\tlabel\n")
        for i, name in enumerate(labels):
            f.write(f"{i}\t{name}\n")
    print(f"node labels: {path}", file=sys.stderr)


def _orbit_adjacency(args: argparse.Namespace) -> int:
    from graphkit.graphlets import save_orbit_adjacency

    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        graph, n, labels, _ = _load(args)
        out = Path(args.output)
        keys = save_orbit_adjacency(graph, out, num_nodes=n, hops=args.hops,
                                    progress=not args.quiet, backend=args.backend)
    _write_labels(out, labels)
    if not args.quiet:
        print(f"wrote {len(keys)} matrices for {n} nodes to {out}", file=sys.stderr)
    return 0


def _gdv(args: argparse.Namespace) -> int:
    from graphkit.data.io import atomic_write, save_matrix
    from graphkit.graphlets import edge_gdv, gdv

    out = Path(args.output)
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
    _write_labels(out, labels)
    if not args.quiet:
        kind = "edge" if args.edges else "node"
        print(f"wrote {kind} GDVs ({counts.shape[0]} x {counts.shape[1]}) to {out}",
              file=sys.stderr)
    return 0
