"""Module surgery shared by the catalogue: replacing a submodule by its dotted name."""

from __future__ import annotations

from torch import nn


def replace_module(root: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` where ``root``'s submodule ``name`` (e.g. ``"blocks.2.conv"``) is.

    Returns the module it replaced. Pruners, Net2Net, adapters and distillation schemes swap
    layers this way, so ``state_dict`` keys keep their paths.
    """
    if not name:
        raise ValueError("name must name a submodule of root, not root itself")
    parent, _, child = name.rpartition(".")
    owner = root.get_submodule(parent) if parent else root
    if not hasattr(owner, child):
        raise AttributeError(f"{type(root).__name__} has no submodule {name!r}")
    old = getattr(owner, child)
    setattr(owner, child, new)
    return old
