"""``graphkit demo``: the main job on embedded data, one section per method.

Each method contributes a module ``graphkit.cli.demos.<name>`` with a function
``run(device: str) -> list[dict]`` returning result rows (``method``, ``dataset``, ``metric``,
``value``, ``seconds``); add it to ``DEMOS``. The whole demo stays under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import torch

DEMOS = ["foundation", "fastrp", "gradco", "stable", "dagnn", "forwardgnn", "lighthgnn", "nat",
         "pres", "lpgnas"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train graphkit models on embedded data and print a table")
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", nargs="*", default=None, choices=DEMOS, metavar="DEMO",
                   help=f"subset of {DEMOS}")
    p.set_defaults(func=run)


def _run_sections(args: argparse.Namespace, rows: list, skipped: list) -> None:
    for name in DEMOS:
        if args.only and name not in args.only:
            continue
        module = importlib.import_module(f"graphkit.cli.demos.{name}")
        try:
            rows.extend(module.run(args.device))
        except FileNotFoundError as exc:
            # Sections on real data need its files; the embedded sections still run.
            skipped.append(f"{name}: skipped, {exc}")


def run(args: argparse.Namespace) -> int:
    from graphkit.cli import check_device

    check_device(args.device)
    rows: list[dict] = []
    skipped: list[str] = []
    t0 = time.perf_counter()
    # The demo graphs are small: one intra-op thread is faster and steadier than two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run_sections(args, rows, skipped)
    finally:
        torch.set_num_threads(threads)
    print(f"{'method':<24} {'dataset':<28} {'metric':<14} {'value':>10} {'seconds':>8}")
    print("-" * 88)
    for r in rows:
        print(f"{r['method']:<24} {r['dataset']:<28} {r['metric']:<14} "
              f"{r['value']:>10.4f} {r['seconds']:>8.2f}")
    for line in skipped:
        print(line, file=sys.stderr)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return 0
