"""Parameter and multiply-accumulate counts, the figures papers quote for their models.

Papers almost always call multiply-accumulates "FLOPs"; these functions count MACs (one
multiply and one add), and a test that compares with a paper says which one the paper meant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once); ``trainable_only`` skips frozen ones."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _example_inputs(model: nn.Module, input_shape: Sequence[int] | Tensor) -> Tensor:
    if isinstance(input_shape, Tensor):
        return input_shape
    if not input_shape or any(int(s) <= 0 for s in input_shape):
        raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}")
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    return torch.zeros(tuple(int(s) for s in input_shape), device=device, dtype=dtype)


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: Sequence[int] | Tensor) -> int:
    """Multiply-accumulates of one eval-mode forward pass on an input of ``input_shape``.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products,
    convolutions, attention), so element-wise work (activations, normalisation) is not
    included, as in the papers' tables. ``input_shape`` may also be an example tensor.
    """
    x = _example_inputs(model, input_shape)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


@torch.no_grad()
def nonzero_macs(model: nn.Module, input_shape: Sequence[int] | Tensor) -> float:
    """MACs of every ``Linear`` and ``Conv*d`` scaled by the share of its weight that is non-zero.

    What a sparse kernel would execute: a layer at density ``d`` costs ``d`` times its dense
    MACs. Reads ``module.weight``, so masks applied by parametrisation are honoured.
    """
    total = 0.0

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        nonlocal total
        weight = module.weight
        density = float((weight != 0).sum()) / weight.numel()
        if isinstance(module, nn.Linear):
            dense = out.numel() * module.in_features
        else:  # a convolution: each output element reads in/groups * kernel inputs
            dense = out.numel() * weight.shape[1] * weight[0, 0].numel()
        total += dense * density

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]
    was_training = model.training
    model.eval()
    try:
        model(_example_inputs(model, input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
