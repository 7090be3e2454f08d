"""GRADCO's downstream pipeline: orbit-adjacency PMI embeddings against random-walk PMI ones.

For every one of GRADCO's 20 orbit adjacencies ``A^{(h)}_{i,j}`` (the non-symmetric ones
symmetrised, ``A + A^T``) and for random-walk co-occurrence matrices of windows 1 to 3
(NetMF's ``sum_{r<=T} (D^{-1} A)^r D^{-1}``), build the sparse positive PMI matrix, factorise it
by truncated SVD into ``--dim`` dimensions, and train a logistic regression (one-vs-rest with
top-k prediction for multi-label data) on ``--train-ratio`` of the nodes; report micro- and
macro-F1 on the rest, over ``--runs`` random splits. Paper: Windels, Malod-Dognin, Przulj,
arXiv:2405.14194 (claim: the best orbit adjacencies beat random-walk ones; per-network scores
were not retrieved, so the paper column holds the claim only).

    python benchmarks/graphlet_embeddings.py --dataset airports-europe --runs 5 \\
        --json benchmarks/results/graphlet_embeddings_airports-europe.json
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp

from graphkit.benchmarking import (
    benchmark_parser,
    measure,
    print_table,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.graphlets import (
    KEYS,
    GraphletInputWarning,
    orbit_adjacency,
    pmi_matrix,
    simple_graph,
    svd_embedding,
)

PAPER = [{"claim": "orbit-adjacency PMI embeddings (best matrices) outperform random-walk PMI "
                   "embeddings for node-label prediction on six real networks",
          "source": "arXiv:2405.14194", "values": "not retrieved"}]


def parse_args():
    p = benchmark_parser(__doc__.split("\n")[0], runs=5)
    p.add_argument("--dataset", default=None,
                   choices=["airports-europe", "airports-usa", "airports-brazil", "ppi",
                            "blogcatalog"], help="default airports-europe")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--train-ratio", type=float, default=0.5)
    p.add_argument("--windows", type=int, nargs="+", default=[1, 2, 3])
    args = p.parse_args()
    if args.device.partition(":")[0] != "cpu":  # SciPy counting, SVD and scikit-learn
        p.error(f"--device {args.device}: this pipeline runs on the CPU only (use cpu)")
    # checked here: a bad value would otherwise fail deep in NumPy/scikit-learn after counting
    if not 0.0 < args.train_ratio < 1.0:
        p.error(f"--train-ratio must be in (0, 1), got {args.train_ratio}")
    if args.dim < 1 or min(args.windows) < 1:
        p.error(f"--dim and --windows must be >= 1, got {args.dim} and {args.windows}")
    # an explicit --dataset is kept under --quick too (it only cuts the runs), as graphlets.py
    args.dataset = args.dataset or "airports-europe"
    if args.quick:
        args.runs = min(args.runs, 2)
    return args


def rw_cooccurrence(a: sp.csr_array, window: int) -> sp.csr_array:
    """``sum_{r=1..T} (D^{-1} A)^r D^{-1}`` (NetMF's matrix before the log)."""
    deg = np.asarray(a.sum(axis=1)).ravel().astype(np.float64)
    dinv = sp.diags_array(np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0))
    p = sp.csr_array(dinv @ a)
    power, total = sp.identity(a.shape[0], format="csr"), None
    for _ in range(window):
        power = sp.csr_array(power @ p)
        total = power if total is None else total + power
    return sp.csr_array(total @ dinv)


def labels_matrix(y) -> tuple[np.ndarray, bool]:
    y = y.numpy()
    if y.ndim == 1:
        return y, False
    return y.astype(np.int64), True


def evaluate(x: np.ndarray, y: np.ndarray, multilabel: bool, train_ratio: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    cut = int(train_ratio * len(x))
    tr, te = perm[:cut], perm[cut:]
    x = StandardScaler().fit_transform(x)
    if multilabel:
        clf = OneVsRestClassifier(LogisticRegression(max_iter=500), n_jobs=1).fit(x[tr], y[tr])
        scores = clf.predict_proba(x[te])
        pred = np.zeros_like(y[te])
        for i, k in enumerate(y[te].sum(axis=1)):  # top-k, k = the node's number of labels
            pred[i, np.argsort(-scores[i])[:k]] = 1
    else:
        pred = LogisticRegression(max_iter=1000).fit(x[tr], y[tr]).predict(x[te])
    return (f1_score(y[te], pred, average="micro", zero_division=0),
            f1_score(y[te], pred, average="macro", zero_division=0))


def main() -> None:
    args = parse_args()
    print(vars(args))
    name = args.dataset
    data = load(name, root=args.root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphletInputWarning)
        a = simple_graph(data.edge_index, data.num_nodes)
    y, multilabel = labels_matrix(data.y)
    runs = args.runs
    with measure() as m:
        mats = orbit_adjacency(a)
    print(f"{name}: {a.shape[0]} nodes; 28 orbit adjacencies in {m.seconds:.2f} s")
    inputs = {}
    for h, i, j in KEYS:
        if i > j:
            continue
        mat = mats[(h, i, j)]
        inputs[f"GOPMI A{h}_{i}_{j}"] = mat if i == j else mat + mats[(h, j, i)]
    for t in args.windows:
        inputs[f"RWPMI T={t}"] = rw_cooccurrence(a, t)
    rows, skipped = [], {}
    for system, mat in inputs.items():
        t0 = time.perf_counter()
        if mat.nnz == 0:  # no graphlet of this orbit pair: nothing to embed, said in the report
            skipped[system] = "empty matrix"
            print(f"  {system}: empty matrix, skipped")
            continue
        dim = min(args.dim, a.shape[0] - 2)
        with measure() as meas:
            x = svd_embedding(pmi_matrix(mat), dim, seed=args.seed)
            res = [evaluate(x, y, multilabel, args.train_ratio, args.seed + r) for r in range(runs)]
        micro, macro = [r[0] for r in res], [r[1] for r in res]
        for metric, vals in (("micro_f1", micro), ("macro_f1", macro)):
            rows.append(summarize(system, name, metric, vals, meas.seconds, meas.peak_rss_mb,
                                  nnz=int(mat.nnz), dim=dim))
        print(f"  {system}: micro-F1 {np.mean(micro):.4f}, macro-F1 {np.mean(macro):.4f} "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    print_table(rows)
    macro_rows = [r for r in rows if r.metric == "macro_f1"]
    for label, prefix in (("orbit adjacency", "GOPMI"), ("random walk", "RWPMI")):
        # a graph with no graphlet of any orbit pair leaves no GOPMI row (all skipped)
        best = max((r for r in macro_rows if r.system.startswith(prefix)),
                   key=lambda r: r.mean, default=None)
        print(f"best {label}: " + (f"{best.system} macro-F1 {best.mean:.4f}" if best
                                   else "none (every matrix empty, see 'skipped')"))
    write_report(args.json, "benchmarks/graphlet_embeddings.py", {**vars(args), "skipped": skipped},
                 rows, PAPER)


if __name__ == "__main__":
    run_main(main)
