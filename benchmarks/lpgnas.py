"""LPGNAS (joint architecture and bit-width search) vs uniformly quantised GCN and GAT.

For each dataset: uniformly quantised GCN (hidden 16, Kipf) and GAT (8 heads x 8, ELU) at
W32A32, W8A8, W4A8, W4A4 and W2A8 (QAT with the fixed-point formats of
``graphkit.nn.quant.formats``), and for each ``--gamma`` one LPGNAS search per
``--search-seeds`` seed (``--search-epochs`` alternating first-order steps); every distinct
derived model is retrained with QAT for ``--runs`` seeds. Selection rule (fixed before any test
accuracy was seen): the row of a gamma is the candidate with the best mean *validation*
accuracy over its retraining seeds (ties: the lowest search seed), reported with its test
accuracies; every candidate (search seed, specs, probabilities, validation and test accuracies)
is kept in ``config.searched``. The search trains the supernet weights alone for ``--warmup``
epochs, then alternates weight steps (weight decay ``--search-weight-decay``) with architecture
steps on the validation loss without dropout (see :func:`graphkit.nn.quant.search`, whose other
defaults are used). All models train with ``graphkit.train.train_node_classifier`` (Adam lr
0.01, weight decay 5e-4, dropout 0.5, ``--epochs`` epochs, test accuracy at the best validation
accuracy) under one ``--recipe`` (see ``train_specs``); ``--compare-recipes`` applies the
recipe rule (validation accuracy only) to reports that differ only in it. ``--specs-from``
retrains the candidates of an earlier report instead of searching again. Split (``--split``):
``public``, the Planetoid public split (20 labels per class, 500 val, 1000 test; the default),
or ``supervised``, the full-supervised random split of the graph NAS papers the spec points to
for the paper's "unseen nodes" (``graphkit.data.random_supervised_split``: 500 val, 500 test,
every other node training; one split, ``--split-seed``, for every system and seed). Features
are the raw binary bag-of-words, stored sparse.
Rows: ``system`` is ``gcn-w<W>a<A>``, ``gat-w<W>a<A>`` or ``lpgnas-gamma<G>`` (one per gamma);
each system has a ``metric`` ``accuracy`` row (test accuracy over the retraining seeds, with
the model's size in its ``size_bytes`` field) and a ``metric`` ``size_bytes`` row (mean: the
size; std 0, as every retraining seed trains the same derived model).
``size_bytes`` is the exact stored model size: every parameter, biases included, at its layer's
weight bit-width (the spec's "parameters x bits"; biases are quantised with the weight format
in training, search and integer inference). ``--bias-bits 32`` keeps the earlier accounting
(biases on the accumulator grid, counted as 32-bit words) in every system, search included.
The search's size penalty is ``gamma`` times the expected size relative to the FP32 GCN with
hidden 64.
A Pareto plot (size vs accuracy) is written next to the JSON.

Dominance at equal size (``config.analysis``): an LPGNAS point (size S, mean accuracy A)
dominates the uniform baselines when A >= the best mean accuracy of all uniform GCN and GAT
baselines whose size is <= S. A point smaller than every baseline has nothing to compare with
and is reported as ``no baseline <= S`` (not counted as dominating). ``vs_w8a8`` gives each
point's size ratio to the W8A8 GCN and its accuracy difference to it.

    python benchmarks/lpgnas.py --dataset Cora --runs 5 \\
        --json benchmarks/results/lpgnas_cora.json

``--dataset`` takes any registered node-classification dataset (``graphkit datasets list``);
the runs recorded are on Cora and CiteSeer (PubMed once its files are in the data root).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from graphkit.benchmarking import (
    Row,
    benchmark_parser,
    count,
    dataset_name,
    measure,
    print_table,
    read_report,
    read_rows,
    real,
    report_of,
    run_main,
    save_figure,
    summarize,
    write_report,
)
from graphkit.data import load, random_supervised_split, registry
from graphkit.data.io import atomic_write
from graphkit.nn.quant import LayerSpec, QuantGNN, search, uniform_specs
from graphkit.nn.quant.quantizer import full_precision
from graphkit.train import run_repeated, train_node_classifier

BASELINE_BITS = [(32, 32), (8, 8), (4, 8), (4, 4), (2, 8)]

#: retraining recipes (every system of a run uses the same one); see ``train_specs``
RECIPES = ("qat", "qat-fp-warmup", "qat-first-layer-wd")
#: the candidate recipe must beat "qat" by this much mean validation accuracy to replace it
RECIPE_MARGIN = 0.002


def node_dataset(text: str) -> str:
    """An argparse ``type``: a registered single-label node-classification dataset (hypergraph,
    temporal and multi-label ones are refused here, not after the baselines have trained),
    under its registered spelling so that reports of ``cora`` and ``Cora`` merge."""
    entry = registry.get(dataset_name(text))
    if not entry.task.startswith("node classification"):
        raise argparse.ArgumentTypeError(f"dataset {entry.name!r} is for {entry.task}, not "
                                         "node classification")
    return entry.name


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=5)
    own_report = report_of("benchmarks/lpgnas.py")  # --merge-style inputs
    p.add_argument("--dataset", type=node_dataset, default="Cora",
                   help="a registered node-classification dataset, e.g. Cora, CiteSeer, PubMed")
    p.add_argument("--gamma", type=real(0), nargs="+", default=[0.0, 0.05, 0.1, 0.5, 1.0, 2.0],
                   help="size-penalty weights; the penalty is gamma * E[size] / size of the FP32 "
                        "GCN with hidden 64, so gamma = 1 charges that model one nat (default: "
                        "the measured grid; hidden 16 / 8 at <= 4 bits appear from gamma 1)")
    p.add_argument("--split", default="public", choices=["public", "supervised"],
                   help="Planetoid public split, or the full-supervised random split")
    p.add_argument("--split-seed", type=count(0), default=0, help="--split supervised: its seed")
    p.add_argument("--epochs", type=count(1), default=200)
    p.add_argument("--search-epochs", type=count(1), default=100)
    p.add_argument("--warmup", type=count(0), default=30, help="weight-only search epochs first")
    p.add_argument("--search-weight-decay", type=real(0), default=5e-4,
                   help="supernet weight decay (default: the retraining recipe's)")
    p.add_argument("--label-smoothing", type=real(0, 1), default=0.0,
                   help="supernet training label smoothing (default: none, as in retraining)")
    p.add_argument("--arch-lr", type=real(0, open_low=True), default=0.1)
    p.add_argument("--gumbel", action="store_true",
                   help="Gumbel-softmax samples (tau 1) instead of softmax mixtures in the search")
    p.add_argument("--arch-loss", default="val", choices=["val", "train"],
                   help="cross-entropy of the architecture step on the validation nodes (first-"
                        "order DARTS, default) or on the training nodes (single-level: the "
                        "spec's L = CE(train) + gamma * size)")
    p.add_argument("--search-seeds", type=count(0), nargs="+", default=[0, 1, 2, 3, 4],
                   help="one search per seed and gamma; best mean validation accuracy wins")
    p.add_argument("--bias-bits", type=int, default=None, choices=[32],
                   help="32: biases on the accumulator grid, counted as 32-bit words, in every "
                        "system (default: biases in their layer's weight format and width)")
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads")
    p.add_argument("--only", nargs="+", choices=["gcn", "lpgnas", "gat"],
                   default=["gcn", "lpgnas", "gat"], help="which systems to run")
    p.add_argument("--merge", type=own_report, nargs="+", metavar="JSON", default=None,
                   help="join reports of parallel runs (e.g. one per gamma) into --json")
    p.add_argument("--recipe", default="qat", choices=RECIPES,
                   help="retraining recipe of every system (see train_specs; default: qat)")
    p.add_argument("--specs-from", type=own_report, metavar="JSON", default=None,
                   help="take each gamma's searched candidates (specs per search seed) from "
                        "this report instead of searching again (the search is deterministic "
                        "on one device); they are retrained and selected as usual")
    p.add_argument("--compare-recipes", type=own_report, nargs="+", metavar="JSON", default=None,
                   help="apply the recipe rule to reports of the same systems under "
                        "different --recipe values and write the choice to --json")
    return p.parse_args()


def train_specs(data, specs, args, dropout=0.5, att_dropout=0.0):
    """Train ``specs`` for ``args.runs`` seeds with ``args.recipe``; all recipes use Adam lr
    0.01, ``args.epochs`` epochs and test accuracy at the best validation accuracy of the
    quantised model:

    * ``qat``: quantisation-aware from the first epoch, weight decay 5e-4 on every layer.
    * ``qat-fp-warmup``: the first quarter of the epochs' training steps run in full precision
      (``full_precision``), then QAT; every evaluation (so the selected epoch) is quantised.
    * ``qat-first-layer-wd``: as ``qat`` with weight decay 5e-4 on the first layer only
      (Kipf and Welling's GCN).
    """
    recipe = getattr(args, "recipe", "qat")
    warm = args.epochs // 4 if recipe == "qat-fp-warmup" else 0

    def one_run(r: int):
        model = QuantGNN(data.num_features, specs, dropout=dropout, att_dropout=att_dropout,
                         cached=True, bias_bits=getattr(args, "bias_bits", None))
        steps = [0]

        def forward(m, d):
            if m.training:
                steps[0] += 1
            with full_precision(m.training and steps[0] <= warm):
                return m(d.x, d.edge_index)
        opt = None
        if recipe == "qat-first-layer-wd":
            first = {id(p) for p in [*model.convs[0].parameters(), *model.skips[0].parameters()]}
            opt = torch.optim.Adam([
                {"params": [p for p in model.parameters() if id(p) in first],
                 "weight_decay": 5e-4},
                {"params": [p for p in model.parameters() if id(p) not in first],
                 "weight_decay": 0.0}], lr=0.01)
        res = train_node_classifier(model, data, optimizer=opt, epochs=args.epochs, lr=0.01,
                                    weight_decay=5e-4, device=args.device, forward=forward)
        return res, model.size_bytes()
    with measure(args.device) as m:
        out = run_repeated(one_run, args.runs, args.seed)
    return [r.test_acc for r, _ in out], out[0][1], m, [r.val_acc for r, _ in out]


def accuracy_rows(rows: list[Row]) -> list[Row]:
    """The ``accuracy`` rows: one per system, with its size in ``size_bytes``."""
    return [r for r in rows if r.metric == "accuracy"]


def with_size_rows(rows: list[Row]) -> list[Row]:
    """``rows`` (accuracy rows), each followed by its system's ``metric`` ``size_bytes`` row
    (issue 11 names both metrics; the field stays on the accuracy row for the analysis)."""
    out = []
    for r in rows:
        size = r.extra["size_bytes"]
        out += [r, summarize(r.system, r.dataset, "size_bytes", [size] * r.runs, r.seconds,
                             r.peak_rss_mb)]
    return out


def analyse(rows) -> dict:
    """Dominance at equal size and the comparison with W8A8 GCN (see the module docstring)."""
    rows = [r.to_dict() for r in accuracy_rows(rows)]
    base = [r for r in rows if not r["system"].startswith("lpgnas")]
    w8 = next((r for r in rows if r["system"] == "gcn-w8a8"), None)
    out = {}
    for r in rows:
        if not r["system"].startswith("lpgnas"):
            continue
        size, acc = r["size_bytes"], r["mean"]
        le = [b for b in base if b["size_bytes"] <= size]
        best = max(le, key=lambda b: b["mean"]) if le else None
        out[r["system"]] = {
            "size_bytes": size, "accuracy": acc,
            "best_baseline_le_size": best and best["system"],
            "best_baseline_accuracy": best and best["mean"],
            "dominates": bool(best is not None and acc >= best["mean"]),
            "vs_w8a8": w8 and {"size_ratio": w8["size_bytes"] / size,
                               "accuracy_diff": acc - w8["mean"]},
        }
    return {"points": out, "dominating": sum(v["dominates"] for v in out.values()),
            "compared": sum(v["best_baseline_le_size"] is not None for v in out.values())}


def search_summary(searched: dict, rows) -> dict:
    """Per gamma, over every search (not only the selected one): how many layers got >= 8-bit
    weights, how many searches got >= 8 bits in every layer, and the candidates at least 2x
    smaller than the W8A8 GCN with their accuracy difference to it (mean test accuracy; a
    description of the candidates, not a selection)."""
    w8 = next((r.to_dict() for r in accuracy_rows(rows) if r.system == "gcn-w8a8"), None)
    out = {}
    for g, v in searched.items():
        cands = v["candidates"]
        bits = [[s["weight_bits"] for s in c["specs"]] for c in cands]
        entry = {"weight_bits": {str(c["search_seed"]): b for c, b in zip(cands, bits)},
                 "layers_ge8": sum(b >= 8 for bb in bits for b in bb),
                 "layers": sum(len(bb) for bb in bits),
                 "searches_all_ge8": sum(all(b >= 8 for b in bb) for bb in bits),
                 "searches": len(cands)}
        if w8 is not None:
            entry["within_2x_of_w8a8"] = [
                {"search_seed": c["search_seed"], "size_ratio": w8["size_bytes"] / c["size_bytes"],
                 "accuracy_diff": sum(c["test_accs"]) / len(c["test_accs"]) - w8["mean"],
                 "val_mean": c["val_mean"]}
                for c in cands if w8["size_bytes"] / c["size_bytes"] >= 2.0]
        out[g] = entry
    return out


def pareto_plot(rows, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r.to_dict() for r in accuracy_rows(rows)]
    fig, ax = plt.subplots(figsize=(6, 4))
    for prefix, marker in (("gcn", "o"), ("gat", "s"), ("lpgnas", "*")):
        pts = [r for r in rows if r["system"].startswith(prefix)]
        ax.scatter([r["size_bytes"] / 1024 for r in pts], [r["mean"] for r in pts],
                   marker=marker, label=prefix.upper() if prefix != "lpgnas" else "LPGNAS")
        for r in pts:
            ax.annotate(r["system"].split("-", 1)[-1], (r["size_bytes"] / 1024, r["mean"]),
                        fontsize=6)
    ax.set_xscale("log")
    ax.set_xlabel("model size (KiB, log)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def _select(cands: list[dict]) -> dict:
    """The selection rule: best mean validation accuracy (ties: the lowest search seed)."""
    return max(cands, key=lambda c: (c["val_mean"], -c["search_seed"]))


def merge(paths: list[str], out: str | None) -> None:
    """Join reports of one dataset run in parallel processes (same code and settings) and redo
    the analysis and the plot over all rows. Baseline systems must not repeat. An LPGNAS gamma
    present in several reports (disjoint ``--search-seeds``, e.g. more seeds added later) gets
    the union of its candidates and the selection rule over all of them: its row is the row of
    the report whose selected candidate wins (the search is deterministic on one device, so a
    derived model retrains to the same accuracies wherever it was found)."""
    rows, configs = [], []
    for path in paths:
        configs.append(read_report(path, "benchmarks/lpgnas.py")["config"])
        rows.append(accuracy_rows(read_rows(path)))  # size rows are written anew
    if len({c["dataset"] for c in configs}) != 1:
        raise ValueError("reports to merge are on different datasets")
    # reports written before --bias-bits existed counted biases as 32-bit words
    if len({c.get("bias_bits", 32) for c in configs}) != 1:
        raise ValueError("reports to merge use different bias accounting (--bias-bits)")
    # reports written before --split existed used the public split
    if len({(c.get("split", "public"), c.get("split_seed", 0)) for c in configs}) != 1:
        raise ValueError("reports to merge use different splits (--split, --split-seed)")
    searching = [c for c in configs if c.get("searched")]
    # reports written before --arch-loss existed searched on validation cross-entropy
    if len({(c.get("gumbel", False), c.get("arch_loss", "val")) for c in searching}) > 1:
        raise ValueError("reports to merge searched with different settings (--gumbel, "
                         "--arch-loss)")
    base = [r.system for part in rows for r in part if not r.system.startswith("lpgnas")]
    if len(set(base)) != len(base):
        raise ValueError(f"reports to merge repeat a baseline system: {sorted(base)}")
    searched: dict[str, dict] = {}
    picked: dict[str, object] = {}
    for c, part in zip(configs, rows):
        for g, v in c.get("searched", {}).items():
            system = f"lpgnas-gamma{g}"
            row = next(r for r in part if r.system == system)
            if g not in searched:
                searched[g], picked[g] = dict(v), row
                continue
            have = {x["search_seed"] for x in searched[g]["candidates"]}
            if have & {x["search_seed"] for x in v["candidates"]}:
                raise ValueError(f"reports to merge repeat a search seed at gamma {g}")
            cands = sorted(searched[g]["candidates"] + v["candidates"],
                           key=lambda x: x["search_seed"])
            best = _select(cands)
            if best["search_seed"] == v["selected_search_seed"]:
                searched[g], picked[g] = dict(v), row
            searched[g]["candidates"] = cands
            picked[g].extra["search_seconds"] = sum(x["search_seconds"] for x in cands)
    merged = [r for part in rows for r in part if not r.system.startswith("lpgnas")]
    merged += [picked[g] for g in sorted(picked, key=float)]
    order = {"gcn": 0, "lpgnas": 1, "gat": 2}
    merged.sort(key=lambda r: order[r.system.split("-")[0]])  # stable: file order within
    config = {k: v for k, v in configs[0].items() if k not in ("json", "searched", "analysis")}
    config["gamma"] = sorted(float(g) for g in searched)  # those with a row (runs may be cut)
    config["only"] = sorted({o for c in configs for o in c["only"]})
    config["search_seeds"] = {g: [x["search_seed"] for x in searched[g]["candidates"]]
                              for g in sorted(searched, key=float)}
    config["searched"] = {g: searched[g] for g in sorted(searched, key=float)}
    config["merged_from"] = list(paths)
    config["analysis"] = analyse(merged)
    config["analysis"]["search"] = search_summary(config["searched"], merged)
    print_table(with_size_rows(merged))
    write_report(out, "benchmarks/lpgnas.py", config, with_size_rows(merged), [])
    if out:
        pareto_plot(merged, Path(out).with_suffix(".png"), f"{configs[0]['dataset']}: size vs "
                    "accuracy")


def load_searched(path: str, args: argparse.Namespace) -> dict:
    """``{gamma: {search_seed: found}}`` from the ``config.searched`` of a report, each
    ``found`` with ``specs``, ``probs`` and ``seconds`` (that search's time) as search() gave
    them; checked against ``args`` (dataset, split, accounting, search settings, and every
    gamma and search seed this run asks for) before anything trains."""
    from types import SimpleNamespace
    with open(path) as f:
        config = json.load(f)["config"]
    if config["dataset"] != args.dataset:
        raise ValueError(f"{path} is on {config['dataset']}, not {args.dataset}")
    # reports written before these options existed used their defaults
    for key, default in (("split", "public"), ("split_seed", 0), ("bias_bits", 32),
                         ("gumbel", False), ("arch_loss", "val")):
        if config.get(key, default) != getattr(args, key, default):
            raise ValueError(f"{path} searched with --{key.replace('_', '-')} "
                             f"{config.get(key, default)}, this run uses "
                             f"{getattr(args, key, default)}")
    have = {float(g): {c["search_seed"] for c in v["candidates"]}
            for g, v in config["searched"].items()}
    for g in args.gamma if "lpgnas" in args.only else []:
        missing = sorted(set(args.search_seeds) - have.get(float(g), set()))
        if missing:
            raise ValueError(f"{path} has no search at gamma {g} for search seed(s) {missing} "
                             f"(it holds gammas {sorted(have)})")
    return {float(g): {c["search_seed"]: SimpleNamespace(
        specs=[LayerSpec(**x) for x in c["specs"]], probs=c["probs"],
        seconds=c["search_seconds"]) for c in v["candidates"]}
        for g, v in config["searched"].items()}


def compare_recipes(paths: list[str], out: str | None) -> dict:
    """The recipe rule (fixed before any of its runs): each report holds the same systems
    trained with one ``--recipe``; a recipe's score is the mean over systems of the mean
    validation accuracy over seeds; a recipe replaces ``qat`` only if its score beats
    ``qat``'s by at least ``RECIPE_MARGIN``, and the best such one is chosen. Test accuracies
    play no part."""
    scores, systems = {}, None
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        rows = [r for r in report["rows"] if r["metric"] == "accuracy"]
        names = sorted(r["system"] for r in rows)
        if systems is not None and names != systems:
            raise ValueError(f"{path} has other systems than {paths[0]}")
        systems = names
        recipe = report["config"].get("recipe", "qat")
        if recipe in scores:
            raise ValueError(f"recipe {recipe} appears twice")
        means = [r["val_mean"] for r in rows]
        scores[recipe] = sum(means) / len(means)
    if "qat" not in scores:
        raise ValueError("the reports must include the qat recipe")
    better = {k: v for k, v in scores.items() if v >= scores["qat"] + RECIPE_MARGIN}
    chosen = max(better, key=better.get) if better else "qat"
    result = {"scores": scores, "margin": RECIPE_MARGIN, "chosen": chosen, "systems": systems,
              "reports": list(paths),
              "rule": "mean over systems of the mean validation accuracy; replaces qat only "
                      f"if >= qat + {RECIPE_MARGIN}"}
    print(json.dumps(result, indent=1))
    if out:
        with atomic_write(out) as f:
            json.dump(result, f, indent=1)
    return result


def main() -> None:
    args = parse_args()
    if args.merge:
        merge(args.merge, args.json)
        return
    if args.compare_recipes:
        compare_recipes(args.compare_recipes, args.json)
        return
    if args.quick:
        args.runs, args.gamma, args.epochs = 1, args.gamma[:2], 20
        args.search_epochs, args.warmup, args.search_seeds = 5, 2, args.search_seeds[:2]
    torch.set_num_threads(args.threads)
    print(vars(args))
    data = load(args.dataset, root=args.root)
    if args.split == "supervised":
        data = random_supervised_split(data, seed=args.split_seed)
    data.x = data.x.to_sparse()
    classes = int(data.y.max()) + 1
    rows, config = [], {**vars(args), "searched": {}}

    def report():
        print_table(with_size_rows(rows))
        config["analysis"] = analyse(rows)
        config["analysis"]["search"] = search_summary(config["searched"], rows)
        write_report(args.json, "benchmarks/lpgnas.py", config, with_size_rows(rows), [])
        if args.json:
            pareto_plot(rows, Path(args.json).with_suffix(".png"),
                        f"{args.dataset}: size vs accuracy")

    def add(system, accs, size, m, vals, **extra):
        rows.append(summarize(system, args.dataset, "accuracy", accs, m.seconds, m.peak_rss_mb,
                              size_bytes=size, val_accs=vals, val_mean=sum(vals) / len(vals),
                              **extra))
        report()

    # checked before the baselines train: a missing gamma failed after 25 trainings
    stored = load_searched(args.specs_from, args) if args.specs_from else None
    for w, a in BASELINE_BITS if "gcn" in args.only else []:
        accs, size, m, vals = train_specs(data, uniform_specs("gcn", 16, classes, w, a), args)
        add(f"gcn-w{w}a{a}", accs, size, m, vals)
    trained = {}  # identical derived models (at any gamma) are retrained once
    for g in args.gamma if "lpgnas" in args.only else []:
        cands = []
        for s in args.search_seeds:
            if stored is not None:
                found = stored[g][s]
            else:
                torch.manual_seed(s)
                with measure(args.device) as ms:
                    found = search(data, g, epochs=args.search_epochs, arch_lr=args.arch_lr,
                                   warmup=args.warmup, weight_decay=args.search_weight_decay,
                                   label_smoothing=args.label_smoothing, gumbel=args.gumbel,
                                   arch_loss=args.arch_loss, bias_bits=args.bias_bits,
                                   device=args.device)
                found.seconds = ms.seconds
            specs = [vars(x) for x in found.specs]
            key = repr(specs)
            if key not in trained:
                trained[key] = (found.specs, *train_specs(data, found.specs, args))
            _, accs, size, m, vals = trained[key]
            cands.append({"search_seed": s, "specs": specs, "probs": found.probs,
                          "search_seconds": found.seconds, "size_bytes": size,
                          "val_accs": vals, "val_mean": sum(vals) / len(vals),
                          "test_accs": accs, "key": key})
            print(f"gamma={g} search seed {s}: {specs} val {cands[-1]['val_mean']:.4f}",
                  flush=True)
        best = _select(cands)
        config["searched"][str(g)] = {
            "rule": "best mean validation accuracy over retraining seeds (ties: lowest "
                    "search seed)", "selected_search_seed": best["search_seed"],
            "specs": best["specs"], "probs": best["probs"],
            "candidates": [{k: v for k, v in c.items() if k != "key"} for c in cands]}
        found_specs, accs, size, m, vals = trained[best["key"]]
        add(f"lpgnas-gamma{g}", accs, size, m, vals, search_seed=best["search_seed"],
            search_seconds=sum(c["search_seconds"] for c in cands),
            weight_bits=[x.weight_bits for x in found_specs],
            act_bits=[x.act_bits for x in found_specs])
    if "gat" in args.only:
        for w, a in BASELINE_BITS:
            accs, size, m, vals = train_specs(data, uniform_specs("gat", 8, classes, w, a,
                                                                  heads=8),
                                              args, dropout=0.6, att_dropout=0.6)
            add(f"gat-w{w}a{a}", accs, size, m, vals)
    for name, v in config["analysis"]["points"].items():
        print(name, v, flush=True)
    print({k: v for k, v in config["analysis"].items() if k != "points"})


if __name__ == "__main__":
    run_main(main)
