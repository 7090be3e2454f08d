"""``graphkit demo``: the main job of each method, one section per method.

The last four sections are graph papers of the collection hosted in :mod:`graphkit.extras`
(TC/ATC, PamC, Auto-GNN, LoGAH). Sections on embedded or synthetic data always run; sections on
real data (FastRP, LightHGNN, PRES, TC, PamC, Auto-GNN) read it
from ``--root`` (default: ``$GRAPHKIT_DATA``, else ``../shared/data`` beside the repository) and
are skipped, naming the missing file, when it is not there. A section that fails otherwise is
reported with its error, the other sections' table still prints, and the exit status is 1.

Each method contributes a module ``graphkit.cli.demos.<name>`` with a function
``run(device: str) -> list[dict]`` returning result rows (``method``, ``dataset``, ``metric``,
``value``, ``seconds``); add it to ``DEMOS``. The whole demo takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import time
import traceback

import torch

DEMOS = ["foundation", "fastrp", "gradco", "stable", "dagnn", "forwardgnn", "lighthgnn", "nat",
         "pres", "lpgnas", "tc", "pamc", "autognn", "logah"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run each method on embedded or real data and print a table")
    p.add_argument("--device", default="cpu")
    p.add_argument("--root", default=None,
                   help="data folder of the real-data sections (default: $GRAPHKIT_DATA, else "
                        "../shared/data beside the repository when it exists)")
    p.add_argument("--only", nargs="+", default=None, choices=DEMOS, metavar="DEMO",
                   help=f"subset of {DEMOS}")
    p.set_defaults(func=run)


def _run_sections(args: argparse.Namespace, rows: list, skipped: list, failed: list) -> None:
    for name in DEMOS:
        if args.only and name not in args.only:
            continue
        try:
            rows.extend(importlib.import_module(f"graphkit.cli.demos.{name}").run(args.device))
        except FileNotFoundError as exc:
            # Sections on real data need its files; the embedded sections still run.
            skipped.append(f"{name}: skipped, {exc}")
        except Exception as exc:  # not KeyboardInterrupt: Ctrl-C still stops the demo
            # One section's failure (a device-only bug, out of memory) must not discard the
            # rows the others took minutes of device time to compute.
            # the traceback too: such a failure is a bug, and a device run is hard to repeat
            failed.append(f"{name}: failed, {type(exc).__name__}: {exc}\n"
                          f"{traceback.format_exc().rstrip()}")


@contextlib.contextmanager
def _data_root(root: str | None):
    """Point the loaders at ``root`` (or the benchmarks' default) while the sections run."""
    from graphkit.benchmarking import default_data_root

    root = root or default_data_root()
    before = os.environ.get("GRAPHKIT_DATA")
    if root is not None:
        os.environ["GRAPHKIT_DATA"] = root
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GRAPHKIT_DATA", None)
        else:
            os.environ["GRAPHKIT_DATA"] = before


def run(args: argparse.Namespace) -> int:
    from graphkit.cli import check_device

    check_device(args.device)
    if args.root is not None and not os.path.isdir(args.root):
        # an explicit root that is not there would skip every real-data section silently
        raise ValueError(f"--root {args.root} is not a folder")
    rows: list[dict] = []
    skipped: list[str] = []
    failed: list[str] = []
    t0 = time.perf_counter()
    # The demo graphs are small: one intra-op thread is faster and steadier than two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _data_root(args.root):
            _run_sections(args, rows, skipped, failed)
    finally:
        torch.set_num_threads(threads)
    width = max([28] + [len(r["dataset"]) for r in rows])
    print(f"{'method':<28} {'dataset':<{width}} {'metric':<18} {'value':>10} {'seconds':>8}")
    print("-" * (64 + width))
    for r in rows:
        print(f"{r['method']:<28} {r['dataset']:<{width}} {r['metric']:<18} "
              f"{r['value']:>10.4f} {r['seconds']:>8.2f}")
    for line in skipped + failed:
        print(line, file=sys.stderr)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    if failed:
        print(f"graphkit: error: {len(failed)} section(s) failed (see above)", file=sys.stderr)
        return 1
    if skipped and not rows:  # nothing ran: a script must not read this as success
        print("graphkit: error: every section asked for was skipped (see above)", file=sys.stderr)
        return 1
    return 0
