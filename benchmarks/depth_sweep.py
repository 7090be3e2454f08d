"""Accuracy against depth on Cora: DAGNN, SGC+AIR, plain SGC, GCN and GCN+AIR, with MAD.

Propagation depth: DAGNN's K, the hops of SGC+AIR and SGC, the layers of GCN and GCN+AIR
(coupled).
Transformation depth: the MLP layers of SGC+AIR (hidden 64, dropout 0.5), with and without the
initial residual. Every other setting is the model's Cora recipe (``graphkit.nn.recipes``).
Each row also reports the Mean Average Distance (MAD, cosine) of the test nodes' output
representations: values near 0 mean over-smoothed.

    python benchmarks/depth_sweep.py --runs 5 --json benchmarks/results/depth_sweep.json \
        --plot benchmarks/results/depth_sweep.png

Parts can run in separate processes (``--models``) and be joined with ``--merge A.json B.json``.

``--grid dagnn:weight_decay=5e-3|5e-4,dropout=0.8|0.5`` first tries every combination at the
model's deepest depth (``--grid-depths all``: at every depth of its sweep; ``--grid-runs``
seeds, starting at ``--seed + --runs`` so that the sweep's seeds are not reused), keeps the one
with the highest mean validation accuracy and sweeps every depth with it; the candidates are
rows with ``depth_kind`` ``"selection"``. ``--grid-depths each`` tries the same candidates at
every depth and keeps, per depth, the one with the highest mean validation accuracy there (the
usual per-depth tuning of a depth analysis). SGC+AIR rows also record the mean hop-attention
weights of the test nodes (``hop_weights``).
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import replace

import torch

from graphkit.benchmarking import (
    Row,
    benchmark_parser,
    check_recipe,
    count,
    figure_file,
    measure,
    print_table,
    read_rows,
    report_of,
    run_main,
    save_figure,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.nn.oversmoothing import mean_average_distance
from graphkit.nn.recipes import (
    Recipe,
    expand_grid,
    get_recipe,
    parse_system,
    prepare_data,
    run_recipe,
)
from graphkit.train import seed_everything

SWEEPS = ("dagnn", "sgc_air", "sgc", "gcn", "gcn_air", "sgc_air_mlp")


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=5)
    own_report = report_of("benchmarks/depth_sweep.py")  # --merge-style inputs
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--models", nargs="+", default=list(SWEEPS), choices=SWEEPS)
    # issue 3's propagation depths run from 2 to 100
    p.add_argument("--dagnn-depths", type=count(0), nargs="+", default=[2, 5, 10, 20, 50, 100])
    p.add_argument("--sgc-depths", type=count(0), nargs="+", default=[2, 10, 30, 60])
    p.add_argument("--gcn-depths", type=count(1), nargs="+", default=[2, 4, 8, 16, 32])
    p.add_argument("--transform-depths", type=count(1), nargs="+", default=[2, 4, 6, 8])
    p.add_argument("--plot", type=figure_file, default=None, metavar="PNG",
                   help="write the accuracy plot here")
    p.add_argument("--merge", type=own_report, nargs="+", default=None, metavar="JSON",
                   help="join earlier reports (rows) instead of running")
    p.add_argument("--threads", type=count(1), default=1)
    p.add_argument("--override", nargs="+", default=[], metavar="MODEL:KEY=VALUE,...",
                   help="replace settings of a model's base recipe in every sweep that uses "
                        "it, e.g. sgc_air:weight_decay=5e-3 (recorded in each row)")
    p.add_argument("--grid", nargs="+", default=[], metavar="MODEL:KEY=V1|V2,...",
                   help="choose these settings of a model on validation accuracy at its "
                        "deepest depth before the sweep, e.g. dagnn:weight_decay=5e-3|5e-4")
    p.add_argument("--grid-runs", type=count(1), default=3, help="seeds per grid candidate")
    p.add_argument("--grid-depths", choices=("deepest", "all", "each"), default="deepest",
                   help="choose on validation at the deepest depth, averaged over all "
                        "depths of the sweep, or at each depth separately")
    p.add_argument("--tag", default="", help="label of this run's curves in rows and the plot, "
                                             "e.g. 'paper mode'")
    return p.parse_args()


BASE_MODELS = ("dagnn", "sgc_air", "sgc", "gcn", "gcn_air")


def base_recipes(args) -> dict[str, Recipe]:
    """The Cora recipe of each model, with the ``--override`` replacements."""
    overrides = dict(parse_system(spec) for spec in args.override)
    return {m: get_recipe(m, args.dataset).with_overrides(**overrides.get(m, {}))
            for m in BASE_MODELS}


def chosen(selected: dict[str, dict[int, dict]] | None, model: str, depth: int) -> dict:
    """The settings ``--grid`` chose for ``model`` at ``depth`` (empty without a grid)."""
    return (selected or {}).get(model, {}).get(depth, {})


def at_depth(model: str, recipe: Recipe, depth: int) -> Recipe:
    """``recipe`` with its propagation depth set to ``depth``."""
    if model == "dagnn":
        return recipe.with_model_kwargs(K=depth)
    if model == "sgc_air":
        return replace(recipe, num_hops=depth)
    if model == "sgc":
        return recipe.with_model_kwargs(K=depth)
    return recipe.with_model_kwargs(num_layers=depth)  # coupled: depth = number of layers


def depths_of(model: str, args) -> list[int]:
    """The propagation depths that the sweep of ``model`` visits."""
    depths = {"dagnn": args.dagnn_depths, "sgc_air": args.sgc_depths, "sgc": args.sgc_depths}
    return list(depths.get(model, args.gcn_depths))


def configurations(args, selected: dict[str, dict[int, dict]] | None = None):
    """(sweep, depth kind, depth, recipe) for every point of the requested sweeps, with the
    settings chosen by ``--grid`` (``selected``: model -> depth -> settings)."""
    base = base_recipes(args)
    for name in args.models:
        if name in BASE_MODELS:
            for k in depths_of(name, args):
                recipe = base[name].with_overrides(**chosen(selected, name, k))
                yield name, "propagation", k, at_depth(name, recipe, k)
        else:
            mlp = base["sgc_air"].with_model_kwargs(hidden_channels=64, dropout=0.5,
                                                    skip_last_hop=False)
            for residual in (True, False):
                label = "sgc_air_mlp" if residual else "sgc_air_plain_mlp"
                for depth in args.transform_depths:
                    yield label, "transformation", depth, mlp.with_model_kwargs(
                        num_layers=depth, initial_residual=residual)


@torch.no_grad()
def test_hop_weights(result, data) -> list[float] | None:
    """Mean hop-attention weight of each hop over the test nodes (models with hop attention on
    precomputed hops, i.e. SGC+AIR), else ``None``."""
    model = result.model.eval()
    if getattr(data, "hops", None) is None or not hasattr(model, "combine"):
        return None
    device = next(model.parameters()).device
    _, weights = model.combine(data.hops[data.test_mask].to(device), return_weights=True)
    return [round(float(w), 4) for w in weights.mean(0)]


@torch.no_grad()
def test_representations(result, data) -> torch.Tensor:
    model = result.model.eval()
    device = next(model.parameters()).device
    test = data.test_mask
    if getattr(data, "hops", None) is not None:
        return model(data.hops[test].to(device))
    return model(data.x.to(device), data.edge_index.to(device))[test.to(device)]


def evaluate(name: str, kind: str, depth: int, recipe: Recipe, raw, args, runs: int,
             seed: int) -> Row:
    """Train ``recipe`` ``runs`` times (seeds ``seed``, ``seed + 1``, ...) and summarise."""
    data = prepare_data(recipe, raw, sparse_features=torch.device(args.device).type == "cpu")
    accs, vals, mads, hop_weights = [], [], [], []
    with measure(args.device) as m:
        for r in range(runs):
            seed_everything(seed + r)
            # the selected epoch's model: its MAD and hop weights go beside its accuracy
            res = run_recipe(recipe, data, args.device, restore_best=True,
                             **({"epochs": 50} if args.quick else {}))
            accs.append(res.test_acc)
            vals.append(res.val_acc)
            mads.append(mean_average_distance(test_representations(res, data)))
            hop_weights.append(test_hop_weights(res, data))
            print(f"    {name} depth={depth} run {r}: test {res.test_acc:.4f} "
                  f"val {res.val_acc:.4f} MAD {mads[-1]:.3f}", flush=True)
    del data
    label = f"{name} ({args.tag})" if args.tag else name
    extra = {}
    if hop_weights[0] is not None:  # mean over runs, hop by hop
        extra["hop_weights"] = [round(statistics.fmean(w), 4) for w in zip(*hop_weights)]
    row = summarize(f"{label} depth={depth}", args.dataset, "accuracy", accs, m.seconds,
                    m.peak_rss_mb, model=name, depth_kind=kind, depth=depth, tag=args.tag,
                    mad=statistics.fmean(mads), val_mean=statistics.fmean(vals),
                    recipe={"model_kwargs": recipe.model_kwargs, **recipe.train_kwargs(),
                            "num_hops": recipe.num_hops}, **extra)
    print(f"  {row.system:<28} {kind:<14} acc {row.mean:.4f} +- {row.std:.4f} "
          f"val {row.extra['val_mean']:.4f} MAD {row.extra['mad']:.3f}", flush=True)
    return row


def select(args, raw, rows: list[Row]) -> dict[str, dict[int, dict]]:
    """Run every ``--grid`` candidate at its model's deepest depth (``--grid-depths all`` or
    ``each``: at every depth of the sweep) and choose, per model, the settings with the highest
    mean validation accuracy, the first of equals: averaged over those depths and used at every
    depth, or (``each``) at each depth on its own. Returns model -> depth -> settings."""
    selected: dict[str, dict[int, dict]] = {}
    base = base_recipes(args)
    for spec in args.grid:
        model, candidates = expand_grid(spec)
        if model not in BASE_MODELS:
            raise ValueError(f"--grid supports {BASE_MODELS}, got {model!r}")
        sweep_depths = depths_of(model, args)
        depths = [max(sweep_depths)] if args.grid_depths == "deepest" else sweep_depths
        scores: list[tuple[dict, dict[int, float]]] = []
        for combo in candidates:
            vals = {}
            for depth in depths:
                recipe = at_depth(model, base[model].with_overrides(**combo), depth)
                row = evaluate(model, "selection", depth, recipe, raw, args, args.grid_runs,
                               args.seed + args.runs)
                row.system = f"{model} depth={depth} " + ",".join(
                    f"{k}={v}" for k, v in combo.items())
                row.extra["candidate"] = combo
                rows.append(row)
                vals[depth] = row.extra["val_mean"]
                write_report(args.json, "benchmarks/depth_sweep.py", args, rows)
            print(f"  candidate {combo}: validation {statistics.fmean(vals.values()):.4f} over "
                  f"depths {depths}", flush=True)
            scores.append((combo, vals))
        if args.grid_depths == "each":
            selected[model] = {}
            for depth in depths:
                combo, vals = max(scores, key=lambda cv: cv[1][depth])  # first of equals
                selected[model][depth] = combo
                print(f"  selected for {model} at depth {depth}: {combo} "
                      f"(validation {vals[depth]:.4f})", flush=True)
        else:
            combo, vals = max(scores, key=lambda cv: statistics.fmean(cv[1].values()))
            selected[model] = {depth: combo for depth in sweep_depths}
            print(f"  selected for {model}: {combo} (validation "
                  f"{statistics.fmean(vals.values()):.4f})", flush=True)
    return selected


def sweep(args) -> list[Row]:
    raw = load(args.dataset, args.root)
    rows: list[Row] = []
    selected = select(args, raw, rows)
    for name, kind, depth, recipe in configurations(args, selected):
        rows.append(evaluate(name, kind, depth, recipe, raw, args, args.runs, args.seed))
        if name in selected:
            rows[-1].extra["selected"] = chosen(selected, name, depth)
        # Rewritten after every point, so a sweep cut short keeps the finished rows.
        write_report(args.json, "benchmarks/depth_sweep.py", args, rows)
    return rows


def curve(row: Row) -> str:
    """A row's curve in the plot: its model, and its tag when it has one."""
    tag = row.extra.get("tag")
    return f"{row.extra['model']} ({tag})" if tag else row.extra["model"]


def plot(rows: list[Row], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    rows = [r for r in rows if r.extra["depth_kind"] != "selection"]
    kinds = [k for k in ("propagation", "transformation")
             if any(r.extra["depth_kind"] == k for r in rows)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        curves = sorted({curve(r) for r in rows if r.extra["depth_kind"] == kind})
        for label in curves:
            pts = sorted((r.extra["depth"], r.mean, r.std) for r in rows
                         if curve(r) == label and r.extra["depth_kind"] == kind)
            if not pts:
                continue
            d, mean, std = zip(*pts)
            ax.errorbar(d, [100 * v for v in mean], yerr=[100 * v for v in std], marker="o",
                        capsize=3, label=label)
        ax.set_xlabel(f"{kind} depth")
        ax.set_ylabel("test accuracy (%)")
        if kind == "propagation":
            ax.set_xscale("log")
            ax.set_xticks(sorted({r.extra["depth"] for r in rows
                                  if r.extra["depth_kind"] == kind}))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{rows[0].dataset}: accuracy against depth")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main() -> None:
    args = parse_args()
    print(vars(args))
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    torch.set_num_threads(args.threads)
    if args.quick:
        args.runs = min(args.runs, 1)
        args.dagnn_depths, args.sgc_depths = [2, 10], [2, 10]
        args.gcn_depths, args.transform_depths = [2, 4], [2, 4]
    if not args.merge:  # every setting builds before the first run
        overrides = {}
        for spec in args.override:
            model, settings = parse_system(spec)
            check_recipe(model, args.dataset, settings, f"--override {spec}")
            overrides[model] = settings
        for spec in args.grid:
            model, candidates = expand_grid(spec)
            for combo in candidates:
                check_recipe(model, args.dataset, {**overrides.get(model, {}), **combo},
                              f"--grid {spec}")
    rows = read_rows(*args.merge) if args.merge else sweep(args)
    if not args.merge:  # merged rows assembled from logs have no seconds or RSS to print
        print_table(rows)
    write_report(args.json, "benchmarks/depth_sweep.py", args, rows)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    run_main(main)
