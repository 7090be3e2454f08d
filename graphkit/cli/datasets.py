"""``graphkit datasets list`` and ``graphkit datasets info NAME``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the registered datasets or describe one")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    dsub.add_parser("list", help="print the dataset registry").set_defaults(func=_list)
    info = dsub.add_parser("info", help="describe one dataset")
    info.add_argument("name")
    info.set_defaults(func=_info)


def _list(args: argparse.Namespace) -> int:
    from graphkit.data import registry

    entries = registry.list_datasets()
    print(f"{'name':<26} {'task':<22} {'size':<30} {'source'}")
    for e in entries:
        print(f"{e.name:<26} {e.task:<22} {e.size:<30} {e.source}")
        print(f"{'':<26} citation: {e.citation}; license: {e.license}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from graphkit.data import registry

    e = registry.get(args.name)
    for key, value in e.describe().items():
        print(f"{key:<12} {value}")
    return 0
