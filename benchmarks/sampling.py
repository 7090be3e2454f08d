"""Sampler throughput: graphkit's samplers against PyG's on synthetic graphs with >= 1M edges.

Two comparisons, each on the same synthetic input for every system:

* **Neighbour sampling** (GraphSAGE-style, fan-out ``--fanout``, ``--batch-size`` seeds per
  mini-batch, seeds in random order): graphkit's :class:`~graphkit.sampling.NeighborSampler`
  (Numba kernel, and the vectorised torch path that CUDA uses) against PyG's
  ``NeighborLoader``. PyG's loader needs pyg-lib or torch-sparse; neither is installed, so its
  row records why it could not run. ``--build-peers`` first tries ``pip install torch-sparse``
  into a throwaway virtual environment (with ``--build-timeout``) and, if that works, times
  PyG's loader there in a subprocess. Metric: seeds per second.
* **Temporal neighbour sampling in a stream** (the TGN training loop): for each batch of
  ``--temporal-batch`` events, fetch the ``--k`` most recent neighbours of the batch's nodes,
  then insert the batch. graphkit's :class:`~graphkit.sampling.TemporalNeighborSampler`
  (``sample(..., strategy="recent")`` then ``insert``) against PyG's ``LastNeighborLoader``
  (``__call__`` then ``insert``). The script checks that both return the same neighbour
  event ids. Metric: events per second.

Both graphs are random with a skewed (Zipf-like) degree distribution.

    python benchmarks/sampling.py --runs 3 --json benchmarks/results/sampling.json
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time

import torch
from torch_geometric.data import Data

from graphkit.benchmarking import (
    Row,
    benchmark_parser,
    measure,
    print_table,
    run_main,
    summarize,
    write_report,
)
from graphkit.sampling import NeighborSampler, TemporalNeighborSampler


def parse_args():
    p = benchmark_parser(__doc__.split("\n")[0], runs=3, helps={
        "runs": "timed repetitions per sampler (round r samples with seed + r)"})
    p.add_argument("--nodes", type=int, default=200_000)
    p.add_argument("--edges", type=int, default=2_000_000)
    p.add_argument("--fanout", type=int, nargs="+", default=[15, 10])
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=40, help="mini-batches timed per run")
    p.add_argument("--temporal-nodes", type=int, default=20_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--temporal-batch", type=int, default=200)
    p.add_argument("--k", type=int, default=10, help="temporal neighbours per node")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads for every system (1: fair on a shared CPU)")
    p.add_argument("--build-peers", action="store_true",
                   help="try to pip-install torch-sparse in a throwaway venv for PyG's loader")
    p.add_argument("--build-timeout", type=int, default=600)
    p.add_argument("--peer-venv", default=None,
                   help="folder for the peer venv (default: a new temporary folder)")
    args = p.parse_args()
    if args.quick:
        args.nodes, args.edges, args.batches = 20_000, 200_000, 10
        args.temporal_nodes, args.events = 2_000, 100_000
        args.runs = min(args.runs, 2)
    sizes = ("runs", "nodes", "edges", "batch_size", "batches", "temporal_nodes", "events",
             "temporal_batch", "k", "threads", "build_timeout")
    bad = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in sizes if getattr(args, k) < 1]
    if bad:
        p.error(f"must be >= 1: {', '.join(bad)}")
    # each timed batch must hold --batch-size distinct seeds: with fewer nodes the batches
    # shrink while seeds/s still counted --batch-size per batch (an inflated figure)
    if args.batch_size * args.batches > args.nodes:
        p.error(f"--batch-size {args.batch_size} x --batches {args.batches} exceeds --nodes "
                f"{args.nodes}: every seed of the timed batches must be a distinct node")
    return args


def skewed_ids(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Node ids with a Zipf-like (rank^-0.8) popularity, randomly permuted."""
    weights = torch.arange(1, n + 1, dtype=torch.float64).pow(-0.8)
    ids = torch.multinomial(weights, size, replacement=True, generator=g)
    return torch.randperm(n, generator=g)[ids]


def synthetic_graph(n: int, e: int, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = skewed_ids(n, e, g)
    return Data(edge_index=torch.stack([src, dst]), num_nodes=n)


def synthetic_stream(n: int, e: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    src = skewed_ids(n, e, g)
    dst = torch.randint(0, n, (e,), generator=g)
    t = torch.cumsum(torch.randint(1, 20, (e,), generator=g), 0)  # distinct, increasing
    return src, dst, t


# --------------------------------------------------------------------------- neighbour sampling
def time_graphkit_neighbor(data, args, backend, seed):
    with measure(args.device) as build:
        sampler = NeighborSampler(data, args.fanout, backend=backend)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(data.num_nodes, generator=g)
    batches = order[: args.batch_size * args.batches].view(args.batches, -1)
    sampler.sample(batches[0], generator=g)  # compile (Numba) / warm up
    with measure(args.device) as m:
        for seeds in batches:
            sampler.sample(seeds, generator=g)
    return args.batch_size * args.batches / m.seconds, m.seconds + build.seconds, m.peak_rss_mb


PYG_PEER = textwrap.dedent("""
    import sys, time, torch
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader
    n, e, bs, nb, seed = map(int, sys.argv[1:6]); fanout = [int(x) for x in sys.argv[6:]]
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    w = torch.arange(1, n + 1, dtype=torch.float64).pow(-0.8)
    ids = torch.multinomial(w, e, replacement=True, generator=g)
    dst = torch.randperm(n, generator=g)[ids]
    data = Data(edge_index=torch.stack([src, dst]), num_nodes=n)
    order = torch.randperm(n, generator=g)[: bs * nb]
    loader = NeighborLoader(data, fanout, batch_size=bs, input_nodes=order)
    it = iter(loader); next(it)
    t0 = time.perf_counter(); count = 0
    for batch in it:
        count += batch.batch_size
    print(count / (time.perf_counter() - t0))
""")


def pyg_neighbor_status() -> str | None:
    """``None`` if PyG's NeighborLoader can sample here, else the reason it cannot."""
    from torch_geometric.loader import NeighborLoader

    data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    try:
        next(iter(NeighborLoader(data, [1], batch_size=1)))
    except ImportError as e:
        return f"{type(e).__name__}: {e}"
    return None


def build_peer_env(timeout: int, root: str | None = None) -> tuple[str | None, str]:
    """Try to pip-install torch-sparse into a throwaway venv; return ``(python, note)``.

    The venv sees this environment's torch and PyG through a ``.pth`` file, so torch-sparse is
    compiled against the installed torch (it ships no wheels on PyPI). An existing ``root``
    where torch-sparse already imports is reused.
    """
    import site
    import sysconfig

    root = root or tempfile.mkdtemp(prefix="graphkit-peers-")
    py = os.path.join(root, "bin", "python")
    probe = [py, "-c", "import torch_sparse"]
    if os.path.exists(py) and subprocess.run(probe, capture_output=True).returncode == 0:
        return py, f"torch-sparse reused from {root}"
    t0 = time.perf_counter()

    def left() -> float:
        return max(1.0, timeout - (time.perf_counter() - t0))

    try:
        subprocess.run([sys.executable, "-m", "venv", root], check=True, capture_output=True,
                       timeout=left())
        purelib = subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, timeout=left()).stdout.strip()
        parents = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
        with open(os.path.join(purelib, "graphkit_parent.pth"), "w") as f:
            f.write("\n".join(dict.fromkeys(parents)) + "\n")
        steps = [["setuptools", "wheel"], ["--no-build-isolation", "torch-sparse"]]
        for step in steps:
            r = subprocess.run([py, "-m", "pip", "install", *step], capture_output=True,
                               text=True, timeout=left())
            if r.returncode != 0:
                lines = (r.stderr + r.stdout).splitlines()
                errors = [ln.strip() for ln in lines if "error" in ln.lower()] or lines[-2:]
                return None, (f"skipped: pip install {step[-1]} failed after "
                              f"{time.perf_counter() - t0:.0f} s ({' | '.join(errors[:3])[:300]})")
    except subprocess.TimeoutExpired:
        return None, f"skipped: building torch-sparse did not finish within {timeout} s"
    return py, f"torch-sparse built in {time.perf_counter() - t0:.0f} s"


def time_pyg_neighbor(py, args, seed):
    cmd = [py, "-c", PYG_PEER, str(args.nodes), str(args.edges), str(args.batch_size),
           str(args.batches), str(seed), *map(str, args.fanout)]
    with measure() as m:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return float(out.stdout.strip().splitlines()[-1]), m.seconds


# --------------------------------------------------------------------------- temporal sampling
def stream_graphkit(src, dst, t, args, backend="auto"):
    n, b, k = args.temporal_nodes, args.temporal_batch, args.k
    empty = src[:0]
    sampler = TemporalNeighborSampler(empty, empty, t[:0], num_nodes=n, backend=backend)
    for i in range(0, src.numel(), b):
        s, d, ts = src[i:i + b], dst[i:i + b], t[i:i + b]
        nodes = torch.cat([s, d])
        sampler.sample(nodes, ts[:1].expand(nodes.numel()), k, strategy="recent")
        sampler.insert(s, d, ts)
    return sampler


def stream_pyg(src, dst, args):
    from torch_geometric.nn.models.tgn import LastNeighborLoader

    n, b = args.temporal_nodes, args.temporal_batch
    loader = LastNeighborLoader(n, size=args.k, device=src.device)  # the stream's device
    for i in range(0, src.numel(), b):
        s, d = src[i:i + b], dst[i:i + b]
        loader(torch.cat([s, d]))
        loader.insert(s, d)
    return loader


def check_agreement(src, dst, t, args, num_batches: int = 200) -> float:
    """Fraction of (batch, node) queries where both samplers return the same neighbour events.

    PyG's ``LastNeighborLoader.insert`` keeps an arbitrary ``size`` of a node's interactions
    when the node occurs more than ``size`` times in one batch (its dense slots are assigned
    modulo ``size`` after an unstable sort), so hubs of the skewed stream can differ; graphkit's
    output is checked against brute force in ``tests/sampling``.
    """
    from torch_geometric.nn.models.tgn import LastNeighborLoader

    n, b, k = args.temporal_nodes, args.temporal_batch, args.k
    empty = src[:0]
    ours = TemporalNeighborSampler(empty, empty, t[:0], num_nodes=n)
    pyg = LastNeighborLoader(n, size=k, device=src.device)
    same = total = 0
    for i in range(0, min(src.numel(), num_batches * b), b):
        s, d, ts = src[i:i + b], dst[i:i + b], t[i:i + b]
        nodes = torch.cat([s, d]).unique()
        _, eid, _ = ours.sample(nodes, ts[:1].expand(nodes.numel()), k)
        theirs = pyg.e_id[nodes]
        same += int((eid.sort(dim=1).values == theirs.sort(dim=1).values).all(dim=1).sum())
        total += nodes.numel()
        ours.insert(s, d, ts)
        pyg.insert(s, d)
    return same / total


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(args)
    rows, skipped = [], []
    dataset = f"random-{args.nodes // 1000}k-{args.edges / 1e6:g}M"

    # Neighbour sampling -------------------------------------------------------------------
    data = synthetic_graph(args.nodes, args.edges, args.seed).to(args.device)
    backends = ["numba", "torch"] if str(args.device) == "cpu" else ["torch"]
    for backend in backends:
        vals, secs, rss = [], 0.0, 0.0
        for r in range(args.runs):
            v, s, p = time_graphkit_neighbor(data, args, backend, args.seed + r)
            vals.append(v)
            secs += s
            rss = max(rss, p)
        rows.append(summarize(f"graphkit-NeighborSampler[{backend}]", dataset, "seeds_per_s",
                              vals, secs, rss, fanout=args.fanout, batch_size=args.batch_size))
    reason = pyg_neighbor_status()
    name, py, note = "pyg-NeighborLoader", sys.executable, "measured with this environment's PyG"
    if reason is not None:
        name, py = "pyg-NeighborLoader+torch-sparse", None
        note = f"skipped: PyG's NeighborLoader cannot run here ({reason})"
        if args.build_peers:
            py, note = build_peer_env(args.build_timeout, args.peer_venv)
    if py is None:  # not measured: mean and std are null in the JSON
        skipped.append(Row(name, dataset, "seeds_per_s", None, None, 0, 0.0, 0.0,
                           {"notes": note}))
    else:  # --runs runs whichever interpreter holds the loader (one run, 0 s before)
        vals, secs = [], 0.0
        for r in range(args.runs):
            v, s = time_pyg_neighbor(py, args, args.seed + r)
            vals.append(v)
            secs += s
        # the loader runs in a subprocess, whose memory this process does not see
        rows.append(summarize(name, dataset, "seeds_per_s", vals, secs, 0.0, notes=note,
                              peak_rss_measured=False))

    # Temporal neighbour sampling -----------------------------------------------------------
    src, dst, t = synthetic_stream(args.temporal_nodes, args.events, args.seed)
    src, dst, t = src.to(args.device), dst.to(args.device), t.to(args.device)
    tdata = f"stream-{args.temporal_nodes // 1000}k-{args.events / 1e6:g}M"
    agree = check_agreement(src, dst, t, args)  # also compiles the Numba kernels
    systems = [(f"graphkit-TemporalNeighborSampler[{be}]",
                lambda be=be: stream_graphkit(src, dst, t, args, be)) for be in backends]
    systems.append(("pyg-LastNeighborLoader", lambda: stream_pyg(src, dst, args)))
    results = {name: ([], [], []) for name, _ in systems}
    for _ in range(args.runs):  # round-robin, so that load on a shared machine hits all alike
        for name, fn in systems:
            with measure(args.device) as m:
                fn()
            vals, secs, rss = results[name]
            vals.append(args.events / m.seconds)
            secs.append(m.seconds)
            rss.append(m.peak_rss_mb)
    for name, (vals, secs, rss) in results.items():
        rows.append(summarize(name, tdata, "events_per_s", vals, sum(secs), max(rss), k=args.k,
                              batch=args.temporal_batch, same_neighbors_as_pyg=agree))


    print_table(rows)
    by = {r.system: r.mean for r in rows}
    for be in backends:
        ratio = by[f"graphkit-TemporalNeighborSampler[{be}]"] / by["pyg-LastNeighborLoader"]
        print(f"temporal, graphkit[{be}] / PyG LastNeighborLoader: {ratio:.2f}x")
    print(f"queries with the same neighbour events as PyG: {agree:.4f}")
    for r in rows + skipped:
        if r.system.startswith("pyg-NeighborLoader"):
            print(f"{r.system}: {r.extra.get('notes', 'measured')}")
    write_report(args.json, "benchmarks/sampling.py", args, rows + skipped)


if __name__ == "__main__":
    run_main(main)
