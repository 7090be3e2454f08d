"""What a temporal batch hides from a memory-based model: intra-batch statistics per batch size.

All events of a temporal batch read the memory and the neighbourhood of the batch's start, so
within a batch a model sees neither the memory updates nor the neighbour-sampler entries of
the batch's earlier events. For each dataset and batch size this script reports, over the
training events in chronological batches (no model involved):

* ``distinct_nodes``: mean number of distinct endpoints per batch;
* ``max_node_events``: mean over batches of the largest number of events of one node;
* ``mean_step``: mean over the batch's endpoint reads (source and destination of every event)
  of ``k``, the number of earlier events of the same node in the batch (what PRES's
  per-event prediction ``s + gamma * k * mu`` has to extrapolate over);
* ``pair_repeat_in_batch``: fraction of events whose (source, destination) pair already
  occurred earlier in the same batch but not before it (a repeat the model cannot see);
* ``pair_repeat_visible``: fraction of events whose pair occurred before the batch (visible
  in the memory and to the neighbour sampler).

Rows: ``system`` = ``intra-batch``, ``dataset`` = ``<dataset>/bs<B>``, one row per metric.

Example::

    python benchmarks/pres_intra_batch.py --dataset uci enron --batch-sizes 200 800 \\
        --json benchmarks/results/pres_intra_batch.json
"""

from __future__ import annotations

import time

import torch

from graphkit.benchmarking import (
    QUICK_TEMPORAL,
    benchmark_parser,
    count,
    dataset_of,
    print_table,
    rss_mb,
    run_main,
    summarize,
    temporal_stream,
    write_report,
)
from graphkit.data.temporal import chronological_split
from graphkit.temporal.event_graph import earlier_events
from graphkit.temporal.link_training import chronological_batches


def batch_statistics(src: torch.Tensor, dst: torch.Tensor, num_nodes: int, batch_size: int
                     ) -> dict[str, float]:
    """The statistics of the module docstring for the time-sorted events ``(src, dst)``."""
    distinct, max_events, steps, in_batch, visible = [], [], [], 0, 0
    seen: set[int] = set()  # pairs of earlier batches
    index = torch.arange(src.numel())
    for idx in chronological_batches(index, batch_size):
        s, d = src[idx], dst[idx]
        ends = torch.cat([s, d])
        nodes, counts = torch.unique(ends, return_counts=True)
        distinct.append(nodes.numel())
        max_events.append(int(counts.max()))
        event = torch.arange(s.numel()).repeat(2)
        steps.append(earlier_events(s, d, ends, event).double())
        pair = s * num_nodes + d
        before = torch.tensor([p in seen for p in pair.tolist()], dtype=torch.bool)
        # first occurrence of each pair inside the batch (stable: the earliest event)
        order = torch.argsort(pair, stable=True)
        first = torch.ones(pair.numel(), dtype=torch.bool)
        sorted_pair = pair[order]
        first[order[1:]] = sorted_pair[1:] != sorted_pair[:-1]
        visible += int(before.sum())
        in_batch += int((~before & ~first).sum())
        seen.update(pair.tolist())
    n = src.numel()
    return {"distinct_nodes": sum(distinct) / len(distinct),
            "max_node_events": sum(max_events) / len(max_events),
            "mean_step": float(torch.cat(steps).mean()),
            "pair_repeat_in_batch": in_batch / n, "pair_repeat_visible": visible / n}


def main(argv: list[str] | None = None) -> None:
    # run r: the training events of the split drawn with seed --seed + r (which new nodes
    # are held out, and so which events train); rows give the mean and std over runs
    p = benchmark_parser(__doc__.splitlines()[0], runs=1)
    p.add_argument("--dataset", type=dataset_of("temporal"), nargs="+", default=["uci", "enron"])
    p.add_argument("--batch-sizes", type=count(1), nargs="+", default=[100, 200, 400, 800, 1600])
    args = p.parse_args(argv)
    if args.device.partition(":")[0] != "cpu":  # counting only, no model
        p.error(f"--device {args.device}: pres_intra_batch.py counts on the CPU only (use cpu)")
    print(vars(args))
    rows = []
    for ds in [QUICK_TEMPORAL] if args.quick else args.dataset:  # --quick: one small stream
        data = temporal_stream(ds, args.root, args.quick)
        runs = []
        for r in range(args.runs):
            split = chronological_split(data, seed=args.seed + r)
            runs.append(split.train_mask.nonzero().view(-1))
        events = [idx.numel() for idx in runs]
        events = events[0] if len(events) == 1 else events
        for bs in args.batch_sizes:
            t0 = time.perf_counter()
            stats = [batch_statistics(data.src[idx], data.dst[idx], data.num_nodes, bs)
                     for idx in runs]
            seconds = time.perf_counter() - t0
            for metric in stats[0]:
                rows.append(summarize("intra-batch", f"{ds}/bs{bs}", metric,
                                      [s[metric] for s in stats], seconds, rss_mb(),
                                      batch_size=bs, train_events=events))
            print(ds, bs, {k: round(v, 4) for k, v in stats[0].items()}, flush=True)
    print_table(rows)
    write_report(args.json, "benchmarks/pres_intra_batch.py", args, rows)


if __name__ == "__main__":
    run_main(main)
