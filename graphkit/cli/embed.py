"""``graphkit embed fastrp INPUT -o OUT``: node embeddings from the command line.

INPUT is an edge list (whitespace or comma separated, optional weight column, ``#`` comments;
see :mod:`graphkit.data.edgelist`; ORCA's ``n e`` first line is read as ``graphkit graphlets``
reads it), a ``.npz`` SciPy sparse matrix or a saved PyG ``Data`` (``.pt``/``.pth``). OUT ends
in ``.npy``, ``.npz`` or ``.csv``. Integer node ids are row indices as given unless
``--relabel``, which also writes ``OUT``'s stem + ``.labels.tsv`` mapping rows to the original
labels. An id that no edge of an edge list names (row 0 for ids 1..n, ids
added by ``--num-nodes``) keeps an all-zero row, left out of the column standardisation.
Progress goes to stderr; nothing is prompted.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

__all__ = ["add_parser", "load_graph"]

_OUT_FORMATS = (".npy", ".npz", ".csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="compute node embeddings (FastRP) from a graph file")
    esub = p.add_subparsers(dest="embed_method", metavar="METHOD", required=True)
    f = esub.add_parser(
        "fastrp",
        help="FastRP (Chen et al., CIKM 2019); defaults are the official tuned settings",
        description="FastRP embeddings. Defaults: dim 512, weights 0 0 1 6.67, beta -0.64, "
                    "per-power L2 normalisation, column standardisation, float32.",
    )
    f.add_argument("input", metavar="INPUT",
                   help="edge list (.txt/.csv/...), .npz sparse matrix or .pt PyG Data")
    f.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file: .npy, .npz or .csv")
    f.add_argument("--dim", type=int, default=512, help="embedding dimension (default: 512)")
    f.add_argument("--weights", type=float, nargs="+", default=None, metavar="W",
                   help="iteration weights (default: 0 0 1 6.67; GDS: 0 1 1)")
    f.add_argument("--beta", type=float, default=None,
                   help="degree exponent (default: -0.64; GDS normalizationStrength: 0)")
    f.add_argument("--no-normalization", action="store_true",
                   help="no per-power L2 normalisation")
    f.add_argument("--no-standardize", action="store_true",
                   help="no final column standardisation")
    f.add_argument("--input-matrix", choices=["trans", "adj"], default="trans")
    f.add_argument("--projection", choices=["sparse", "gaussian"], default="sparse")
    f.add_argument("--gds", action="store_true",
                   help="Neo4j GDS variant (propagates normalised vectors, no standardisation)")
    f.add_argument("--self-influence", type=float, default=0.0,
                   help="GDS nodeSelfInfluence (with --gds)")
    f.add_argument("--seed", type=int, default=42)
    f.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    f.add_argument("--backend", choices=["auto", "numba", "scipy", "torch"], default="auto")
    f.add_argument("--device", default=None, help="torch device, e.g. cuda (torch backend)")
    f.add_argument("--block-size", type=int, default=None,
                   help="compute this many columns at a time (bounded working memory)")
    f.add_argument("--relabel", action="store_true",
                   help="node tokens are labels: number rows 0..n-1 in sorted order (as "
                        "graphkit graphlets --relabel does), write OUT.labels.tsv")
    f.add_argument("--directed", action="store_true",
                   help="keep edge directions as given (default: make every edge undirected)")
    f.add_argument("--weighted", action="store_true",
                   help="use the weight column / matrix values (default: 0/1 adjacency)")
    f.add_argument("--num-nodes", type=int, default=None,
                   help="number of rows, when larger than the largest id + 1")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    f.set_defaults(func=run_fastrp)


def _log(args: argparse.Namespace, msg: str) -> None:
    if not args.quiet:
        print(f"graphkit embed: {msg}", file=sys.stderr, flush=True)


def load_graph(path: str | Path, relabel: bool = False, directed: bool = False,
               weighted: bool = False, num_nodes: int | None = None):
    """Read INPUT into ``(csr adjacency, labels or None)``; the format is chosen by suffix."""
    adj, labels, _ = _read_graph(path, relabel, directed, weighted, num_nodes)
    return adj, labels


def _read_graph(path: str | Path, relabel: bool, directed: bool, weighted: bool,
                num_nodes: int | None):
    """:func:`load_graph` plus a boolean mask of the ids some edge names (``None`` for a
    matrix or ``Data`` file, where every row is a node, isolated or not)."""
    import numpy as np

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"input {path} is a directory, not a graph file")
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    labels = present = None
    if suffix in (".npz", ".pt", ".pth"):
        if relabel:
            raise ValueError(f"--relabel applies to edge lists, not to {suffix} files")
        from graphkit.data.convert import to_csr

        obj = _load_binary(path, suffix)
        try:
            # to_csr rejects a non-square matrix, ids out of range and NaN/inf weights; a
            # matrix keeps its values here so that its stored zeros can be dropped as no edge
            adj = to_csr(obj, weighted=weighted or suffix == ".npz", dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if suffix == ".npz":
            adj.eliminate_zeros()
        if weighted and adj.nnz and adj.data.min() < 0:
            raise ValueError(f"{path}: edge weights must be non-negative")
        if not weighted:
            adj.data[:] = 1.0
        if not directed:
            adj = adj.maximum(adj.T).tocsr()
        if num_nodes is not None and num_nodes != adj.shape[0]:
            if num_nodes < adj.shape[0]:
                raise ValueError(f"--num-nodes {num_nodes} is smaller than the matrix's "
                                 f"{adj.shape[0]} rows")
            adj.resize((num_nodes, num_nodes))
    else:
        from graphkit.data.edgelist import read_edgelist

        # read_edgelist names a binary file's first undecodable line itself
        edges = read_edgelist(path, relabel=relabel, num_nodes=num_nodes if relabel else None)
        if not relabel:
            edges = _orca_edges(path, edges)  # before --num-nodes: ORCA's n is the node count
            if num_nodes is not None:
                if num_nodes < edges.num_nodes:
                    raise ValueError(f"{path}: node id {edges.num_nodes - 1} is out of range "
                                     f"for num_nodes={num_nodes}")
                edges.num_nodes = num_nodes
        if edges.num_edges == 0:
            raise ValueError(f"{path} holds no edges")
        if num_nodes is None and not relabel:
            from graphkit.cli import sparse_ids

            distinct = sparse_ids(np.concatenate([edges.src, edges.dst]))
            if distinct is not None:
                raise ValueError(f"{path}: node id {edges.num_nodes - 1} would give "
                                 f"{edges.num_nodes} embedding rows for {distinct} distinct "
                                 "nodes; pass --relabel to number the nodes 0..n-1 (the "
                                 "mapping is written beside the output)")
        if not weighted:
            edges.weight = None
        elif edges.weight is not None and edges.weight.min() < 0:
            # checked before symmetrising, whose max(A, A^T) would hide a negative weight
            i = int(np.argmax(edges.weight < 0))
            raise ValueError(f"{path}: edge weights must be non-negative, edge "
                             f"({edges.src[i]}, {edges.dst[i]}) has weight {edges.weight[i]}")
        adj = edges.to_csr(symmetric=not directed)
        labels = edges.labels
        present = np.zeros(adj.shape[0], dtype=bool)
        present[edges.src] = present[edges.dst] = True
    return adj, labels, present


def _orca_edges(path: Path, edges):
    """``edges`` without ORCA's ``n e`` first line where the file is in ORCA's format, as
    ``graphkit graphlets`` reads it: ``e`` lines follow and every id lies below ``n`` (a notice
    unless the file ends in ORCA's ``.in``). Else ``edges`` as read."""
    import warnings

    import numpy as np

    from graphkit.data.edgelist import EdgeList

    if edges.num_edges < 2 or edges.weight is not None:
        return edges
    n, e = int(edges.src[0]), int(edges.dst[0])
    src, dst = edges.src[1:], edges.dst[1:]
    counts_match = e == src.size
    if not counts_match or max(int(src.max()), int(dst.max())) >= n:
        if path.suffix == ".in" or counts_match:
            warnings.warn(f"{path}: its first line '{n} {e}' is not ORCA's 'n e' header for "
                          "the lines that follow (wrong count or an id >= n); read as an edge",
                          stacklevel=2)
        return edges
    if path.suffix != ".in":
        warnings.warn(f"{path}: read as ORCA's format (first line '{n} {e}' taken as the node "
                      "and edge counts, as graphkit graphlets does)", stacklevel=2)
    return EdgeList(np.ascontiguousarray(src), np.ascontiguousarray(dst), None, n)


def _load_binary(path: Path, suffix: str):
    """A SciPy sparse matrix from ``.npz``, a PyG ``Data`` (or its first item) from ``.pt``."""
    import zipfile

    if suffix == ".npz":
        from graphkit.cli import load_sparse_npz

        return load_sparse_npz(path)
    import pickle

    import torch

    try:
        obj = torch.load(path, weights_only=False, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile,
            ValueError, AttributeError, ModuleNotFoundError) as exc:
        raise ValueError(f"{path} is not a saved PyG Data object ({type(exc).__name__}: "
                         f"{exc})") from None
    if isinstance(obj, (tuple, list)) and obj:
        obj = obj[0]
    if not hasattr(obj, "edge_index"):
        raise ValueError(f"{path} does not hold a PyG Data object with edge_index")
    return obj


def _standardize_rows(emb, rows, chunk: int = 64) -> None:
    """In place, standardise each column of ``emb`` over the rows in the mask ``rows`` only,
    ``chunk`` columns at a time (the copies stay small)."""
    from graphkit.embed.fastrp import standardize_columns

    for c0 in range(0, emb.shape[1], chunk):
        block = emb[rows, c0:c0 + chunk]
        standardize_columns(block)
        emb[rows, c0:c0 + chunk] = block


def run_fastrp(args: argparse.Namespace) -> int:
    from graphkit.cli import check_device, check_output, write_label_map

    out = check_output(args.output, _OUT_FORMATS, inputs=[args.input])
    if args.dim <= 0:
        raise ValueError(f"--dim must be positive, got {args.dim}")
    if args.block_size is not None and args.block_size <= 0:
        raise ValueError(f"--block-size must be positive, got {args.block_size}")
    if args.weights is not None and not all(math.isfinite(w) for w in args.weights):
        raise ValueError(f"--weights must be finite numbers, got {args.weights}")
    if not 0 <= args.seed < 2**32:  # NumPy's seed range, checked before the graph is read
        raise ValueError(f"--seed must lie in [0, 2**32), got {args.seed}")
    check_device(args.device)
    # options of the other variant used to be ignored without a word
    if args.gds:
        unused = [flag for flag, given in (
            ("--block-size", args.block_size is not None),
            ("--no-normalization", args.no_normalization),
            ("--no-standardize", args.no_standardize),
            ("--input-matrix", args.input_matrix != "trans"),
            ("--projection", args.projection != "sparse"),
        ) if given]
        if unused:
            raise ValueError(f"{', '.join(unused)}: not an option of the GDS variant "
                             "(--gds); drop it or drop --gds")
    elif args.self_influence != 0.0:
        raise ValueError("--self-influence is an option of the GDS variant: add --gds")
    t0 = time.perf_counter()
    adj, labels, present = _read_graph(args.input, args.relabel, args.directed, args.weighted,
                                       args.num_nodes)
    # ids 1..n give n + 1 rows: row 0 (and any id no edge names) stays empty, and standardising
    # it with the rest would make it -mean/std and shift every column's mean and std
    absent = None if present is None or present.all() else ~present
    _log(args, f"read {args.input}: {adj.shape[0]} nodes, {adj.nnz} stored edges "
               f"({time.perf_counter() - t0:.2f} s)")

    from graphkit.data.io import save_matrix
    from graphkit.embed import fastrp, fastrp_gds

    t1 = time.perf_counter()
    common = dict(dim=args.dim, seed=args.seed, dtype=args.dtype, backend=args.backend,
                  device=args.device, weighted=args.weighted)
    if args.gds:
        emb = fastrp_gds(
            adj, iteration_weights=args.weights or (0.0, 1.0, 1.0),
            normalization_strength=0.0 if args.beta is None else args.beta,
            node_self_influence=args.self_influence, **common,
        )
    else:
        emb = fastrp(
            adj, iteration_weights=args.weights or (0.0, 0.0, 1.0, 6.67),
            beta=-0.64 if args.beta is None else args.beta,
            normalization=not args.no_normalization,
            standardize=not args.no_standardize and absent is None,
            input_matrix=args.input_matrix, projection=args.projection,
            block_size=args.block_size, progress=not args.quiet, **common,
        )
    if hasattr(emb, "detach"):
        emb = emb.detach().cpu().numpy()
    if absent is not None:
        if not args.gds and not args.no_standardize:
            _standardize_rows(emb, ~absent)
        emb[absent] = 0
    _log(args, f"embedded {emb.shape[0]} x {emb.shape[1]} "
               f"({time.perf_counter() - t1:.2f} s)")
    save_matrix(out, emb)
    _log(args, f"wrote {out}")
    said = write_label_map(out.with_name(out.stem + ".labels.tsv"), labels, "row")
    if said:
        _log(args, said)
    return 0
