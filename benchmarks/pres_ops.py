"""What PRES adds to one TGN training batch, operation by operation (CPU time per call).

The per-batch work that TGN+PRES does and plain TGN does not is a fixed set of small
operations. This script builds a :class:`~graphkit.temporal.PRES`-wrapped
:class:`~graphkit.temporal.MemoryTGN`, streams the first half of the training events through it
(no gradient: memory, increment statistics and neighbours as in the middle of an epoch), takes
the next batch of ``B`` events with one uniform negative each, and times every PRES-only
operation on that batch's real shapes, each in the implementation PRES uses on CPU and in the
torch one it replaced:

* ``read_steps``: the step count of each of the ``3B`` reads (Numba kernel; torch:
  :func:`~graphkit.temporal.event_graph.earlier_events`);
* ``step_increment``: :math:`\\gamma\\hat\\mu` of the batch's distinct nodes;
* ``skip_projection``: :math:`W_{\\mathrm{skip}}\\gamma\\hat\\mu` forward and its weight gradient;
* ``shifted_reads``: the per-read embeddings ``z[inv] + k * shift[inv]`` forward and backward
  (:func:`~graphkit.temporal.pres.shifted_reads`; torch: the expression itself); the row
  gather ``z[inv]`` that plain TGN does instead is ``gather_only``;
* ``coherence``: the coherence term's gradient into the updated memory rows, injected in
  closed form (:class:`~graphkit.temporal.pres._CoherenceGradient`, Numba and torch paths),
  against the earlier formulation, the masked term over every row the read touched and its
  autograd backward (``autograd``); ``none`` is the same backward call without the term;
* ``observe``: the per-event Welford update of the statistics after the batch (Numba; torch:
  :meth:`~graphkit.temporal.pres.PredictionCorrection.observe`) and the message counts it
  needs (``count_events``).

Calls are interleaved (one of each operation per repeat) and timed with the process's CPU
clock; rows report the median microseconds per call (``mean``, marked ``"statistic": "median"``),
with the sizes involved.

Example::

    python benchmarks/pres_ops.py --dataset uci enron --batch-sizes 200 800 --repeats 300 \\
        --json benchmarks/results/pres_ops_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

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
from graphkit.sampling import uniform_negative_destinations
from graphkit.temporal import PRES, MemoryTGN
from graphkit.temporal import pres as pres_module
from graphkit.temporal.event_graph import earlier_events
from graphkit.temporal.link_training import chronological_batches
from graphkit.temporal.pres import coherence_loss, shifted_reads
from graphkit.train import seed_everything


def _torch_path(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with PRES's Numba kernels switched off (its torch fallbacks)."""
    def run() -> object:
        saved, pres_module.WITH_NUMBA = pres_module.WITH_NUMBA, False
        try:
            return fn()
        finally:
            pres_module.WITH_NUMBA = saved
    return run


def batch_operations(model: PRES, src: torch.Tensor, dst: torch.Tensor, t: torch.Tensor,
                     neg: torch.Tensor, weight: float) -> tuple[dict[str, Callable], dict]:
    """The PRES-only operations of one training batch as callables, and the sizes involved.
    ``read_steps/*`` return the counts, ``shifted_reads/*`` the reads and the gradients of
    ``z`` and ``shift``, ``coherence/*`` (but ``none``) the gradient of the updated rows."""
    base = model.model
    mem, corr = base.memory, model.corrector
    ends = torch.cat([src, dst, neg])
    n_id, inv = torch.unique(ends, return_inverse=True)
    step = base._read_steps(src, dst, neg, ends)
    event = torch.arange(src.numel()).repeat(3)
    t_query = t.max() + 1
    all_id = base.event_graph.subgraph(n_id, t_query.expand(n_id.numel()))[0]
    with torch.no_grad():
        s_prev, s_new, _, has, update = mem._apply_pending(all_id, count=True)
    mu = mem.step_increment(n_id)
    lin_w = base.gnn.conv.lin_skip.weight
    dim = lin_w.size(0)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n_id.numel(), dim, generator=gen).requires_grad_()
    shift = torch.randn(n_id.numel(), dim, generator=gen).requires_grad_()
    grad_reads = torch.randn(inv.numel(), dim, generator=gen)
    logits = torch.zeros(src.numel(), requires_grad=True)
    new_rows = update.s_new.detach().clone().requires_grad_()
    all_new = s_new.detach().clone().requires_grad_()
    # what the batch's update_state flushes: its endpoints' pending messages
    flushed = torch.unique(torch.cat([src, dst]))
    with torch.no_grad():
        written = mem._apply_pending(flushed, count=True)[4]
    nodes = flushed.index_select(0, written.rows)
    pending = mem.pend_node[torch.isin(mem.pend_node, flushed)]
    pos = torch.searchsorted(flushed, pending)

    def read_steps_numba() -> object:
        return base._read_steps(src, dst, neg, ends)

    def projection() -> None:
        lin_w.grad = None
        F.linear(mu, lin_w).backward(torch.ones(n_id.numel(), dim))

    def reads(fn: Callable) -> Callable[[], tuple]:
        def run() -> tuple:
            z.grad = shift.grad = None
            out = fn()
            out.backward(grad_reads)
            return out, z.grad, shift.grad
        return run

    def coherence_closed_form() -> torch.Tensor:
        new_rows.grad = logits.grad = None
        pres_module._CoherenceGradient.apply(logits, new_rows, update.s_prev, weight).sum(
        ).backward()
        return new_rows.grad

    def coherence_autograd() -> torch.Tensor:
        all_new.grad = logits.grad = None
        (logits.sum() + weight * coherence_loss(all_new, s_prev, has)).backward()
        return all_new.grad.index_select(0, update.rows)

    def no_coherence() -> None:
        logits.grad = None
        logits.view_as(logits).sum().backward()

    def observe(path: str) -> Callable[[], None]:  # (the statistics keep accumulating)
        def run() -> None:
            if path == "numba":
                corr.observe_update(nodes, written.s_prev, written.s_new, written.events)
            else:
                corr.observe(nodes, written.s_new - written.s_prev, written.events)
        return run

    ops = {
        "read_steps/numba": read_steps_numba,
        "read_steps/torch": lambda: earlier_events(src, dst, ends, event),
        "step_increment": lambda: mem.step_increment(n_id),
        "skip_projection": projection,
        "shifted_reads/numba": reads(lambda: shifted_reads(z, shift, inv, step)),
        "shifted_reads/torch": reads(lambda: z.index_select(0, inv) + step.to(
            z).unsqueeze(-1) * shift.index_select(0, inv)),
        "gather_only/plain": reads(lambda: z.index_select(0, inv)),
        "coherence/numba": coherence_closed_form,
        "coherence/torch": _torch_path(coherence_closed_form),
        "coherence/autograd": coherence_autograd,
        "coherence/none": no_coherence,
        "observe/numba": observe("numba"),
        "observe/torch": observe("torch"),
        "count_events": lambda: torch.bincount(pos, minlength=flushed.numel()).index_select(
            0, written.rows),
    }
    sizes = {"reads": int(inv.numel()), "distinct_nodes": int(n_id.numel()),
             "memory_rows": int(all_id.numel()), "updated_rows": int(update.rows.numel()),
             "flushed_rows": int(written.rows.numel()), "dim": int(dim)}
    return ops, sizes


def main(argv: list[str] | None = None) -> None:
    # a run is one timed call of every operation (the median is reported)
    p = benchmark_parser(__doc__.splitlines()[0], runs=300, helps={
        "runs": "timed calls per operation (the median is reported)",
        "seed": "seed of the split, the model and the negatives"})
    p.add_argument("--dataset", type=dataset_of("temporal"), nargs="+", default=["uci", "enron"])
    p.add_argument("--batch-sizes", type=count(1), nargs="+", default=[200, 800])
    p.add_argument("--repeats", dest="runs", type=count(1), default=argparse.SUPPRESS,
                   help="the same as --runs: timed calls per operation")
    p.add_argument("--warmup", type=count(0), default=20)
    p.add_argument("--coherence-weight", type=real(0), default=0.1)
    p.add_argument("--threads", type=count(1), default=1)
    args = p.parse_args(argv)
    if args.device.partition(":")[0] != "cpu":  # the Numba kernels, timed on the CPU clock
        p.error(f"--device {args.device}: pres_ops.py times PRES's kernels on the CPU only "
                "(use cpu)")
    args.repeats = args.runs
    torch.set_num_threads(args.threads)
    print(vars(args))
    rows = []
    for ds in [QUICK_TEMPORAL] if args.quick else args.dataset:
        data = temporal_stream(ds, args.root, args.quick)
        split = chronological_split(data, seed=args.seed)
        idx = split.train_mask.nonzero().view(-1)
        pool = torch.unique(data.dst[idx])
        for bs in args.batch_sizes:
            seed_everything(args.seed)
            model = PRES(MemoryTGN(data.num_nodes, data.msg.size(-1)),
                         coherence_weight=args.coherence_weight).train()
            batches = list(chronological_batches(idx, bs))
            half = len(batches) // 2
            with torch.no_grad():
                for b in batches[:half]:
                    model.update_state(data.src[b], data.dst[b], data.t[b], data.msg[b])
            b = batches[half]
            neg = uniform_negative_destinations(b.numel(), pool,
                                                torch.Generator().manual_seed(args.seed))
            ops, sizes = batch_operations(model, data.src[b], data.dst[b], data.t[b], neg,
                                          args.coherence_weight)
            times: dict[str, list[float]] = {name: [] for name in ops}
            t0 = time.perf_counter()
            for r in range(args.warmup + args.repeats):
                for name, fn in ops.items():
                    c0 = time.process_time()
                    fn()
                    if r >= args.warmup:
                        times[name].append((time.process_time() - c0) * 1e6)
            seconds = time.perf_counter() - t0
            for name, values in times.items():
                row = summarize(name, f"{ds}/bs{bs}", "cpu_us", values, seconds, rss_mb(),
                                statistic="median", batch_size=bs, threads=args.threads, **sizes)
                rows.append(row)
            print(f"{ds} bs {bs} {sizes}: " + ", ".join(
                f"{name} {statistics.median(v):.1f}" for name, v in times.items()), flush=True)
            write_report(args.json, "benchmarks/pres_ops.py", args, rows)
    print_table(rows)
    write_report(args.json, "benchmarks/pres_ops.py", args, rows)


if __name__ == "__main__":
    run_main(main)
