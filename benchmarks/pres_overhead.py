"""PRES training cost on a shared machine: interleaved epochs of TGN and TGN+PRES.

Timing runs one after the other on a machine that other jobs load mixes the load's drift into
the comparison. Here every configuration (``<model>`` and ``<model>+pres`` at each temporal
batch size) gets a model and an optimiser, and the script trains one epoch of each in turn
(state reset before every epoch, :func:`graphkit.temporal.link_training.train_epoch`), for
``--rounds`` rounds after ``--warmup`` unrecorded ones; round ``r`` starts at configuration
``r`` modulo their number, so that no configuration always runs right after the same one.
Rows (marked ``"statistic": "median"``) report the median training CPU time per epoch
(``mean``, metric ``cpu_seconds``: the process's CPU time, which the load hardly changes; use
``--threads 1``) and the median wall time (metric ``seconds``);
``pres_overhead`` is the median over rounds of ``PRES / plain - 1`` at the same batch size,
``vs_first_plain`` the median ratio to the plain model at the first batch size of the same
round (``wall_*``: the same from wall times), ``minor_faults`` the median page faults of an
epoch.

``--malloc-pad-mb M`` (Linux with glibc) makes the C allocator keep up to ``M`` MiB of freed
memory (``mallopt``: ``M_TOP_PAD`` and ``M_TRIM_THRESHOLD``; ``M_MMAP_THRESHOLD`` 32 MiB)
instead of handing it back to the kernel after every batch. PyTorch's CPU tensors are plain
``malloc`` blocks: with glibc's defaults the temporaries of a large batch (a batch of 800 on
UCI: attention tensors of a few MiB) are returned to the kernel when freed and page-faulted in
again, zeroed, at the next batch, so that the elementwise work of a large batch costs more per
edge than that of a small one (``minor_faults`` shows it). The PyTorch performance tuning guide
recommends an allocator that keeps freed memory (jemalloc, tcmalloc) for the same reason;
``0`` keeps glibc's defaults. Results are bit-identical either way.

Example::

    python benchmarks/pres_overhead.py --model tgn --dataset uci enron --batch-sizes 200 800 \\
        --rounds 9 --malloc-pad-mb 64 --json benchmarks/results/pres_overhead_cpu_pad.json
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import resource
import statistics
import time

import torch

from graphkit.benchmarking import (
    QUICK_TEMPORAL,
    benchmark_parser,
    count,
    dataset_of,
    print_table,
    real,
    rss_mb,
    run_main,
    summarize,
    temporal_stream,
    write_report,
)
from graphkit.data.temporal import chronological_split
from graphkit.temporal import APAN, JODIE, PRES, MemoryTGN
from graphkit.temporal.link_training import train_epoch
from graphkit.train import seed_everything

BASES = {"tgn": MemoryTGN, "jodie": JODIE, "apan": APAN}

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory(mb: int) -> bool:
    """Let glibc's ``malloc`` keep up to ``mb`` MiB of freed memory for reuse (padding of the
    heap top and trim threshold; blocks up to 32 MiB from the heap, not ``mmap``). Returns
    whether every setting was accepted (``False`` without glibc, e.g. on macOS or musl)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    size = int(mb) << 20
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 2 * size), (M_TOP_PAD, size)))


def minor_faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv: list[str] | None = None) -> None:
    # a run is one recorded round (one epoch of every configuration, seed --seed + round)
    p = benchmark_parser(__doc__.splitlines()[0], runs=5, helps={
        "runs": "recorded rounds, one epoch of every configuration each (medians reported)",
        "seed": "seed of the split and the models; round r draws negatives with seed + r"})
    p.add_argument("--model", choices=sorted(BASES), default="tgn")
    p.add_argument("--dataset", type=dataset_of("temporal"), nargs="+", default=["uci", "enron"])
    p.add_argument("--batch-sizes", type=count(1), nargs="+", default=[200, 800])
    p.add_argument("--rounds", dest="runs", type=count(1), default=argparse.SUPPRESS,
                   help="the same as --runs: recorded rounds")
    p.add_argument("--warmup", type=count(0), default=1, help="unrecorded rounds first")
    p.add_argument("--lr", type=real(0, open_low=True), default=1e-3)
    p.add_argument("--gamma", type=real(0, 1), default=1.0)
    p.add_argument("--coherence-weight", type=real(0), default=0.1)
    p.add_argument("--threads", type=count(1), default=1)
    p.add_argument("--malloc-pad-mb", type=int, default=0,
                   help="let glibc keep this much freed memory (0: its defaults)")
    args = p.parse_args(argv)
    args.rounds = args.runs
    if args.malloc_pad_mb < 0:
        p.error("--malloc-pad-mb must be non-negative")
    args.malloc_tuned = keep_freed_memory(args.malloc_pad_mb) if args.malloc_pad_mb else False
    if args.malloc_pad_mb and not args.malloc_tuned:
        print("--malloc-pad-mb: glibc's mallopt is not available here, allocator unchanged")
    torch.set_num_threads(args.threads)
    print(vars(args))
    rows = []
    for ds in [QUICK_TEMPORAL] if args.quick else args.dataset:  # --quick: one small stream
        data = temporal_stream(ds, args.root, args.quick)
        split = chronological_split(data, seed=args.seed)
        idx = split.train_mask.nonzero().view(-1)
        pool = torch.unique(data.dst[idx])
        configs = [(bs, pres) for bs in args.batch_sizes for pres in (False, True)]
        models = {}
        for bs, pres in configs:
            seed_everything(args.seed)
            model = BASES[args.model](data.num_nodes, data.msg.size(-1))
            model = PRES(model, gamma=args.gamma, coherence_weight=args.coherence_weight) \
                if pres else model
            model = model.to(args.device)
            models[bs, pres] = (model, torch.optim.Adam(model.parameters(), lr=args.lr))
        cpu: dict[tuple, list[float]] = {c: [] for c in configs}
        wall: dict[tuple, list[float]] = {c: [] for c in configs}
        faults: dict[tuple, list[int]] = {c: [] for c in configs}
        for r in range(args.warmup + args.rounds):
            if r == args.warmup:
                for c in configs:
                    cpu[c].clear()
                    wall[c].clear()
                    faults[c].clear()
            shift = r % len(configs)  # rotate the order: no fixed neighbour in time
            for c in configs[shift:] + configs[:shift]:
                model, opt = models[c]
                model.reset_state()
                gen = torch.Generator().manual_seed(args.seed + r)
                f0, t0, c0 = minor_faults(), time.perf_counter(), time.process_time()
                train_epoch(model, opt, data, idx, c[0], pool, gen)
                wall[c].append(time.perf_counter() - t0)
                cpu[c].append(time.process_time() - c0)
                faults[c].append(minor_faults() - f0)
            print(f"{ds} round {r}: " + ", ".join(
                f"bs {bs}{'+pres' if pres else ''} {cpu[bs, pres][-1]:.2f} s CPU"
                for bs, pres in configs), flush=True)
        first = (args.batch_sizes[0], False)
        for bs, pres in configs:
            name = args.model + ("+pres" if pres else "")
            plain = (bs, False)
            extra = {
                "batch_size": bs, "rounds": args.rounds, "threads": args.threads,
                "pres_overhead": statistics.median(a / b for a, b in zip(cpu[bs, pres],
                                                                         cpu[plain])) - 1,
                "vs_first_plain": statistics.median(a / b for a, b in zip(cpu[bs, pres],
                                                                          cpu[first])),
                "wall_pres_overhead": statistics.median(
                    a / b for a, b in zip(wall[bs, pres], wall[plain])) - 1,
                "wall_vs_first_plain": statistics.median(
                    a / b for a, b in zip(wall[bs, pres], wall[first])),
                "minor_faults": statistics.median(faults[bs, pres]),
            }
            for metric, values in (("cpu_seconds", cpu[bs, pres]), ("seconds", wall[bs, pres])):
                row = summarize(name, f"{ds}/bs{bs}", metric, values, sum(wall[bs, pres]),
                                rss_mb(), statistic="median", **extra)  # robust to load spikes
                rows.append(row)
        write_report(args.json, "benchmarks/pres_overhead.py", args, rows)
    print_table(rows)
    write_report(args.json, "benchmarks/pres_overhead.py", args, rows)


if __name__ == "__main__":
    run_main(main)
