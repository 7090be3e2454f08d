r"""Function-preserving network transformations (Net2Net), the actions of EAS's controller.

From `Net2Net: Accelerating Learning via Knowledge Transfer
<https://arxiv.org/abs/1511.05641>`_ as used by `Efficient Architecture Search by Network
Transformation <https://arxiv.org/abs/1707.04873>`_ (EAS). Both transformations return new
modules and leave the given ones untouched; :func:`widen_` and :func:`insert_after` apply them
to a model by submodule name, and :func:`describe`, :func:`apply_wider` and :func:`apply_deeper`
give EAS's view of an ``nn.Sequential`` (layer tokens, and actions addressed by child index).

Net2Wider grows a layer from :math:`n` to :math:`q` units with the mapping

.. math::
    g(j) = j \;(j < n), \qquad g(j) \sim \mathcal U\{0, \dots, n-1\} \;(j \ge n),

copying unit :math:`g(j)`'s incoming weights, bias and BatchNorm parameters and statistics
into unit :math:`j`, and dividing the outgoing weights of every copy of unit :math:`k` by its
replication count :math:`|\{j : g(j) = k\}|`, so the next layer sees the same sum.

Net2Deeper inserts a layer initialised to the identity (an identity matrix, or a convolution
kernel that is one at the centre of its own channel), followed if asked by a BatchNorm that is
the identity in eval mode and an activation; with ReLU the block is the identity on
non-negative inputs, i.e. when inserted after a ReLU.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from graphkit.extras._core.modules import replace_module

_Norm = nn.BatchNorm1d | nn.BatchNorm2d


class WiderResult(NamedTuple):
    """The widened layer, the next layer adapted to it, the widened BatchNorm if given, and
    the unit mapping ``g`` (new unit ``j`` copies old unit ``mapping[j]``)."""

    layer: nn.Module
    next_layer: nn.Module
    bn: _Norm | None
    mapping: Tensor


def _width(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError(
                f"net2net supports ungrouped convolutions only, got groups={layer.groups}"
            )
        return layer.out_channels
    raise TypeError(f"expected an nn.Linear or nn.Conv2d, got {type(layer).__name__}")


def _fan_in(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.in_features
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError(
                f"net2net supports ungrouped convolutions only, got groups={layer.groups}"
            )
        return layer.in_channels
    raise TypeError(f"expected an nn.Linear or nn.Conv2d as next layer, got {type(layer).__name__}")


def _like(layer: nn.Module, in_size: int, out_size: int) -> nn.Module:
    """A layer of the same kind and settings with new input / output sizes."""
    w = layer.weight
    kwargs = {"bias": layer.bias is not None, "device": w.device, "dtype": w.dtype}
    if isinstance(layer, nn.Linear):
        return nn.Linear(in_size, out_size, **kwargs)
    return nn.Conv2d(
        in_size,
        out_size,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        padding_mode=layer.padding_mode,
        **kwargs,
    )


def _bn_like(bn: _Norm, num_features: int) -> _Norm:
    ref = bn.weight if bn.weight is not None else bn.running_mean
    return type(bn)(
        num_features,
        eps=bn.eps,
        momentum=bn.momentum,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
        device=ref.device if ref is not None else None,
        dtype=ref.dtype if ref is not None else None,
    )


@torch.no_grad()
def net2wider(
    layer: nn.Linear | nn.Conv2d,
    next_layer: nn.Linear | nn.Conv2d,
    new_width: int,
    noise: float = 0.0,
    bn: _Norm | None = None,
    generator: torch.Generator | None = None,
) -> WiderResult:
    r"""Widen ``layer`` to ``new_width`` units, keeping the network's function.

    Supported pairs: Linear → Linear, Conv2d → Conv2d, and Conv2d → (flatten) → Linear, where
    ``next_layer.in_features`` is a multiple of the channels (channel-major flatten).

    Args:
        layer (nn.Linear | nn.Conv2d): the layer to widen (``groups=1``).
        next_layer (nn.Linear | nn.Conv2d): the layer that consumes its output.
        new_width (int): the new number of units / channels, at least the current one.
        noise (float): if positive, Gaussian noise with standard deviation
            ``noise * std(next_layer.weight)`` is added to the copies' outgoing weights to break
            their symmetry; the function is then preserved only approximately
            (default: ``0.0``).
        bn (nn.BatchNorm1d | nn.BatchNorm2d, optional): a BatchNorm between ``layer`` and the
            activation, widened alongside (default: :obj:`None`).
        generator (torch.Generator, optional): source of the replicated-unit choice.

    Returns:
        :class:`WiderResult` ``(layer, next_layer, bn, mapping)``: new modules and ``g``.
    """
    old = _width(layer)
    fan_in = _fan_in(next_layer)
    if isinstance(layer, nn.Linear) and isinstance(next_layer, nn.Conv2d):
        raise TypeError("a Linear layer cannot feed an nn.Conv2d directly; widen Linear → Linear")
    if isinstance(layer, nn.Conv2d) and isinstance(next_layer, nn.Linear):
        if fan_in % old:
            raise ValueError(
                f"next layer takes {fan_in} features, not a multiple of the {old} channels"
            )
        spatial = fan_in // old
    elif fan_in != old:
        raise ValueError(f"next layer takes {fan_in} inputs but the layer gives {old}")
    else:
        spatial = 1
    if not isinstance(new_width, int) or new_width < old:
        raise ValueError(
            f"new_width must be an integer >= the current width {old}, got {new_width}"
        )
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if bn is not None:
        if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise TypeError(
                f"bn must be an nn.BatchNorm1d or nn.BatchNorm2d, got {type(bn).__name__}"
            )
        if bn.num_features != old:
            raise ValueError(f"bn has {bn.num_features} features, the layer {old} units")

    device = layer.weight.device
    extra = torch.randint(old, (new_width - old,), generator=generator, device="cpu").to(device)
    g = torch.cat([torch.arange(old, device=device), extra])
    counts = torch.bincount(g, minlength=old).to(next_layer.weight.dtype)

    in_size = layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    wide = _like(layer, in_size, new_width)
    wide.weight.copy_(layer.weight[g])
    if layer.bias is not None:
        wide.bias.copy_(layer.bias[g])

    nxt_out = (
        next_layer.out_features if isinstance(next_layer, nn.Linear) else next_layer.out_channels
    )
    nxt = _like(next_layer, new_width * spatial, nxt_out)
    w = next_layer.weight
    # group the next layer's inputs by unit: (out, units, rest) with rest = spatial or kernel
    grouped = w.reshape(w.shape[0], old, -1)
    new_w = grouped[:, g, :] / counts[g].view(1, -1, 1)
    if noise > 0 and new_width > old:
        std = w.std() if w.numel() > 1 else w.abs().mean()
        shape = new_w[:, old:, :].shape
        eps = torch.randn(shape, generator=generator, dtype=w.dtype, device="cpu").to(device)
        new_w[:, old:, :] += noise * std * eps
    nxt.weight.copy_(new_w.reshape(nxt.weight.shape))
    if next_layer.bias is not None:
        nxt.bias.copy_(next_layer.bias)

    wide_bn = None
    if bn is not None:
        wide_bn = _bn_like(bn, new_width)
        if bn.affine:
            wide_bn.weight.copy_(bn.weight[g])
            wide_bn.bias.copy_(bn.bias[g])
        if bn.track_running_stats:
            wide_bn.running_mean.copy_(bn.running_mean[g])
            wide_bn.running_var.copy_(bn.running_var[g])
            wide_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
        wide_bn.train(bn.training)
    wide.train(layer.training)
    nxt.train(next_layer.training)
    return WiderResult(wide, nxt, wide_bn, g)


@torch.no_grad()
def net2deeper(
    after_layer: nn.Linear | nn.Conv2d,
    kernel_size: int | tuple[int, int] | None = None,
    batch_norm: bool = False,
    activation: nn.Module | None = None,
) -> nn.Module:
    r"""A new layer initialised to the identity, to insert after ``after_layer``.

    For an :class:`~torch.nn.Linear` the new layer is ``Linear(q, q)`` with :math:`W = I`,
    :math:`b = 0`; for a :class:`~torch.nn.Conv2d` it is a stride-1 ``same``-padded
    ``Conv2d(q, q, k)`` whose kernel is one at the centre of its own channel and zero
    elsewhere. With ``batch_norm`` a BatchNorm follows with :math:`\gamma = 1, \beta = 0`,
    running mean 0 and running variance :math:`1 - \epsilon`, so it is the identity in eval
    mode (in training mode batch statistics take over). ``activation`` is appended last; the
    block is then the identity only where the activation fixes its inputs (a ReLU after a
    ReLU).

    Args:
        after_layer (nn.Linear | nn.Conv2d): the layer whose output width the new layer keeps.
        kernel_size (int | tuple[int, int], optional): odd kernel size of a new convolution
            (default: ``after_layer``'s).
        batch_norm (bool): append an eval-mode identity BatchNorm (default: :obj:`False`).
        activation (nn.Module, optional): appended after the BatchNorm (default: :obj:`None`).

    Returns:
        The new layer, or an :class:`~torch.nn.Sequential` of it, the BatchNorm and the
        activation when either is asked for.
    """
    width = _width(after_layer)
    w = after_layer.weight
    factory = {"device": w.device, "dtype": w.dtype}
    if isinstance(after_layer, nn.Linear):
        if kernel_size is not None:
            raise ValueError("kernel_size applies to convolutions only")
        layer: nn.Module = nn.Linear(width, width, bias=not batch_norm, **factory)
        layer.weight.copy_(torch.eye(width, **factory))
        bn: _Norm | None = nn.BatchNorm1d(width, **factory) if batch_norm else None
    else:
        k = after_layer.kernel_size if kernel_size is None else kernel_size
        kh, kw = (k, k) if isinstance(k, int) else tuple(k)
        if kh < 1 or kw < 1 or kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"the identity kernel needs odd positive sizes, got {(kh, kw)}")
        layer = nn.Conv2d(
            width, width, (kh, kw), padding=(kh // 2, kw // 2), bias=not batch_norm, **factory
        )
        layer.weight.zero_()
        idx = torch.arange(width, device=w.device)
        layer.weight[idx, idx, kh // 2, kw // 2] = 1.0
        bn = nn.BatchNorm2d(width, **factory) if batch_norm else None
    if layer.bias is not None:
        layer.bias.zero_()
    if bn is None and activation is None:
        return layer
    parts = [layer]
    if bn is not None:
        bn.running_var.fill_(1.0 - bn.eps)
        parts.append(bn)
    if activation is not None:
        parts.append(activation)
    return nn.Sequential(*parts)


def widen_(
    model: nn.Module,
    layer: str,
    next_layer: str,
    new_width: int,
    bn: str | None = None,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> WiderResult:
    """Apply :func:`net2wider` in place to the submodules named ``layer``, ``next_layer``
    (and ``bn``) of ``model``; returns the new modules."""
    result = net2wider(
        model.get_submodule(layer),
        model.get_submodule(next_layer),
        new_width,
        noise=noise,
        bn=model.get_submodule(bn) if bn is not None else None,
        generator=generator,
    )
    replace_module(model, layer, result.layer)
    replace_module(model, next_layer, result.next_layer)
    if bn is not None:
        replace_module(model, bn, result.bn)
    return result


def insert_after(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule ``name`` of ``model`` by ``Sequential(old, module)`` in place."""
    old = model.get_submodule(name)
    replace_module(model, name, nn.Sequential(old, module))


# -- EAS's view of a plain network: an nn.Sequential of layers, described by tokens ---------
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def describe(model: nn.Sequential, include_output: bool = False) -> list[tuple[int, str]]:
    """``(child index, token)`` for each conv, fully connected and pooling child of ``model``.

    Tokens are ``"conv-<filters>-<kernel>"``, ``"fc-<units>"`` and ``"pool"``, the layer
    description EAS's encoder reads (:class:`~graphkit.extras.nas.searchers.EASController`);
    other children (BatchNorm, activations, flatten) are not described. As in the official
    code, the output layer (the last conv / fc child) is left out unless ``include_output``:
    it is neither widened nor followed by an inserted layer.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"describe expects an nn.Sequential, got {type(model).__name__}")
    out = []
    for i, child in enumerate(model):
        if isinstance(child, nn.Conv2d):
            kh, kw = child.kernel_size
            if kh != kw:
                raise ValueError(f"layer {i}: EAS tokens need square kernels, got {(kh, kw)}")
            out.append((i, f"conv-{child.out_channels}-{kh}"))
        elif isinstance(child, nn.Linear):
            out.append((i, f"fc-{child.out_features}"))
        elif isinstance(child, _POOLS):
            out.append((i, "pool"))
    if not include_output:
        last = max((k for k, (_, t) in enumerate(out) if t != "pool"), default=None)
        if last is not None:
            out = out[:last] + out[last + 1 :]
    return out


def apply_wider(
    model: nn.Sequential,
    index: int,
    new_width: int,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> WiderResult:
    """Widen child ``index`` of ``model`` in place, with the BatchNorm right after it (if any)
    and the next conv / fully connected child, by :func:`net2wider`."""
    names = list(model._modules)
    if not 0 <= index < len(names):
        raise IndexError(f"model has {len(names)} children, no index {index}")
    nxt = next(
        (j for j in range(index + 1, len(names)) if isinstance(model[j], (nn.Conv2d, nn.Linear))),
        None,
    )
    if nxt is None:
        raise ValueError(f"child {index} has no conv / linear layer after it to adapt")
    bn = (
        names[index + 1] if isinstance(model[index + 1], (nn.BatchNorm1d, nn.BatchNorm2d)) else None
    )
    return widen_(
        model, names[index], names[nxt], new_width, bn=bn, noise=noise, generator=generator
    )


def apply_deeper(model: nn.Sequential, index: int, kernel_size: int | None = None) -> nn.Sequential:
    """A new :class:`~torch.nn.Sequential` with an identity layer inserted after child ``index``.

    The new layer goes after the layer's BatchNorm and ReLU, and repeats them (BatchNorm in
    eval-mode identity form, see :func:`net2deeper`), so the network computes the same
    function; the layer must therefore be followed by a ReLU. The children are shared with
    ``model``, not copied.
    """
    children = list(model)
    if not 0 <= index < len(children):
        raise IndexError(f"model has {len(children)} children, no index {index}")
    layer = children[index]
    pos = index + 1
    has_bn = pos < len(children) and isinstance(children[pos], (nn.BatchNorm1d, nn.BatchNorm2d))
    pos += has_bn
    if pos >= len(children) or not isinstance(children[pos], nn.ReLU):
        raise ValueError(
            f"child {index} is not followed by a ReLU: an identity layer there would not "
            "preserve the function"
        )
    block = net2deeper(layer, kernel_size=kernel_size, batch_norm=has_bn, activation=nn.ReLU())
    return nn.Sequential(*children[: pos + 1], *block, *children[pos + 1 :])
