r"""Dropout whose mask comes from a counter-based random stream on the CPU.

PyTorch's CPU dropout draws one Bernoulli number per element from its Mersenne-Twister
generator, about 8 ns per element on one core, which is a quarter of a NAT training step on
a CPU (its encoder drops out one 20-wide row per dictionary key). Here one 62-bit seed is drawn
from PyTorch's generator per call (so ``torch.manual_seed`` makes runs repeatable) and element
:math:`i` is kept when the SplitMix64 output for counter :math:`i` is at least :math:`p\,2^{53}`
(its top 53 bits, compared as an integer: the keep probability is :math:`1 - p` to 53 bits),
which is what CUDA's dropout does with Philox. Kept elements are scaled by :math:`1/(1-p)`, so
the distribution of the output is that of :func:`torch.nn.functional.dropout`; only the random
stream differs. Tensors on other devices, or of other dtypes, use PyTorch's dropout.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dropout", "dropout_index_add"]


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            generator: torch.Generator | None = None) -> Tensor:
    r"""Zero each element of ``x`` with probability ``p`` and scale the rest by
    :math:`1/(1-p)`, as :func:`torch.nn.functional.dropout` does, with a faster random stream
    for float32 / float64 tensors on the CPU (see the module docstring).

    Args:
        x (Tensor): input.
        p (float): drop probability, in ``[0, 1]``. (default: ``0.5``)
        training (bool): apply dropout; ``False`` returns ``x``. (default: ``True``)
        generator (torch.Generator, optional): the generator the per-call seed is drawn from
            (on x's device for tensors that take PyTorch's dropout path; default: PyTorch's
            global one).

    Returns:
        A new tensor (``x`` itself when ``training`` is false or ``p == 0``); gradients flow
        through the kept elements, scaled like them.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or p == 1.0:
        if generator is None or p == 1.0:
            return F.dropout(x, p, True)
        if generator.device != x.device:
            raise ValueError(f"generator is on {generator.device}, but x is on {x.device}")
        keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
        return x * keep / (1.0 - p)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    mask = torch.empty(x.shape, dtype=x.dtype)
    if mask.numel():
        scale = mask.numpy().dtype.type(1.0 / (1.0 - p))
        from graphkit.ops._dropout_numba import keep_mask

        keep_mask(mask.view(-1).numpy(), np.uint64(seed), np.uint64(math.ceil(p * 2.0**53)),
                  scale)
    return x * mask


class _DropoutIndexAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor, num_rows: int, seed: int, threshold: int,
                scale: float) -> Tensor:
        from graphkit.ops._dropout_numba import dropout_index_add as kernel

        out = x.new_zeros(num_rows, x.size(1))
        dtype = out.numpy().dtype.type
        kernel(x.detach().contiguous().numpy(), index.numpy(), out.numpy(), np.uint64(seed),
               np.uint64(threshold), dtype(scale))
        ctx.save_for_backward(index)
        ctx.params = (seed, threshold, scale, tuple(x.shape))
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        from graphkit.ops._dropout_numba import dropout_gather

        (index,) = ctx.saved_tensors
        seed, threshold, scale, shape = ctx.params
        grad_x = grad.new_empty(shape)
        dtype = grad_x.numpy().dtype.type
        dropout_gather(grad.contiguous().numpy(), index.numpy(), grad_x.numpy(),
                       np.uint64(seed), np.uint64(threshold), dtype(scale))
        return grad_x, None, None, None, None, None


def dropout_index_add(x: Tensor, index: Tensor, num_rows: int, p: float = 0.5,
                      training: bool = True, generator: torch.Generator | None = None
                      ) -> Tensor:
    r"""Sum the rows of ``dropout(x, p)`` into ``num_rows`` rows:
    ``zeros(num_rows, C).index_add(0, index, dropout(x, p, training))``.

    For float32 / float64 ``x [N, C]`` on the CPU the two steps are one pass that never builds
    the mask or the dropped copy of ``x`` (its backward recomputes the mask from the seed); the
    mask is the one :func:`dropout` draws from the same generator state, so the result is the
    same to the last bit. Elsewhere it is the two steps.

    Args:
        x (Tensor): ``[N, C]`` rows.
        index (Tensor): ``[N]`` target row of each row of ``x``, in ``[0, num_rows)``.
        num_rows (int): rows of the output.
        p, training, generator: as for :func:`dropout`.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
    if (not training or p in (0.0, 1.0) or x.device.type != "cpu" or x.dim() != 2
            or x.dtype not in (torch.float32, torch.float64)):
        dropped = dropout(x, p, training, generator)
        return dropped.new_zeros(num_rows, *x.shape[1:]).index_add(0, index, dropped)
    index = index.to(torch.long).contiguous()
    if index.shape != (x.size(0),):
        raise ValueError(f"index must have shape [{x.size(0)}], got {list(index.shape)}")
    if index.numel():
        lo, hi = (int(v) for v in torch.aminmax(index))
        if lo < 0 or hi >= num_rows:
            raise ValueError(f"index must lie in [0, {num_rows}), got {lo if lo < 0 else hi}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return _DropoutIndexAdd.apply(x, index, int(num_rows), seed, math.ceil(p * 2.0**53),
                                  1.0 / (1.0 - p))
