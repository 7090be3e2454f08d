"""Shared plumbing of :mod:`graphkit.extras`: registry, counting, acceptance helpers.

No paper's code lives here; every entry of the catalogue builds on these pieces.
"""

from graphkit.extras._core.counting import count_macs, count_params, nonzero_macs
from graphkit.extras._core.registry import (
    FAMILIES,
    ModelEntry,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = [
    "FAMILIES",
    "ModelEntry",
    "count_macs",
    "count_params",
    "create_model",
    "get_entry",
    "list_models",
    "nonzero_macs",
    "register_model",
]
