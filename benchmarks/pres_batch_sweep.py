"""PRES batch-size sweep: test AP and training time per epoch against temporal batch size.

For each base model (TGN, JODIE, APAN on graphkit's :class:`~graphkit.temporal.TemporalMemory`)
with and without :class:`~graphkit.temporal.PRES`, each dataset and each temporal batch size,
train with :func:`graphkit.temporal.fit` (chronological 70/15/15 split, same negatives, Adam
with lr ``1e-3`` as in the official PRES code, a fixed number of epochs) and report the
transductive test AP (averaged per evaluation batch of 200 events, so every batch size is
scored the same way), the validation AP of the same runs (to choose PRES settings without
looking at the test split) and the mean training time per epoch. A plot of both against the
batch size is written next to the JSON (``.png``).

PRES settings are given as ``MODE:GAMMA:BETA`` (``MODE``: ``paper``, the per-event
intra-batch prediction; ``node``, one fused memory per node and batch; ``repo``) or
``MODE:GAMMA:BETA:learn`` (a learnable fusion weight starting at ``GAMMA``) with
``--pres-config`` (several allowed: a grid).
Runs are independent and may be spread over ``--jobs`` processes (each with ``--threads``
torch threads); timings taken that way share the machine, so measure speed with ``--jobs 1``.
``--quick``: one epoch on the small synthetic stream ``temporal-sbm``, which replaces every
``--dataset`` (so it runs once).

Rows: ``system`` is ``<model>`` or ``<model>+pres`` (with one PRES setting) or
``<model>+pres(<mode>,g=<gamma>,b=<beta>)`` (with several; ``g=<gamma>~``: learnable),
``dataset`` is ``<dataset>/bs<B>``, ``metric`` is ``ap``; ``epoch_seconds`` is the mean
training time per epoch (``epoch_seconds_min``: the fastest epoch; ``epoch_cpu_seconds``: the
process's mean CPU time per training epoch, which a loaded machine hardly changes; compare it
at ``--threads 1``) and ``val_ap`` the mean validation AP.

Example::

    python benchmarks/pres_batch_sweep.py --model tgn --dataset uci enron \\
        --batch-sizes 200 800 --epochs 3 --runs 3 --json benchmarks/results/pres_batch_sweep.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import multiprocessing
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch
from torch_geometric.data import TemporalData

from graphkit.benchmarking import (
    QUICK_TEMPORAL,
    benchmark_parser,
    count,
    dataset_of,
    measure,
    print_table,
    real,
    run_main,
    save_figure,
    summarize,
    temporal_stream,
    write_report,
)
from graphkit.data.temporal import chronological_split
from graphkit.temporal import APAN, JODIE, PRES, MemoryTGN, fit
from graphkit.temporal import pres as pres_module
from graphkit.temporal.pres import INCREMENTS, MODES
from graphkit.train import seed_everything
from graphkit.typing import WITH_NUMBA

BASES = {"tgn": MemoryTGN, "jodie": JODIE, "apan": APAN}
COST = {"apan": 3, "tgn": 2, "jodie": 1}  # rough relative run time, to schedule long runs first

# Issue 8's author, PyG's TGN on this machine's CPU (3 epochs), test AP and s/epoch.
PAPER = [
    {"system": "tgn (PyG)", "dataset": "uci/bs200", "metric": "ap", "value": 0.824,
     "epoch_seconds": 5.0},
    {"system": "tgn (PyG)", "dataset": "uci/bs800", "metric": "ap", "value": 0.725,
     "epoch_seconds": 2.3},
    {"system": "tgn (PyG)", "dataset": "enron/bs200", "metric": "ap", "value": 0.734},
    {"system": "tgn (PyG)", "dataset": "enron/bs800", "metric": "ap", "value": 0.514},
]


@dataclasses.dataclass(frozen=True)
class PresConfig:
    """One PRES setting: ``mode``, fusion weight ``gamma`` (its start when ``learn``),
    coherence weight ``beta``."""

    mode: str
    gamma: float
    beta: float
    learn: bool = False

    @classmethod
    def parse(cls, text: str) -> PresConfig:
        parts = text.split(":")
        if len(parts) not in (3, 4) or parts[0] not in MODES or \
                parts[3:] not in ([], ["learn"]):
            raise argparse.ArgumentTypeError(
                f"a PRES setting is MODE:GAMMA:BETA[:learn] with MODE in {MODES}, got "
                f"{text!r}")
        learn = len(parts) == 4
        # PRES's own ranges, checked here: PRES() rejected them only after the earlier runs
        checks = (("GAMMA", real(0, 1, open_low=learn, open_high=learn)), ("BETA", real(0)))
        values = []
        for (name, check), part in zip(checks, parts[1:3]):
            try:
                values.append(check(part))
            except (ValueError, argparse.ArgumentTypeError) as err:
                raise argparse.ArgumentTypeError(f"bad PRES setting {text!r}: {name} {err}") \
                    from None
        return cls(parts[0], *values, learn)

    def __str__(self) -> str:
        return f"{self.mode}:{self.gamma:g}:{self.beta:g}" + (":learn" if self.learn else "")

    def label(self) -> str:
        return f"{self.mode},g={self.gamma:g}{'~' if self.learn else ''},b={self.beta:g}"


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One training run of the sweep."""

    base: str
    dataset: str
    batch_size: int
    pres: PresConfig | None
    seed: int


@functools.cache
def _data(name: str, root: str | None, quick: bool) -> TemporalData:
    return temporal_stream(name, root, quick)


def build_model(spec: RunSpec, args: argparse.Namespace, data: TemporalData
                ) -> torch.nn.Module:
    """The base model of ``spec`` (with ``--freeze-time-encoder``: its time encoder's
    frequencies and phases kept at their initialisation), wrapped in PRES when ``spec`` has a
    setting."""
    kwargs = {"event_attention": True} \
        if spec.base in ("tgn", "apan") and args.event_attention else {}
    model = BASES[spec.base](data.num_nodes, data.msg.size(-1), **kwargs)
    if args.freeze_time_encoder:
        model.memory.time_enc.requires_grad_(False)
    if spec.pres is not None:
        model = PRES(model, gamma=spec.pres.gamma, coherence_weight=spec.pres.beta,
                     mode=spec.pres.mode, learnable_gamma=spec.pres.learn,
                     increment=args.pres_increment)
    return model


def run_one(spec: RunSpec, args: argparse.Namespace) -> dict[str, Any]:
    """Train and evaluate one model; returns test/validation AP, seconds and peak RSS."""
    torch.set_num_threads(args.threads)
    # PRES's Numba kernels or its torch path (the same math; the closed-form coherence gradient
    # differs between the two in float32 round-off, everything else is bit-identical)
    pres_module.WITH_NUMBA = WITH_NUMBA and not getattr(args, "pres_torch_path", False)
    data = _data(spec.dataset, args.root, args.quick)
    seed_everything(spec.seed)
    split = chronological_split(data, seed=spec.seed)
    model = build_model(spec, args, data).to(args.device)
    with measure(args.device) as meas:
        out = fit(model, data, split, epochs=1 if args.quick else args.epochs,
                  batch_size=spec.batch_size, lr=args.lr, patience=None, seed=spec.seed,
                  eval_batch_size=args.eval_batch_size)
    return {"test_ap": out.test.ap, "val_ap": out.val.ap,
            "epoch_s": statistics.fmean(out.epoch_seconds), "epoch_min_s": min(out.epoch_seconds),
            "epoch_cpu_s": statistics.fmean(out.epoch_cpu_seconds),
            "train_s": sum(out.epoch_seconds),
            "rss": meas.peak_rss_mb}


def _system(spec: RunSpec, several: bool) -> str:
    if spec.pres is None:
        return spec.base
    return spec.base + (f"+pres({spec.pres.label()})" if several else "+pres")


def _rows(specs: list[RunSpec], done: dict[RunSpec, dict[str, Any]], args: argparse.Namespace
          ) -> list:
    """Summary rows of every (model, dataset, batch size, setting) whose runs all finished."""
    several = len(args.pres_config) > 1
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault((s.dataset, s.base, s.batch_size, s.pres), []).append(s)
    rows = []
    for (ds, _, bs, pres), members in groups.items():
        if not all(m in done for m in members):
            continue
        res = [done[m] for m in members]
        extra = {"mode": pres.mode, "gamma": pres.gamma, "coherence_weight": pres.beta,
                 "learnable_gamma": pres.learn, "increment": args.pres_increment} \
            if pres is not None else {}
        val = [r["val_ap"] for r in res]
        rows.append(summarize(
            _system(members[0], several), f"{ds}/bs{bs}", "ap",
            [r["test_ap"] for r in res], statistics.fmean(r["train_s"] for r in res),
            max(r["rss"] for r in res), epoch_seconds=statistics.fmean(r["epoch_s"] for r in res),
            epoch_seconds_min=min(r["epoch_min_s"] for r in res),
            epoch_cpu_seconds=statistics.fmean(r["epoch_cpu_s"] for r in res),
            val_ap=statistics.fmean(val), val_ap_std=statistics.stdev(val) if len(val) > 1
            else 0.0, batch_size=bs, threads=args.threads, jobs=args.jobs, **extra))
    return rows


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
            style = "-o" if "+pres" in system else "--s"
            axes[0, j].errorbar(bs, [100 * r.mean for _, r in sel],
                                [100 * r.std for _, r in sel], fmt=style, label=system)
            axes[1, j].plot(bs, [r.extra["epoch_seconds"] for _, r in sel], style,
                            label=system)
        axes[0, j].set(title=ds, xscale="log", ylabel="test AP (%)")
        axes[1, j].set(xscale="log", xlabel="temporal batch size", ylabel="s / epoch")
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser(__doc__.splitlines()[0], runs=3)
    p.add_argument("--model", nargs="+", choices=sorted(BASES), default=sorted(BASES))
    p.add_argument("--dataset", type=dataset_of("temporal"), nargs="+", default=["uci", "enron"])
    p.add_argument("--batch-sizes", type=count(1), nargs="+", default=[100, 200, 400, 800, 1600])
    p.add_argument("--pres-batch-sizes", type=count(1), nargs="+", default=None,
                   help="batch sizes of the PRES runs (default: --batch-sizes)")
    p.add_argument("--epochs", type=count(1), default=3)
    p.add_argument("--lr", type=real(0, open_low=True), default=1e-3)
    p.add_argument("--eval-batch-size", type=count(1), default=200)
    p.add_argument("--pres-config", type=PresConfig.parse, nargs="+",
                   default=[PresConfig("paper", 1.0, 0.1)], metavar="MODE:GAMMA:BETA[:learn]",
                   help="PRES settings (default: paper:1:0.1, PRES's defaults)")
    p.add_argument("--no-plain", action="store_true", help="only the PRES variants")
    p.add_argument("--event-attention", action="store_true",
                   help="TGN/APAN+PRES (paper mode): attend again (TGN over the neighbours, "
                        "APAN over the mailbox) for every (node, step) read instead of "
                        "shifting only the self term / residual (event_attention=True)")
    p.add_argument("--pres-increment", choices=INCREMENTS, default="event",
                   help="paper mode's statistic: the increment per event, a read at step k "
                        "adding k*gamma*mu (event), or per update, a read after k of the "
                        "node's events in the batch adding k/(k+1)*gamma*mu (update)")
    p.add_argument("--freeze-time-encoder", action="store_true",
                   help="a diagnosis, plain and PRES runs alike: keep the memory's time "
                        "encoder (frequencies 10^-linspace(0, 9), phase 0) fixed instead of "
                        "learning it")
    p.add_argument("--pres-torch-path", action="store_true",
                   help="run PRES's torch operations instead of its Numba kernels on CPU (a "
                        "check of how far float round-off alone moves the results)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    args = p.parse_args(argv)
    if args.jobs <= 0 or args.threads <= 0:
        p.error("--jobs and --threads must be positive")
    torch.set_num_threads(args.threads)
    print(vars(args))

    pres_bs = args.pres_batch_sizes or args.batch_sizes
    specs = []
    # --quick: every dataset is the same small stream, so it runs once (as in temporal_link.py)
    for ds in [QUICK_TEMPORAL] if args.quick else args.dataset:
        for base in args.model:
            for bs in sorted(set(args.batch_sizes) | set(pres_bs)):
                variants = ([None] if not args.no_plain and bs in args.batch_sizes else []) + \
                    (list(args.pres_config) if bs in pres_bs else [])
                for pres in variants:
                    specs += [RunSpec(base, ds, bs, pres, args.seed + r)
                              for r in range(args.runs)]
    done: dict[RunSpec, dict[str, Any]] = {}
    config = {**vars(args), "pres_config": [str(c) for c in args.pres_config]}

    def record(spec: RunSpec, res: dict[str, Any]) -> None:
        done[spec] = res
        print(f"{_system(spec, len(args.pres_config) > 1)} {spec.dataset} bs {spec.batch_size} "
              f"seed {spec.seed}: test AP {res['test_ap']:.4f} (val {res['val_ap']:.4f}), "
              f"{res['epoch_s']:.2f} s/epoch ({res['epoch_cpu_s']:.2f} s CPU)", flush=True)
        write_report(args.json, "benchmarks/pres_batch_sweep.py", config, _rows(specs, done, args),
                     PAPER)

    if args.jobs == 1:
        for spec in specs:
            record(spec, run_one(spec, args))
    else:  # longest runs first; spawn, so that CUDA works in the workers
        order = sorted(specs, key=lambda s: (-COST[s.base] * (1 + (s.dataset == "enron")) /
                                             s.batch_size, s.seed))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = {pool.submit(run_one, s, args): s for s in order}
            for fut in as_completed(futures):
                record(futures[fut], fut.result())
    rows = _rows(specs, done, args)
    print_table(rows)
    write_report(args.json, "benchmarks/pres_batch_sweep.py", config, rows, PAPER)
    if args.json:
        _plot(rows, str(args.json).rsplit(".", 1)[0] + ".png")


if __name__ == "__main__":
    run_main(main)
