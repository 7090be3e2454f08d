"""Parameter and multiply-accumulate counts, the figures papers quote for their models.

Papers almost always call multiply-accumulates "FLOPs"; these functions count MACs (one
multiply and one add), and a test that compares with a paper says which one the paper meant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from graphkit.extras._core.modules import eval_mode


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


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    # FlopCounterMode knows the GPU attention kernels only; the CPU one does the same products
    return sdpa_flop_count(query, key, value)


def _rnn_macs(module: nn.RNNBase, x: Tensor | PackedSequence) -> int:
    """MACs of an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` call (counted by formula where the
    counter sees one fused op: LSTM on CPU, any cuDNN RNN)."""
    steps = x.data.shape[0] if isinstance(x, PackedSequence) else x.numel() // module.input_size
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    dirs = 2 if module.bidirectional else 1
    out = module.proj_size or module.hidden_size
    total, width = 0, module.input_size
    for _ in range(module.num_layers):
        per_step = gates * module.hidden_size * (width + out)
        if module.proj_size:
            per_step += module.hidden_size * module.proj_size
        total += dirs * steps * per_step
        width = dirs * out
    return total


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: Sequence[int] | Tensor) -> int:
    """Multiply-accumulates of one eval-mode forward pass on an input of ``input_shape``.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products,
    convolutions, attention, including ``nn.MultiheadAttention``, whose fused eval path is
    turned off while counting, and CPU ``scaled_dot_product_attention``; the gate products of
    a recurrent layer run as one fused kernel by formula), so element-wise work
    (activations, normalisation) is not included, as in the papers' tables.
    ``input_shape`` may also be an example tensor.
    """
    x = _example_inputs(model, input_shape)
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    rnn, before = 0, []

    def rnn_start(module: nn.Module, args: tuple) -> None:
        before.append(counter.get_total_flops())

    def rnn_end(module: nn.Module, args: tuple, out) -> None:
        nonlocal rnn
        if counter.get_total_flops() == before.pop():  # a fused kernel (LSTM): no formula
            rnn += _rnn_macs(module, args[0])

    handles = [h for m in model.modules() if isinstance(m, nn.RNNBase)
               for h in (m.register_forward_pre_hook(rnn_start),
                         m.register_forward_hook(rnn_end))]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # its fused op has no formula
    try:
        with eval_mode(model), counter:
            model(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for h in handles:
            h.remove()
    return counter.get_total_flops() // 2 + rnn


@torch.no_grad()
def nonzero_macs(model: nn.Module, input_shape: Sequence[int] | Tensor) -> float:
    """MACs of every ``Linear``, ``Conv*d`` and ``ConvTranspose*d`` scaled by the share of its
    weight that is non-zero.

    What a sparse kernel would execute: a layer at density ``d`` costs ``d`` times its dense
    MACs. Reads ``module.weight``, so masks applied by parametrisation are honoured; layers of
    other types (a custom layer holding its own weight) are not counted.
    """
    total = 0.0

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        nonlocal total
        weight = module.weight
        density = float((weight != 0).sum()) / weight.numel()
        if isinstance(module, nn.Linear):
            dense = out.numel() * module.in_features
        elif isinstance(module, _TRANSPOSED):
            # each input element is scattered to out/groups * kernel outputs
            dense = args[0].numel() * weight.shape[1] * weight[0, 0].numel()
        else:  # a convolution: each output element reads in/groups * kernel inputs
            dense = out.numel() * weight.shape[1] * weight[0, 0].numel()
        total += dense * density

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d | _TRANSPOSED)
    ]
    try:
        with eval_mode(model):
            model(_example_inputs(model, input_shape))
    finally:
        for h in handles:
            h.remove()
    return total


_TRANSPOSED = nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d
