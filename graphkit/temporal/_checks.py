"""Checks of one batch of events at a temporal model's ``score`` / ``update_state`` entry.

A bad id would otherwise fail deep inside an index operation (``index out of range in
self``) or, in ``update_state``, after part of the stream state was already written. The id
range costs one reduction; every caller already synchronises on its batch (``torch.unique``,
the neighbour sampler, the cache writes).
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_batch(num_nodes: int, src: Tensor, dst: Tensor, t: Tensor,
                msg: Tensor | None = None, msg_dim: int | None = None,
                neg_dst: Tensor | None = None, integer_time: bool = False) -> None:
    """Raise a ``ValueError`` naming the first problem of a batch of events."""
    ends = [("src", src), ("dst", dst)] + ([("neg_dst", neg_dst)] if neg_dst is not None else [])
    b = src.numel()
    for name, v in [*ends, ("t", t)]:
        if v.dim() != 1 or v.numel() != b:
            names = "src, dst, t and neg_dst" if neg_dst is not None else "src, dst and t"
            raise ValueError(f"{names} must be vectors of the same length; {name} has shape "
                             f"{list(v.shape)} for {b} events")
    for name, v in ends:
        if v.is_floating_point() or v.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer node ids, got dtype {v.dtype}")
    if integer_time and t.is_floating_point():
        raise ValueError(f"t must hold integer timestamps for a memory-based model, got dtype "
                         f"{t.dtype} (fractional times: rescale to an integer unit, e.g. "
                         "(t * 1000).round().long())")
    if msg is not None:
        if msg.dim() != 2 or msg.size(0) != b:
            raise ValueError(f"msg must have one row per event, shape [{b}, {msg_dim}], got "
                             f"{list(msg.shape)}")
        if msg_dim is not None and msg.size(1) != msg_dim:
            raise ValueError(f"msg must have {msg_dim} columns, got {msg.size(1)}")
    if b == 0:
        return
    lo, hi = torch.aminmax(torch.cat([v for _, v in ends]))
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi >= num_nodes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"node id {bad} in the batch is out of range: node ids must lie in "
                         f"[0, {num_nodes})")
