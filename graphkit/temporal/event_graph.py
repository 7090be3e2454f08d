"""The stream of past events that a TGN-style embedding attends over.

Both TGN variants (:class:`~graphkit.temporal.TGN` on PyG's memory and
:class:`~graphkit.temporal.MemoryTGN` on :class:`~graphkit.temporal.TemporalMemory`) embed a
node by graph attention over its most recent earlier events. :class:`EventGraph` keeps those
events, their feature rows and a :class:`~graphkit.sampling.TemporalNeighborSampler` that grows
with the stream, and builds the local attention subgraph of a batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphkit.sampling import TemporalNeighborSampler


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
        self.num_nodes, self.feature_dim = int(num_nodes), int(feature_dim)
        self.num_neighbors = int(num_neighbors)
        self.reset(device)

    def reset(self, device: torch.device | str | None = None) -> None:
        """Forget every event (keeping the device unless one is given)."""
        device = self.msgs.device if device is None else device
        self.sampler: TemporalNeighborSampler | None = None
        self.events: list[tuple[Tensor, Tensor, Tensor]] = []
        self.msgs = torch.zeros(0, self.feature_dim, device=device)

    def insert(self, src: Tensor, dst: Tensor, t: Tensor, feats: Tensor) -> None:
        """Append a time-sorted batch of events with one feature row each."""
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
