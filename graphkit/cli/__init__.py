"""The ``graphkit`` command (also ``python -m graphkit``).

Each sub-command lives in its own module of this package exposing ``add_parser(subparsers)``,
which registers the command and sets ``func``; add a new one to ``SUBCOMMANDS``.
It never prompts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

SUBCOMMANDS = ["datasets", "demo", "embed", "graphlets"]


def build_parser() -> argparse.ArgumentParser:
    from graphkit import __version__

    parser = argparse.ArgumentParser(
        prog="graphkit", description="graphkit: recent graph-learning methods on PyG"
    )
    parser.add_argument("--version", action="version", version=f"graphkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"graphkit.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"graphkit: error: {exc}", file=sys.stderr)
        return 1
