"""Semi-supervised node classification: DAGNN, the AIR models and their baselines.

Every model trains on the shared loop (``graphkit.train``) with its per-dataset recipe
(``graphkit.nn.recipes``, the official scripts' hyperparameters). Baselines use PyG's layers
(``GCNConv`` through ``graphkit.nn.models.GCN``, ``APPNP``, ``SGConv``, ``MLP``).

    python benchmarks/node_classification.py --model dagnn gcn --dataset Cora CiteSeer \
        --split public --runs 10 --json benchmarks/results/node_classification.json

Each row reports test accuracy at the selected epoch (mean and std over runs; run ``r`` is
seeded with ``seed + r``; with ``--split random`` it also draws its own split: 20 labels per
class, 500 validation and 1000 test nodes, as in DAGNN's random-split protocol) and the mean
validation accuracy ``val_mean``; ``best_epochs`` lists each run's selected epoch and
``val_blocks`` the validation accuracy averaged over epochs 1-50, 51-100, ... (mean over
runs), to tell an under-trained model from one on a plateau. A model name may carry
replacements of its recipe's settings,
``--model sgc_air sgc_air:weight_decay=5e-3,skip_last_hop=False``: each specification is its
own row (``system``), so official and modified settings run side by side in one run. The
report is rewritten after every row.

``--grid appnp_air:lr=0.01|0.1,weight_decay=3e-3|1e-2`` chooses settings on validation before
the test runs: every combination (in :func:`itertools.product` order) trains ``--grid-runs``
times on seeds ``seed + runs``, ``seed + runs + 1``, ... (not the test runs' seeds; ``--grid-seed
S`` starts them at ``S``, e.g. to keep a new screen off an earlier screen's seeds), the one
with the highest mean validation accuracy wins (the first of equals), and the winner then runs
``--runs`` times on the usual seeds. Candidates are rows with ``role`` ``"selection"``; the
winner's row has ``role`` ``"selected"`` and its settings in ``selected``. With ``--grid-top K``
a second stage cuts the noise of a few-seed screen: the K best candidates by validation run
``--grid-top-runs`` more times on the seeds after the screen's ones (rows with ``role``
``"confirmation"``), and the best of these by mean validation accuracy wins. ``--grid-screen
JSON`` takes the screen's rows (same dataset, grid and ``--grid-runs``) from an earlier report
instead of running them again.
"""

from __future__ import annotations

import statistics
import warnings

import torch
from torch_geometric.transforms import RandomNodeSplit

from graphkit.benchmarking import (
    Row,
    benchmark_parser,
    check_recipe,
    count,
    dataset_name,
    measure,
    print_table,
    report_of,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.nn.recipes import (
    MODELS,
    expand_grid,
    get_recipe,
    parse_system,
    prepare_data,
    run_recipe,
)
from graphkit.train import seed_everything

# Published means and stds (test accuracy, public split), from the specs' sources.
PAPER = [
    {"system": "dagnn", "dataset": "Cora", "mean": 0.844, "std": 0.005, "source": "DAGNN Tab. 2"},
    {"system": "dagnn", "dataset": "CiteSeer", "mean": 0.733, "std": 0.006,
     "source": "DAGNN Tab. 2"},
    {"system": "sgc_air", "dataset": "Cora", "mean": 0.840, "std": 0.006, "source": "AIR repo"},
    {"system": "sgc_air", "dataset": "CiteSeer", "mean": 0.720, "std": 0.005,
     "source": "AIR repo"},
    {"system": "appnp_air", "dataset": "Cora", "mean": 0.838, "std": 0.006, "source": "AIR repo"},
    {"system": "appnp_air", "dataset": "CiteSeer", "mean": 0.734, "std": 0.005,
     "source": "AIR repo"},
    {"system": "gcn_air", "dataset": "Cora", "mean": 0.832, "std": 0.007, "source": "AIR repo"},
    {"system": "gcn_air", "dataset": "CiteSeer", "mean": 0.716, "std": 0.006,
     "source": "AIR repo"},
    {"system": "gcn", "dataset": "Cora", "mean": 0.818, "std": 0.005, "source": "AIR repo"},
    {"system": "appnp", "dataset": "Cora", "mean": 0.833, "std": 0.005, "source": "AIR repo"},
    {"system": "sgc", "dataset": "Cora", "mean": 0.810, "std": 0.002, "source": "AIR repo"},
]


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=10)
    own_report = report_of("benchmarks/node_classification.py")  # --merge-style inputs
    p.add_argument("--model", nargs="+", default=None, metavar="MODEL[:KEY=VALUE,...]",
                   help=f"systems to run: a model of {MODELS}, optionally with recipe settings "
                        "replaced, e.g. sgc_air:weight_decay=5e-3 (default: dagnn, or none "
                        "when --grid is given)")
    p.add_argument("--grid", nargs="+", default=[], metavar="MODEL[:KEY=V1|V2,...]",
                   help="choose these settings on mean validation accuracy over --grid-runs "
                        "seeds, then run the winner --runs times, e.g. "
                        "appnp_air:lr=0.01|0.1,dropout=0.2|0.5")
    p.add_argument("--grid-runs", type=count(1), default=3, help="seeds per grid candidate")
    p.add_argument("--grid-seed", type=count(0), default=None, metavar="S",
                   help="first seed of the screen (default: --seed + --runs); the second stage "
                        "starts after the screen's seeds")
    p.add_argument("--grid-top", type=count(0), default=0, metavar="K",
                   help="second stage: rerun the K best candidates --grid-top-runs times on "
                        "fresh seeds and choose on those (default: off)")
    p.add_argument("--grid-top-runs", type=count(1), default=10, help="seeds per second-stage run")
    p.add_argument("--grid-screen", type=own_report, nargs="+", default=[], metavar="JSON",
                   help="reuse the screen rows of these earlier reports instead of rerunning")
    p.add_argument("--dataset", type=dataset_name, nargs="+", default=["Cora"])
    p.add_argument("--split", choices=("public", "random"), default="public")
    p.add_argument("--epochs", type=count(1), default=None, help="override the recipe's epochs")
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads")
    return p.parse_args()


def evaluate(system: str, dataset: str, args, runs: int | None = None,
             seed: int | None = None) -> Row:
    """Train ``system`` ``runs`` times (default ``--runs``) on seeds ``seed``, ``seed + 1``, ...
    (default ``--seed``) and summarise."""
    runs = args.runs if runs is None else runs
    seed = args.seed if seed is None else seed
    model, overrides = parse_system(system)
    recipe = get_recipe(model, dataset).with_overrides(**overrides)
    raw = load(dataset, args.root)
    # Sparse bag-of-words input pays off on CPU; on a GPU dense matrices are simplest.
    data = prepare_data(recipe, raw, sparse_features=torch.device(args.device).type == "cpu")
    train_overrides = {} if args.epochs is None else {"epochs": args.epochs}
    tests, vals, epoch_ms, epochs, best_epochs, curves = [], [], [], [], [], []
    with measure(args.device) as m:
        for r in range(runs):
            seed_everything(seed + r)
            run_data = data
            if args.split == "random":
                run_data = RandomNodeSplit("random", num_train_per_class=20, num_val=500,
                                           num_test=1000)(data.clone())
            res = run_recipe(recipe, run_data, args.device, **train_overrides)
            tests.append(res.test_acc)
            vals.append(res.val_acc)
            epoch_ms.append(1000 * res.train_seconds / res.epochs_run)
            epochs.append(res.epochs_run)
            best_epochs.append(res.best_epoch)
            curves.append([h["val_acc"] for h in res.history])
            print(f"  {system:<10} {dataset:<10} run {r:2d}: test {res.test_acc:.4f} "
                  f"val {res.val_acc:.4f} epoch {res.best_epoch}/{res.epochs_run}", flush=True)
    return summarize(
        system, dataset, "accuracy", tests, m.seconds, m.peak_rss_mb,
        model=model, split=args.split, val_mean=statistics.fmean(vals),
        train_ms_per_epoch=statistics.fmean(epoch_ms), epochs_mean=statistics.fmean(epochs),
        best_epochs=best_epochs, val_blocks=val_blocks(curves),
        recipe={"model_kwargs": recipe.model_kwargs, **recipe.train_kwargs(),
                "num_hops": recipe.num_hops, "source": recipe.source},
    )


def val_blocks(curves: list[list[float]], size: int = 50) -> list[float]:
    """Validation accuracy averaged over epochs ``1..size``, ``size+1..2*size``, ... of each
    run, then over runs (a block counts the runs that reached it; early stopping may end some
    runs sooner)."""
    blocks = []
    for start in range(0, max(map(len, curves), default=0), size):
        per_run = [statistics.fmean(c[start:start + size]) for c in curves if len(c) > start]
        blocks.append(statistics.fmean(per_run))
    return blocks


def system_name(model: str, settings: dict[str, object]) -> str:
    """``("appnp_air", {"lr": 0.1})`` -> ``"appnp_air:lr=0.1"`` (what :func:`parse_system`
    reads back)."""
    items = ",".join(f"{k}={v}" for k, v in settings.items())
    return f"{model}:{items}" if items else model


def _screen_seed(args) -> int:
    """First seed of the ``--grid`` screen: ``--grid-seed``, else the seed after the test runs'."""
    return args.seed + args.runs if args.grid_seed is None else args.grid_seed


def _screen_row(spec: str, dataset: str, combo: dict, args) -> Row | None:
    """The screen row of ``combo`` in the ``--grid-screen`` reports, if one matches."""
    from graphkit.benchmarking import read_rows

    for row in read_rows(*args.grid_screen) if args.grid_screen else []:
        x = row.extra
        # reports written before --grid-seed existed screened on the default seeds
        first = x.get("first_seed", args.seed + args.runs)
        if (x.get("role") == "selection" and x.get("grid") == spec and row.dataset == dataset
                and x.get("candidate") == combo and row.runs == args.grid_runs
                and first == _screen_seed(args)):
            return row
    return None


def select(spec: str, dataset: str, args, rows: list[Row], paper: list[dict]) -> Row:
    """Choose settings of the ``--grid`` specification ``spec`` on validation and run the
    winner ``--runs`` times (see the module docstring); every row is appended to ``rows``."""
    model, candidates = expand_grid(spec)

    def report() -> None:
        write_report(args.json, "benchmarks/node_classification.py", args, rows, paper)

    scored = []
    for combo in candidates:
        row = _screen_row(spec, dataset, combo, args)
        if row is None:
            row = evaluate(system_name(model, combo), dataset, args, args.grid_runs,
                           _screen_seed(args))
        else:
            print(f"  {row.system} {dataset}: screen row reused from --grid-screen", flush=True)
        row.extra.update(role="selection", candidate=combo, grid=spec,
                         first_seed=_screen_seed(args))
        rows.append(row)
        scored.append((combo, row.extra["val_mean"]))
        report()
    # sorted() is stable: equal validation keeps grid order, so the first of equals wins
    ranked = sorted(scored, key=lambda cv: -cv[1])
    combo, val = ranked[0]
    stage = f"{args.grid_runs} seeds"
    if args.grid_top > 0:
        confirmed = []
        for combo, _ in ranked[:args.grid_top]:
            first = _screen_seed(args) + args.grid_runs
            row = evaluate(system_name(model, combo), dataset, args, args.grid_top_runs, first)
            row.extra.update(role="confirmation", candidate=combo, grid=spec, first_seed=first)
            rows.append(row)
            confirmed.append((combo, row.extra["val_mean"]))
            report()
        combo, val = max(confirmed, key=lambda cv: cv[1])  # max keeps the first of equals
        stage = f"{args.grid_top_runs} seeds of the top {args.grid_top}"
    print(f"  selected for {model} on {dataset}: {combo} (validation {val:.4f} over "
          f"{stage})", flush=True)
    row = evaluate(system_name(model, combo), dataset, args)
    row.extra.update(role="selected", selected=combo, grid=spec, selection_val_mean=val,
                     first_seed=args.seed)
    rows.append(row)
    report()
    return row


def main() -> None:
    args = parse_args()
    print(vars(args))
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    torch.set_num_threads(args.threads)
    if args.quick:
        args.runs, args.epochs = min(args.runs, 2), args.epochs or 50
    if args.model is None:
        args.model = [] if args.grid else ["dagnn"]
    for spec in args.model:
        parse_system(spec)  # fail before the first run on a bad specification
    for spec in args.grid:
        expand_grid(spec)
    for dataset in args.dataset:  # every system builds before the first run
        for spec in args.model:
            model, settings = parse_system(spec)
            check_recipe(model, dataset, settings, f"--model {spec}")
        for spec in args.grid:
            model, candidates = expand_grid(spec)
            for combo in candidates:
                check_recipe(model, dataset, combo, f"--grid {spec}")
    models = {parse_system(s)[0] for s in args.model} | {expand_grid(s)[0] for s in args.grid}
    paper = [p for p in PAPER if p["system"] in models and p["dataset"] in args.dataset]
    rows = []
    for dataset in args.dataset:
        for spec in args.model:
            rows.append(evaluate(spec, dataset, args))
            # Rewritten after every system, so a run cut short keeps the finished rows.
            write_report(args.json, "benchmarks/node_classification.py", args, rows, paper)
        for spec in args.grid:
            select(spec, dataset, args, rows, paper)
    print_table(rows)


if __name__ == "__main__":
    run_main(main)
