"""Availability flags for optional accelerators and extras.

Optional packages are imported lazily elsewhere; these flags say what this installation has.
A missing one is reported by :func:`require`, which names the extra to install.
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["WITH_CPP", "WITH_NUMBA", "WITH_TORCH_SCATTER", "WITH_DGL", "WITH_MATPLOTLIB", "require"]


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _cpp_available() -> bool:
    if os.environ.get("GRAPHKIT_DISABLE_CPP"):
        return False
    try:
        from graphkit import _cpp  # noqa: F401
    except ImportError:
        return False
    return True


WITH_CPP: bool = _cpp_available()
WITH_NUMBA: bool = _has("numba")
WITH_TORCH_SCATTER: bool = _has("torch_scatter")
WITH_DGL: bool = _has("dgl")
WITH_MATPLOTLIB: bool = _has("matplotlib")

_EXTRA_OF = {
    "torch_scatter": "scatter",
    "dgl": "dgl",
    "matplotlib": "dev",
    "sklearn": "dev",
}


def require(module: str) -> None:
    """Raise an ImportError naming the extra that provides ``module`` if it is missing."""
    if not _has(module):
        extra = _EXTRA_OF.get(module)
        hint = f" Install it with: pip install 'graphkit[{extra}]'." if extra else ""
        if module == "dgl":
            hint += " DGL's PyPI wheels need torch <= 2.2."
        raise ImportError(f"graphkit needs the optional package '{module}' for this.{hint}")
