"""A registry of the catalogue's models, by the paper's short name.

Each entry module decorates its public builder with :func:`register_model`; users find and build
entries with :func:`list_models` and :func:`create_model`. Registration happens when a family's
sub-package is imported, so the look-up functions import every family first.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

#: The catalogue's primary families (``specs/extras.md``, summary table).
FAMILIES = {
    "analysis": "theory-to-code and analysis tools",
    "audio": "audio separation and enhancement",
    "backbone": "backbones and architectures",
    "block": "blocks and operators",
    "compression": "learned compression and restoration",
    "data": "datasets, benchmarks and data curation",
    "generative": "generative and energy-based models",
    "graph": "graph learning methods beyond graphkit's main list",
    "hypernetwork": "hypernetworks and weight prediction",
    "moe": "mixture of experts",
    "nas": "neural architecture search",
    "pruning": "pruning and sparsity",
    "quantisation": "quantisation and low-bit arithmetic",
    "training": "training methods and learning rules",
}

T = TypeVar("T", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelEntry:
    """One registered entry: its short name, family, builder and the paper it implements."""

    name: str
    family: str
    builder: Callable[..., Any]
    paper: str

    def __call__(self, **kwargs: Any) -> Any:
        return self.builder(**kwargs)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, family: str, paper: str) -> Callable[[T], T]:
    """Register ``builder`` (a class or a function) under ``name``.

    Args:
        name: the short name users pass to :func:`create_model` (lower case, unique).
        family: one of :data:`FAMILIES`.
        paper: the paper's title, for ``list_models`` listings and error messages.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    if name != name.lower() or not name:
        raise ValueError(f"model names are non-empty and lower case, got {name!r}")

    def decorator(builder: T) -> T:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.builder is not builder:
            raise ValueError(
                f"model name {name!r} is already registered by "
                f"{existing.builder.__module__}.{existing.builder.__qualname__}"
            )
        _REGISTRY[name] = ModelEntry(name, family, builder, paper)
        return builder

    return decorator


def _load_all() -> None:
    from graphkit.extras import SUBPACKAGES

    for sub in SUBPACKAGES:
        module = f"graphkit.extras.{sub}"
        # a family not written yet is simply absent; an import error inside one is not hidden
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def list_models(family: str | None = None) -> list[str]:
    """The registered names, sorted, optionally only those of one ``family``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)}")
    _load_all()
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def get_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` registered under ``name``."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(
            f"no model named {name!r} in graphkit.extras{hint} "
            f"(list_models() gives all {len(_REGISTRY)})"
        ) from None


def create_model(name: str, **kwargs: Any) -> Any:
    """Build the entry registered under ``name`` with ``kwargs``."""
    return get_entry(name)(**kwargs)
