"""FastRP: quality and speed against a plain SciPy FastRP, PecanPy node2vec and PyG Node2Vec.

All systems run in the same run, one after the other, on the same machine (PecanPy in an
interpreter of its own, see below):

* ``graphkit-fastrp``: :func:`graphkit.embed.fastrp` with its defaults (the official tuned
  BlogCatalog settings: d 512, weights 0 0 1 6.67, beta -0.64, per-power L2, standardise;
  float32, Numba backend), also float64 and the torch backend for timing;
* ``plain-scipy-fastrp``: the same formula written plainly below (scikit-learn's
  ``SparseRandomProjection``, SciPy products in float64, ``normalize`` and ``scale``), as the
  official ``fastrp.py`` computes it; its output is compared with graphkit's for the same
  projection matrix;
* ``pecanpy-node2vec``: PecanPy (PyPI) node2vec, p = q = 1, 10 walks of length 80, window 10,
  d 128, 2 workers, end to end from the CSR matrix. Its dependencies hold numpy < 2, so it
  runs in ``--peer-python`` (default: ``make pecanpy-venv``'s ``/tmp/pecanpy-venv/bin/python``
  when it exists) through ``fastrp_peer_worker.py``, which times the embedding after PecanPy's
  Numba warm-up and hands it back as ``.npy`` for the same linear probe; ``--peer-python`` set
  to this interpreter runs it in this process; a peer that cannot start is a ``skipped`` row;
* ``pyg-node2vec``: PyG's ``Node2Vec`` when its random-walk backend (pyg-lib or torch-cluster)
  is installed, else a row recording why it was skipped.

Quality: Micro/Macro-F1 of one-vs-rest logistic regression with the top-k multi-label protocol
(:func:`graphkit.metrics.linear_probe`) at train ratios 10%..90%, 5 shuffles; C 0.1 for FastRP
(the official notebook's tuned value) and C 1.0 for node2vec (the notebook's node2vec setting).
``--dataset synthetic`` embeds a random graph with ``--edges`` undirected edges (time, peak RSS).

    python benchmarks/fastrp.py --dataset blogcatalog \
        --json benchmarks/results/fastrp_blogcatalog.json
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fastrp_peer_worker as peer_worker  # PecanPy's side: NumPy, SciPy and PecanPy only
import numpy as np
import scipy.sparse as sp

from graphkit.benchmarking import (
    Row,
    benchmark_parser,
    count,
    measure,
    print_table,
    rss_mb,
    run_main,
    summarize,
    write_report,
)
from graphkit.embed import fastrp

# PecanPy needs numpy < 2: by default it runs from `make pecanpy-venv`'s interpreter when present
WORKER = Path(__file__).with_name("fastrp_peer_worker.py")
DEFAULT_PEER = os.environ.get("FASTRP_PEER_PYTHON", "/tmp/pecanpy-venv/bin/python")

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
WEIGHTS = (0.0, 0.0, 1.0, 6.67)
BETA = -0.64
PAPER = [  # official FastRP notebook (GTmac/FastRP), BlogCatalog, tuned FastRP, C 0.1
    {"system": "FastRP (official notebook)", "dataset": "blogcatalog", "metric": m,
     "value": v, "source": "GTmac/FastRP BlogCatalog notebook"}
    for m, v in [("micro_f1@0.1", 0.372), ("macro_f1@0.1", 0.228), ("micro_f1@0.5", 0.412),
                 ("macro_f1@0.5", 0.275), ("micro_f1@0.9", 0.426), ("macro_f1@0.9", 0.280),
                 ("embed_seconds", 1.17)]
] + [
    {"system": "node2vec p=q=0.25 (official notebook)", "dataset": "blogcatalog",
     "metric": m, "value": v, "source": "GTmac/FastRP BlogCatalog notebook"}
    for m, v in [("micro_f1@0.1", 0.359), ("macro_f1@0.1", 0.212)]
]


# ----------------------------------------------------------------------------- systems
def plain_fastrp(adj: sp.csr_matrix, dim: int = 512, weights=WEIGHTS, beta: float = BETA,
                 seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """FastRP as the official code computes it, with dense float64 SciPy products.

    Returns ``(embedding, R)`` with ``R`` the ``[n, dim]`` projection matrix used.
    """
    from sklearn.preprocessing import normalize, scale
    from sklearn.random_projection import SparseRandomProjection

    n = adj.shape[0]
    deg = np.asarray(adj.sum(axis=1)).ravel()
    m = sp.diags(1.0 / deg) @ adj
    t = SparseRandomProjection(n_components=dim, random_state=seed).fit(m)
    r = t.components_.T.tocsr()
    cur = (m @ (sp.diags(deg ** beta) @ r)).toarray()
    u = np.zeros((n, dim))
    for i, w in enumerate(weights):
        if i:
            cur = m @ cur
        if w:
            u += w * normalize(cur)
    return scale(u), r


class PeerUnavailable(RuntimeError):
    """The PecanPy peer interpreter is missing, does not start or fails (the row's reason)."""


def run_peer(python: str, adj: sp.csr_matrix, seed: int, workers: int = 2,
             env: dict | None = None) -> tuple[np.ndarray, dict]:
    """PecanPy node2vec through ``fastrp_peer_worker.py`` in the interpreter ``python``.

    Returns the embedding and the worker's result: seconds and CPU seconds of the embedding
    (timed there, after its Numba warm-up), its peak RSS and RSS before embedding, versions.
    """
    if not Path(python).exists():
        raise PeerUnavailable(f"peer interpreter {python} not found (make pecanpy-venv)")
    with tempfile.TemporaryDirectory() as tmp:
        adj_path, out = Path(tmp) / "adj.npz", Path(tmp) / "emb.npy"
        sp.save_npz(adj_path, sp.csr_matrix(adj))
        try:
            proc = subprocess.run([python, str(WORKER), str(adj_path), str(out), str(seed),
                                   str(workers)], capture_output=True, text=True,
                                  env={**os.environ, **(env or {})})
        except OSError as exc:
            raise PeerUnavailable(f"peer interpreter {python} cannot be started: {exc}") from exc
        if proc.returncode != 0:  # the error's last line, e.g. "ModuleNotFoundError: ..."
            lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
            raise PeerUnavailable(f"{python}: {lines[-1]}")
        return np.load(out), json.loads(proc.stdout.strip().splitlines()[-1])


def pyg_node2vec(adj: sp.csr_matrix, seed: int, epochs: int = 1) -> np.ndarray:
    """PyG ``Node2Vec`` (p = q = 1, 10 walks of length 80, context 10, d 128)."""
    import torch
    from torch_geometric.nn import Node2Vec

    torch.manual_seed(seed)
    coo = adj.tocoo()
    ei = torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    model = Node2Vec(ei, embedding_dim=128, walk_length=80, context_size=10,
                     walks_per_node=10, num_negative_samples=1, p=1.0, q=1.0, sparse=True,
                     num_nodes=adj.shape[0])
    loader = model.loader(batch_size=128, shuffle=True)
    opt = torch.optim.SparseAdam(list(model.parameters()), lr=0.01)
    model.train()
    for _ in range(epochs):
        for pos, neg in loader:
            opt.zero_grad()
            loss = model.loss(pos, neg)
            loss.backward()
            opt.step()
    return model.embedding.weight.detach().numpy()


# ----------------------------------------------------------------------------- data
def load_dataset(name: str, root: str | None) -> tuple[sp.csr_matrix, np.ndarray]:
    from graphkit.data import load
    from graphkit.data.convert import to_csr

    data = load(name, root=root)
    adj = to_csr(data, dtype=np.float64)
    return adj, data.y.numpy().astype(np.int64)


def synthetic_graph(num_nodes: int, num_edges: int, seed: int) -> sp.csr_matrix:
    """A uniformly random undirected graph (both directions stored), no isolated nodes."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, num_nodes, size=num_edges, dtype=np.int64)
    dst = rng.integers(0, num_nodes, size=num_edges, dtype=np.int64)
    ring = np.arange(num_nodes)  # a cycle keeps every node connected
    src = np.concatenate([src, ring])
    dst = np.concatenate([dst, (ring + 1) % num_nodes])
    a = sp.coo_matrix((np.ones(src.size, dtype=np.float32), (src, dst)),
                      shape=(num_nodes, num_nodes)).tocsr()
    a = (a + a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    a.data[:] = 1.0
    return a


# ----------------------------------------------------------------------------- helpers
def timed(fn, device: str = "cpu"):
    """``(result, wall seconds, peak RSS MiB, RSS increase MiB, CPU seconds of all threads)``.

    The CPU time tells a slow wall time on a shared, oversubscribed machine from a slow code path.
    """
    gc.collect()
    before = rss_mb()
    cpu0 = time.process_time()
    with measure(device) as m:
        out = fn()
    return out, m.seconds, m.peak_rss_mb, m.peak_rss_mb - before, time.process_time() - cpu0


def f1_rows(system: str, dataset: str, emb: np.ndarray, y: np.ndarray, C: float,
            shuffles: int, seed: int, ratios, seconds: float, rss: float,
            n_jobs: int | None = None) -> list[Row]:
    from graphkit.metrics import linear_probe

    rows = []
    for res in linear_probe(emb, y, train_ratios=ratios, num_shuffles=shuffles, C=C,
                            seed=seed, n_jobs=n_jobs):
        r = res["train_ratio"]
        for key in ("micro_f1", "macro_f1"):
            rows.append(Row(system, dataset, f"{key}@{r:g}", res[key], res[f"{key}_std"],
                            shuffles, seconds, rss, {"C": C}))
    return rows


def speed_rows(args, dataset: str, adj: sp.csr_matrix) -> tuple[list[Row], dict]:
    """Interleaved timing of graphkit and the plain SciPy FastRP, ``args.runs`` times."""
    small = adj[:200, :200] + sp.eye(200, format="csr")  # warm-up: imports, Numba cache load
    fastrp(small, dim=8)
    plain_fastrp(small, dim=8)
    times: dict[str, list[float]] = {k: [] for k in
                                      ("plain", "numba32", "numba64", "torch32", "scipy32")}
    rss: dict[str, float] = {k: 0.0 for k in times}
    grow: dict[str, float] = {k: 0.0 for k in times}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    outs = {}
    configs = {
        "numba32": dict(backend="numba"),
        "numba64": dict(backend="numba", dtype="float64"),
        "torch32": dict(backend="torch", device=args.device),
        "scipy32": dict(backend="scipy"),
    }
    for _ in range(args.runs):
        (emb, r), s, peak, inc, c = timed(lambda: plain_fastrp(adj, seed=42))
        times["plain"].append(s)
        cpu["plain"].append(c)
        rss["plain"], grow["plain"] = max(rss["plain"], peak), max(grow["plain"], inc)
        outs["plain"], outs["R"] = emb, r
        for key, kw in configs.items():
            e, s, peak, inc, c = timed(lambda kw=kw: fastrp(adj, **kw), args.device)
            times[key].append(s)
            cpu[key].append(c)
            rss[key], grow[key] = max(rss[key], peak), max(grow[key], inc)
            outs[key] = e
    ref = fastrp(adj, projection=outs["R"], dtype="float64")
    diff = float(np.abs(ref - outs["plain"]).max())
    plain_mean = statistics.fmean(times["plain"])
    names = {"plain": "plain-scipy-fastrp (float64)", "numba32": "graphkit-fastrp",
             "numba64": "graphkit-fastrp (float64)", "torch32": f"graphkit-fastrp (torch "
             f"{args.device})", "scipy32": "graphkit-fastrp (scipy backend)"}
    rows = []
    for key, ts in times.items():
        ratios = [p / t for p, t in zip(times["plain"], ts)]
        rows.append(summarize(names[key], dataset, "embed_seconds", ts, sum(ts), rss[key],
                              rss_increase_mb=grow[key], cpu_seconds=statistics.fmean(cpu[key]),
                              speedup_vs_plain=plain_mean / statistics.fmean(ts),
                              speedup_vs_plain_per_run_median=statistics.median(ratios)))
    rows.append(Row("graphkit-fastrp (float64) vs plain", dataset, "max_abs_diff_same_R", diff,
                    0.0, 1, 0.0, 0.0, {}))
    return rows, {"numba32": outs["numba32"]}


def pecanpy_rows(args, dataset: str, adj: sp.csr_matrix, y: np.ndarray, graphkit_seconds: float,
                 ratios) -> list[Row]:
    """PecanPy node2vec's time and F1 rows, or one ``skipped`` row saying why it did not run.

    In this process when ``args.peer_python`` is this interpreter (timed here after the Numba
    warm-up), else through ``fastrp_peer_worker.py`` in that interpreter, which times itself.
    """
    here = os.path.abspath(args.peer_python) == os.path.abspath(sys.executable)
    try:
        if here:
            peer_worker.pecanpy_node2vec(peer_worker.warm_up_graph(), args.seed)  # compile
            emb, s, peak, inc, c = timed(lambda: peer_worker.pecanpy_node2vec(adj, args.seed))
            info = {}
        else:
            emb, info = run_peer(args.peer_python, adj, args.seed)
            s, peak, c = info.pop("seconds"), info.pop("peak_rss_mb"), info.pop("cpu_seconds")
            inc = peak - info.pop("base_rss_mb")
    except (ImportError, PeerUnavailable) as exc:
        reason = str(exc) if isinstance(exc, PeerUnavailable) else f"{type(exc).__name__}: {exc}"
        print(f"pecanpy-node2vec skipped: {reason}", file=sys.stderr)
        return [Row("pecanpy-node2vec", dataset, "skipped", 0.0, 0.0, 0, 0.0, 0.0,
                    {"reason": reason, "peer_python": args.peer_python})]
    rows = [summarize("pecanpy-node2vec", dataset, "embed_seconds", [s], s, peak,
                      rss_increase_mb=inc, cpu_seconds=c, speedup_vs_graphkit=s / graphkit_seconds,
                      peer_python=args.peer_python, in_process=here, **info)]
    return rows + f1_rows("pecanpy-node2vec", dataset, emb, y, 1.0, args.shuffles, args.seed,
                          ratios, s, peak, args.n_jobs)


# ----------------------------------------------------------------------------- main
def main() -> None:
    p = benchmark_parser(__doc__.splitlines()[0], runs=5, helps={
        "runs": "timed repetitions of every embedding (interleaved)",
        "seed": "seed of the node2vec peers, the synthetic graph and the classification "
                "shuffles (the FastRP projections keep their default seed, 42)"})
    p.add_argument("--dataset", choices=["blogcatalog", "ppi", "synthetic"],
                   default="blogcatalog")
    p.add_argument("--shuffles", type=count(1), default=5, help="linear-probe shuffles per ratio")
    p.add_argument("--ratios", type=float, nargs="+", default=None,
                   help="linear-probe train ratios (default: 0.1 .. 0.9; --quick: 0.1 0.5 0.9)")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel one-vs-rest fits")
    p.add_argument("--edges", type=count(1), default=10_000_000,
                   help="synthetic: undirected edges (default: 10M)")
    p.add_argument("--nodes", type=count(1), default=1_000_000, help="synthetic: nodes")
    p.add_argument("--block-size", type=count(1), default=128,
                   help="synthetic: also run streamed over blocks of this many columns")
    p.add_argument("--skip-node2vec", action="store_true", help="no PecanPy / PyG rows")
    p.add_argument("--peer-python", default=None, metavar="PATH",
                   help="interpreter with PecanPy (numpy < 2) that runs the node2vec row "
                        "(default: $FASTRP_PEER_PYTHON or /tmp/pecanpy-venv/bin/python, made by "
                        "`make pecanpy-venv`, when it exists; else this interpreter, in process)")
    args = p.parse_args()
    if args.peer_python is None:  # resolved here, so the report's config says which one ran
        args.peer_python = DEFAULT_PEER if Path(DEFAULT_PEER).exists() else sys.executable
    # an explicit --ratios holds under --quick too, and the config records the ratios used
    if args.ratios is None:
        args.ratios = [0.1, 0.5, 0.9] if args.quick else list(RATIOS)
    if any(not 0.0 < r < 1.0 for r in args.ratios):  # before minutes of embedding, not after
        p.error(f"--ratios must be fractions in (0, 1), got {args.ratios}")
    if args.quick:
        args.runs, args.shuffles = min(args.runs, 2), 1
        args.edges, args.nodes = min(args.edges, 200_000), min(args.nodes, 20_000)
    print(json.dumps(vars(args)), file=sys.stderr)
    config = dict(vars(args), python=platform.python_version(), machine=platform.machine())
    ratios = tuple(args.ratios)
    rows: list[Row] = []

    if args.dataset == "synthetic":
        t0 = time.perf_counter()
        adj = synthetic_graph(args.nodes, args.edges, args.seed)
        print(f"synthetic graph: {adj.shape[0]} nodes, {adj.nnz // 2} undirected edges "
              f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        name = f"synthetic-{adj.shape[0]}n-{adj.nnz // 2}e"
        fastrp(adj[:50, :50], dim=8)
        for label, kw in (("graphkit-fastrp", {}),
                          (f"graphkit-fastrp (block {args.block_size})",
                           {"block_size": args.block_size})):
            emb, s, peak, inc, c = timed(lambda kw=kw: fastrp(adj, **kw))
            assert np.isfinite(emb).all()
            rows.append(summarize(label, name, "embed_seconds", [s], s, peak,
                                  rss_increase_mb=inc, cpu_seconds=c, nodes=adj.shape[0],
                                  undirected_edges=adj.nnz // 2,
                                  embedding_mb=emb.nbytes / 2**20))
            print_table(rows[-1:], file=sys.stderr)
            write_report(args.json, "benchmarks/fastrp.py", config, rows, PAPER)  # so far
            del emb
            gc.collect()
        print_table(rows)
        write_report(args.json, "benchmarks/fastrp.py", config, rows, PAPER)
        return

    adj, y = load_dataset(args.dataset, args.root)
    print(f"{args.dataset}: {adj.shape[0]} nodes, {adj.nnz} stored edges, {y.shape[1]} labels",
          file=sys.stderr)
    speed, outs = speed_rows(args, args.dataset, adj)
    rows += speed
    print_table(speed, file=sys.stderr)
    gk = next(r for r in speed if r.system == "graphkit-fastrp")
    rows += f1_rows("graphkit-fastrp", args.dataset, outs["numba32"], y, 0.1, args.shuffles,
                    args.seed, ratios, gk.mean, gk.peak_rss_mb, args.n_jobs)
    print_table(rows[-2 * len(ratios):], file=sys.stderr)
    write_report(args.json, "benchmarks/fastrp.py", config, rows, PAPER)  # results so far

    if not args.skip_node2vec:
        rows += pecanpy_rows(args, args.dataset, adj, y, gk.mean, ratios)
        print_table(rows[-(2 * len(ratios) + 1):], file=sys.stderr)
        write_report(args.json, "benchmarks/fastrp.py", config, rows, PAPER)
        try:
            emb, s, peak, _, c = timed(lambda: pyg_node2vec(adj, args.seed))
            # one row name whether it ran or was skipped; the epoch count is a field
            rows.append(summarize("pyg-node2vec", args.dataset, "embed_seconds", [s],
                                  s, peak, speedup_vs_graphkit=s / gk.mean, epochs=1))
            rows += f1_rows("pyg-node2vec", args.dataset, emb, y, 1.0, args.shuffles,
                            args.seed, ratios, s, peak, args.n_jobs)
        except ImportError as exc:
            rows.append(Row("pyg-node2vec", args.dataset, "skipped", 0.0, 0.0, 0,
                            0.0, 0.0, {"reason": f"{type(exc).__name__}: {exc}"}))
            print(f"pyg-node2vec skipped: {exc}", file=sys.stderr)
    print_table(rows)
    write_report(args.json, "benchmarks/fastrp.py", config, rows, PAPER)


if __name__ == "__main__":
    run_main(main)
