"""Module surgery shared by the catalogue: replacing a submodule by its dotted name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
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


def resize_buffers_to(module: nn.Module, state_dict, prefix: str, names) -> None:
    """Give ``module``'s buffers ``names`` the sizes they have in ``state_dict`` (for buffers
    that ``fit`` / ``store`` size, created empty), keeping their dtype and device, so that a
    fitted state loads into a fresh module; call from ``_load_from_state_dict``."""
    for name in names:
        saved = state_dict.get(prefix + name)
        if saved is not None:
            current = getattr(module, name)
            setattr(module, name, torch.empty(saved.shape, dtype=current.dtype,
                                              device=current.device))


@contextlib.contextmanager
def module_mode(training: bool, *models: nn.Module) -> Iterator[None]:
    """Put ``models`` in train (or eval) mode and restore every submodule's own flag afterwards
    (``model.train(was_training)`` would also switch a frozen BatchNorm back to training)."""
    modes = [(m, m.training) for model in models for m in model.modules()]
    for model in models:
        model.train(training)
    try:
        yield
    finally:
        for m, flag in modes:
            m.training = flag


def eval_mode(*models: nn.Module) -> contextlib.AbstractContextManager[None]:
    """:func:`module_mode` in eval mode."""
    return module_mode(False, *models)
