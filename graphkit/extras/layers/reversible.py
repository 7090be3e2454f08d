r"""Reversible residual blocks whose backward pass recomputes activations instead of storing them.

From `The Reversible Residual Network: Backpropagation Without Storing Activations
<https://arxiv.org/abs/1707.04585>`_ (Gomez et al.), the coupling used by `Memory Efficient 3D
U-Net with Reversible Mobile Inverted Bottlenecks for Brain Tumor Segmentation
<https://arxiv.org/abs/2104.09648>`_ (Pendse et al.). The channels split into halves
:math:`x = (x_1, x_2)` and

.. math::
    y_1 = x_1 + F(x_2), \qquad y_2 = x_2 + G(y_1), \qquad\text{inverse:}\qquad
    x_2 = y_2 - G(y_1), \qquad x_1 = y_1 - F(x_2).

:class:`ReversibleSequence` runs a stack of such blocks inside one autograd function that keeps
only the stack's output; the backward pass walks the blocks in reverse, rebuilding each input
from its output and differentiating :math:`F` and :math:`G` on the fly, so the stored
activations do not grow with depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _BatchNorm


class ReversibleBlock(nn.Module):
    r"""One additive coupling :math:`y_1 = x_1 + F(x_2)`, :math:`y_2 = x_2 + G(y_1)`.

    Args:
        f (nn.Module): :math:`F`, maps a half ``(B, C/2, *)`` to the same shape.
        g (nn.Module): :math:`G`, same contract.
        split_dim (int): the channel axis that is halved. (default: ``1``)

    Shapes:
        - input: :math:`(B, C, *)` with :math:`C` even; output: the same.
    """

    def __init__(self, f: nn.Module, g: nn.Module, split_dim: int = 1) -> None:
        super().__init__()
        self.f = f
        self.g = g
        self.split_dim = split_dim

    def _halves(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() <= self.split_dim or x.size(self.split_dim) % 2:
            raise ValueError(
                f"{type(self).__name__} needs an even size on dim {self.split_dim}, "
                f"got shape {tuple(x.shape)}"
            )
        x1, x2 = torch.chunk(x, 2, dim=self.split_dim)
        return x1, x2

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self._halves(x)
        fx = self.f(x2)
        self._check_half("f", fx, x1)
        y1 = x1 + fx
        gy = self.g(y1)
        self._check_half("g", gy, x2)
        y2 = x2 + gy
        return torch.cat([y1, y2], dim=self.split_dim)

    def _check_half(self, name: str, out: Tensor, half: Tensor) -> None:
        if out.shape != half.shape:
            raise ValueError(
                f"{type(self).__name__}: {name} must keep the shape of a half, "
                f"{tuple(half.shape)}, got {tuple(out.shape)}"
            )

    def inverse(self, y: Tensor) -> Tensor:
        """The input that produced ``y`` (exact up to floating-point rounding)."""
        y1, y2 = self._halves(y)
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return torch.cat([x1, x2], dim=self.split_dim)

    def backward_pass(
        self, y: Tensor, dy: Tensor, params: Sequence[nn.Parameter]
    ) -> tuple[Tensor, Tensor, list[Tensor | None]]:
        """Rebuild the input from ``y`` and push the output gradient ``dy`` through the block.

        Returns the input, its gradient and the gradients of ``params`` (this block's
        parameters that require grad, in order; ``None`` where unused).
        """
        y1, y2 = self._halves(y)
        dy1, dy2 = self._halves(dy)
        g_params = [p for p in self.g.parameters() if p.requires_grad]
        f_params = [p for p in self.f.parameters() if p.requires_grad]
        with torch.enable_grad():
            y1_ = y1.detach().requires_grad_(True)
            gy1 = self.g(y1_)
            d = torch.autograd.grad(gy1, [y1_, *g_params], dy2, allow_unused=True)
        # y1 also feeds y2 through G, so its total gradient gathers both paths
        dy1_total = dy1 if d[0] is None else dy1 + d[0]
        grads = dict(zip(map(id, g_params), d[1:], strict=True))
        with torch.no_grad():
            x2 = y2 - gy1.detach()
        with torch.enable_grad():
            x2_ = x2.requires_grad_(True)
            fx2 = self.f(x2_)
            d = torch.autograd.grad(fx2, [x2_, *f_params], dy1_total, allow_unused=True)
        dx2 = dy2 if d[0] is None else dy2 + d[0]
        for p, gp in zip(f_params, d[1:], strict=True):
            prev = grads.get(id(p))
            grads[id(p)] = gp if prev is None else (prev if gp is None else prev + gp)
        with torch.no_grad():
            x1 = y1 - fx2.detach()
        x = torch.cat([x1, x2.detach()], dim=self.split_dim)
        dx = torch.cat([dy1_total, dx2], dim=self.split_dim)
        return x, dx, [grads.get(id(p)) for p in params]

    def extra_repr(self) -> str:
        return f"split_dim={self.split_dim}"


class _ReversibleFunction(torch.autograd.Function):
    """Runs the blocks without a graph, keeps only the output, recomputes in backward."""

    @staticmethod
    def forward(ctx, x: Tensor, blocks: Sequence[ReversibleBlock], *params: Tensor) -> Tensor:
        with torch.no_grad():
            for block in blocks:
                x = block(x)
        ctx.blocks = blocks
        ctx.param_ids = [id(p) for p in params]
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor) -> tuple[Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        blocks = ctx.blocks
        grads: dict[int, Tensor] = {}
        for block in reversed(blocks):
            own = [p for p in block.parameters() if p.requires_grad]
            y, dy, pgrads = block.backward_pass(y, dy, own)
            for p, gp in zip(own, pgrads, strict=True):
                if gp is not None:
                    grads[id(p)] = gp if id(p) not in grads else grads[id(p)] + gp
        return (dy, None, *[grads.get(i) for i in ctx.param_ids])


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


class ReversibleSequence(nn.Module):
    r"""A stack of :class:`ReversibleBlock`\ s trained without storing inner activations.

    With ``memory_saving=True`` and gradients enabled, the forward pass runs every block
    without building a graph and the autograd function saves only the final output; the
    backward pass reconstructs each block's input from its output (see
    :meth:`ReversibleBlock.inverse`) and differentiates :math:`F` and :math:`G` there. The
    stored activations are therefore one tensor whatever the depth, at the price of a second
    forward computation. ``memory_saving=False`` runs ordinary autograd through the same
    blocks (the reference the recomputed gradients must equal).

    :math:`F` and :math:`G` must be deterministic functions of their input (no dropout) and
    hold no BatchNorm: the recomputation would update its running statistics a second time
    (use GroupNorm or InstanceNorm instead).

    Args:
        blocks (iterable of ReversibleBlock): the stack.
        memory_saving (bool): recompute instead of storing. (default: ``True``)

    Shapes:
        - input: :math:`(B, C, *)`; output: the same.
    """

    def __init__(self, blocks: Iterable[ReversibleBlock], memory_saving: bool = True) -> None:
        super().__init__()
        blocks = list(blocks)
        for i, block in enumerate(blocks):
            if not isinstance(block, ReversibleBlock):
                raise TypeError(f"block {i} is a {type(block).__name__}, not a ReversibleBlock")
            for name, sub in block.named_modules():
                if isinstance(sub, _BatchNorm):
                    raise ValueError(
                        f"block {i} holds a BatchNorm ({name}); recomputation would update its "
                        "running statistics twice: use GroupNorm or InstanceNorm"
                    )
        self.blocks = nn.ModuleList(blocks)
        self.memory_saving = memory_saving

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, x: Tensor) -> Tensor:
        params = _unique(self.blocks.parameters())
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in params)
        )
        if not (self.memory_saving and needs_grad) or len(self.blocks) == 0:
            for block in self.blocks:
                x = block(x)
            return x
        return _ReversibleFunction.apply(x, tuple(self.blocks), *params)

    def inverse(self, y: Tensor) -> Tensor:
        """The input that produced ``y``: the blocks' inverses in reverse order."""
        for block in reversed(self.blocks):
            y = block.inverse(y)
        return y

    def extra_repr(self) -> str:
        return f"memory_saving={self.memory_saving}"
