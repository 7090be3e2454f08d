"""The stream of past events that a TGN-style embedding attends over.

Both TGN variants (:class:`~graphkit.temporal.TGN` on PyG's memory and
:class:`~graphkit.temporal.MemoryTGN` on :class:`~graphkit.temporal.TemporalMemory`) embed a
node by graph attention over its most recent earlier events. :class:`EventGraph` keeps those
events, their feature rows and a :class:`~graphkit.sampling.TemporalNeighborSampler` that grows
with the stream, and builds the local attention subgraph of a batch.

Two pure helpers serve embeddings that differ per event of a batch (PRES's intra-batch
prediction): :func:`earlier_events` counts, for a node at an event of the batch, the events of
the same batch before it that touch the node, and :func:`repeat_targets` copies the attention
edges of a centre node onto extra rows (the same node read with another memory).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphkit.sampling import TemporalNeighborSampler

__all__ = ["EventGraph", "earlier_events", "repeat_targets"]


def earlier_events(src: Tensor, dst: Tensor, node: Tensor, event: Tensor) -> Tensor:
    r"""For each query ``(node[q], event[q])``: how many events of the batch ``(src, dst)``
    before position ``event[q]`` have ``node[q]`` as an endpoint,

    .. math::
        k_q = |\{\, j < e_q : v_q \in \{u_j, w_j\} \,\}|

    (a self-loop counts once). One sort and two binary searches.
    """
    if src.numel() != dst.numel() or node.numel() != event.numel():
        raise ValueError("src and dst, and node and event, must have the same length")
    b = src.numel() + 1
    pos = torch.arange(src.numel(), device=src.device)
    # key v * b + j for every endpoint v of event j; a loop's second endpoint gets -1, below
    # every query
    key = torch.cat([src * b + pos, torch.where(src == dst, -1, dst * b + pos)])
    key = torch.sort(key).values
    start = node * b
    return torch.searchsorted(key, start + event) - torch.searchsorted(key, start)


def repeat_targets(edge_index: Tensor, num_rows: int, centres: Tensor, first_row: int
                   ) -> tuple[Tensor, Tensor]:
    """Copies of the edges into ``centres``: the edges with target ``centres[j]`` are repeated
    with target ``first_row + j``.

    Args:
        edge_index: ``[2, E]`` edges source -> target, targets below ``num_rows``.
        num_rows: number of rows the targets index.
        centres: ``[C]`` target rows to copy (repeats allowed).
        first_row: row of the first copy.

    Returns:
        ``(edges, eid)``: the copied edges ``[2, E']`` and, for each, the edge it copies.
    """
    device = edge_index.device
    target = edge_index[1]
    order = torch.argsort(target, stable=True)
    counts = torch.bincount(target, minlength=num_rows)
    start = torch.cumsum(counts, 0) - counts
    per_copy = counts[centres]
    copy = torch.repeat_interleave(torch.arange(centres.numel(), device=device), per_copy)
    offset = torch.arange(copy.numel(), device=device) - \
        (torch.cumsum(per_copy, 0) - per_copy)[copy]
    eid = order[start[centres][copy] + offset]
    return torch.stack([edge_index[0, eid], first_row + copy]), eid


class EventGraph:
    """Events seen so far with their features, and the temporal subgraph of a batch.

    Args:
        num_nodes: number of nodes of the stream.
        feature_dim: width of the stored event features.
        num_neighbors: most recent earlier events sampled per node.
        device: where the feature rows live.
    """

    def __init__(self, num_nodes: int, feature_dim: int, num_neighbors: int,
                 device: torch.device | str = "cpu") -> None:
        if int(num_neighbors) <= 0:
            raise ValueError(f"num_neighbors must be positive, got {num_neighbors}")
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        self.num_nodes, self.feature_dim = int(num_nodes), int(feature_dim)
        self.num_neighbors = int(num_neighbors)
        self.reset(device)

    def reset(self, device: torch.device | str | None = None,
              dtype: torch.dtype | None = None) -> None:
        """Forget every event (keeping the device and feature dtype unless given)."""
        old = getattr(self, "msgs", None)
        if device is None:
            device = "cpu" if old is None else old.device
        if dtype is None:
            dtype = torch.get_default_dtype() if old is None else old.dtype
        self.sampler: TemporalNeighborSampler | None = None
        self.events: list[tuple[Tensor, Tensor, Tensor]] = []
        self.msgs = torch.zeros(0, self.feature_dim, device=device, dtype=dtype)

    def insert(self, src: Tensor, dst: Tensor, t: Tensor, feats: Tensor) -> None:
        """Append a time-sorted batch of events with one feature row each."""
        if feats.dim() != 2 or feats.size(0) != src.numel() or feats.size(1) != self.feature_dim:
            raise ValueError(f"feats must have shape [{src.numel()}, {self.feature_dim}] (one "
                             f"row per event), got {list(feats.shape)}")
        self.msgs = torch.cat([self.msgs, feats.to(self.msgs)])
        self.events.append((src.cpu(), dst.cpu(), t.cpu()))
        if self.sampler is None:
            self.sampler = TemporalNeighborSampler(src, dst, t, self.num_nodes)
        else:
            self.sampler.insert(src, dst, t)

    def subgraph(self, n_id: Tensor, t_query: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The attention subgraph of the sorted, distinct ``n_id`` at times ``t_query``.

        Returns ``(all_id, edge_index, e_t, e_msg)``: the sorted node ids involved (``n_id``
        and their sampled neighbours), edges neighbour -> centre in positions of ``all_id``,
        and each edge's event time and features.
        """
        device = n_id.device
        if self.sampler is None:
            return (n_id, torch.empty(2, 0, dtype=torch.long, device=device),
                    torch.empty(0, dtype=torch.long, device=device), self.msgs[:0])
        nbr, eid, ts = (x.to(device) for x in
                        self.sampler.sample(n_id, t_query, self.num_neighbors))
        mask = nbr >= 0
        center = torch.arange(n_id.numel(), device=device).unsqueeze(1).expand_as(nbr)
        all_id = torch.unique(torch.cat([n_id, nbr[mask]]))
        edge_index = torch.stack([torch.searchsorted(all_id, nbr[mask]),
                                  torch.searchsorted(all_id, n_id[center[mask]])])
        return all_id, edge_index, ts[mask], self.msgs[eid[mask]]

    def to_(self, device: torch.device | str, dtype: torch.dtype) -> None:
        """Move the stored feature rows (a model's ``.to()`` / ``.double()`` calls this)."""
        self.msgs = self.msgs.to(device=device, dtype=dtype)

    def state(self) -> dict[str, Any]:
        """The events and feature rows, for a model's ``get_extra_state``."""
        events = [torch.cat(x) for x in zip(*self.events)] if self.events else None
        return {"events": events, "msgs": self.msgs}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned (the sampler is rebuilt from the events)."""
        self.msgs, self.events, self.sampler = state["msgs"], [], None
        if state["events"] is not None:
            src, dst, t = state["events"]
            self.events = [(src, dst, t)]
            self.sampler = TemporalNeighborSampler(src, dst, t, self.num_nodes)
