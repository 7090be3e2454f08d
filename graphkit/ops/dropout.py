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

__all__ = ["dropout"]


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
