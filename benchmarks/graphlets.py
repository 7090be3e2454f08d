"""Graphlet-orbit adjacency and GDV speed: graphkit (each backend) against gradco and ORCA.

Every system runs in a fresh process on the same simple graph (self-loops dropped), one after
the other, and reports wall seconds, CPU seconds and the process's peak RSS:

* ``graphkit-<backend>-memory``: ``orbit_adjacency`` returning all 28 CSR matrices in memory;
* ``graphkit-<backend>-stream``: ``save_orbit_adjacency`` writing all 28 to one ``.npz``
  (the path for graphs whose 2- and 3-hop matrices are too large to hold);
* ``gradco-orbit``: the ``gradco`` package (0.1.8) ``Counter(A).count()``; it needs numpy < 2, so
  it runs under ``--peer-python`` (a virtual environment with gradco and orbit-count);
* ``graphkit-<backend>-gdv`` and ``orca-gdv``: node graphlet degree vectors (``orbit-count``'s
  compiled ORCA, called directly on the edge array).

With ``--check`` (default on graphs up to 5,000 nodes) every matrix is compared with gradco's and
the GDVs with gradco's and ORCA's; the JSON rows record the result.

    python benchmarks/graphlets.py --dataset ppi --runs 3 \
        --json benchmarks/results/graphlets_ppi.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    print_table,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.graphlets import GraphletInputWarning, load_orbit_adjacency, simple_graph
from graphkit.ops.graphlets import available_backends

WORKER = Path(__file__).with_name("graphlets_worker.py")
DEFAULT_PEER = os.environ.get("GRAPHLETS_PEER_PYTHON", "/tmp/gradco-venv/bin/python")
PAPER = [
    {"system": "gradco", "dataset": "ppi", "metric": "seconds", "value": 6.1,
     "peak_rss_mb": 1800, "source": "issue 10, measured on this machine (2 cores)"},
    {"system": "gradco", "dataset": "blogcatalog", "metric": "seconds", "value": 192,
     "peak_rss_mb": 14000, "source": "issue 10, measured on this machine (2 cores)"},
    {"system": "orbit-count", "dataset": "ppi", "metric": "gdv seconds", "value": 0.12,
     "source": "issue 10"},
    {"system": "orbit-count", "dataset": "blogcatalog", "metric": "gdv seconds", "value": 5.8,
     "source": "issue 10"},
]


def parse_args():
    p = benchmark_parser(__doc__.split("\n")[0], runs=3, helps={
        "runs": "timed repetitions of every counter",
        "seed": "only recorded: the counts are exact and every input is a fixed graph"})
    p.add_argument("--dataset", default=None, choices=["airports-europe", "ppi", "blogcatalog"],
                   help="default ppi (--quick: airports-europe)")
    p.add_argument("--backends", nargs="+", default=None,
                   help="graphkit backends to time: cpp, numba (default: those available)")
    p.add_argument("--peer-python", default=DEFAULT_PEER,
                   help="interpreter with gradco and orbit-count installed ('' to skip peers)")
    p.add_argument("--peer-runs", type=count(1), default=None,
                   help="runs for gradco (default --runs)")
    p.add_argument("--check", choices=["auto", "yes", "no"], default="auto",
                   help="compare every matrix and GDV with gradco's and ORCA's")
    p.add_argument("--only", choices=["all", "orbit", "gdv"], default="all",
                   help="time only the orbit-adjacency systems or only the GDV systems")
    p.add_argument("--no-gradco", action="store_true", help="time ORCA but not gradco")
    p.add_argument("--note", default="", help="free text stored in the JSON config")
    p.add_argument("--no-memory-mode", action="store_true",
                   help="skip the in-memory graphkit run (default on graphs over 5,000 nodes)")
    args = p.parse_args()
    # the pure-Python reference backend needs minutes even on airports-europe, the smallest graph
    if "python" in (args.backends or []):
        p.error("--backends python: the pure-Python reference backend is too slow for these "
                "graphs (minutes on airports-europe); time cpp or numba")
    # the counts are exact: --seed is only recorded, and every system runs on the CPU
    if args.device.partition(":")[0] != "cpu":
        p.error(f"--device {args.device}: graphlet counting runs on the CPU only (use cpu)")
    # a backend the workers cannot run would only fail in each worker, leaving an empty report
    unknown = [b for b in args.backends or [] if b not in available_backends()]
    if unknown:
        p.error(f"--backends {' '.join(unknown)}: not available here "
                f"(available: {' '.join(available_backends())})")
    return args


def run_worker(python: str, system: str, adj: Path, out: Path, env: dict | None = None) -> dict:
    proc = subprocess.run([python, str(WORKER), system, str(adj), str(out)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"{system} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_matrices(a: dict, b: dict) -> bool:
    if set(a) != set(b):
        return False
    return all(a[k].shape == b[k].shape and (a[k] != b[k]).nnz == 0 for k in a)


def main() -> None:
    args = parse_args()
    if args.quick:  # one run, on the small graph unless --dataset names one
        args.dataset, args.runs = args.dataset or "airports-europe", min(args.runs, 1)
        args.peer_runs = min(args.peer_runs or 1, 1)
    args.dataset = args.dataset or "ppi"  # the config then records what ran
    print(vars(args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GraphletInputWarning)
        data = load(args.dataset, root=args.root)
        a = simple_graph(data.edge_index, data.num_nodes)
    n, m = a.shape[0], a.nnz // 2
    print(f"{args.dataset}: {n} nodes, {m} edges (self-loops dropped)")
    backends = args.backends or [b for b in ("cpp", "numba") if b in available_backends()]
    check = args.check == "yes" or (args.check == "auto" and n <= 5000)
    memory_mode = not args.no_memory_mode and n <= 5000
    peer = args.peer_python if args.peer_python and Path(args.peer_python).exists() else None
    # why a peer has no row goes into the report, not only to the terminal
    skipped = {}
    if peer is None:
        skipped["gradco-orbit"] = skipped["orca-gdv"] = (
            f"peer interpreter {args.peer_python} not found" if args.peer_python
            else "--peer-python '' (peers switched off)")
        print(f"gradco/ORCA rows skipped: {skipped['orca-gdv']}")
    elif args.no_gradco:
        skipped["gradco-orbit"] = "--no-gradco"
    rows, extra, failures = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        adj = tmp / "adj.npz"
        sp.save_npz(adj, sp.csr_matrix(a))
        jobs = []
        for b in backends:
            if memory_mode:
                jobs.append((sys.executable, f"graphkit-{b}-memory", args.runs))
            jobs.append((sys.executable, f"graphkit-{b}-stream", args.runs))
            jobs.append((sys.executable, f"graphkit-{b}-gdv", args.runs))
        if peer:
            if not args.no_gradco:
                jobs.append((peer, "gradco-orbit", args.peer_runs or args.runs))
            jobs.append((peer, "orca-gdv", args.runs))
        if args.only != "all":
            jobs = [j for j in jobs if j[1].endswith("gdv") == (args.only == "gdv")]
        for python, system, runs in jobs:
            results = []
            for r in range(runs):
                out = tmp / f"{system}-{r}.npz" if "gdv" not in system else tmp / f"{system}.npy"
                env = {"GRAPHLETS_CHECK": "1" if check and r == 0 else "0"}
                try:
                    res = run_worker(python, system, adj, out, env)
                except RuntimeError as exc:  # e.g. a peer killed for memory: record, go on
                    failures[system] = str(exc)[-500:]
                    if r == 0:  # no run to report; a later failure leaves a row of fewer runs
                        skipped[system] = "run 0 failed (see config.failures)"
                    print(f"  {system} run {r} failed: {str(exc)[-300:]}", flush=True)
                    break
                results.append(res)
                print(f"  {system} run {r}: {res['seconds']:.3f} s wall, "
                      f"{res['cpu_seconds']:.3f} s CPU, peak RSS {res['peak_rss_mb']:.0f} MB",
                      flush=True)
                if r > 0 and out.exists() and "gdv" not in system:
                    out.unlink()
            if not results:
                continue
            secs = [x["seconds"] for x in results]
            info = {
                "cpu_seconds": float(np.mean([x["cpu_seconds"] for x in results])),
                "rss_before_mb": float(np.mean([x["base_rss_mb"] for x in results])),
                "nodes": n, "edges": m,
            }
            extra[system] = info
            rows.append(summarize(system, args.dataset, "seconds", secs, float(np.mean(secs)),
                                  max(x["peak_rss_mb"] for x in results), **info))
        if check and peer and not failures and "gradco-orbit" in extra:
            ref = load_orbit_adjacency(tmp / "gradco-orbit-0.npz")
            ref_gdv = np.load(tmp / "gradco-orbit-0.npz.gdv.npy")
            orca = np.load(tmp / "orca-gdv.npy")
            for row in rows:
                if row.system.startswith("graphkit") and "memory" in row.system:
                    row.extra["equal_to_gradco"] = same_matrices(
                        load_orbit_adjacency(tmp / f"{row.system}-0.npz"), ref)
                if row.system.startswith("graphkit") and "stream" in row.system:
                    row.extra["equal_to_gradco"] = same_matrices(
                        load_orbit_adjacency(tmp / f"{row.system}-0.npz"), ref)
                if row.system.endswith("-gdv") and row.system.startswith("graphkit"):
                    ours = np.load(tmp / f"{row.system}.npy")
                    row.extra["equal_to_gradco"] = bool(np.array_equal(ours, ref_gdv))
                    row.extra["equal_to_orca"] = bool(np.array_equal(ours, orca))
            print("equality:", {r.system: {k: v for k, v in r.extra.items()
                                            if k.startswith("equal")} for r in rows})
    by = {r.system: r for r in rows}
    if "gradco-orbit" in by:
        for r in rows:
            if r.system.startswith("graphkit") and not r.system.endswith("gdv"):
                r.extra["time_vs_gradco"] = r.mean / by["gradco-orbit"].mean
                r.extra["cpu_time_vs_gradco"] = (r.extra["cpu_seconds"]
                                                 / by["gradco-orbit"].extra["cpu_seconds"])
                r.extra["peak_rss_vs_gradco"] = r.peak_rss_mb / by["gradco-orbit"].peak_rss_mb
    if "orca-gdv" in by:
        for r in rows:
            if r.system.endswith("-gdv") and r.system.startswith("graphkit"):
                r.extra["time_vs_orca"] = r.mean / by["orca-gdv"].mean
                r.extra["cpu_time_vs_orca"] = (r.extra["cpu_seconds"]
                                               / by["orca-gdv"].extra["cpu_seconds"])
    print_table(rows)
    for r in rows:
        ratios = {k: round(v, 3) for k, v in r.extra.items() if k.endswith(("gradco", "orca"))
                  and isinstance(v, float)}
        if ratios:
            print(f"  {r.system}: {ratios}")
    config = {**vars(args), "failures": failures, "skipped": skipped}
    write_report(args.json, "benchmarks/graphlets.py", config, rows, PAPER)
    if not rows:  # the report says why; the exit status tells a script that nothing ran
        sys.exit(f"graphlets.py: no system produced a row (skipped: {', '.join(skipped)})")


if __name__ == "__main__":
    run_main(main)
