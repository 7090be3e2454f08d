"""Topological concentration (TC / ATC) as a predictor of per-node link-prediction quality.

Per run ``r`` (seed ``--seed + r``): a random 70/10/20 split of the undirected edges (the
official ``randomsplit``: 10% validation, 20% test; ``graphkit.train.forward.link_split``), then

* ``TC (train-test)``: exact per-node TC of every node's test neighbours in the training graph
  (:func:`~graphkit.extras.graph.topological_concentration.topological_concentration`,
  ``--num-hops``), timed; on the first run also the plain-Python oracle (``--reference``), whose
  max-abs difference to the vectorised TC is a row;
* ``ATC (train-test)``: the random-projection approximation (``--atc-dim`` dimensions), timed
  in the same run; rows: Pearson(ATC, TC) over the nodes with test edges, TC and ATC seconds
  and ATC's speed-up over the vectorised TC (every run) and over the loop (first run);
  ``--atc-sweep`` adds Pearson(ATC, TC) at more dimensions (is a low correlation sampling noise?)
  and ``--atc-limit`` ATC's exact limit (``atc_limit``), correlated with TC and with ATC (is it
  a different target?);
* on a graph with node features (Cora, CiteSeer): the official model,
  :class:`graphkit.nn.models.GCNLinkPredictor` (two ``GCNConv`` layers of ``--hidden`` units,
  as the official ``GCN`` with ``n_layers=1`` builds them, and an MLP predictor on
  ``h_u * h_v``), trained by :func:`graphkit.train.train_link_predictor`: Adam lr 1e-3,
  batches of 1,152 training edges with one uniform random negative each, model selected on
  validation Hits@100 (the official ``track_idx``) against the fixed validation negatives.
  Each test node then ranks every node, its training and validation neighbours excluded (the
  official per-node evaluation; :func:`graphkit.train.rank_candidates`), giving per-node
  Hits@10. Rows: Spearman(TC, Hits@10), Spearman(ATC, Hits@10) and the peer
  Spearman(training degree, Hits@10), over the test nodes.

Featureless graphs (``blogcatalog``, ``ppi``) give the TC/ATC rows only; ``blogcatalog``
(10,312 nodes, 333,983 edges) is the largest graph available here (ogbl-collab is not).

    python benchmarks/topological_concentration.py --dataset Cora --runs 5 \\
        --json benchmarks/results/topological_concentration_cora.json
    python benchmarks/topological_concentration.py --dataset blogcatalog --runs 3 \
        --reference --json benchmarks/results/topological_concentration_blogcatalog_k1.json
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from torch import Tensor

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    links_only,
    measure,
    print_table,
    real,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.extras.graph.topological_concentration import (
    approximate_topological_concentration,
    atc_limit,
    topological_concentration,
    topological_concentration_loop,
)
from graphkit.nn.models import GCNLinkPredictor
from graphkit.train import rank_candidates, run_repeated, train_link_predictor
from graphkit.train.forward import link_split

DATASETS = ("Cora", "CiteSeer", "ppi", "blogcatalog")


def parse_args(argv=None):
    p = benchmark_parser(__doc__.splitlines()[0], runs=5)
    p.add_argument("--dataset", default="Cora", choices=DATASETS)
    p.add_argument("--num-hops", type=count(1), default=1, help="TC/ATC hops K (official: 1)")
    p.add_argument("--atc-dim", type=count(1), default=64,
                   help="ATC random dimensions (official 64)")
    p.add_argument("--atc-sweep", type=count(1), nargs="*", default=[],
                   help="more ATC dimensions, each a Pearson(ATC, TC) row (untimed)")
    p.add_argument("--atc-limit", action="store_true",
                   help="also ATC's exact d -> inf limit (atc_limit): Pearson(limit, TC) and "
                        "Pearson(ATC, limit) rows, which separate ATC's target from its noise")
    p.add_argument("--epochs", type=count(1), default=100)
    p.add_argument("--hidden", type=count(1), default=256)
    p.add_argument("--batch-size", type=count(1), default=1152)
    p.add_argument("--lr", type=real(0, open_low=True), default=1e-3)
    p.add_argument("--eval-every", type=count(1), default=5, help="epochs between validations")
    p.add_argument("--k", type=count(1), default=10, help="per-node Hits@K cut-off")
    p.add_argument("--reference", action="store_true",
                   help="also run the plain-Python TC oracle on the first run")
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden, args.eval_every = 4, 32, 2
        args.runs = min(args.runs, 1)
    return args


def positives(split) -> tuple[Tensor, Tensor]:
    """``(pos, neg)`` ``[2, *]`` edges of one split graph."""
    label = split.edge_label
    return split.edge_label_index[:, label == 1], split.edge_label_index[:, label == 0]


def train_model(data, train_g, val_g, args, device) -> GCNLinkPredictor:
    """The official model trained with the shared link-prediction loop (module docstring)."""
    model = GCNLinkPredictor(data.x.size(1), args.hidden)
    val_pos, val_neg = positives(val_g)
    train_link_predictor(model, data.x, train_g.edge_index, positives(train_g)[0], val_pos,
                         val_neg, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         eval_every=args.eval_every, k=100, device=device)
    return model


def per_node_hits(model, data, train_g, val_g, test_pos, args) -> tuple[Tensor, Tensor]:
    """Per-node Hits@K of every test node (official: known neighbours excluded, self kept)."""
    val_pos = positives(val_g)[0]
    nodes, ranking = rank_candidates(model, data.x, train_g.edge_index, test_pos,
                                     torch.cat([train_g.edge_index, val_pos], dim=1), k=args.k)
    return nodes, ranking.hits


def one_run(data, args, device, seed: int) -> dict:
    train_g, val_g, test_g = link_split(data, split=seed, seed_step=1, num_val=0.1, num_test=0.2)
    train_pos = positives(train_g)[0]
    test_pos = positives(test_g)[0]
    n, out = data.num_nodes, {}
    t0 = time.perf_counter()
    tc = topological_concentration(train_pos, test_pos, n, args.num_hops)
    out["tc_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    atc = approximate_topological_concentration(train_pos, test_pos, n, args.num_hops,
                                                dim=args.atc_dim)
    out["atc_seconds"] = time.perf_counter() - t0
    test_nodes = torch.unique(test_pos)

    def pearson(approx: Tensor) -> float:
        return float(pearsonr(approx[test_nodes].double().numpy(), tc[test_nodes].numpy())[0])
    out["pearson_atc_tc"] = pearson(atc)
    for dim in args.atc_sweep:
        out[f"pearson_atc{dim}_tc"] = pearson(approximate_topological_concentration(
            train_pos, test_pos, n, args.num_hops, dim=dim))
    if args.atc_limit:
        limit = atc_limit(train_pos, test_pos, n, args.num_hops)
        out["pearson_limit_tc"] = pearson(limit)
        out["pearson_atc_limit"] = float(pearsonr(atc[test_nodes].double().numpy(),
                                                  limit[test_nodes].numpy())[0])
    if args.reference and seed == args.seed:
        t0 = time.perf_counter()
        ref = topological_concentration_loop(train_pos, test_pos, n, args.num_hops)
        out["reference_seconds"] = time.perf_counter() - t0
        out["max_abs_error"] = float((ref - tc).abs().max())
    if getattr(data, "x", None) is not None:
        model = train_model(data, train_g, val_g, args, device)
        nodes, hits = per_node_hits(model, data, train_g, val_g, test_pos, args)
        deg = torch.bincount(train_pos.flatten(), minlength=n).double()
        for name, values in (("tc", tc), ("atc", atc), ("degree", deg)):
            out[f"spearman_{name}"] = float(spearmanr(values[nodes].double().numpy(),
                                                      hits.numpy())[0])
        out["mean_hits"] = float(hits.mean())
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(vars(args), file=sys.stderr)
    data = links_only(load(args.dataset, root=args.root), args.dataset)
    if args.k > data.num_nodes:  # per_node_ranking rejected it only after the training
        raise ValueError(f"--k {args.k} exceeds the {data.num_nodes} candidate nodes of "
                         f"{args.dataset}")
    device = torch.device(args.device)
    with measure(args.device) as m:
        results = run_repeated(lambda r: one_run(data, args, device, args.seed + r),
                               args.runs, args.seed)
    ds, k = args.dataset, args.k

    def col(key: str) -> list[float]:
        return [r[key] for r in results if key in r]

    rows = []
    if col("spearman_tc"):
        for system, key in (("TC (train-test)", "spearman_tc"),
                            ("ATC (train-test)", "spearman_atc"),
                            ("training degree (peer)", "spearman_degree")):
            rows.append(summarize(system, ds, f"spearman_hits@{k}", col(key), m.seconds,
                                  m.peak_rss_mb))
        rows.append(summarize("GCN + MLP predictor", ds, f"per_node_hits@{k}", col("mean_hits"),
                              m.seconds, m.peak_rss_mb))
    tc_s, atc_s, loop_s = col("tc_seconds"), col("atc_seconds"), col("reference_seconds")
    versus_loop = {}
    if loop_s:
        rows.append(summarize("TC vectorised vs loop", ds, "max_abs_error", col("max_abs_error"),
                              m.seconds, m.peak_rss_mb, reference_seconds=loop_s[0]))
        rows.append(summarize("TC loop (oracle)", ds, "seconds", loop_s, loop_s[0],
                              m.peak_rss_mb))
        versus_loop["speedup_vs_loop"] = loop_s[0] / atc_s[0]  # the oracle ran in run 0 only
    rows.append(summarize("ATC vs TC (train-test)", ds, "pearson", col("pearson_atc_tc"),
                          m.seconds, m.peak_rss_mb, atc_dim=args.atc_dim))
    for dim in args.atc_sweep:
        rows.append(summarize(f"ATC d={dim} vs TC (train-test)", ds, "pearson",
                              col(f"pearson_atc{dim}_tc"), m.seconds, m.peak_rss_mb, atc_dim=dim))
    if col("pearson_limit_tc"):
        rows.append(summarize("ATC limit (d -> inf) vs TC", ds, "pearson",
                              col("pearson_limit_tc"), m.seconds, m.peak_rss_mb))
        rows.append(summarize("ATC vs ATC limit", ds, "pearson", col("pearson_atc_limit"),
                              m.seconds, m.peak_rss_mb, atc_dim=args.atc_dim))
    rows.append(summarize("TC exact (vectorised)", ds, "seconds", tc_s, sum(tc_s), m.peak_rss_mb))
    rows.append(summarize("ATC", ds, "seconds", atc_s, sum(atc_s), m.peak_rss_mb,
                          speedup_vs_tc=float(np.mean(tc_s) / np.mean(atc_s)),
                          speedup_per_run=[t / a for t, a in zip(tc_s, atc_s)], **versus_loop))
    print_table(rows)
    write_report(args.json, "benchmarks/topological_concentration.py", args, rows)


if __name__ == "__main__":
    run_main(main)
