r"""Sparse Iso-FLOP Transformations (Thangarasa et al., "Sparse-IFT: Sparse Iso-FLOP
Transformations for Maximizing Training Efficiency", https://arxiv.org/abs/2303.11525; official
code CerebrasResearch/Sparse-IFT).

Each transformation replaces a dense layer :math:`y = Wx` (``Linear`` or ``Conv2d``, fan-in
:math:`f = d_{in} k_h k_w`, :math:`d_{out}` outputs) by a larger sparse one of the same
non-zero MACs at sparsity :math:`s`:

* **Wide**: both widths times :math:`k = \sqrt{1 / (1 - s)}`, density :math:`1 - s`;
* **Parallel**: :math:`k = 1 / (1 - s)` sparse copies of the layer, summed;
* **Factorized**: :math:`W \to V\,\sigma(U\,\cdot)` through an inner width
  :math:`d_{sl} = f d_{out} / ((1 - s)(f + d_{out}))`, both factors sparse;
* **Doped**: a dense low-rank :math:`VU` of rank :math:`d_{lr} = s f d_{out} / (f + d_{out})`
  plus the layer itself at sparsity :math:`s`.

Widths are whole numbers, so each transformation rounds its width and then sets the density of
its sparse factors to the exact iso-FLOP value ``dense MACs / (their dense MACs)`` (which is
:math:`1 - s` up to that rounding). Masks are static and random (a uniform random subset of
exactly that many weights) on the shared :class:`~graphkit.extras.sparsity.masks.SparsityMask`,
so any pruner of the family can drive them; :func:`regrow_set` is the dynamic (SET-style) option.
For a convolution the second factor of Factorized and Doped is a ``1 x 1`` convolution (the
first one keeps the kernel, stride, padding and dilation), a choice of this implementation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Collection

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction
from graphkit.extras._core.modules import replace_module
from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.masks import (
    apply_mask,
    get_mask,
    masked_params,
    unstructured,
    update_mask,
)

__all__ = [
    "KINDS",
    "SparseDoped",
    "SparseFactorized",
    "SparseParallel",
    "SparseWide",
    "regrow_set",
    "sparse_ift",
    "wide_factor",
]

#: The transformations :func:`sparse_ift` knows.
KINDS = ("wide", "parallel", "factorized", "doped")

Layer = nn.Linear | nn.Conv2d


def _check_layer(layer: nn.Module, who: str) -> None:
    if isinstance(layer, nn.Linear):
        return
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError(
                f"{who} needs a dense convolution (groups=1), got groups={layer.groups}"
            )
        return
    raise TypeError(f"{who} transforms nn.Linear or nn.Conv2d, got {type(layer).__name__}")


def _check_sparsity(s: float) -> float:
    if check_fraction("s", float(s)) == 0.0:  # s = 0 is the dense layer itself
        raise ValueError("s must lie in (0, 1), got 0")
    return float(s)


def _widths(layer: Layer) -> tuple[int, int, int]:
    """``(d_in, d_out, kernel size)`` of a Linear (kernel 1) or Conv2d."""
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features, 1
    return layer.in_channels, layer.out_channels, math.prod(layer.kernel_size)


def _like(layer: Layer, d_in: int, d_out: int, bias: bool) -> Layer:
    """A fresh layer of ``layer``'s kind and geometry with other widths."""
    w = layer.weight
    if isinstance(layer, nn.Linear):
        return nn.Linear(d_in, d_out, bias=bias, device=w.device, dtype=w.dtype)
    return nn.Conv2d(
        d_in,
        d_out,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        bias=bias,
        padding_mode=layer.padding_mode,
        device=w.device,
        dtype=w.dtype,
    )


def _pointwise(layer: Layer, d_in: int, d_out: int, bias: bool) -> Layer:
    """The second factor: a Linear, or a ``1 x 1`` convolution after a Conv2d."""
    w = layer.weight
    if isinstance(layer, nn.Linear):
        return nn.Linear(d_in, d_out, bias=bias, device=w.device, dtype=w.dtype)
    return nn.Conv2d(d_in, d_out, 1, bias=bias, device=w.device, dtype=w.dtype)


def _random_mask(layer: Layer, density: float, generator: torch.Generator | None) -> None:
    """Mask ``layer`` to a uniform random subset of ``round(density * numel)`` weights."""
    w = layer.weight
    scores = torch.rand(w.shape, generator=generator).to(w.device)
    apply_mask(layer, mask=unstructured().select(scores, min(density, 1.0)))


def wide_factor(s: float) -> float:
    r"""The Sparse Wide width multiplier :math:`k = \sqrt{1 / (1 - s)}`."""
    return math.sqrt(1.0 / (1.0 - _check_sparsity(s)))


class _Transform(nn.Module):
    """Common ``reset_parameters`` / ``extra_repr`` of the four transformations."""

    sparsity: float

    def reset_parameters(self) -> None:
        """Re-initialise every factor's latent weight (the masks stay)."""
        for m in self.modules():
            if isinstance(m, Layer):
                m.reset_parameters()  # resets the latent; the mask keeps pruned ones out

    def extra_repr(self) -> str:
        return f"s={self.sparsity}"

    def _check_input(self, x: Tensor, layer: Layer) -> None:
        """``x`` fits ``layer``'s input width (metadata only), else a ``ValueError``."""
        if isinstance(layer, nn.Linear):
            if x.dim() < 1 or x.shape[-1] != layer.in_features:
                raise ValueError(
                    f"{type(self).__name__} expects input (*, {layer.in_features}), "
                    f"got shape {tuple(x.shape)}"
                )
        elif x.dim() not in (3, 4) or x.shape[-3] != layer.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input (N, {layer.in_channels}, H, W), "
                f"got shape {tuple(x.shape)}"
            )


class SparseWide(_Transform):
    r"""Sparse Wide: the layer with its widths times :math:`k = \sqrt{1/(1-s)}`, sparse.

    With both ends widened the non-zero MACs are :math:`k^2 (1 - s) f d_{out} = f d_{out}`.
    A network's first layer widens only its output and its last only its input
    (``widen_in`` / ``widen_out``); the density is then ``1 / k`` so the layer stays iso-FLOP.
    In a network the widened layer takes the widened input, so use :func:`sparse_ift` with
    ``kind="wide"`` to transform a whole chain with its input and output shapes kept.

    Args:
        layer: the dense ``nn.Linear`` or ``nn.Conv2d`` (``groups=1``); only its geometry is
            used.
        s: target sparsity :math:`s \in (0, 1)`.
        widen_in: widen the input width. (default: ``True``)
        widen_out: widen the output width. (default: ``True``)
        generator: random generator of the mask. (default: torch's global one)
        in_width: explicit input width, overriding ``widen_in`` (e.g. a widened conv's
            channels times its positions after a ``Flatten``). (default: ``None``)
        out_width: explicit output width, overriding ``widen_out``. (default: ``None``)

    Shapes:
        input ``(*, round(k d_in))`` (or ``(N, round(k d_in), H, W)``) when ``widen_in``, the
        layer's input otherwise; output likewise with ``d_out``.
    """

    def __init__(
        self,
        layer: Layer,
        s: float,
        widen_in: bool = True,
        widen_out: bool = True,
        generator: torch.Generator | None = None,
        in_width: int | None = None,
        out_width: int | None = None,
    ) -> None:
        super().__init__()
        _check_layer(layer, "SparseWide")
        self.sparsity = _check_sparsity(s)
        d_in, d_out, _ = _widths(layer)
        k = wide_factor(s)
        if in_width is None:
            in_width = round(k * d_in) if widen_in else d_in
        if out_width is None:
            out_width = round(k * d_out) if widen_out else d_out
        self.in_width, self.out_width = in_width, out_width
        if self.in_width < d_in or self.out_width < d_out:
            raise ValueError(
                f"widths {self.in_width} x {self.out_width} are below the layer's {d_in} x {d_out}"
            )
        self.layer = _like(layer, self.in_width, self.out_width, layer.bias is not None)
        self.density = (d_in * d_out) / (self.in_width * self.out_width)  # kernel cancels
        _random_mask(self.layer, self.density, generator)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x, self.layer)
        return self.layer(x)


class SparseParallel(_Transform):
    r"""Sparse Parallel: :math:`k = 1/(1-s)` sparse copies of the layer, outputs summed.

    .. math::
        y = \sum_{i=1}^{k} (M_i \odot W_i)\, x, \qquad \text{density of each } M_i = 1/k

    :math:`k` is rounded to a whole number of branches and the density set to ``1/k``, so the
    non-zero MACs equal the dense layer's. Only the first branch has a bias.

    Args:
        layer: the dense ``nn.Linear`` or ``nn.Conv2d`` (``groups=1``).
        s: target sparsity :math:`s \in (0, 1)`.
        generator: random generator of the masks. (default: torch's global one)

    Shapes:
        the layer's input and output shapes.
    """

    def __init__(self, layer: Layer, s: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_layer(layer, "SparseParallel")
        self.sparsity = _check_sparsity(s)
        d_in, d_out, _ = _widths(layer)
        self.branches_count = max(1, round(1.0 / (1.0 - self.sparsity)))
        self.density = 1.0 / self.branches_count
        self.branches = nn.ModuleList(
            _like(layer, d_in, d_out, layer.bias is not None and i == 0)
            for i in range(self.branches_count)
        )
        for branch in self.branches:
            _random_mask(branch, self.density, generator)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x, self.branches[0])
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class SparseFactorized(_Transform):
    r"""Sparse Factorized: :math:`y = (M_V \odot V)\,\sigma\big((M_U \odot U)\,x\big)`.

    Inner width :math:`d_{sl} = f d_{out} / ((1-s)(f + d_{out}))`, rounded; both factors at the
    density :math:`f d_{out} / (d_{sl}(f + d_{out}))` (:math:`\approx 1 - s`), so the non-zero
    MACs equal :math:`f d_{out}`. For a convolution :math:`U` keeps the kernel and :math:`V`
    is ``1 x 1``.

    Args:
        layer: the dense ``nn.Linear`` or ``nn.Conv2d`` (``groups=1``).
        s: target sparsity :math:`s \in (0, 1)`.
        activation: the non-linearity :math:`\sigma`. (default: ``nn.ReLU()``)
        generator: random generator of the masks. (default: torch's global one)

    Shapes:
        the layer's input and output shapes.
    """

    def __init__(
        self,
        layer: Layer,
        s: float,
        activation: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_layer(layer, "SparseFactorized")
        self.sparsity = _check_sparsity(s)
        d_in, d_out, ks = _widths(layer)
        fan_in = d_in * ks
        self.inner = max(1, round(fan_in * d_out / ((1.0 - self.sparsity) * (fan_in + d_out))))
        self.density = fan_in * d_out / (self.inner * (fan_in + d_out))
        self.u = _like(layer, d_in, self.inner, bias=False)
        self.act = activation if activation is not None else nn.ReLU()
        self.v = _pointwise(layer, self.inner, d_out, layer.bias is not None)
        _random_mask(self.u, self.density, generator)
        _random_mask(self.v, self.density, generator)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x, self.u)
        return self.v(self.act(self.u(x)))


class SparseDoped(_Transform):
    r"""Sparse Doped: :math:`y = V U x + (M \odot W) x`, a dense low-rank part plus a sparse one.

    Rank :math:`d_{lr} = s f d_{out} / (f + d_{out})`, rounded; the sparse :math:`W` keeps
    :math:`f d_{out} - d_{lr}(f + d_{out})` weights (density :math:`\approx 1 - s`), so the
    non-zero MACs equal :math:`f d_{out}`. For a convolution :math:`U` keeps the kernel and
    :math:`V` is ``1 x 1``.

    Args:
        layer: the dense ``nn.Linear`` or ``nn.Conv2d`` (``groups=1``).
        s: target sparsity :math:`s \in (0, 1)`.
        generator: random generator of the mask. (default: torch's global one)

    Shapes:
        the layer's input and output shapes.
    """

    def __init__(self, layer: Layer, s: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_layer(layer, "SparseDoped")
        self.sparsity = _check_sparsity(s)
        d_in, d_out, ks = _widths(layer)
        fan_in = d_in * ks
        self.rank = max(1, round(self.sparsity * fan_in * d_out / (fan_in + d_out)))
        left = fan_in * d_out - self.rank * (fan_in + d_out)
        if left < 0:
            raise ValueError(f"rank {self.rank} alone exceeds the layer's MACs; lower s={s}")
        self.density = left / (fan_in * d_out)
        self.u = _like(layer, d_in, self.rank, bias=False)
        self.v = _pointwise(layer, self.rank, d_out, bias=False)
        self.sparse = _like(layer, d_in, d_out, layer.bias is not None)
        _random_mask(self.sparse, self.density, generator)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x, self.sparse)
        return self.v(self.u(x)) + self.sparse(x)


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def _widen_chain(
    model: nn.Sequential, s: float, generator: torch.Generator | None
) -> nn.Sequential:
    """Sparse Wide over a chain: hidden widths times ``k``, the chain's ends kept."""
    layers = [i for i, m in enumerate(model) if isinstance(m, Layer)]
    if not layers:
        raise ValueError("sparse_ift(kind='wide') found no Linear / Conv2d in the chain")
    out: list[nn.Module] = []
    orig, cur = None, None  # the previous layer's dense and widened output width
    for i, m in enumerate(model):
        if isinstance(m, Layer):
            _check_layer(m, "sparse_ift(kind='wide')")
            d_in = _widths(m)[0]
            if orig is not None and d_in % orig:
                raise ValueError(f"layer {i}: input width {d_in} is no multiple of {orig}")
            # after a Flatten the input is channels x positions, so scale by the channel ratio
            in_width = d_in if orig is None else d_in // orig * cur
            wide = SparseWide(
                m, s, widen_out=i != layers[-1], generator=generator, in_width=in_width
            )
            orig, cur = _widths(m)[1], wide.out_width
            out.append(wide)
        elif isinstance(m, _NORMS) and cur is not None and cur != orig:
            out.append(_rebuild_norm(m, orig, cur))
        elif isinstance(m, nn.Sequential | nn.ModuleList | nn.ModuleDict):
            raise ValueError(
                f"sparse_ift(kind='wide') needs a flat nn.Sequential; entry {i} is a container"
            )
        else:
            out.append(copy.deepcopy(m))
    return nn.Sequential(*out)


def _rebuild_norm(norm: nn.Module, orig: int, cur: int) -> nn.Module:
    if isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d):
        return type(norm)(cur, norm.eps, norm.momentum, norm.affine, norm.track_running_stats)
    if isinstance(norm, nn.GroupNorm):
        return nn.GroupNorm(norm.num_groups, cur, norm.eps, norm.affine)
    if norm.normalized_shape != (orig,):
        raise ValueError(f"cannot widen LayerNorm of shape {norm.normalized_shape}")
    return nn.LayerNorm(cur, norm.eps, norm.elementwise_affine)


@register_model(
    "sparse_ift",
    family="pruning",
    paper="Sparse-IFT: Sparse Iso-FLOP Transformations for Maximizing Training Efficiency",
)
def sparse_ift(
    model: nn.Module,
    kind: str,
    s: float,
    skip: Collection[str] = (),
    seed: int | None = None,
) -> nn.Module:
    r"""A copy of ``model`` with a Sparse-IFT applied to its ``Linear`` / ``Conv2d`` layers.

    ``"parallel"``, ``"factorized"`` and ``"doped"`` keep each layer's shapes, so they replace
    every dense ``Linear`` / ``Conv2d`` (``groups=1``; depthwise ones stay) of any model, except
    the module names in ``skip`` (e.g. the stem and classifier, which the paper keeps dense).
    ``"wide"`` changes the hidden widths, so ``model`` must be a flat ``nn.Sequential``
    (activations, pooling, ``Flatten``, dropout and norms between the layers; norms are rebuilt
    at the new width); every hidden width is multiplied by :math:`\sqrt{1/(1-s)}` and the
    chain's input and output widths are kept. New layers are freshly initialised (Sparse-IFT
    trains from scratch) and masked at random; the original model is not changed.

    Args:
        model: the dense model.
        kind: one of :data:`KINDS`.
        s: sparsity :math:`s \in (0, 1)`.
        skip: module names left dense (not used by ``"wide"``). (default: none)
        seed: seed of the masks. (default: ``None``: torch's global generator)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _check_sparsity(s)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    if kind == "wide":
        if not isinstance(model, nn.Sequential):
            raise TypeError("sparse_ift(kind='wide') needs an nn.Sequential chain")
        if skip:
            raise ValueError("skip is not used by kind='wide' (its ends are never widened)")
        return _widen_chain(model, s, generator)
    build = {"parallel": SparseParallel, "factorized": SparseFactorized, "doped": SparseDoped}[kind]
    new = copy.deepcopy(model)
    names = dict(new.named_modules())
    unknown = set(skip) - set(names)
    if unknown:
        raise ValueError(f"skip names {sorted(unknown)} are not modules of the model")
    targets = [
        n
        for n, m in names.items()
        if n and n not in skip and isinstance(m, Layer) and getattr(m, "groups", 1) == 1
    ]
    if not targets:
        raise ValueError("the model has no dense Linear / Conv2d layer to transform")
    for name in targets:
        replace_module(new, name, build(names[name], s, generator=generator))
    return new


@torch.no_grad()
def regrow_set(model: nn.Module, fraction: float, generator: torch.Generator | None = None) -> int:
    r"""One dynamic-sparsity update in the manner of SET (Mocanu et al., "Scalable training of
    artificial neural networks with adaptive sparse connectivity inspired by network science",
    https://arxiv.org/abs/1707.04780), the dynamic-mask option of Sparse-IFT.

    In every masked tensor of ``model``, the ``round(fraction * kept)`` kept weights of smallest
    ``|w|`` are pruned and as many positions, drawn uniformly among those pruned before this
    update, are regrown with weight zero; so every layer keeps its density and the transformed
    layers stay iso-FLOP. Call it every few training steps, after the optimiser step.

    Args:
        model: a model with :class:`~graphkit.extras.sparsity.masks.SparsityMask` masks (e.g.
            from :func:`sparse_ift`).
        fraction: share of each layer's kept weights moved, in ``[0, 1)``.
        generator: random generator of the regrown positions. (default: torch's global one)

    Returns:
        the number of weights moved over all layers.
    """
    check_fraction("fraction", fraction)
    targets = masked_params(model)
    if not targets:
        raise ValueError("the model carries no SparsityMask")
    moved = 0
    for module, pname in targets.values():
        mask = get_mask(module, pname).mask
        latent = module.parametrizations[pname].original.flatten()
        kept = mask.flatten().nonzero().squeeze(1)
        free = (~mask).flatten().nonzero().squeeze(1)
        count = min(int(fraction * kept.numel() + 0.5), free.numel())
        if count == 0:
            continue
        drop = kept[latent[kept].abs().topk(count, largest=False).indices]
        grow = free[torch.randperm(free.numel(), generator=generator)[:count].to(free.device)]
        new = mask.clone().flatten()
        new[drop], new[grow] = False, True
        update_mask(module, new.view_as(mask), pname)
        module.parametrizations[pname].original.view(-1)[grow] = 0.0  # regrown from zero
        moved += count
    return moved
