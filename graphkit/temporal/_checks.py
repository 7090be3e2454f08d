"""Checks of one batch of events at a temporal model's ``score`` / ``update_state`` entry.

A bad id would otherwise fail deep inside an index operation (``index out of range in
self``) or, in ``update_state``, after part of the stream state was already written. The id
range costs one reduction; every caller already synchronises on its batch (``torch.unique``,
the neighbour sampler, the cache writes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphkit.data.validation import check_timestamps


def check_batch(num_nodes: int, src: Tensor, dst: Tensor, t: Tensor,
                msg: Tensor | None = None, msg_dim: int | None = None,
                neg_dst: Tensor | None = None, integer_time: bool = False,
                ordered_time: bool = False, last_t: Tensor | None = None) -> None:
    """Raise a ``ValueError`` naming the first problem of a batch of events.

    With ``ordered_time`` (a batch about to be written into a stream's state) the timestamps
    must also be finite, non-negative and sorted, no earlier than ``last_t`` (a time, or one
    per event), and ``msg`` finite, read in the same device synchronisation as the id range.
    """
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
    if not ordered_time:
        lo, hi = int(lo), int(hi)
    else:
        bad_t = (t[1:] < t[:-1]).any() | (t[:1] < 0).any()
        if t.is_floating_point():
            bad_t = bad_t | ~torch.isfinite(t).all()
        if last_t is not None and last_t.numel():
            last_t = last_t.to(t.device)
            early = (t < last_t).any()
        else:
            early = bad_t & False
        # NaN features written into the state would turn the node's every later score NaN
        nan_msg = ~torch.isfinite(msg).all() if msg is not None and msg.is_floating_point() \
            else early & False
        lo, hi, bad, before, bad_msg = torch.stack([lo.long(), hi.long(), bad_t.long(),
                                                    early.long(), nan_msg.long()]).tolist()
        if 0 <= lo and hi < num_nodes:
            if bad_msg:
                first = int((~torch.isfinite(msg)).any(dim=1).nonzero()[0, 0])
                raise ValueError(f"msg holds NaN or infinite values (first in event {first} "
                                 "of the batch)")
            if bad:
                check_timestamps(t)  # raises, naming the event
            if before:
                first = int((t < last_t).nonzero()[0, 0])
                held = last_t.view(-1)[first if last_t.numel() > 1 else 0]
                raise ValueError(f"t[{first}] = {t[first].item()} is earlier than the last "
                                 f"event held ({held.item()}): a stream must be fed in time "
                                 "order")
    if lo < 0 or hi >= num_nodes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"node id {bad} in the batch is out of range: node ids must lie in "
                         f"[0, {num_nodes})")
