"""OGB node property prediction with DAGNN and SGC+AIR (ogbn-arxiv, ogbn-products).

In the style of OGB's examples (``examples/nodeproppred/arxiv/gnn.py``): the arguments are
printed, each run is logged, and the final table reports the test accuracy at the epoch of best
validation accuracy (mean and std over runs), scored with OGB's ``Evaluator``.

    python benchmarks/ogb/node_property.py --dataset ogbn-arxiv --model dagnn --runs 10
    python benchmarks/ogb/node_property.py --dataset ogbn-arxiv --model sgc_air --runs 10
    python benchmarks/ogb/node_property.py --dataset ogbn-products --model sgc_air --runs 10

Hyperparameters are the official scripts' (``graphkit.nn.recipes``). Training uses the shared
full-batch loop; for SGC+AIR that means one step per epoch over all training rows instead of
the official mini-batches of 50,000 rows. A dataset written with ``ogb.io.DatasetSaver`` runs
with ``--meta-dict meta.json --recipe ogbn-arxiv --evaluator ogbn-arxiv``.
"""

from __future__ import annotations

import json
import warnings

import torch

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
from graphkit.metrics import Evaluator
from graphkit.nn.recipes import get_recipe, prepare_data, run_recipe
from graphkit.train import Logger, seed_everything

PAPER = [
    {"system": "dagnn", "dataset": "ogbn-arxiv", "mean": 0.7209, "std": 0.0025,
     "source": "DeeperGNN README"},
    {"system": "sgc_air", "dataset": "ogbn-arxiv", "mean": 0.7267, "std": 0.0028,
     "source": "AIR repo"},
    {"system": "sgc_air", "dataset": "ogbn-products", "mean": 0.8144, "std": 0.0016,
     "source": "AIR repo"},
]


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=10)
    p.add_argument("--dataset", default="ogbn-arxiv")
    p.add_argument("--model", choices=("dagnn", "sgc_air"), default="dagnn")
    p.add_argument("--epochs", type=count(1), default=None, help="override the recipe's epochs")
    p.add_argument("--hidden", type=count(1), default=None, help="override the recipe's width")
    p.add_argument("--recipe", default=None,
                   help="dataset whose recipe to use (default: --dataset)")
    p.add_argument("--evaluator", default=None,
                   help="OGB Evaluator name (default: --dataset)")
    p.add_argument("--meta-dict", default=None, metavar="JSON",
                   help="meta_dict of a DatasetSaver dataset, as a JSON file")
    p.add_argument("--eval-batch-size", type=count(1), default=500_000)
    p.add_argument("--log-steps", type=count(0), default=0, help="print every N epochs (0: never)")
    p.add_argument("--threads", type=count(1), default=None, help="torch CPU threads")
    args = p.parse_args()
    if args.meta_dict:  # a bare JSONDecodeError named no file
        try:
            with open(args.meta_dict) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            p.error(f"--meta-dict {args.meta_dict}: {e}")
        if not isinstance(meta, dict):
            p.error(f"--meta-dict {args.meta_dict} must hold a JSON object (DatasetSaver's "
                    "meta_dict)")
    return args


def main() -> None:
    args = parse_args()
    print(args)
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = get_recipe(args.model, args.recipe or args.dataset)
    if args.hidden is not None:
        recipe = recipe.with_model_kwargs(hidden_channels=args.hidden)
    overrides = {"restore_best": True, "verbose": args.log_steps}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.quick:
        args.runs, overrides["epochs"] = min(args.runs, 2), min(overrides.get("epochs", 5), 5)

    kwargs = {}
    if args.meta_dict:
        with open(args.meta_dict) as f:
            kwargs["meta_dict"] = json.load(f)
    data = prepare_data(recipe, load(args.dataset, args.root, **kwargs))
    evaluator = Evaluator(args.evaluator or args.dataset)
    logger = Logger(args.runs, args)
    tests = []

    with measure(args.device) as m:
        for run in range(args.runs):
            seed_everything(args.seed + run)
            res = run_recipe(recipe, data, args.device, eval_batch_size=args.eval_batch_size,
                             **overrides)
            for h in res.history:
                logger.add_result(run, (h["train_acc"], h["val_acc"], h["test_acc"]))
            scores = final_scores(res, data, evaluator, args.eval_batch_size)
            print(f"Run {run + 1:02d}: best epoch {res.best_epoch}, "
                  + ", ".join(f"{k} {100 * v:.2f}" for k, v in scores.items()), flush=True)
            tests.append(scores["test"])
    logger.print_statistics()
    stats = [logger.run_statistics(r) for r in range(args.runs)]
    rows = [
        summarize(args.model, args.dataset, "accuracy", tests, m.seconds, m.peak_rss_mb,
                  val_mean=sum(s["highest_valid"] for s in stats) / args.runs),
    ]
    print_table(rows)
    paper = [p for p in PAPER if p["system"] == args.model and p["dataset"] == args.dataset]
    write_report(args.json, "benchmarks/ogb/node_property.py", args, rows, paper)


@torch.no_grad()
def final_scores(res, data, evaluator: Evaluator, eval_batch_size: int) -> dict[str, float]:
    """OGB Evaluator accuracies of the restored best-validation model."""
    model = res.model.eval()
    hops = getattr(data, "hops", None)
    if hops is not None:
        out = torch.cat([model(hops[i:i + eval_batch_size].to(next(model.parameters()).device))
                         for i in range(0, data.num_nodes, eval_batch_size)])
    else:
        device = next(model.parameters()).device
        out = model(data.x.to(device), data.edge_index.to(device))
    pred = out.argmax(dim=-1, keepdim=True).cpu()
    y = data.y.view(-1, 1)
    return {
        key: evaluator.eval({"y_true": y[mask], "y_pred": pred[mask]})["acc"]
        for key, mask in (("train", data.train_mask), ("valid", data.val_mask),
                          ("test", data.test_mask))
    }


if __name__ == "__main__":
    run_main(main)
