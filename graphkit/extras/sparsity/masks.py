"""One mask API for the pruning family: a mask parametrisation, granularities, a pruner base.

A pruned layer keeps its dense weight (the *latent* ``parametrizations.weight.original``) and a
:class:`SparsityMask` parametrisation; ``module.weight`` is then the masked weight, so every
forward, ``state_dict`` and optimiser step sees the sparse layer without touching the layer's
code. Gradients reach only kept weights, so training never revives a pruned one.

Granularities say which weights may be pruned together: :func:`unstructured`, :func:`nm`,
:func:`block`, :func:`channel`. A :class:`Pruner` scores the weights, allocates a density to
each layer, selects a mask per layer and applies it, at the steps its schedule names.
"""

from __future__ import annotations

import numbers
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from graphkit.extras.sparsity.allocation import global_magnitude, keep_count
from graphkit.extras.sparsity.nm import check_nm, nm_select
from graphkit.extras.sparsity.schedules import Schedule

__all__ = [
    "Block",
    "Channel",
    "Granularity",
    "NM",
    "Pruner",
    "SparsityMask",
    "Unstructured",
    "apply_mask",
    "apply_masks",
    "block",
    "channel",
    "check_block_size",
    "check_block_zero",
    "check_density",
    "check_nm",
    "get_mask",
    "load_masked_state_dict",
    "masked_layers",
    "masked_params",
    "nm",
    "remove_masks",
    "unstructured",
    "update_mask",
]

#: Layer types that :func:`apply_masks` masks by default.
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class SparsityMask(nn.Module):
    r"""Parametrisation :math:`W = (M \odot W_{latent}) \cdot S` with a boolean mask ``M``.

    Args:
        mask: boolean tensor of the weight's shape, ``True`` where the weight is kept.
        soft: optional float multiplier of the same shape (e.g. a shrinkage factor applied
            on top of the hard mask). (default: ``None``)
    """

    def __init__(self, mask: Tensor, soft: Tensor | None = None) -> None:
        super().__init__()
        if soft is not None and soft.shape != mask.shape:
            raise ValueError(f"soft has shape {tuple(soft.shape)}, mask {tuple(mask.shape)}")
        if soft is not None and not bool(torch.isfinite(soft).all()):  # once, at construction
            raise ValueError("soft contains NaN or infinite values")
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())
        self.register_buffer("soft", None if soft is None else soft.detach().clone())

    def forward(self, weight: Tensor) -> Tensor:
        if weight.shape != self.mask.shape:
            raise ValueError(
                f"weight of shape {tuple(weight.shape)} does not match its mask "
                f"{tuple(self.mask.shape)}"
            )
        # where, not a product: a NaN or inf in a pruned latent stays out of the weight
        out = torch.where(self.mask, weight, torch.zeros((), dtype=weight.dtype))
        return out if self.soft is None else out * self.soft

    @property
    def density(self) -> float:
        return float(self.mask.sum()) / self.mask.numel()

    def extra_repr(self) -> str:
        return f"shape={tuple(self.mask.shape)}, density={self.density:.4f}"


def _check_binary(mask: Tensor) -> None:
    """A non-boolean mask holds only 0 and 1 (boolean masks, the pruners' own, skip the check)."""
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        # a 0.5 (or NaN) entry would be kept as True silently
        raise ValueError("mask must be boolean or hold only 0 and 1")


def get_mask(module: nn.Module, name: str = "weight") -> SparsityMask | None:
    """The :class:`SparsityMask` on ``module.<name>``, or ``None``."""
    if not parametrize.is_parametrized(module, name):
        return None
    for p in module.parametrizations[name]:
        if isinstance(p, SparsityMask):
            return p
    return None


def apply_mask(module: nn.Module, name: str = "weight", mask: Tensor | None = None) -> SparsityMask:
    """Mask ``module.<name>`` (all kept unless ``mask`` is given); reuses an existing mask."""
    existing = get_mask(module, name)
    if existing is not None:
        if mask is not None:
            update_mask(module, mask, name)
        return existing
    weight = getattr(module, name, None)
    if not isinstance(weight, nn.Parameter) or weight.dim() < 1:
        raise ValueError(f"{type(module).__name__} has no weight parameter named {name!r}")
    if mask is None:
        mask = torch.ones_like(weight, dtype=torch.bool)
    elif mask.shape != weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(weight.shape)}")
    _check_binary(mask)
    parametrize.register_parametrization(module, name, SparsityMask(mask.to(weight.device)))
    update_mask(module, mask, name)
    return get_mask(module, name)


@torch.no_grad()
def update_mask(module: nn.Module, mask: Tensor, name: str = "weight") -> None:
    """Replace the mask of ``module.<name>`` and zero the latent weights it prunes.

    Zeroing the latent keeps :func:`remove_masks` and magnitude scores consistent with the
    mask. Pruned weights get no gradient, but an optimiser's momentum from before the update
    may still move their latent later; the mask keeps that out of ``module.weight``.
    """
    param = get_mask(module, name)
    if param is None:
        raise ValueError(f"{type(module).__name__}.{name} carries no SparsityMask")
    if mask.shape != param.mask.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != weight {tuple(param.mask.shape)}")
    _check_binary(mask)
    param.mask.copy_(mask.to(torch.bool))
    module.parametrizations[name].original.masked_fill_(~param.mask, 0.0)


def masked_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: module}`` of every module whose ``weight`` carries a mask."""
    return {n: m for n, m in model.named_modules() if get_mask(m) is not None}


def masked_params(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """``{parameter path: (module, parameter name)}`` of every masked tensor, any name."""
    out = {}
    for prefix, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for pname in module.parametrizations:
                if get_mask(module, pname) is not None:
                    out[f"{prefix}.{pname}" if prefix else pname] = (module, pname)
    return out


def apply_masks(
    model: nn.Module,
    layers: Iterable[str] | None = None,
    types: tuple[type[nn.Module], ...] = PRUNABLE,
) -> dict[str, tuple[nn.Module, str]]:
    """Put an all-kept mask on the named ``layers`` (default: the weight of every ``types``).

    An entry of ``layers`` names a module (its ``weight`` is masked) or a parameter path,
    e.g. ``"rnn.weight_hh_l0"`` for an LSTM's recurrent gate matrices. Returns
    ``{entry: (module, parameter name)}`` in the given (default: model) order.
    """
    modules = dict(model.named_modules())
    if layers is None:
        names = [n for n, m in modules.items() if isinstance(m, types) and n]
        names = names or [n for n, m in modules.items() if isinstance(m, types)]
        if not names:
            raise ValueError(f"the model has no layers of types {[t.__name__ for t in types]}")
        targets = {n: (modules[n], "weight") for n in names}
    else:
        targets = {}
        for entry in layers:
            parent, _, pname = entry.rpartition(".")
            owner = modules.get(parent)
            if entry in modules:
                targets[entry] = (modules[entry], "weight")
            elif owner is not None and (
                pname in dict(owner.named_parameters(recurse=False))
                or get_mask(owner, pname) is not None  # masked already
            ):
                targets[entry] = (owner, pname)
            else:
                raise ValueError(f"no module or parameter named {entry!r} in the model")
        if not targets:
            raise ValueError("layers is empty")
    for module, pname in targets.values():
        apply_mask(module, pname)
    return targets


def remove_masks(model: nn.Module, bake: bool = True) -> None:
    """Remove every mask; ``bake`` leaves the masked (sparse) weight, else the latent one."""
    for module, pname in masked_params(model).values():
        # A deep copy shares its original's generated parametrised class, from which removal
        # deletes the property: the original would lose its weight. Removing from a class
        # of the module's own leaves every other copy intact.
        cls = module.__class__
        module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
        parametrize.remove_parametrizations(module, pname, leave_parametrized=bake)


def load_masked_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Load a ``state_dict`` saved from a masked model into an unmasked copy of it.

    Masks are put on every layer the state dict has one for, then the state is loaded
    strictly (masks, latent weights and everything else).
    """
    modules = dict(model.named_modules())
    for key in state_dict:
        found = _MASK_KEY.fullmatch(key)
        if found is not None:
            name, pname = found.group(1) or "", found.group(2)
            if name not in modules:
                raise KeyError(f"state_dict masks module {name!r}, which the model lacks")
            apply_mask(modules[name], pname)
            soft = state_dict.get(key[: -len("mask")] + "soft")
            if soft is not None:  # the optional multiplier: a None buffer until it is given
                get_mask(modules[name], pname).soft = soft.clone()
    model.load_state_dict(state_dict)


#: ``<module>.parametrizations.<param>.0.mask``: where a state dict keeps a mask
_MASK_KEY = re.compile(r"(?:(.*)\.)?parametrizations\.([^.]+)\.0\.mask")


# --------------------------------------------------------------------------- granularities


class Granularity(ABC):
    """Which weights are pruned together: ``select(scores, density) -> bool mask``."""

    @abstractmethod
    def select(self, scores: Tensor, density: float) -> Tensor:
        """The kept weights: a boolean mask of ``scores``' shape at ``density``."""

    @staticmethod
    def _check(scores: Tensor, density: float) -> None:
        if not 0.0 <= float(density) <= 1.0:
            raise ValueError(f"density must lie in [0, 1], got {density}")
        if torch.isnan(scores).any():
            raise ValueError("scores contain NaN")


class Unstructured(Granularity):
    """Any single weight; keeps exactly ``round(density * numel)`` highest scores."""

    def select(self, scores: Tensor, density: float) -> Tensor:
        self._check(scores, density)
        keep = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
        keep[scores.flatten().topk(keep_count(density, scores.numel())).indices] = True
        return keep.view(scores.shape)

    def __repr__(self) -> str:
        return "unstructured()"


class NM(Granularity):
    """``n`` of every ``m`` consecutive along ``dim``; the density is fixed at ``n / m``."""

    def __init__(self, n: int, m: int, dim: int = 1) -> None:
        if not isinstance(n, int) or not isinstance(m, int) or m < 1 or not 0 <= n <= m:
            raise ValueError(f"N:M needs integers 0 <= n <= m and m >= 1, got n={n}, m={m}")
        self.n, self.m, self.dim = n, m, dim

    def select(self, scores: Tensor, density: float) -> Tensor:
        """Ignores ``density``: an N:M pattern always keeps ``n / m``."""
        self._check(scores, density)
        return nm_select(scores, self.n, self.m, self.dim)

    def __repr__(self) -> str:
        return f"nm(n={self.n}, m={self.m}, dim={self.dim})"


def check_block_size(bh: int, bw: int) -> None:
    """``bh`` and ``bw`` are positive integers (a fractional size would be truncated)."""
    for name, size in (("bh", bh), ("bw", bw)):
        integer = isinstance(size, numbers.Real) and float(size).is_integer()
        if isinstance(size, bool) or not integer or size < 1:
            raise ValueError(f"block size {name} must be a positive integer, got {size!r}")


def _block_view(x: Tensor, bh: int, bw: int) -> Tensor:
    """``x`` as a matrix ``(out, rest)`` tiled into ``(rows, cols, bh, bw)`` blocks."""
    check_block_size(bh, bw)
    mat = x.reshape(x.shape[0], -1)
    if mat.shape[0] % bh or mat.shape[1] % bw:
        raise ValueError(
            f"a weight viewed as {tuple(mat.shape)} cannot be tiled into {bh}x{bw} blocks"
        )
    return mat.reshape(mat.shape[0] // bh, bh, mat.shape[1] // bw, bw).transpose(1, 2)


class Block(Granularity):
    """Whole ``bh x bw`` blocks of the weight viewed as ``(out, in * kernel)``, scored by sum."""

    def __init__(self, bh: int, bw: int) -> None:
        check_block_size(bh, bw)
        self.bh, self.bw = int(bh), int(bw)

    def select(self, scores: Tensor, density: float) -> Tensor:
        self._check(scores, density)
        blocks = _block_view(scores, self.bh, self.bw).sum((-2, -1))
        keep = Unstructured().select(blocks, density)
        full = keep[:, :, None, None].expand(*keep.shape, self.bh, self.bw)
        return full.transpose(1, 2).reshape(scores.shape)

    def __repr__(self) -> str:
        return f"block({self.bh}, {self.bw})"


class Channel(Granularity):
    """Whole slices along ``dim`` (``0``: output channels / rows), scored by their sum."""

    def __init__(self, dim: int = 0) -> None:
        self.dim = dim

    def select(self, scores: Tensor, density: float) -> Tensor:
        self._check(scores, density)
        if not -scores.dim() <= self.dim < scores.dim():
            raise ValueError(f"dim {self.dim} out of range for shape {tuple(scores.shape)}")
        moved = scores.movedim(self.dim, 0)
        keep = Unstructured().select(moved.reshape(moved.shape[0], -1).sum(1), density)
        shape = [1] * scores.dim()
        shape[self.dim] = -1
        return keep.view(shape).expand(scores.shape).clone()

    def __repr__(self) -> str:
        return f"channel(dim={self.dim})"


def unstructured() -> Unstructured:
    """Prune single weights."""
    return Unstructured()


def nm(n: int, m: int, dim: int = 1) -> NM:
    """Prune to ``n`` of every ``m`` consecutive weights along ``dim``."""
    return NM(n, m, dim)


def block(bh: int, bw: int) -> Block:
    """Prune whole ``bh x bw`` blocks."""
    return Block(bh, bw)


def channel(dim: int = 0) -> Channel:
    """Prune whole channels along ``dim``."""
    return Channel(dim)


# --------------------------------------------------------------------------- invariant checks


def check_density(target: nn.Module | Tensor, expected: float, tol: float = 0.0) -> float:
    """Raise ``AssertionError`` unless the kept share of ``target`` is ``expected``.

    ``target`` is a model (its masks' kept entries over all masked weights) or a tensor (its
    non-zeros). ``tol=0`` asks for the count ``expected * total`` up to rounding: within half a
    weight for a tensor, half a weight per masked layer for a model (each layer rounds its own
    count); ``tol > 0`` allows that much density on top. Returns the measured density.
    """
    if not 0.0 <= expected <= 1.0:  # also rejects NaN, which passed every comparison
        raise ValueError(f"expected density must lie in [0, 1], got {expected}")
    if not tol >= 0.0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if isinstance(target, nn.Module):
        masks = [get_mask(m, p).mask for m, p in masked_params(target).values()]
        if not masks:
            raise ValueError("the model carries no SparsityMask")
        kept, total = sum(int(m.sum()) for m in masks), sum(m.numel() for m in masks)
        rounding = 0.5 * len(masks)
    else:
        if target.numel() == 0:
            raise ValueError("check_density got an empty tensor")
        kept, total, rounding = int((target != 0).sum()), target.numel(), 0.5
    if abs(kept - expected * total) > rounding + tol * total:
        raise AssertionError(
            f"density {kept / total:.6f} ({kept:,} of {total:,} kept), expected {expected:.6f}"
            f" ({expected * total:,.1f} kept){f' within {tol}' if tol else ''}"
        )
    return kept / total


def check_block_zero(weight: Tensor, bh: int, bw: int) -> None:
    """Raise ``AssertionError`` unless each ``bh x bw`` block is all zero or all non-zero."""
    nonzero = (_block_view(weight, bh, bw) != 0).sum((-2, -1))
    mixed = (nonzero > 0) & (nonzero < bh * bw)
    if mixed.any():
        raise AssertionError(f"{int(mixed.sum())} of {mixed.numel()} blocks are partly zero")


# --------------------------------------------------------------------------- pruner base


class Pruner:
    """Score, allocate, select and apply masks at the steps a schedule names.

    Subclasses override :meth:`score` (default: ``|W|`` of the masked weight) and/or
    :meth:`allocate`; :meth:`step` is called once per training step, after the optimiser.

    Args:
        model: the model to prune; masks are put on its layers at construction.
        schedule: target sparsity per step, or ``None`` to prune only via :meth:`prune`.
        granularity: what is pruned together. (default: :func:`unstructured`)
        allocation: ``"uniform"`` (every layer at the target) or ``"global"`` (one magnitude
            threshold over all layers). (default: ``"uniform"``)
        layers: module names (their ``weight``) or parameter paths to prune, e.g.
            ``"rnn.weight_ih_l0"``. (default: every ``Linear`` / ``Conv*d``)

    ``layers`` maps each target's name to its module, ``param_names`` to the parameter.
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Schedule | None = None,
        granularity: Granularity | None = None,
        allocation: str = "uniform",
        layers: Iterable[str] | None = None,
    ) -> None:
        if allocation not in ("uniform", "global"):
            raise ValueError(f"allocation must be 'uniform' or 'global', got {allocation!r}")
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule or None, got {type(schedule).__name__}")
        self.model = model
        self.schedule = schedule
        self.granularity = granularity if granularity is not None else Unstructured()
        self.allocation = allocation
        targets = apply_masks(model, layers)
        self.layers = {name: module for name, (module, _) in targets.items()}
        self.param_names = {name: pname for name, (_, pname) in targets.items()}

    def weight(self, name: str) -> Tensor:
        """The masked weight of target ``name``."""
        return getattr(self.layers[name], self.param_names[name])

    def latent(self, name: str) -> nn.Parameter:
        """The dense latent parameter behind target ``name``."""
        return self.layers[name].parametrizations[self.param_names[name]].original

    def mask(self, name: str) -> Tensor:
        """The boolean mask of target ``name``."""
        return get_mask(self.layers[name], self.param_names[name]).mask

    def score(self, name: str, module: nn.Module) -> Tensor:
        """Importance of each weight of ``module`` (higher is kept); magnitude by default."""
        return self.weight(name).detach().abs()

    def allocate(self, scores: Mapping[str, Tensor], density: float) -> dict[str, float]:
        """Density per layer whose parameter-weighted mean is ``density``."""
        if self.allocation == "global":
            return global_magnitude(scores, density)
        return {name: float(density) for name in scores}

    def select(self, name: str, scores: Tensor, density: float) -> Tensor:
        """The boolean mask of one layer at ``density``."""
        return self.granularity.select(scores, density)

    @torch.no_grad()
    def prune(self, density: float) -> dict[str, float]:
        """Mask every layer to the allocation of ``density``; returns the realised densities."""
        scores = {name: self.score(name, m) for name, m in self.layers.items()}
        for name, s in scores.items():
            if torch.isnan(s).any():
                raise ValueError(f"layer {name!r} has NaN scores (NaN weights?)")
        densities = self.allocate(scores, density)
        for name, module in self.layers.items():
            mask = self.select(name, scores[name], densities[name])
            update_mask(module, mask, self.param_names[name])
        return {name: float(self.mask(name).sum()) / self.mask(name).numel() for name in scores}

    def step(self, global_step: int) -> bool:
        """Prune to the schedule's sparsity if ``global_step`` is a pruning step."""
        if self.schedule is None or not self.schedule.is_update_step(global_step):
            return False
        self.prune(1.0 - self.schedule(global_step))
        return True

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(layers={len(self.layers)}, schedule={self.schedule}, "
            f"granularity={self.granularity}, allocation={self.allocation!r})"
        )
