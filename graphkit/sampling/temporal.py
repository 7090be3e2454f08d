"""Temporal neighbour sampling over a growing stream of interactions.

A node's temporal neighbours at query time :math:`\\tau` are the other endpoints of its
interactions (in either direction) with timestamp :math:`t < \\tau` (strictly earlier), as in
TGAT/TGN (`Rossi et al., "Temporal Graph Networks for Deep Learning on Dynamic Graphs"
<https://arxiv.org/abs/2006.10637>`_).

Storage is a per-node, time-sorted adjacency with slack ("dynamic CSR"): node ``v`` owns the
slots ``start[v] : start[v] + cap[v]`` of three flat arrays, of which the first ``size[v]`` are
used. Appending a batch of events writes into the slack; a node whose segment overflows is moved
to the end of the arrays with doubled capacity, so an insert costs amortised ``O(1)`` per event
(plus a sort of the batch) and never ``O(E)``. Queries are a vectorised binary search per node
segment, so everything runs on CPU and CUDA tensors alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphkit.data.validation import check_timestamps
from graphkit.sampling._random import floyd_sample

__all__ = ["TemporalNeighborSampler"]

_STRATEGIES = ("recent", "uniform")


class TemporalNeighborSampler:
    r"""Sample each query node's interactions strictly before a query time.

    Events get ids ``0, 1, 2, ...`` in the order they are given (constructor first, then each
    :meth:`insert`). Each event ``(s, d, t)`` makes ``d`` a neighbour of ``s`` and ``s`` a
    neighbour of ``d`` at time ``t``; a self-loop ``(v, v, t)`` makes ``v`` its own neighbour
    twice (once per direction, same event id).

    Output order: in every row the sampled interactions are ordered **most recent first**
    (column 0 is the latest); padding (``-1``) fills the columns at the end. Ties in time are
    broken by event id (larger id counts as more recent).

    Args:
        src (Tensor): source node of each event, ``[E]``.
        dst (Tensor): destination node of each event, ``[E]``.
        t (Tensor): timestamp of each event, ``[E]``, non-negative and sorted ascending.
        num_nodes (int): number of nodes; ids must lie in ``[0, num_nodes)``.

    Example:
        >>> sampler = TemporalNeighborSampler(data.src, data.dst, data.t, data.num_nodes)
        >>> nbr, eid, ts = sampler.sample(batch.src, batch.t, k=10)
        >>> sampler.insert(batch.src, batch.dst, batch.t)
    """

    def __init__(self, src: Tensor, dst: Tensor, t: Tensor, num_nodes: int) -> None:
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        self.num_nodes = int(num_nodes)
        device = src.device
        self.device = device
        self.num_events = 0
        self._last_t: Tensor | None = None
        self._start = torch.zeros(self.num_nodes, dtype=torch.long, device=device)
        self._size = torch.zeros(self.num_nodes, dtype=torch.long, device=device)
        self._cap = torch.zeros(self.num_nodes, dtype=torch.long, device=device)
        self._used = 0  # slots handed out in the flat arrays
        self._nbr = torch.empty(0, dtype=torch.long, device=device)
        self._eid = torch.empty(0, dtype=torch.long, device=device)
        self._ts = torch.empty(0, dtype=t.dtype, device=device)
        self.insert(src, dst, t)

    # ------------------------------------------------------------------ building
    def insert(self, src: Tensor, dst: Tensor, t: Tensor) -> TemporalNeighborSampler:
        """Append events ``(src, dst, t)``; they must not be earlier than any event held.

        Returns ``self``. Amortised cost ``O(B log B)`` for a batch of ``B`` events.
        """
        src, dst, t = self._check_events(src, dst, t)
        num = src.numel()
        if num == 0:
            return self
        eid = torch.arange(self.num_events, self.num_events + num, device=self.device)
        # Interleave both directions so that entries stay in event order, then group by node.
        node = torch.stack([src, dst], dim=1).view(-1)
        other = torch.stack([dst, src], dim=1).view(-1)
        eid = eid.repeat_interleave(2)
        ts = t.repeat_interleave(2)
        node, perm = torch.sort(node, stable=True)
        other, eid, ts = other[perm], eid[perm], ts[perm]

        uniq, counts = torch.unique_consecutive(node, return_counts=True)
        self._reserve(uniq, counts)
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(node.numel(), device=self.device) - first.repeat_interleave(counts)
        pos = self._start[node] + self._size[node] + rank
        self._nbr[pos] = other
        self._eid[pos] = eid
        self._ts[pos] = ts
        self._size[uniq] += counts
        self.num_events += num
        self._last_t = t[-1].clone()
        return self

    def _check_events(self, src: Tensor, dst: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        for name, v in (("src", src), ("dst", dst), ("t", t)):
            if not isinstance(v, Tensor) or v.dim() != 1:
                raise ValueError(f"{name} must be a one-dimensional tensor")
        if not (src.numel() == dst.numel() == t.numel()):
            raise ValueError(
                f"src, dst and t must have the same length, got "
                f"{src.numel()}, {dst.numel()} and {t.numel()}"
            )
        if src.is_floating_point() or dst.is_floating_point():
            raise ValueError("src and dst must hold integer node ids")
        src, dst = src.to(self.device, torch.long), dst.to(self.device, torch.long)
        t = t.to(self.device, self._ts.dtype if self._ts.numel() else t.dtype)
        if src.numel():
            lo = int(torch.minimum(src.min(), dst.min()))
            hi = int(torch.maximum(src.max(), dst.max()))
            if lo < 0 or hi >= self.num_nodes:
                bad = lo if lo < 0 else hi
                raise ValueError(f"node id {bad} out of range for num_nodes={self.num_nodes}")
            check_timestamps(t)
            if self._last_t is not None and bool(t[0] < self._last_t):
                raise ValueError(
                    f"inserted events must not be earlier than the last event held "
                    f"(t={float(t[0])} < {float(self._last_t)})"
                )
        return src, dst, t

    def _reserve(self, nodes: Tensor, extra: Tensor) -> None:
        """Make room for ``extra`` more entries in each of ``nodes``' segments."""
        need = self._size[nodes] + extra
        grow = need > self._cap[nodes]
        if not bool(grow.any()):
            return
        nodes, need = nodes[grow], need[grow]
        old_cap = self._cap[nodes]
        # First placement is exact (the constructor's bulk load); later moves double.
        new_cap = torch.where(old_cap > 0, torch.maximum(2 * old_cap, need), need)
        new_start = self._used + torch.cumsum(new_cap, 0) - new_cap
        total = self._used + int(new_cap.sum())
        if total > self._nbr.numel():
            self._grow_arrays(max(total, 2 * self._nbr.numel()))
        # Move the used part of each relocated segment.
        size = self._size[nodes]
        if int(size.sum()) > 0:
            seg_off = torch.cumsum(size, 0) - size
            idx = torch.arange(int(size.sum()), device=self.device)
            idx = idx - seg_off.repeat_interleave(size)
            old = self._start[nodes].repeat_interleave(size) + idx
            new = new_start.repeat_interleave(size) + idx
            self._nbr[new] = self._nbr[old]
            self._eid[new] = self._eid[old]
            self._ts[new] = self._ts[old]
        self._start[nodes] = new_start
        self._cap[nodes] = new_cap
        self._used = total

    def _grow_arrays(self, length: int) -> None:
        def grown(a: Tensor) -> Tensor:
            out = a.new_empty(length)
            out[: a.numel()] = a
            return out

        self._nbr, self._eid, self._ts = grown(self._nbr), grown(self._eid), grown(self._ts)

    # ------------------------------------------------------------------ queries
    def degree(self, nodes: Tensor | None = None) -> Tensor:
        """Number of interactions held per node (both directions counted)."""
        return self._size.clone() if nodes is None else self._size[nodes.to(self.device)]

    def num_before(self, nodes: Tensor, times: Tensor) -> Tensor:
        """For each query ``(v, tau)``, the number of ``v``'s interactions with ``t < tau``."""
        nodes, times = self._check_queries(nodes, times)
        lo = self._start[nodes].clone()
        hi = lo + self._size[nodes]
        start = lo.clone()
        if nodes.numel() and self._ts.numel():
            max_len = int(self._size.max())
            for _ in range(max(max_len, 1).bit_length()):
                active = lo < hi
                if not bool(active.any()):
                    break
                mid = (lo + hi) // 2
                go_right = active & (self._ts[mid.clamp(max=self._ts.numel() - 1)] < times)
                lo = torch.where(go_right, mid + 1, lo)
                hi = torch.where(active & ~go_right, mid, hi)
        return lo - start

    def sample(
        self,
        nodes: Tensor,
        times: Tensor,
        k: int,
        strategy: str = "recent",
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sample up to ``k`` interactions of each node strictly before its query time.

        Args:
            nodes (Tensor): query nodes ``[B]``.
            times (Tensor): query times ``[B]`` (one per node).
            k (int): neighbours per query.
            strategy (str): ``"recent"`` (the ``k`` latest interactions) or ``"uniform"``
                (``k`` of them uniformly at random without replacement). (default: ``"recent"``)
            generator (torch.Generator, optional): random source for ``"uniform"``.

        Returns:
            ``(neighbors, edge_ids, timestamps)``, each ``[B, k]``, most recent first, padded
            with ``-1`` where a node has fewer than ``k`` earlier interactions.
        """
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}")
        if int(k) <= 0:
            raise ValueError(f"k must be positive, got {k}")
        k = int(k)
        nodes, times = self._check_queries(nodes, times)
        if self._ts.numel() == 0:
            pad = torch.full((nodes.numel(), k), -1, dtype=torch.long, device=self.device)
            return pad, pad.clone(), pad.to(self._ts.dtype)
        count = self.num_before(nodes, times)
        end = self._start[nodes] + count  # one past the latest valid slot
        cols = torch.arange(k, device=self.device)
        if strategy == "recent":
            back = cols.expand(nodes.numel(), k)  # 0 = latest
        else:
            back = floyd_sample(count, k, generator).sort(dim=1).values
        valid = back < count.unsqueeze(1)
        pos = (end.unsqueeze(1) - 1 - back).clamp(min=0)
        pos = torch.where(valid, pos, torch.zeros_like(pos))
        nbr = torch.where(valid, self._nbr[pos], -1)
        eid = torch.where(valid, self._eid[pos], -1)
        ts = torch.where(valid, self._ts[pos], torch.full_like(self._ts[pos], -1))
        return nbr, eid, ts

    def _check_queries(self, nodes: Tensor, times: Tensor) -> tuple[Tensor, Tensor]:
        if nodes.dim() != 1 or times.dim() != 1 or nodes.numel() != times.numel():
            raise ValueError(
                f"nodes and times must be one-dimensional and of equal length, got shapes "
                f"{list(nodes.shape)} and {list(times.shape)}"
            )
        if nodes.is_floating_point():
            raise ValueError("nodes must hold integer node ids")
        nodes = nodes.to(self.device, torch.long)
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= self.num_nodes):
            raise ValueError(f"query node ids must lie in [0, {self.num_nodes})")
        times = times.to(self.device)
        if times.is_floating_point() and not self._ts.is_floating_point():
            times = torch.ceil(times)  # t < 5.5 holds exactly for integer t <= 5, i.e. t < 6
        return nodes, times.to(self._ts.dtype)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
            f"num_events={self.num_events})"
        )

