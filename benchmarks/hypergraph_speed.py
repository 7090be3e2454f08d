"""LightHGNN inference speed: the distilled MLP against HGNN teachers on synthetic hypergraphs.

For each size in ``--vertices`` (the paper's 55,000 by default) a hypergraph stochastic block
model (``graphkit.data.load("hsbm")``) is generated; the PyG ``HypergraphConv`` teacher
(``hgnn-pyg``: PyG's layer as it is, with its own normalisation), graphkit's
:class:`~graphkit.nn.HGNN` (``hgnn``; ``hgnn-cached`` reuses its cache: since session 15 the
two stages as sparse CSR matrices, applied as sparse products) and
the LightHGNN students distilled from ``hgnn`` are trained (hidden 32 for teachers;
``--hidden`` (128) for ``lighthgnn``, 32 for ``lighthgnn-h32``) and timed: full-graph forward
passes in eval mode under ``torch.no_grad()``, the systems interleaved
round-robin, the median over ``--repeats``; on a CUDA ``--device`` every timed call is bracketed
by ``torch.cuda.synchronize`` so the time covers the kernels, not just their launch. ``end2end``
rows add, for the teachers, building ``hyperedge_index`` on the device from the plain list of
hyperedges (the student needs no structure). ``speedup`` rows divide a teacher's median
latency by the student's. With the BatchNorm student, ``lighthgnn`` is its eval forward (the
BN folded into the output layer) and ``lighthgnn-layerwise`` the same trained student with the
BN applied as a separate layer. With ``--cpu-too`` on an accelerator, the same trained models are
also timed on the CPU in the same run (rows with ``device`` ``cpu``, systems suffixed ``-cpu``).

    python benchmarks/hypergraph_speed.py --device cuda --vertices 55000 550000 --cpu-too

    python benchmarks/hypergraph_speed.py --vertices 55000 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from hypergraph import PyGHGNNNative  # the PyG peer, defined once in benchmarks/hypergraph.py
from torch_geometric.data import Data

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    measure,
    print_table,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.data.hypergraph import add_singleton_hyperedges, hyperedge_index_from_list
from graphkit.metrics import accuracy
from graphkit.nn import HGNN, LightHGNN
from graphkit.nn.models.lighthgnn import distill, split_per_class
from graphkit.train import seed_everything, train_node_classifier

# The paper's figure (Fig. 1 / Sec. 5): about 100x faster than HGNN at 55,000 vertices, on GPU.
PAPER = [{"system": "lighthgnn", "dataset": "synthetic-55000", "metric": "speedup_vs_hgnn",
          "value": 100.0, "note": "approximate, GPU, read from the paper's abstract"}]


def parse_args():
    # a run is one timed forward pass of every system (the median is reported)
    p = benchmark_parser(__doc__.split("\n")[0], runs=21, helps={
        "runs": "timed forward passes per system (the median is reported)",
        "seed": "seed of the synthetic hypergraph and of the models"})
    p.add_argument("--vertices", type=count(1), nargs="+", default=[55000])
    p.add_argument("--repeats", dest="runs", type=count(1), default=argparse.SUPPRESS,
                   help="the same as --runs: timed forward passes per system")
    p.add_argument("--hidden", type=count(1), default=128, help="student hidden size")
    p.add_argument("--student-norm", default="batch", choices=["batch", "none"],
                   help="students: BatchNorm1d after the hidden ReLU (the official code's DHG "
                        "MLP default) or none")
    p.add_argument("--teacher-hidden", type=count(1), default=32)
    p.add_argument("--epochs", type=count(1), default=100)
    p.add_argument("--features", type=count(1), default=32, help="hsbm feature size (its default)")
    p.add_argument("--classes", type=count(1), default=3, help="hsbm classes (its default)")
    p.add_argument("--threads", type=count(1), default=1, help="torch threads for all systems")
    p.add_argument("--warmup", type=count(0), default=3, help="untimed calls per system first")
    p.add_argument("--cpu-too", action="store_true",
                   help="also time the same trained models on the CPU (with an accelerator)")
    p.add_argument("--cpu-max-vertices", type=count(1), default=100_000,
                   help="--cpu-too only for sizes up to this many vertices")
    args = p.parse_args()
    if args.quick:
        args.vertices, args.runs, args.epochs = [5000], 5, 30
    args.repeats = args.runs  # the name the rows and earlier reports use
    return args


def hyperedge_lists(index: torch.Tensor, m: int) -> list[list[int]]:
    """The hypergraph as the plain list of hyperedges a user would start from."""
    order = torch.argsort(index[1], stable=True)
    v, e = index[0, order], index[1, order]
    sizes = torch.bincount(e, minlength=m).tolist()
    return [chunk.tolist() for chunk in torch.split(v, sizes)]


def synchronizer(device: torch.device) -> Callable[[], None]:
    """Waits for the device's queued kernels (a no-op on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


@torch.no_grad()
def latency(fns: dict[str, Callable[[], object]], repeats: int,
            device: torch.device, warmup: int = 3) -> dict[str, list[float]]:
    """Seconds per call of each function, interleaved round-robin after ``warmup`` untimed
    calls of each; the device is synchronised before the clock starts and before it stops."""
    sync = synchronizer(device)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def fwd(model: torch.nn.Module, d: Data) -> torch.Tensor:
    return model(d.x, d.hyperedge_index, num_hyperedges=d.num_hyperedges)


def train_models(d: Data, args) -> tuple[dict[str, torch.nn.Module], dict[str, float]]:
    """Train both teachers, then distil ``hgnn`` into the two students."""
    c = int(d.y.max()) + 1
    models, train_s = {}, {}
    for key, cls in (("hgnn-pyg", PyGHGNNNative), ("hgnn", HGNN)):
        models[key] = cls(d.num_features, args.teacher_hidden, c)
        with measure(args.device) as tm:
            train_node_classifier(models[key], d, epochs=args.epochs, forward=fwd,
                                  device=args.device)
        train_s[key] = tm.seconds
        models[key].eval()
    with torch.no_grad():
        z = fwd(models["hgnn"], d)
    for key, hid in (("lighthgnn", args.hidden), ("lighthgnn-h32", 32)):
        models[key] = LightHGNN(d.num_features, hid, c, batch_norm=args.student_norm == "batch")
        with measure(args.device) as tm:
            distill(models[key], d.x, d.y, z, d.train_mask, d.val_mask, d.test_mask,
                    epochs=args.epochs, device=args.device)
        train_s[key] = tm.seconds
        models[key].eval()
    models["hgnn-cached"] = HGNN(d.num_features, args.teacher_hidden, c, cached=True)
    models["hgnn-cached"].load_state_dict(models["hgnn"].state_dict())
    models["hgnn-cached"].to(args.device).eval()
    return models, train_s


def device_name(device: torch.device) -> str:
    """The accelerator's name (``torch.cuda.get_device_name``) or ``"cpu"``."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def run_size(n: int, args) -> list:
    seed_everything(args.seed)
    data = load("hsbm", root=args.root, num_nodes=n, num_features=args.features,
                num_classes=args.classes, seed=args.seed)
    edges = hyperedge_lists(data.hyperedge_index, data.num_hyperedges)
    index, m = add_singleton_hyperedges(data.hyperedge_index, n, data.num_hyperedges)
    tr, va, te = split_per_class(data.y, 20, 100,
                                 generator=torch.Generator().manual_seed(args.seed))
    d = Data(x=data.x.float(), y=data.y, hyperedge_index=index, num_hyperedges=m,
             train_mask=tr, val_mask=va, test_mask=te, num_nodes=n).to(args.device)
    models, train_s = train_models(d, args)
    rows = time_models(models, train_s, d, edges, torch.device(args.device), args)
    if args.cpu_too and torch.device(args.device).type != "cpu" and n <= args.cpu_max_vertices:
        cpu = torch.device("cpu")
        rows += time_models({k: moved(v, cpu) for k, v in models.items()}, train_s,
                            d.to(cpu), edges, cpu, args, suffix="-cpu")
    return rows


def moved(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A copy of ``model`` on ``device`` with any cached normalisation dropped (it is
    rebuilt there on the first call)."""
    model = copy.deepcopy(model).to(device)
    for mod in model.modules():
        if hasattr(mod, "reset_cache"):
            mod.reset_cache()
    return model


def time_models(models: dict[str, torch.nn.Module], train_s: dict[str, float], d: Data,
                edges: list[list[int]], device: torch.device, args, suffix: str = "") -> list:
    """Latency, speed-up and accuracy rows of the trained ``models`` on ``device`` (the
    systems' names get ``suffix``)."""
    n, m = d.num_nodes, d.num_hyperedges
    name = f"hsbm-{n}"
    x, index, te = d.x, d.hyperedge_index, d.test_mask

    def call(key: str, end2end: bool = False):
        if key == "lighthgnn-layerwise":  # the BN applied as a layer, not folded into lin2
            student = models["lighthgnn"]
            return lambda: student.lin2(student.embed(x))
        if key.startswith("lighthgnn"):
            return lambda: models[key](x)
        if not end2end:
            return lambda: models[key](x, index, num_hyperedges=m)

        def end_to_end():  # build the structure from the plain hyperedge list, then run
            built, mm = hyperedge_index_from_list(edges, num_nodes=n, device=device)
            built, mm = add_singleton_hyperedges(built, n, mm)
            return models[key](x, built, num_hyperedges=mm)
        return end_to_end

    timed = ["hgnn-pyg", "hgnn", "hgnn-cached", "lighthgnn", "lighthgnn-h32"]
    students = ["lighthgnn", "lighthgnn-h32"]
    if models["lighthgnn"].norm is not None:
        timed.append("lighthgnn-layerwise")
        students.append("lighthgnn-layerwise")
    with measure(device) as tm:
        times = latency({k: call(k) for k in timed}, args.repeats, device, args.warmup)
        times_e2e = latency({k: call(k, end2end=True) for k in ("hgnn-pyg", "hgnn")},
                            max(3, args.repeats // 4), device, warmup=1)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_e2e = {k: statistics.median(v) for k, v in times_e2e.items()}
    extra = {"vertices": n, "hyperedges": m, "features": d.num_features,
             "threads": torch.get_num_threads(), "repeats": args.repeats,
             "device": device_name(device), "student_norm": args.student_norm}
    rows = []
    for k, v in times.items():
        rows.append(summarize(k + suffix, name, "latency_ms", [1e3 * t for t in v], tm.seconds,
                              tm.peak_rss_mb, median_ms=1e3 * med[k], **extra))
    for k, v in times_e2e.items():
        rows.append(summarize(f"{k}-end2end{suffix}", name, "latency_ms",
                              [1e3 * t for t in v], tm.seconds, tm.peak_rss_mb,
                              median_ms=1e3 * med_e2e[k], **extra))
    for student in students:
        for k in ("hgnn-pyg", "hgnn", "hgnn-cached"):
            rows.append(summarize(f"{student}-vs-{k}{suffix}", name, "speedup",
                                  [med[k] / med[student]], 0.0, tm.peak_rss_mb, **extra))
        for k in ("hgnn-pyg", "hgnn"):
            rows.append(summarize(f"{student}-vs-{k}-end2end{suffix}", name, "speedup",
                                  [med_e2e[k] / med[student]], 0.0, tm.peak_rss_mb, **extra))
    with torch.no_grad():
        for k in ("hgnn-pyg", "hgnn", "lighthgnn", "lighthgnn-h32"):
            pred = call(k)()
            rows.append(summarize(k + suffix, name, "accuracy", [accuracy(pred[te], d.y[te])],
                                  train_s[k], tm.peak_rss_mb, **extra))
    print(f"{name} on {device_name(device)}: median ms "
          + ", ".join(f"{k} {1e3 * v:.2f}" for k, v in med.items())
          + " | end-to-end " + ", ".join(f"{k} {1e3 * v:.1f}" for k, v in med_e2e.items()),
          flush=True)
    return rows


def main() -> None:
    args = parse_args()
    print(args)
    torch.set_num_threads(args.threads)
    rows = []
    for n in args.vertices:
        rows.extend(run_size(n, args))
    print_table(rows)
    write_report(args.json, "benchmarks/hypergraph_speed.py", args, rows, PAPER)


if __name__ == "__main__":
    run_main(main)
