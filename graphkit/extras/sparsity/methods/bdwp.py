"""Bidirectional N:M weight pruning, BDWP (Fang et al., "Efficient N:M Sparse DNN Training Using
Algorithm, Architecture, and Dataflow Co-Design", https://arxiv.org/abs/2309.13015).

The forward pass multiplies by ``W`` pruned N:M along its input dimension, the activation-
gradient pass by ``W`` pruned N:M along its output dimension (the reduction dimension of
``dY @ W``), so both matrix products of training can use an N:M sparse kernel; the weight
gradient stays dense and updates the dense latent ``W``. The SAT accelerator and its dataflow
are hardware and out of scope; :func:`nm_training_macs` gives the ideal MAC count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.nm import nm_mask


def _keep(weight: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask, weight, torch.zeros((), dtype=weight.dtype))


class BDWPLinearFunction(torch.autograd.Function):
    """``y = x (W * M_f)^T + b`` with ``dX = dY (W * M_b)`` and a dense ``dW = dY^T X``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        mask_forward: Tensor,
        mask_backward: Tensor,
    ) -> Tensor:
        ctx.save_for_backward(x, weight, mask_backward)
        ctx.has_bias = bias is not None
        return F.linear(x, _keep(weight, mask_forward), bias)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple:
        x, weight, mask_backward = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ _keep(weight, mask_backward)
        flat_out = grad_out.reshape(-1, weight.shape[0])
        if ctx.needs_input_grad[1]:
            grad_w = flat_out.t() @ x.reshape(-1, weight.shape[1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = flat_out.sum(0)
        return grad_x, grad_w, grad_b, None, None


class BDWPConv2dFunction(torch.autograd.Function):
    """A 2-D convolution with kernel ``W * M_f`` forward, ``W * M_b`` for the input gradient
    and a dense weight gradient; ``conv`` is ``(stride, padding, dilation, groups)``."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        mask_forward: Tensor,
        mask_backward: Tensor,
        conv: tuple,
    ) -> Tensor:
        ctx.save_for_backward(x, weight, mask_backward)
        ctx.conv, ctx.has_bias = conv, bias is not None
        return F.conv2d(x, _keep(weight, mask_forward), bias, *conv)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple:
        x, weight, mask_backward = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            w_b = _keep(weight, mask_backward)
            grad_x = torch.nn.grad.conv2d_input(x.shape, w_b, grad_out, *ctx.conv)
        if ctx.needs_input_grad[1]:
            grad_w = torch.nn.grad.conv2d_weight(x, weight.shape, grad_out, *ctx.conv)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None


def _check_nm(n: int, m: int) -> None:
    if not isinstance(n, int) or not isinstance(m, int) or not 1 <= n <= m:
        raise ValueError(f"BDWP needs integers 1 <= n <= m, got n={n}, m={m}")


class _BDWPMasks:
    """The two N:M masks of a BDWP layer, recomputed every ``update_every`` training calls."""

    weight: Tensor
    training: bool

    def _init_masks(self, n: int, m: int, update_every: int) -> None:
        _check_nm(n, m)
        if not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"update_every must be an integer >= 1, got {update_every}")
        self.n, self.m, self.update_every = n, m, update_every
        self._calls = 0
        self._cached: tuple[Tensor, Tensor] | None = None

    def masks(self) -> tuple[Tensor, Tensor]:
        """``(M_f, M_b)`` from the current weight: N:M along the input dim, along the output dim."""
        return nm_mask(self.weight, self.n, self.m, 1), nm_mask(self.weight, self.n, self.m, 0)

    def _current_masks(self) -> tuple[Tensor, Tensor]:
        # update_every=1 follows the weights exactly; otherwise the masks are held for
        # update_every training calls (eval calls reuse them) and saved nowhere: a loaded or
        # moved layer recomputes them on its next call
        due = self.training and self._calls % self.update_every == 0
        cached = self._cached
        if (
            self.update_every == 1
            or due
            or cached is None
            or cached[0].device != self.weight.device
        ):
            cached = self._cached = self.masks()
        if self.training:
            self._calls += 1
        return cached


class BDWPLinear(_BDWPMasks, nn.Linear):
    r"""A ``Linear`` layer trained with bidirectional N:M weight pruning.

    .. math::
        Y = X (W \odot M_f)^T + b, \qquad
        \frac{\partial L}{\partial X} = \frac{\partial L}{\partial Y}(W \odot M_b), \qquad
        \frac{\partial L}{\partial W} = \Big(\frac{\partial L}{\partial Y}\Big)^T X

    :math:`M_f` keeps the ``n`` largest :math:`|W|` of every ``m`` consecutive along the input
    dimension, :math:`M_b` along the output dimension; both are computed from the dense latent
    ``W``, at every training call by default so they follow the weights as they train.

    Args:
        in_features: input size (a multiple of ``m``).
        out_features: output size (a multiple of ``m``).
        bias: learn an additive bias. (default: ``True``)
        n: weights kept per group. (default: ``2``)
        m: group size. (default: ``8``)
        update_every: recompute the masks every this many training calls. (default: ``1``)

    Shapes:
        input ``(*, in_features)``, output ``(*, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        n: int = 2,
        m: int = 8,
        update_every: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self._init_masks(n, m, update_every)
        if in_features % m or out_features % m:
            raise ValueError(
                f"BDWPLinear needs in_features ({in_features}) and out_features "
                f"({out_features}) divisible by m={m}"
            )
        super().__init__(in_features, out_features, bias, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"expected input (*, {self.in_features}), got {tuple(x.shape)}")
        mask_f, mask_b = self._current_masks()
        return BDWPLinearFunction.apply(x, self.weight, self.bias, mask_f, mask_b)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n={self.n}, m={self.m}, update_every={self.update_every}"


class BDWPConv2d(_BDWPMasks, nn.Conv2d):
    r"""A ``Conv2d`` trained with bidirectional N:M weight pruning.

    The kernel ``W`` of shape ``(out, in/groups, kh, kw)`` is pruned N:M along input channels
    (``dim=1``, one group per output channel and kernel position) for the forward pass and
    along output channels (``dim=0``) for the input-gradient pass; the weight gradient is
    dense. See :class:`BDWPLinear` for the equations.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            :class:`torch.nn.Conv2d` (numeric padding, ``padding_mode="zeros"`` only);
            ``in_channels / groups`` and ``out_channels`` must be multiples of ``m``.
        n: weights kept per group. (default: ``2``)
        m: group size. (default: ``8``)
        update_every: recompute the masks every this many training calls. (default: ``1``)

    Shapes:
        input ``(B, in_channels, H, W)``, output ``(B, out_channels, H', W')``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        n: int = 2,
        m: int = 8,
        update_every: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self._init_masks(n, m, update_every)
        if isinstance(padding, str):
            raise ValueError("BDWPConv2d takes numeric padding, not a padding string")
        if groups < 1 or in_channels % groups or (in_channels // groups) % m or out_channels % m:
            raise ValueError(
                f"BDWPConv2d needs in_channels/groups ({in_channels}/{groups}) and out_channels "
                f"({out_channels}) divisible by m={m}"
            )
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            device=device,
            dtype=dtype,
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        conv = (self.stride, self.padding, self.dilation, self.groups)
        mask_f, mask_b = self._current_masks()
        return BDWPConv2dFunction.apply(x, self.weight, self.bias, mask_f, mask_b, conv)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n={self.n}, m={self.m}, update_every={self.update_every}"


def _convert(layer: nn.Module, n: int, m: int, update_every: int) -> nn.Module | None:
    """A BDWP copy of ``layer`` sharing its parameters, or ``None`` if it does not fit."""
    if type(layer) is nn.Linear:
        if layer.in_features % m or layer.out_features % m:
            return None
        new = BDWPLinear(
            layer.in_features, layer.out_features, layer.bias is not None, n, m, update_every
        )
    elif type(layer) is nn.Conv2d:
        if (
            isinstance(layer.padding, str)
            or layer.padding_mode != "zeros"
            or (layer.in_channels // layer.groups) % m
            or layer.out_channels % m
        ):
            return None
        new = BDWPConv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            layer.bias is not None,
            n,
            m,
            update_every,
        )
    else:
        return None
    new.weight = layer.weight
    new.bias = layer.bias
    return new.to(layer.weight.device)


@register_model(
    "bdwp",
    family="pruning",
    paper="Efficient N:M Sparse DNN Training Using Algorithm, Architecture, and Dataflow Co-Design",
)
def to_bdwp(model: nn.Module, n: int = 2, m: int = 8, update_every: int = 1) -> nn.Module:
    """Replace, in place, every ``Linear`` / ``Conv2d`` whose sizes divide by ``m`` with its
    BDWP counterpart (same parameters); returns ``model``, or the BDWP copy when ``model``
    itself is such a layer. Other layers stay dense."""
    _check_nm(n, m)
    converted = _convert(model, n, m, update_every)
    if converted is not None:
        return converted
    for name, child in model.named_children():
        new = _convert(child, n, m, update_every)
        if new is not None:
            setattr(model, name, new)
        else:
            to_bdwp(child, n, m, update_every)
    return model


@torch.no_grad()
def nm_training_macs(model: nn.Module, input_shape: Sequence[int] | Tensor) -> tuple[int, int]:
    """Ideal MACs of one training step (forward, input gradient, weight gradient) on one batch.

    Each ``Linear`` / ``Conv*d`` costs its forward MACs ``D`` three times when dense; a BDWP
    layer costs ``D * n/m`` forward, ``D * n/m`` for the input gradient and ``D`` for the dense
    weight gradient. Returns ``(bdwp_macs, dense_macs)`` (the ratio is the ideal speed-up).
    """
    totals = [0.0, 0]

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        w = module.weight
        dense = out.numel() * (w.shape[1] if isinstance(module, nn.Linear) else w[0].numel())
        share = module.n / module.m if isinstance(module, BDWPLinear | BDWPConv2d) else 1.0
        totals[0] += dense * (2 * share + 1)
        totals[1] += 3 * dense

    handles = [
        mod.register_forward_hook(hook)
        for mod in model.modules()
        if isinstance(mod, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]
    try:
        if isinstance(input_shape, Tensor):
            x = input_shape
        else:
            ref = next(model.parameters())
            x = torch.zeros(tuple(input_shape), device=ref.device, dtype=ref.dtype)
        model(x)
    finally:
        for h in handles:
            h.remove()
    return round(totals[0]), totals[1]
