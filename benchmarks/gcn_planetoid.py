"""GCN baseline on the Planetoid public splits with graphkit's shared training loop.

graphkit's ``GCN`` (with the paper's input dropout, and without it) and, as a peer in the same
run, PyG's ``torch_geometric.nn.models.GCN`` (no input dropout), all trained by
``graphkit.train.train_node_classifier`` under the protocol of PyG's ``benchmark/citation``
(Kipf and Welling's hyperparameters): row-normalised features, hidden 16, dropout 0.5, Adam with
lr 0.01 and weight decay 5e-4, at most 200 epochs, early stopping by the "pyg_citation" rule
with window 10, test accuracy at the lowest validation loss. Run ``r`` uses seed ``seed + r``.

    python benchmarks/gcn_planetoid.py --runs 10 --json benchmarks/results/gcn_planetoid.json

A dataset whose files are missing (PubMed's ``ind.pubmed.allx`` in the shared data) is skipped
and the reason recorded under ``config.skipped``; when every dataset is skipped the script exits
non-zero.
"""

from __future__ import annotations

import statistics

import torch
import torch_geometric.transforms as T
from torch_geometric.nn.models import GCN as PyGGCN

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    measure,
    print_table,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.nn.models import GCN
from graphkit.train import run_repeated, train_node_classifier

#: Kipf and Welling (ICLR 2017), Table 2: GCN test accuracy on the public splits.
PAPER = {"Cora": 0.815, "CiteSeer": 0.703, "PubMed": 0.790}

SYSTEMS = {
    "GCN (graphkit)": lambda f, c: GCN(f, 16, c, num_layers=2, dropout=0.5, cached=True),
    "GCN (graphkit, input_dropout=0)": lambda f, c: GCN(f, 16, c, dropout=0.5, input_dropout=0.0,
                                                        cached=True),
    "GCN (PyG peer)": lambda f, c: PyGGCN(f, 16, 2, c, dropout=0.5, cached=True),
}


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=10)
    p.add_argument("--datasets", nargs="+", default=list(PAPER), choices=list(PAPER))
    p.add_argument("--epochs", type=count(1), default=200)
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.quick:
        args.runs, args.datasets = min(args.runs, 2), ["Cora"]
    torch.set_num_threads(args.threads)
    print(vars(args))
    rows, skipped = [], {}
    for name in args.datasets:
        try:
            data = T.NormalizeFeatures()(load(name, root=args.root))
        except FileNotFoundError as exc:  # a corrupt file (ValueError) stops the run instead
            skipped[name] = str(exc)
            print(f"skipping {name}: {exc}")
            continue
        for system, build in SYSTEMS.items():

            def one_run(r: int, build=build, data=data):
                model = build(data.num_features, int(data.y.max()) + 1)
                return train_node_classifier(
                    model, data, epochs=args.epochs, lr=0.01, weight_decay=5e-4, patience=10,
                    early_stopping="pyg_citation", device=args.device)

            with measure(args.device) as m:
                results = run_repeated(one_run, args.runs, args.seed)
            epoch_ms = statistics.median(t for r in results for t in r.epoch_times) * 1e3
            rows.append(summarize(
                system, name, "test_acc", [r.test_acc for r in results], m.seconds,
                m.peak_rss_mb, val_acc=statistics.fmean(r.val_acc for r in results),
                epochs_run=statistics.fmean(r.epochs_run for r in results),
                median_epoch_ms=epoch_ms))
    print_table(rows)
    paper = [{"system": "GCN (Kipf and Welling 2017, Table 2)", "dataset": d, "metric": "test_acc",
              "value": v} for d, v in PAPER.items()]
    config = {**vars(args), "skipped": skipped}
    write_report(args.json, "benchmarks/gcn_planetoid.py", config, rows, paper)
    if not rows:  # every dataset skipped: the report holds no result, so the run failed
        raise SystemExit(f"no dataset could be loaded: {'; '.join(skipped.values())}")


if __name__ == "__main__":
    run_main(main)
