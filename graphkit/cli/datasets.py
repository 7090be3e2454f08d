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
    # columns as wide as their longest entry, so that every row lines up
    w_name = max([len("name")] + [len(e.name) for e in entries])
    w_task = max([len("task")] + [len(e.task) for e in entries])
    w_size = max([len("size")] + [len(e.size) for e in entries])
    print(f"{'name':<{w_name}}  {'task':<{w_task}}  {'size':<{w_size}}  source")
    for e in entries:
        print(f"{e.name:<{w_name}}  {e.task:<{w_task}}  {e.size:<{w_size}}  {e.source}")
        print(f"{'':<{w_name}}  citation: {e.citation}; license: {e.license}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from graphkit.data import registry

    e = registry.get(args.name)
    _check_family_member(e)
    for key, value in e.describe().items():
        print(f"{key:<12} {value}")
    return 0


def _check_family_member(entry) -> None:
    """A name matched by a family pattern (``prognn-*``, ``ogbn-*``) must be one of its datasets:
    the family's facts are not a description of a name that does not exist."""
    import fnmatch

    from graphkit.data import registry
    from graphkit.data.download import manifest_dir

    entries = registry.list_datasets()
    if any(e.name == entry.name for e in entries):
        return  # a registered name, not a family member
    family = next(e for e in entries if e.is_pattern and fnmatch.fnmatchcase(entry.name, e.name))
    if family.manifest is not None:
        try:
            folder = manifest_dir()
        except FileNotFoundError:
            return  # no manifests installed: describe() says so
        if (folder / f"{entry.manifest}.json").is_file():
            return
        template = family.manifest.format(name=family.name)
        members = sorted(p.stem for p in folder.glob(f"{template}.json"))
        raise ValueError(f"unknown dataset '{entry.name}': the {family.name} family holds "
                         f"{', '.join(members) or 'no dataset with a manifest'}")
    if family.name in ("ogbn-*", "ogbl-*"):
        try:
            from graphkit.data.datasets.ogb import _meta_info

            _meta_info(entry.name, None)
        except ImportError:
            return  # ogb is not installed: its list of names is not available
