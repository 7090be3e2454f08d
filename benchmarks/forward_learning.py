"""ForwardGNN: forward learning (FF-LA, FF-VN, SF, SF-Top2Loss, SF-Top2Input) against backprop.

Reproduces the protocol of `Park et al., "Forward Learning of Graph Neural Networks"
<https://arxiv.org/abs/2403.11004>`_ (ICLR 2024; facebookresearch/forwardgnn): row-normalised
features; node classification on the 64/16/20 splits (KFold seed 101, validation seeds
``127 * i``), link prediction on ``RandomLinkSplit`` edge splits (seed ``101 * i``, 1:1 fixed
negatives); run ``i`` uses split ``i`` and seed ``seed + 3 * i`` (official: 10100 + 3i); hidden
128, 4 layers, Adam lr 1e-3 (weight decay 5e-4), validation every 2 epochs, early stopping with
best-checkpoint restore. Every scheme runs in the same harness, ``bp`` included.

    python benchmarks/forward_learning.py --scheme sf bp --model gcn --task node \\
        --dataset CiteSeer Cora prognn-cora_ml --runs 5 --json benchmarks/results/fl_node.json
    python benchmarks/forward_learning.py --memory --dataset Cora --json PATH

Runs can be spread over processes (``--splits 0``, ``--splits 1``, ...) and pooled with
``--merge A.json B.json --json OUT``. On the shared 2-core development machine the committed
results use a reduced budget, recorded in each report's config (``--epochs 60 --patience 5
--lr 0.01`` for the layer-wise schemes, ``--epochs 80 --patience 20 --lr 0.01`` for ``bp``,
whose validation accuracy stays flat for its first epochs).

``--memory`` measures the peak memory of training ``sf`` and ``bp`` for each ``--model`` (4
layers), each in a fresh process, with the library's trainer: ``fit`` with ``--memory-epochs``
epochs (default 2: per layer for ``sf``, of the whole model for ``bp``; validation every 2),
after one identical warm-up fit. On CPU: the tensor-level peak of the fit (profiler allocator
events, tensors that existed before are not counted) and its peak RSS growth (``VmHWM`` reset
before the fit, free heap returned with ``malloc_trim``); on a GPU the peak allocated CUDA
memory (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``) and its part
above what was allocated before the fit (data, model). ``sf`` keeps bag-of-words inputs sparse
(``--dense-input``: dense) and propagates a training step over the edges into its loss rows
only (``SingleForward(row_split=True)``, the default); the ``sf-whole`` row is ``sf`` over the
whole graph at every step and ``sf-cache`` (GCN) ``sf`` on the propagation cache.
``--adjacency sparse`` propagates both schemes over a sparse CSR adjacency built once per fit
instead of the edge list. ``--memory-repeats N`` measures every scheme N times, interleaved,
each in its own process, and reports medians (RSS growth moves by a few hundred KiB between
processes, as much as the ``sf`` / ``bp`` difference on the small graphs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import NormalizeFeatures

from graphkit.benchmarking import (
    Row,
    benchmark_parser,
    count,
    dataset_name,
    links_only,
    measure,
    print_table,
    read_report,
    real,
    report_of,
    rss_mb,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load, registry
from graphkit.data.hypergraph import clique_expansion
from graphkit.metrics import accuracy, roc_auc
from graphkit.train import seed_everything
from graphkit.train.forward import (
    MODELS,
    SCHEMES,
    LayerwiseTrainer,
    link_model,
    link_split,
    node_model,
    node_split,
)

#: schemes whose training steps split the propagation by rows (``row_split``)
ROW_SPLIT_SCHEMES = ("sf", "sf-top2loss", "sf-top2input")


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=5, helps={
        "runs": "data splits 0 .. runs-1 (see --splits)",
        "seed": "base seed; split r trains with seed + 3r"})
    own_report = report_of("benchmarks/forward_learning.py")  # --merge-style inputs
    p.set_defaults(seed=10100)
    p.add_argument("--scheme", nargs="+", default=["sf", "bp"], choices=SCHEMES)
    p.add_argument("--model", nargs="+", default=["gcn"], choices=MODELS)
    p.add_argument("--task", default="node", choices=["node", "link"])
    p.add_argument("--dataset", type=dataset_spec, nargs="+",
                   default=["CiteSeer", "Cora", "prognn-cora_ml"],
                   help="any graphkit.data name, optionally NAME:key=value,... options")
    p.add_argument("--hidden", type=count(1), default=128)
    p.add_argument("--layers", type=count(1), default=4)
    p.add_argument("--lr", type=real(0, open_low=True), default=1e-3)
    p.add_argument("--epochs", type=count(1), default=1000,
                   help="maximum epochs per layer (per run for bp and top-down schemes)")
    p.add_argument("--val-every", type=count(1), default=2)
    p.add_argument("--patience", type=count(1), default=100, help="validation checks")
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads")
    p.add_argument("--splits", type=count(0), nargs="+", default=None,
                   help="run only these split indices (default: 0 .. runs-1), e.g. to spread "
                        "the runs over processes and --merge their reports")
    p.add_argument("--merge", type=own_report, nargs="+", metavar="JSON", default=None,
                   help="combine the rows of these reports (same system, dataset, metric) into "
                        "one report at --json; values of different splits are pooled")
    p.add_argument("--ff-trace", action="store_true",
                   help="ff-la / ff-vn: also record, per run and layer, the validation score "
                        "of every check and the mean positive and negative goodness of the "
                        "training nodes at every epoch")
    p.add_argument("--no-stop-layers", type=count(1), nargs="+", default=[], metavar="L",
                   help="diagnosis: train these layers (1-based) for the whole --epochs budget "
                        "without early stopping; the trace then shows where --patience would "
                        "have stopped them")
    p.add_argument("--whole-graph", action="store_true",
                   help="sf, sf-top2loss, sf-top2input: propagate every training step over the "
                        "whole graph (row_split=False; the same results, the previous default)")
    p.add_argument("--bottom-up", choices=("normalized", "raw"), default="normalized",
                   help="sf-top2loss: chain the layers of the bottom-up pass (initial states, "
                        "every evaluation) on normalised outputs, or on raw outputs as the "
                        "official GNNTop2LossSF.bottom_up (SFTop2Loss(bottom_up=...))")
    p.add_argument("--memory", action="store_true",
                   help="measure the peak memory of one training epoch of sf and bp instead")
    p.add_argument("--adjacency", default="edges", choices=["edges", "sparse"],
                   help="--memory: propagate over the edge list (per-edge messages) or a sparse "
                        "CSR adjacency (sparse-matrix products), for bp and sf alike")
    p.add_argument("--memory-epochs", type=count(1), default=2,
                   help="--memory: epochs of the measured fit (per layer for sf; validation "
                        "every 2 epochs)")
    p.add_argument("--memory-repeats", type=count(1), default=1,
                   help="--memory: fresh-process measurements per scheme, interleaved (bp, sf, "
                        "..., bp, sf, ...); each figure is the median over them")
    p.add_argument("--memory-trace", action="store_true",
                   help="--memory on CPU: also record what is alive at the tensor peak (each "
                        "block attributed to the frames and op that allocated it)")
    p.add_argument("--dense-input", action="store_true",
                   help="--memory: sf keeps its first-layer input dense even for bag-of-words "
                        "features (SingleForward(sparse_input=False))")
    p.add_argument("--memory-worker", nargs=2, metavar=("SCHEME", "DATASET"),
                   help=argparse_suppress())
    args = p.parse_args()
    for spec in args.dataset:
        problem = dataset_problem(spec, args.task)
        if problem:
            p.error(problem)
    return args


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def _spec_options(spec: str) -> tuple[str, dict]:
    name, _, opts = spec.partition(":")
    kwargs = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = float(value) if "." in value else int(value)
    return name, kwargs


def dataset_spec(text: str) -> str:
    """argparse type of ``--dataset``: the name is known and the options are numbers, checked
    before the first dataset runs (a typo in the last one failed after the others' runs)."""
    name, _, _ = text.partition(":")
    dataset_name(name)  # an ArgumentTypeError naming the unknown dataset
    try:
        _spec_options(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: options are key=number pairs, e.g. "
                                         "csbm:num_nodes=50000") from None
    return text


#: featureless graphs up to this size get dense identity features (20,000 nodes: 1.6 GB)
IDENTITY_FEATURES_MAX_NODES = 20_000


def dataset_problem(spec: str, task: str) -> str | None:
    """Why ``forward_learning.py --task task`` cannot run the dataset ``spec`` (``None``: it
    can), from its registry entry, so a run refuses it before the first dataset trains."""
    kind = registry.get(spec.partition(":")[0]).task
    if kind.startswith("temporal"):
        return (f"{spec} is an event stream ({kind}); forward learning trains on a static "
                f"graph (benchmarks/temporal_link.py runs event streams)")
    if task == "node" and ("multi-label" in kind or "link" in kind):
        return (f"{spec} has no single class per node ({kind}); the node task needs one, "
                f"--task link runs it")
    return None


def load_dataset(spec: str, root: str | None) -> Data:
    """``NAME`` or ``NAME:key=value,...`` (integer/float options, e.g. ``csbm:num_nodes=50000``),
    with row-normalised features. A hypergraph becomes its clique expansion and a graph without
    node features gets identity features (one-hot node ids, as GCN uses for featureless
    graphs); both are announced."""
    name, kwargs = _spec_options(spec)
    data = load(name, root=root, **kwargs)
    if not isinstance(data, Data):
        data = data[0]
    if data.get("edge_index") is None and data.get("hyperedge_index") is not None:
        edge_index, _ = clique_expansion(data.hyperedge_index, data.num_nodes)
        data = Data(x=data.get("x"), edge_index=edge_index, y=data.get("y"),
                    num_nodes=data.num_nodes)
        print(f"{spec}: a hypergraph, run on its clique expansion ({edge_index.size(1)} edges)")
    if data.get("x") is None or data.x.size(-1) == 0:
        if data.num_nodes > IDENTITY_FEATURES_MAX_NODES:  # a dense N x N identity
            raise SystemExit(f"{spec}: no node features, and {data.num_nodes} nodes are too "
                             f"many for identity features (at most "
                             f"{IDENTITY_FEATURES_MAX_NODES})")
        data = data.clone()
        data.x = torch.eye(data.num_nodes)
        print(f"{spec}: no node features, identity features ({data.num_nodes} wide) instead")
    return NormalizeFeatures()(data)


class NoStopTrainer(LayerwiseTrainer):
    """A :class:`LayerwiseTrainer` whose ``fit`` calls ``no_stop`` (0-based, counted over the
    calls, i.e. the layers of a layer-wise scheme) run the whole epoch budget."""

    def __init__(self, *args, no_stop: set[int] = frozenset(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.no_stop, self.calls = set(no_stop), 0

    def fit(self, module, epoch_fn, score_fn):
        patience = self.patience
        if self.calls in self.no_stop:
            self.patience = self.epochs  # never reached: one check per val_every epochs
        self.calls += 1
        try:
            return super().fit(module, epoch_fn, score_fn)
        finally:
            self.patience = patience


def stop_point(scores: list[float], patience: int) -> tuple[int, int]:
    """``(checks run, best check)`` (1-based) of early stopping with ``patience`` on the
    validation ``scores`` of a run that was not stopped (strict improvement, as in
    :class:`~graphkit.train.forward.EarlyStopping`)."""
    best, best_i, bad = None, 0, 0
    for i, s in enumerate(scores, 1):
        if best is None or s > best:
            best, best_i, bad = s, i, 0
        else:
            bad += 1
            if bad >= patience:
                return i, best_i
    return len(scores), best_i


def ff_trace(net, logs, args) -> list[dict]:
    """Per layer: validation scores, per-epoch positive / negative mean goodness and what they
    show (the epochs with a positive gap, where early stopping stops and what it restores)."""
    out = []
    for l, (log, trace) in enumerate(zip(logs, net.goodness_trace)):
        gaps = [p - n for p, n in trace]
        checks, best = stop_point(log.val_scores, args.patience)
        stop = checks * args.val_every  # epochs trained under --patience
        positive = [e + 1 for e, g in enumerate(gaps) if g > 0]
        out.append({
            "layer": l + 1, "epochs": log.epochs, "no_stop": l + 1 in args.no_stop_layers,
            "stop_epoch_with_patience": stop, "best_epoch_with_patience": best * args.val_every,
            "gap_at_stop": gaps[stop - 1], "gap_first": gaps[0], "gap_last": gaps[-1],
            "gap_max": max(gaps), "gap_max_epoch": gaps.index(max(gaps)) + 1,
            "positive_epochs": len(positive), "first_positive_epoch": positive[0] if positive
            else None, "positive_epochs_before_stop": sum(e <= stop for e in positive),
            "val_scores": [round(v, 6) for v in log.val_scores],
            "pos_goodness": [round(p, 7) for p, _ in trace],
            "neg_goodness": [round(n, 7) for _, n in trace]})
    return out


def run_node(scheme: str, model: str, data: Data, r: int, args) -> dict:
    train, val, test = node_split(data.num_nodes, r)
    seed_everything(args.seed + 3 * r)
    kwargs = {"row_split": False} if args.whole_graph and scheme in ROW_SPLIT_SCHEMES else {}
    if scheme == "sf-top2loss" and args.bottom_up != "normalized":
        kwargs["bottom_up"] = args.bottom_up
    net = node_model(scheme, model, data.num_features, args.hidden, int(data.y.max()) + 1,
                     args.layers, **kwargs).to(args.device)
    data = data.to(args.device)
    trainer = NoStopTrainer(args.epochs, args.lr, 5e-4, args.val_every, args.patience,
                            no_stop={l - 1 for l in args.no_stop_layers})
    t0 = time.perf_counter()
    logs = net.fit(data, train.to(args.device), val.to(args.device), trainer)
    fit_seconds = time.perf_counter() - t0
    test = test.to(args.device)
    per_layer = [accuracy(s, data.y[test]) for s in net.layer_scores(test, (train | val).to(
        args.device))]
    trace = ff_trace(net, logs, args) if args.ff_trace and hasattr(net, "goodness_trace") \
        else None
    return {"value": per_layer[-1], "per_layer": per_layer,
            "epochs": [log.epochs for log in logs],
            # the last stopping log's best validation score: what selects between variants
            "val_best": max(logs[-1].val_scores) if logs[-1].val_scores else None,
            "goodness_gap": getattr(net, "goodness_gap", None),
            "goodness_gap_last": getattr(net, "goodness_gap_last", None), "trace": trace,
            "fit_seconds": fit_seconds}


def run_link(scheme: str, model: str, data: Data, r: int, args) -> dict:
    train, val, test = (d.to(args.device) for d in link_split(data, r))
    seed_everything(args.seed + 3 * r)
    net = link_model(scheme, model, data.num_features, args.hidden, args.layers).to(args.device)
    # the official scripts' weight decay of each scheme (none for the top-down link script)
    trainer = LayerwiseTrainer(args.epochs, args.lr, net.weight_decay, args.val_every,
                               args.patience)
    logs = net.fit(train, val, trainer)
    per_layer = [roc_auc(test.edge_label, s) for s in net.layer_scores(test)]
    return {"value": per_layer[-1], "per_layer": per_layer,
            "epochs": [log.epochs for log in logs], "val_best": None, "goodness_gap": None,
            "goodness_gap_last": None, "trace": None, "fit_seconds": None}


def gap_stats(runs: list[list[float]], key: str = "goodness_gap") -> dict:
    """FF goodness gaps (positive minus negative, training nodes) of every run and layer, with
    their minimum and mean over runs and the number of runs in which the gap is positive.
    ``key="goodness_gap"``: at the restored best-validation checkpoint of each layer;
    ``"goodness_gap_last"``: at each layer's last training step."""
    layers = range(len(runs[0]))
    return {f"{key}_runs": runs,
            f"{key}_min_per_layer": [min(g[l] for g in runs) for l in layers],
            f"{key}_mean_per_layer": [statistics.fmean(g[l] for g in runs) for l in layers],
            f"{key}_positive_runs": [sum(g[l] > 0 for g in runs) for l in layers]}


def benchmark(args) -> list:
    """Every (dataset, model, scheme); the report is rewritten after each row."""
    rows = []
    metric = "accuracy" if args.task == "node" else "roc_auc"
    run = run_node if args.task == "node" else run_link
    for name in args.dataset:
        data = load_dataset(name, args.root)
        if args.task == "link":
            data = links_only(data, name)
        for model in args.model:
            for scheme in args.scheme:
                with measure(args.device) as m:
                    results = []
                    for r in args.splits:
                        t0 = time.perf_counter()
                        results.append(run(scheme, model, data, r, args))
                        print(f"{scheme} {model} {name} run {r}: {metric} "
                              f"{results[-1]['value']:.4f} per layer "
                              f"{[round(v, 4) for v in results[-1]['per_layer']]} epochs "
                              f"{results[-1]['epochs']} ({time.perf_counter() - t0:.0f} s)",
                              flush=True)
                layers = len(results[0]["per_layer"])
                extra = {"per_layer_mean": [statistics.fmean(x["per_layer"][l] for x in results)
                                            for l in range(layers)],
                         "epochs_mean": [statistics.fmean(x["epochs"][l] for x in results)
                                         for l in range(len(results[0]["epochs"]))],
                         "run_values": [x["value"] for x in results]}
                for key in ("goodness_gap", "goodness_gap_last"):
                    if results[0][key] is not None:
                        extra.update(gap_stats([x[key] for x in results], key))
                if results[0]["val_best"] is not None:
                    extra["val_best_runs"] = [x["val_best"] for x in results]
                    extra["val_best_mean"] = statistics.fmean(extra["val_best_runs"])
                if results[0]["fit_seconds"] is not None:  # fit() alone, validation included
                    extra["fit_seconds_runs"] = [x["fit_seconds"] for x in results]
                if results[0]["trace"] is not None:
                    extra["trace_runs"] = [{"split": r, "layers": x["trace"]}
                                           for r, x in zip(args.splits, results)]
                tag = ", whole graph" if args.whole_graph and scheme in ROW_SPLIT_SCHEMES else ""
                if scheme == "sf-top2loss" and args.bottom_up != "normalized":
                    tag += f", {args.bottom_up} bottom-up"
                rows.append(summarize(f"{scheme} ({model}{tag})", name, metric,
                                      [x["value"] for x in results], m.seconds, m.peak_rss_mb,
                                      task=args.task, **extra))
                write_report(args.json, "benchmarks/forward_learning.py", args, rows)
    return rows


def memory_worker(scheme: str, name: str, args) -> dict:
    """The peak memory of training ``scheme`` in this (fresh) process, with the library's own
    trainer: ``net.fit`` with ``--memory-epochs`` epochs (per layer for ``sf``, of the whole
    model for ``bp``) and validation every 2 epochs, so the measured block contains everything
    fit() does (``sf``: the augmented input, each layer's optimiser and steps, its validation
    and its hand-off to the next layer). ``sf-cache`` is ``sf`` whose GCN layers train on their
    cached propagation, ``sf-whole`` ``sf`` propagating over the whole graph at every step. A
    first fit of an identically initialised model runs before the measured one (lazily
    initialised library state); on the CPU the freed heap is then returned to the system
    (``malloc_trim``) and the peak RSS (``VmHWM``) reset, so ``epoch_rss_mb`` is the RSS growth
    of the measured fit; its tensor-level peak is read in a third fit."""
    import gc

    data = load_dataset(name, args.root).to(args.device)
    train, val, _ = (m.to(args.device) for m in node_split(data.num_nodes, 0))
    num_classes = int(data.y.max()) + 1
    kwargs = {"adjacency": args.adjacency}
    if scheme != "bp":
        kwargs["sparse_input"] = not args.dense_input
        kwargs["cache_propagation"] = scheme == "sf-cache"
        kwargs["row_split"] = scheme != "sf-whole"
    trainer = LayerwiseTrainer(epochs=args.memory_epochs, lr=args.lr, val_every=2,
                               patience=100)

    def make():
        seed_everything(args.seed)
        return node_model(scheme.split("-")[0], args.model[0], data.num_features,
                          args.hidden, num_classes, args.layers, **kwargs).to(args.device)

    make().fit(data, train, val, trainer)  # warm-up (kernels, workspaces, allocator pools)
    gc.collect()
    cuda = torch.device(args.device).type == "cuda"
    net = make()
    if not cuda:
        release_free_heap()
    base = rss_mb()
    kernel_peak = reset_peak_rss()
    base_cuda = torch.cuda.memory_allocated(args.device) / 2**20 if cuda else None
    with measure(args.device) as m:
        net.fit(data, train, val, trainer)
    # the sampled peak alone where the kernel's could not be reset (it may predate this fit)
    peak_rss = max(m.peak_rss_mb, peak_rss_mb()) if kernel_peak else m.peak_rss_mb
    del net
    gc.collect()
    tensor_mb, breakdown = None, {}
    if not cuda:
        net = make()
        tensor_mb = cpu_tensor_peak_mb(lambda: net.fit(data, train, val, trainer))
        if args.memory_trace:
            del net
            gc.collect()
            net = make()
            _, breakdown = cpu_tensor_peak_mb(lambda: net.fit(data, train, val, trainer),
                                              trace=True)
    return {**breakdown, "peak_rss_mb": peak_rss, "epoch_rss_mb": peak_rss - base,
            "peak_cuda_mb": m.peak_cuda_mb, "resident_cuda_mb": base_cuda,
            "epoch_cuda_mb": None if base_cuda is None else m.peak_cuda_mb - base_cuda,
            "epoch_tensor_mb": tensor_mb, "seconds": m.seconds}


def release_free_heap() -> None:
    """Return the C heap's free memory to the system (glibc ``malloc_trim``; no-op elsewhere),
    so that a later RSS growth measures new allocations, not reused free pages."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to return
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak_rss() -> bool:
    """Reset the kernel's record of this process's peak RSS (``VmHWM``; Linux only); ``False``
    where it cannot be reset, so that the caller does not read an older peak as this one."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """``VmHWM``, the peak RSS since the last :func:`reset_peak_rss`, in MiB (0 if unknown)."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_tensor_peak_mb(fn, trace: bool = False):
    """Peak of the CPU tensor memory allocated by ``fn()`` and not yet freed, in MiB.

    Read from the profiler's allocator events (``profile_memory=True``): each ``[memory]`` event
    carries the running total of the bytes the c10 CPU allocator handed out since profiling
    began, net of their frees, so tensors that existed before (data, weights, optimiser state)
    are not counted. Memory that libraries allocate outside that allocator is not seen.

    With ``trace=True`` returns ``(peak, breakdown)``: the events are replayed to the peak and
    every block alive then is attributed to the Python frames and op that allocated it;
    ``breakdown`` lists ``[MiB, blocks, where]`` per allocation site, largest first, and the
    site of the peak itself.
    """
    import os
    import tempfile

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                 with_stack=trace) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    mem = sorted((e for e in events
                  if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0),
                 key=lambda e: e["ts"])
    peak = max((e["args"]["Total Allocated"] for e in mem), default=0) / 2**20
    if not trace:
        return peak
    alive, at_peak, best = {}, {}, -1
    for e in mem:
        a = e["args"]
        if a["Bytes"] > 0:
            alive[a["Addr"]] = (a["Bytes"], e["ts"])
        else:
            alive.pop(a["Addr"], None)
        if a["Total Allocated"] > best:
            best, at_peak, peak_ts = a["Total Allocated"], dict(alive), e["ts"]
    spans = sorted((e for e in events if e.get("ph") == "X" and "dur" in e),
                   key=lambda e: e["ts"])

    def site(ts: float) -> str:
        """The innermost library frames and op around time ``ts``."""
        names = [e["name"] for e in spans if e["ts"] <= ts <= e["ts"] + e["dur"]]
        keep = [n.split("/")[-1] for n in names
                if "graphkit" in n or "torch_geometric" in n or "forward_learning" in n
                or n.startswith("aten::")]
        frames = [n for n in keep if not n.startswith("aten::")][-3:]
        ops = [n for n in keep if n.startswith("aten::")][:1]
        return " > ".join(frames + ops)

    groups: dict[str, list] = {}
    for size, ts in at_peak.values():
        g = groups.setdefault(site(ts), [0.0, 0])
        g[0] += size / 2**20
        g[1] += 1
    breakdown = sorted(([round(mb, 3), n, where] for where, (mb, n) in groups.items()),
                       reverse=True)
    return peak, {"peak_site": site(peak_ts), "alive_at_peak": breakdown[:12]}


def memory(args) -> list:
    rows = []
    for name in args.dataset:
        for model in args.model:
            rows += memory_rows(name, model, args)
    return rows


def median_measurements(runs: list[dict]) -> dict:
    """One worker report from ``runs`` (repeats of one scheme): the median of every numeric
    figure (``None`` stays ``None``), the other fields of the first run, and every run's
    tensor and RSS figures under ``*_repeats``."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in runs)
    if len(runs) > 1:
        for key in ("epoch_tensor_mb", "epoch_rss_mb", "peak_cuda_mb"):
            if runs[0].get(key) is not None:
                out[f"{key}_repeats"] = [r[key] for r in runs]
    return out


def memory_rows(name: str, model: str, args) -> list:
    """``bp`` and ``sf`` rows of one dataset and convolution, each measured in a fresh process
    (``--memory-repeats`` times, interleaved, medians reported)."""
    repeats = args.memory_repeats
    if repeats < 1:
        raise ValueError(f"--memory-repeats must be >= 1, got {repeats}")
    runs: dict[str, list] = {}
    edges = args.adjacency == "edges"
    schemes = ("bp", "sf") + (("sf-whole",) if edges else ()) + (
        ("sf-cache",) if edges and model == "gcn" else ())
    for scheme in [s for _ in range(repeats) for s in schemes]:
        cmd = [sys.executable, __file__, "--memory-worker", scheme, name, "--model", model,
               "--device", args.device, "--hidden", str(args.hidden), "--layers",
               str(args.layers), "--threads", str(args.threads), "--adjacency", args.adjacency,
               "--memory-epochs", str(args.memory_epochs), "--seed", str(args.seed)]
        if args.dense_input:
            cmd.append("--dense-input")
        if args.memory_trace:
            cmd.append("--memory-trace")
        if args.root:
            cmd += ["--root", args.root]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:  # report it and go on with the other schemes
            print(f"{name} {model} {scheme}: worker failed (rc {proc.returncode}):\n"
                  + "\n".join(proc.stderr.strip().splitlines()[-15:]), flush=True)
            if scheme in ("bp", "sf"):
                return []
            continue
        runs.setdefault(scheme, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = {scheme: median_measurements(r) for scheme, r in runs.items()}
    schemes = tuple(out)
    cuda = out["sf"]["peak_cuda_mb"] is not None
    key = "peak_cuda_mb" if cuda else "epoch_tensor_mb"
    ratios = {"sf_over_bp": out["sf"][key] / out["bp"][key]}
    for scheme in ("sf-whole", "sf-cache"):
        if scheme in out:
            ratios[f"{scheme.replace('-', '_')}_over_bp"] = out[scheme][key] / out["bp"][key]
    extra = "epoch_cuda_mb" if cuda else "epoch_rss_mb"
    if out["bp"][extra] > 0:  # CUDA: the part allocated by the epoch itself; CPU: RSS growth
        for scheme in schemes[1:]:
            tag = scheme.replace("-", "_")
            ratios[f"{tag}_over_bp_{extra}"] = out[scheme][extra] / out["bp"][extra]
    rows = []
    for scheme in schemes:
        o = out[scheme]
        tag = ("" if args.adjacency == "edges" else ", sparse adjacency") + (
            ", dense input" if args.dense_input else "")
        system = f"{scheme} ({model}{tag}, {args.memory_epochs}-epoch fit)"
        rows.append(summarize(system, name, f"memory_{key}",
                              [o[key]], o["seconds"], o["peak_rss_mb"], **ratios,
                              **{k: o[k] for k in ("peak_cuda_mb", "resident_cuda_mb",
                                                   "epoch_cuda_mb", "epoch_tensor_mb",
                                                   "epoch_rss_mb", "peak_site", "alive_at_peak",
                                                   "epoch_tensor_mb_repeats",
                                                   "epoch_rss_mb_repeats", "peak_cuda_mb_repeats")
                                 if k in o}))
    print(f"{name} {model}: sf / bp " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()),
          flush=True)
    return rows


#: settings that must agree between the reports a merge pools (the rest: how a part ran)
MERGE_PROTOCOL = ("task", "hidden", "layers", "lr", "epochs", "val_every", "patience", "seed",
                  "whole_graph", "bottom_up", "no_stop_layers", "device")


def merge(paths: list[str], out: str | None) -> None:
    """Pool the per-split values of rows measured in separate processes (``--memory`` rows,
    one measurement each, are collected unchanged)."""
    pooled: dict[tuple, dict] = {}
    configs = []
    for path in paths:
        report = read_report(path, "benchmarks/forward_learning.py")
        configs.append(report["config"])
        for row in report["rows"]:
            key = (row["system"], row["dataset"], row["metric"])
            acc = pooled.setdefault(key, {"rows": [], "splits": []})
            acc["rows"].append(row)
            # a merged report keeps its splits per row (its config has none)
            new = row.get("splits") or report["config"].get("splits") or list(range(row["runs"]))
            if not key[2].startswith("memory_") and set(new) & set(acc["splits"]):
                # a split counted twice would double its weight and shrink the std
                raise ValueError(f"{path} repeats split(s) {sorted(set(new) & set(acc['splits']))}"
                                 f" of {key[0]} on {key[1]} already merged")
            acc["splits"] += new
    differ = {k for k in MERGE_PROTOCOL if len({json.dumps(c.get(k)) for c in configs}) > 1}
    if differ:  # averaging runs of different protocols would describe neither
        raise ValueError("the reports to merge ran different protocols "
                         f"({', '.join(sorted(differ))} differ): {', '.join(paths)}")
    rows = []
    for (system, dataset, metric), acc in pooled.items():
        parts = acc["rows"]
        if metric.startswith("memory_"):  # one measurement per row: kept as it is
            rows += [Row.from_dict(r) for r in parts]
            continue
        values = [v for r in parts for v in r["run_values"]]
        weights = [r["runs"] for r in parts]
        layers = len(parts[0]["per_layer_mean"])
        extra = {"task": parts[0]["task"], "run_values": values, "splits": acc["splits"],
                 "per_layer_mean": [sum(r["per_layer_mean"][l] * w for r, w in
                                        zip(parts, weights)) / sum(weights)
                                    for l in range(layers)],
                 "epochs_mean": [sum(r["epochs_mean"][l] * w for r, w in zip(parts, weights))
                                 / sum(weights) for l in range(len(parts[0]["epochs_mean"]))],
                 "processes": len(parts)}
        for key in ("goodness_gap", "goodness_gap_last"):
            if f"{key}_min_per_layer" in parts[0]:
                # a one-run report's minimum is that run's gap
                extra.update(gap_stats([g for r in parts for g in r.get(
                    f"{key}_runs", [r[f"{key}_min_per_layer"]] if r["runs"] == 1 else [])], key))
        for key in ("trace_runs", "fit_seconds_runs", "val_best_runs"):
            if all(key in r for r in parts):
                extra[key] = [t for r in parts for t in r[key]]
        if "val_best_runs" in extra:
            extra["val_best_mean"] = statistics.fmean(extra["val_best_runs"])
        rows.append(summarize(system, dataset, metric, values, sum(r["seconds"] for r in parts),
                              max(r["peak_rss_mb"] for r in parts), **extra))
    print_table(rows)
    config = {k: v for k, v in configs[0].items() if k not in ("json", "splits", "runs")}
    config["merged_from"] = list(paths)
    write_report(out, "benchmarks/forward_learning.py", config, rows)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args)))
        return
    if args.quick:
        args.runs, args.epochs, args.patience = min(args.runs, 1), min(args.epochs, 20), 5
    if args.merge:
        merge(args.merge, args.json)
        return
    args.splits = list(range(args.runs)) if args.splits is None else args.splits
    args.runs = len(args.splits)
    print(vars(args))
    rows = memory(args) if args.memory else benchmark(args)
    print_table(rows)
    write_report(args.json, "benchmarks/forward_learning.py", args, rows)


if __name__ == "__main__":
    run_main(main)
