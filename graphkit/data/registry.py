"""The dataset registry behind :func:`graphkit.data.load` and ``graphkit datasets list``.

A loader is a function ``fn(root: str, **kwargs)`` returning a PyG object; :func:`register`
records it with the facts ``graphkit datasets list`` prints. A name holding ``*`` (for example
``ogbn-*`` or ``prognn-*``) is a pattern entry: :func:`get` matches concrete names against it
and the loader then receives the concrete name as the keyword argument ``name``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from graphkit.data.download import read_manifest, resolve_root

__all__ = ["DatasetEntry", "register", "get", "list_datasets"]


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset (or family of datasets, when ``name`` holds ``*``).

    Attributes:
        name: the name :func:`graphkit.data.load` accepts.
        task: what the dataset is for, e.g. ``"node classification"``.
        size: a short human-readable size, e.g. ``"2708 nodes, 5278 edges"``.
        source: the upstream URL the files come from.
        citation: the paper to cite.
        license: the data licence as stated upstream.
        loader: ``fn(root, **kwargs)`` returning the PyG object.
        manifest: the manifest name in ``datasets/`` (``{name}`` is replaced by the concrete
            name for pattern entries), or ``None`` for generated or externally managed data.
    """

    name: str
    task: str
    size: str
    source: str
    citation: str
    license: str
    loader: Callable[..., Any]
    manifest: str | None = None

    @property
    def is_pattern(self) -> bool:
        return "*" in self.name

    def describe(self) -> dict[str, Any]:
        """Return the entry's facts, plus the manifest's format, files and notes when it has one."""
        info: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "size": self.size,
            "source": self.source,
            "citation": self.citation,
            "license": self.license,
            "loader": f"{self.loader.__module__}.{getattr(self.loader, '__name__', 'loader')}",
        }
        summary = (self.loader.__doc__ or "").strip().split("\n\n")[0]
        if summary:
            info["summary"] = " ".join(line.strip() for line in summary.splitlines())
        if self.manifest is not None and not self.is_pattern:
            try:
                manifest = read_manifest(self.manifest)
            except FileNotFoundError as e:
                info["manifest"] = f"unavailable ({e})"
            else:
                info["manifest"] = f"datasets/{self.manifest}.json"
                info["format"] = manifest.get("format", "")
                info["files"] = ", ".join(f["path"] for f in manifest.get("files", []))
                if manifest.get("missing"):
                    info["missing"] = manifest["missing"]
        return info

    def load(self, root: str | None = None, **kwargs: Any) -> Any:
        """Load the dataset from ``root`` (resolved by :func:`graphkit.data.resolve_root`)."""
        if self.is_pattern:
            raise ValueError(
                f"'{self.name}' is a family of datasets: load a concrete name, e.g. "
                f"'{self.name.replace('*', 'NAME')}'"
            )
        root_path = str(resolve_root(root))
        signature = inspect.signature(self.loader)
        try:
            signature.bind(root_path, **kwargs)
        except TypeError:
            options = [
                p.name
                for p in list(signature.parameters.values())[1:]
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            unknown = sorted(set(kwargs) - set(options))
            raise ValueError(
                f"dataset '{self.name}' does not take the option(s) {', '.join(unknown)}; "
                f"its options are: {', '.join(options) or 'none'}"
            ) from None
        return self.loader(root_path, **kwargs)


_REGISTRY: dict[str, DatasetEntry] = {}


def register(
    name: str,
    *,
    task: str,
    size: str,
    source: str,
    citation: str,
    license: str,
    manifest: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator recording ``fn(root, **kwargs)`` as the loader of dataset ``name``.

    Raises:
        ValueError: if ``name`` is already registered.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"dataset '{name}' is already registered")
        _REGISTRY[name] = DatasetEntry(
            name, task, size, source, citation, license, loader=fn, manifest=manifest
        )
        return fn

    return decorator


def _load_builtin() -> None:
    # Importing the loader modules registers their datasets.
    importlib.import_module("graphkit.data").register_builtin()


def list_datasets() -> list[DatasetEntry]:
    """All registered entries (pattern entries included), sorted by name, case-insensitively."""
    _load_builtin()
    return sorted(_REGISTRY.values(), key=lambda e: e.name.lower())


def _bind(entry: DatasetEntry, name: str) -> DatasetEntry:
    loader = entry.loader

    def bound(root: str, **kwargs: Any) -> Any:
        return loader(root, name=name, **kwargs)

    params = [p for p in inspect.signature(loader).parameters.values() if p.name != "name"]
    bound.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    bound.__name__ = getattr(loader, "__name__", "loader")
    bound.__module__ = loader.__module__
    bound.__doc__ = loader.__doc__
    manifest = entry.manifest.format(name=name) if entry.manifest else None
    return dataclasses.replace(entry, name=name, loader=bound, manifest=manifest)


def get(name: str) -> DatasetEntry:
    """Return the entry for ``name``.

    Exact names win; then a unique case-insensitive match (``cora`` finds ``Cora``); then pattern
    entries such as ``ogbn-*``, bound to the concrete name.

    Raises:
        ValueError: for an unknown name, listing the closest registered names.
    """
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, got {type(name).__name__}")
    _load_builtin()
    if name in _REGISTRY and not _REGISTRY[name].is_pattern:
        return _REGISTRY[name]
    folded = [k for k in _REGISTRY if k.lower() == name.lower() and "*" not in k]
    if len(folded) == 1:
        return _REGISTRY[folded[0]]
    for key, entry in _REGISTRY.items():
        if entry.is_pattern and fnmatch.fnmatchcase(name, key):
            return _bind(entry, name)
    close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.7)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown dataset '{name}'{hint} (`graphkit datasets list` prints all names)"
    )
