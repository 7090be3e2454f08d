"""PRES batch-size sweep: test AP and training time per epoch against temporal batch size.

For each base model (TGN, JODIE, APAN on graphkit's :class:`~graphkit.temporal.TemporalMemory`)
with and without :class:`~graphkit.temporal.PRES`, each dataset and each temporal batch size,
train with :func:`graphkit.temporal.fit` (chronological 70/15/15 split, same negatives) and
report the transductive test AP (averaged per evaluation batch of 200 events, so every batch
size is scored the same way) and the mean training time per epoch. A plot of both against the
batch size is written next to the JSON (``.png``).

Rows: ``system`` is ``<model>`` or ``<model>+pres``, ``dataset`` is ``<dataset>/bs<B>``,
``metric`` is ``ap``; ``epoch_seconds`` is the mean training time per epoch.

Example::

    python benchmarks/pres_batch_sweep.py --model tgn --dataset uci enron \\
        --batch-sizes 200 800 --epochs 3 --runs 3 --json benchmarks/results/pres_batch_sweep.json
"""

from __future__ import annotations

import statistics

import torch

from graphkit.benchmarking import benchmark_parser, measure, print_table, summarize, write_report
from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.temporal import APAN, JODIE, PRES, MemoryTGN, fit
from graphkit.train import seed_everything

BASES = {"tgn": MemoryTGN, "jodie": JODIE, "apan": APAN}

# Issue 8's author, PyG's TGN on this machine's CPU (3 epochs), test AP and s/epoch.
PAPER = [
    {"system": "tgn (PyG)", "dataset": "uci/bs200", "metric": "ap", "value": 0.824,
     "epoch_seconds": 5.0},
    {"system": "tgn (PyG)", "dataset": "uci/bs800", "metric": "ap", "value": 0.725,
     "epoch_seconds": 2.3},
    {"system": "tgn (PyG)", "dataset": "enron/bs200", "metric": "ap", "value": 0.734},
    {"system": "tgn (PyG)", "dataset": "enron/bs800", "metric": "ap", "value": 0.514},
]


def _plot(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r.dataset.split("/")[0] for r in rows})
    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 7), squeeze=False)
    for j, ds in enumerate(datasets):
        for system in sorted({r.system for r in rows}):
            sel = sorted(((int(r.dataset.split("/bs")[1]), r) for r in rows
                          if r.system == system and r.dataset.startswith(ds + "/")),
                         key=lambda x: x[0])
            bs = [b for b, _ in sel]
            style = "-o" if system.endswith("+pres") else "--s"
            axes[0, j].errorbar(bs, [100 * r.mean for _, r in sel],
                                [100 * r.std for _, r in sel], fmt=style, label=system)
            axes[1, j].plot(bs, [r.extra["epoch_seconds"] for _, r in sel], style,
                            label=system)
        axes[0, j].set(title=ds, xscale="log", ylabel="test AP (%)")
        axes[1, j].set(xscale="log", xlabel="temporal batch size", ylabel="s / epoch")
        axes[0, j].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser(__doc__.splitlines()[0], runs=3)
    p.add_argument("--model", nargs="+", choices=sorted(BASES), default=sorted(BASES))
    p.add_argument("--dataset", nargs="+", default=["uci", "enron"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 200, 400, 800, 1600])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--eval-batch-size", type=int, default=200)
    p.add_argument("--gamma", type=float, default=0.1, help="PRES fusion weight")
    p.add_argument("--coherence-weight", type=float, default=0.1)
    p.add_argument("--mode", choices=("paper", "repo"), default="paper")
    p.add_argument("--no-plain", action="store_true", help="only the PRES variants")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(vars(args))
    variants = ([] if args.no_plain else [False]) + [True]
    rows = []
    for ds in args.dataset:
        data = load("temporal-sbm", root=args.root, num_nodes=200, num_events=4000) \
            if args.quick else load(ds, root=args.root)
        label = "temporal-sbm" if args.quick else ds
        for base in args.model:
            for bs in args.batch_sizes:
                for pres in variants:
                    aps, epoch_s, train_s, rss = [], [], [], []
                    for r in range(args.runs):
                        seed = args.seed + r
                        seed_everything(seed)
                        split = chronological_split(data, seed=seed)
                        model = BASES[base](data.num_nodes, data.msg.size(-1))
                        if pres:
                            model = PRES(model, gamma=args.gamma,
                                         coherence_weight=args.coherence_weight, mode=args.mode)
                        model = model.to(args.device)
                        with measure(args.device) as meas:
                            out = fit(model, data, split, epochs=1 if args.quick else args.epochs,
                                      batch_size=bs, lr=args.lr, patience=None, seed=seed,
                                      eval_batch_size=args.eval_batch_size)
                        aps.append(out.test.ap)
                        epoch_s.append(statistics.fmean(out.epoch_seconds))
                        train_s.append(sum(out.epoch_seconds))
                        rss.append(meas.peak_rss_mb)
                        name = base + ("+pres" if pres else "")
                        print(f"{name} {label} bs {bs} seed {seed}: test AP {aps[-1]:.4f}, "
                              f"{epoch_s[-1]:.2f} s/epoch", flush=True)
                    rows.append(summarize(name, f"{label}/bs{bs}", "ap", aps,
                                          statistics.fmean(train_s), max(rss),
                                          epoch_seconds=statistics.fmean(epoch_s),
                                          batch_size=bs, threads=args.threads))
                    write_report(args.json, "pres_batch_sweep.py", args, rows, PAPER)
    print_table(rows)
    write_report(args.json, "pres_batch_sweep.py", args, rows, PAPER)
    if args.json:
        _plot(rows, str(args.json).rsplit(".", 1)[0] + ".png")


if __name__ == "__main__":
    main()
