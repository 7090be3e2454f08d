"""Temporal link prediction in graphkit's shared harness: NAT against memory-based models.

Every model is trained by :func:`graphkit.temporal.fit` on the same chronological 70/15/15 split
(:func:`graphkit.data.temporal.chronological_split`, 10% held-out new nodes), with the same
training and evaluation negatives; a run reports test AP and AUC, transductive (all test events)
and inductive (test events touching a node unseen in training), averaged per batch as the
reference codes do (``mean``) and pooled over the split (``pooled_mean``).

Rows: ``system`` is the model (``<model>+pres`` under ``--pres``, where ``tgn`` runs as
``tgn-memory``, the TGN that PRES can wrap), ``dataset`` is
``<dataset>/<setting>``, ``metric`` is ``ap`` or ``auc``, ``seconds`` is the mean training wall
time of a run (all epochs, no evaluation) and ``epoch_seconds`` its mean per epoch.

Models are a registry (:data:`MODELS`: name -> ``factory(data, args) -> model``); another
module adds its own with :func:`register_model` (and model flags through
:data:`EXTRA_ARGUMENTS`), e.g. the memory-based family of the PRES issue.

Example::

    python benchmarks/temporal_link.py --model nat tgn nat-nocache --dataset uci \\
        --epochs 3 --batch-size 200 --runs 3 --json benchmarks/results/temporal_link_uci.json
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from torch_geometric.data import TemporalData

from graphkit.benchmarking import (
    QUICK_TEMPORAL,
    benchmark_parser,
    count,
    measure,
    print_table,
    real,
    run_main,
    summarize,
    temporal_stream,
    write_report,
)
from graphkit.data.registry import list_datasets
from graphkit.data.temporal import chronological_split
from graphkit.temporal import APAN, JODIE, NAT, PRES, TGN, MemoryTGN, fit
from graphkit.train import seed_everything

ModelFactory = Callable[[TemporalData, argparse.Namespace], torch.nn.Module]
MODELS: dict[str, ModelFactory] = {}
EXTRA_ARGUMENTS: list[Callable[[argparse.ArgumentParser], None]] = []
SETTINGS = ("transductive", "inductive")
#: The registered event streams (uci, enron, collegemsg, temporal-sbm): any other name, or a
#: static graph such as Cora, is an argparse error rather than a traceback mid-run.
DATASETS = tuple(e.name for e in list_datasets() if e.task.startswith("temporal link"))
#: The models --pres wraps (registered with ``pres=True``); on any other it is an error.
PRES_MODELS: set[str] = set()
#: Under --pres a name resolves to the family member PRES can wrap: ``tgn`` (PyG's TGNMemory,
#: the NAT issue's peer) has no per-event memory reads to correct, so ``--model tgn --pres``
#: runs the TGN of the PRES family on graphkit's TemporalMemory (rows ``tgn-memory+pres``).
PRES_ALIASES = {"tgn": "tgn-memory"}

# Measured by the issue author with PyG's TGN (3 epochs, batch 200, 2 cores), test AP.
PAPER = [
    {"system": "tgn (PyG, issue 7)", "dataset": "uci/transductive", "metric": "ap",
     "value": 0.824, "epoch_seconds": 5.0},
    {"system": "tgn (PyG, issue 7)", "dataset": "enron/transductive", "metric": "ap",
     "value": 0.734, "epoch_seconds": 6.4},
]


def register_model(name: str, pres: bool = False) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator adding a model factory ``(data, args) -> nn.Module`` under ``name``;
    ``pres``: the factory wraps its model in PRES under ``--pres``."""
    def wrap(factory: ModelFactory) -> ModelFactory:
        MODELS[name] = factory
        if pres:
            PRES_MODELS.add(name)
        return factory
    return wrap


def _nat(data: TemporalData, args: argparse.Namespace, sizes: tuple[int, ...]) -> NAT:
    return NAT(data.num_nodes, msg_dim=data.msg.size(-1), sizes=sizes,
               replace_prob=args.replace_prob, seed=args.run_seed)


@register_model("nat")
def nat(data: TemporalData, args: argparse.Namespace) -> torch.nn.Module:
    return _nat(data, args, (1, args.m1, args.m2))


@register_model("nat-nocache")
def nat_nocache(data: TemporalData, args: argparse.Namespace) -> torch.nn.Module:
    """NAT with every N-cache disabled: self representations only (the ablation)."""
    return _nat(data, args, (0, 0, 0))


@register_model("tgn")
def tgn(data: TemporalData, args: argparse.Namespace) -> torch.nn.Module:
    return TGN(data.num_nodes, msg_dim=data.msg.size(-1))


def _pres_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pres", action="store_true",
                   help="wrap tgn-memory/jodie/apan in PRES (tgn means tgn-memory here)")
    p.add_argument("--pres-gamma", type=real(0, 1), default=1.0, help="PRES: fusion weight")
    p.add_argument("--pres-weight", type=real(0), default=0.1, help="PRES: coherence weight")
    p.add_argument("--pres-mode", choices=("paper", "node", "repo"), default="paper")


EXTRA_ARGUMENTS.append(_pres_arguments)


def _maybe_pres(model: torch.nn.Module, args: argparse.Namespace) -> torch.nn.Module:
    if not getattr(args, "pres", False):
        return model
    return PRES(model, gamma=args.pres_gamma, coherence_weight=args.pres_weight,
                mode=args.pres_mode)


@register_model("tgn-memory", pres=True)
def tgn_memory(data: TemporalData, args: argparse.Namespace) -> torch.nn.Module:
    """TGN on graphkit's vectorised TemporalMemory (issue 8); ``--pres`` wraps it."""
    return _maybe_pres(MemoryTGN(data.num_nodes, data.msg.size(-1)), args)


@register_model("jodie", pres=True)
def jodie(data: TemporalData, args: argparse.Namespace) -> torch.nn.Module:
    return _maybe_pres(JODIE(data.num_nodes, data.msg.size(-1)), args)


@register_model("apan", pres=True)
def apan(data: TemporalData, args: argparse.Namespace) -> torch.nn.Module:
    return _maybe_pres(APAN(data.num_nodes, data.msg.size(-1)), args)


def _data(name: str, args: argparse.Namespace) -> TemporalData:
    data = temporal_stream(name, args.root, args.quick)
    return data[: args.max_events] if args.max_events and not args.quick else data


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser(__doc__.splitlines()[0], runs=3)
    p.add_argument("--model", nargs="+", default=["nat", "tgn"], help=f"from {sorted(MODELS)}")
    p.add_argument("--dataset", nargs="+", default=["uci"], choices=DATASETS)
    p.add_argument("--setting", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument("--batch-size", type=count(1), default=200)
    p.add_argument("--epochs", type=count(1), default=3)
    p.add_argument("--lr", type=real(0, open_low=True), default=1e-4)
    p.add_argument("--patience", type=count(1), default=3)
    p.add_argument("--m1", type=count(1), default=32, help="NAT: hop-1 slots")
    p.add_argument("--m2", type=count(1), default=16, help="NAT: hop-2 slots")
    p.add_argument("--replace-prob", type=real(0, 1), default=0.9, help="NAT: alpha")
    p.add_argument("--max-events", type=count(1), default=None, help="use the first events only")
    p.add_argument("--threads", type=count(1), default=1, help="torch intra-op threads")
    for add in EXTRA_ARGUMENTS:
        add(p)
    args = p.parse_args(argv)
    unknown = [m for m in args.model if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")
    if args.pres:
        resolved = [PRES_ALIASES.get(m, m) for m in args.model]
        for name, target in zip(args.model, resolved):
            if name != target:
                print(f"--pres: {name} runs as {target} (graphkit's TemporalMemory)")
        unwrapped = [m for m in resolved if m not in PRES_MODELS]
        if unwrapped:
            p.error(f"--pres wraps only {sorted(PRES_MODELS | PRES_ALIASES.keys())}, "
                    f"not {unwrapped}")
        args.model = list(dict.fromkeys(resolved))  # tgn and tgn-memory: one run
    if args.quick:  # one epoch, recorded as such in the rows and the config
        args.epochs = 1
    torch.set_num_threads(args.threads)
    print(vars(args))

    rows = []
    for ds in [QUICK_TEMPORAL] if args.quick else args.dataset:  # --quick: one small stream
        data = _data(ds, args)
        for name in args.model:
            res: dict[str, dict[str, list[float]]] = {s: {} for s in SETTINGS}
            train_s, epoch_s, rss = [], [], []
            for r in range(args.runs):
                seed = args.seed + r
                args.run_seed = seed
                seed_everything(seed)
                split = chronological_split(data, seed=seed)
                model = MODELS[name](data, args).to(args.device)
                with measure(args.device) as meas:
                    out = fit(model, data, split, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                              seed=seed)
                rss.append(meas.peak_rss_mb)
                train_s.append(sum(out.epoch_seconds))
                epoch_s.append(statistics.fmean(out.epoch_seconds))
                for setting, m in (("transductive", out.test), ("inductive", out.test_inductive)):
                    if m is None:
                        continue
                    for key in ("ap", "auc", "ap_pooled", "auc_pooled"):
                        res[setting].setdefault(key, []).append(getattr(m, key))
                print(f"{name} {ds} run {r}: test AP {out.test.ap:.4f}, inductive AP "
                      f"{out.test_inductive.ap if out.test_inductive else float('nan'):.4f}, "
                      f"{epoch_s[-1]:.2f} s/epoch", flush=True)
            system = f"{name}+pres" if args.pres else name  # as pres_batch_sweep names it
            for setting in args.setting:
                for metric in ("ap", "auc"):
                    if metric not in res[setting]:
                        continue
                    pooled = res[setting][f"{metric}_pooled"]
                    rows.append(summarize(
                        system, f"{ds}/{setting}", metric, res[setting][metric],
                        statistics.fmean(train_s), max(rss), setting=setting,
                        pooled_mean=statistics.fmean(pooled),
                        pooled_std=statistics.stdev(pooled) if len(pooled) > 1 else 0.0,
                        epoch_seconds=statistics.fmean(epoch_s),
                        batch_size=args.batch_size, epochs=args.epochs,
                        threads=args.threads))
            # after each model
            write_report(args.json, "benchmarks/temporal_link.py", args, rows, PAPER)
    print_table(rows)
    write_report(args.json, "benchmarks/temporal_link.py", args, rows, PAPER)


if __name__ == "__main__":
    run_main(main)
