"""Training time per epoch of temporal link-prediction models, measured round-robin.

On a shared machine the load drifts over minutes, so the models' epochs are interleaved
(round ``r`` trains one epoch of every model, in a rotated order) and each model's time is the
median over rounds. An epoch is a full pass over the training events of the chronological split
with :func:`graphkit.temporal.train_epoch`, from a reset state, batch ``--batch-size``. Models
come from the registry of ``temporal_link.py``.

Rows: ``metric`` ``epoch_seconds`` (mean and std over rounds, ``median`` beside) and one
``speedup`` row per model against the first model given (``--model nat tgn``: TGN time / NAT
time). ``peak_rss_mb`` is the process's peak over all rounds (the models share the process).

Example::

    python benchmarks/temporal_link_speed.py --model nat tgn --dataset uci --runs 3 \\
        --json benchmarks/results/temporal_link_speed.json
"""

from __future__ import annotations

import statistics
import time

import torch
from temporal_link import DATASETS, MODELS, _data

from graphkit.benchmarking import (
    QUICK_TEMPORAL,
    benchmark_parser,
    count,
    measure,
    print_table,
    real,
    run_main,
    summarize,
    write_report,
)
from graphkit.data.temporal import chronological_split
from graphkit.temporal import train_epoch
from graphkit.train import seed_everything


def main(argv: list[str] | None = None) -> None:
    p = benchmark_parser(__doc__.splitlines()[0], runs=3, helps={
        "runs": "timed training epochs per model (interleaved)",
        "seed": "seed of the split and the models; epoch r draws negatives with seed + r"})
    p.add_argument("--model", nargs="+", default=["nat", "tgn"], help=f"from {sorted(MODELS)}")
    p.add_argument("--dataset", default="uci", choices=DATASETS)
    p.add_argument("--batch-size", type=count(1), default=200)
    p.add_argument("--lr", type=real(0, open_low=True), default=1e-4)
    p.add_argument("--m1", type=count(1), default=32)
    p.add_argument("--m2", type=count(1), default=16)
    p.add_argument("--replace-prob", type=real(0, 1), default=0.9)
    p.add_argument("--max-events", type=count(1), default=None)
    p.add_argument("--threads", type=count(1), default=1)
    args = p.parse_args(argv)
    unknown = [m for m in args.model if m not in MODELS]
    if unknown:  # checked after parsing: another module may register models first
        p.error(f"unknown model(s) {unknown}; known: {sorted(MODELS)}")
    torch.set_num_threads(args.threads)
    print(vars(args))
    data = _data(args.dataset, args)
    split = chronological_split(data, seed=args.seed)
    train_idx = split.train_mask.nonzero().view(-1)
    pool = torch.unique(data.dst[train_idx])
    args.run_seed = args.seed
    seed_everything(args.seed)
    models = {m: MODELS[m](data, args).to(args.device) for m in args.model}
    optims = {m: torch.optim.Adam(models[m].parameters(), lr=args.lr) for m in args.model}
    for m in args.model:  # warm-up (Numba compilation, allocator) on a few batches
        models[m].reset_state()
        train_epoch(models[m], optims[m], data, train_idx[:1000], args.batch_size, pool)
    times: dict[str, list[float]] = {m: [] for m in args.model}
    with measure(args.device) as meas:  # one process holds every model: one peak for all rows
        for r in range(args.runs):
            order = args.model[r % len(args.model):] + args.model[:r % len(args.model)]
            for m in order:
                models[m].reset_state()
                gen = torch.Generator().manual_seed(args.seed + r)
                t0 = time.perf_counter()
                train_epoch(models[m], optims[m], data, train_idx, args.batch_size, pool, gen)
                times[m].append(time.perf_counter() - t0)
                print(f"round {r} {m}: {times[m][-1]:.2f} s", flush=True)
    label = QUICK_TEMPORAL if args.quick else args.dataset
    peak = meas.peak_rss_mb
    rows = [summarize(m, label, "epoch_seconds", times[m], statistics.median(times[m]), peak,
                      median=statistics.median(times[m]), rounds=times[m],
                      batch_size=args.batch_size, threads=args.threads)
            for m in args.model]
    base = args.model[0]
    for m in args.model[1:]:
        ratios = [a / b for a, b in zip(times[m], times[base])]
        rows.append(summarize(f"{m}/{base}", label, "speedup", ratios,
                              statistics.median(times[m]), peak,
                              median=statistics.median(ratios), rounds=ratios))
    print_table(rows)
    write_report(args.json, "benchmarks/temporal_link_speed.py", args, rows)


if __name__ == "__main__":
    run_main(main)
