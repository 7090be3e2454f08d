"""Temporal neighbour sampling over a growing stream of interactions.

A node's temporal neighbours at query time :math:`\\tau` are the other endpoints of its
interactions (in either direction) with timestamp :math:`t < \\tau` (strictly earlier), as in
TGAT/TGN (`Rossi et al., "Temporal Graph Networks for Deep Learning on Dynamic Graphs"
<https://arxiv.org/abs/2006.10637>`_).

Storage is a per-node, time-sorted adjacency with slack ("dynamic CSR"): node ``v`` owns the
slots ``start[v] : start[v] + cap[v]`` of three flat arrays, of which the first ``size[v]`` are
used. Appending a batch of events writes into the slack; a node whose segment overflows is moved
to the end of the arrays with doubled capacity, so an insert costs amortised ``O(1)`` per event
(plus a sort of the batch) and never ``O(E)``. Queries are a binary search per node segment.

Two code paths share this layout: vectorised torch (any device, e.g. CUDA) and Numba kernels
(``_temporal_numba.py``) that CPU tensors use by default; the tests run both against brute force.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from graphkit.data.validation import check_timestamps
from graphkit.sampling._random import floyd_sample
from graphkit.typing import WITH_NUMBA

__all__ = ["TemporalNeighborSampler"]

_STRATEGIES = ("recent", "uniform")
_BACKENDS = ("auto", "numba", "torch")


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
        backend (str): ``"auto"`` (Numba kernels for CPU tensors when Numba is installed,
            vectorised torch otherwise, e.g. on CUDA), ``"numba"`` or ``"torch"``. Both give
            identical results for ``"recent"``. (default: ``"auto"``)

    Example:
        >>> sampler = TemporalNeighborSampler(data.src, data.dst, data.t, data.num_nodes)
        >>> nbr, eid, ts = sampler.sample(batch.src, batch.t, k=10)
        >>> sampler.insert(batch.src, batch.dst, batch.t)
    """

    def __init__(self, src: Tensor, dst: Tensor, t: Tensor, num_nodes: int,
                 backend: str = "auto") -> None:
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        self.num_nodes = int(num_nodes)
        for name, v in (("src", src), ("dst", dst), ("t", t)):
            if not isinstance(v, Tensor):
                raise ValueError(f"{name} must be a one-dimensional tensor, got "
                                 f"{type(v).__name__}")
        device = src.device
        self.device = device
        on_cpu = device.type == "cpu"
        if backend == "auto":
            backend = "numba" if (WITH_NUMBA and on_cpu) else "torch"
        if backend == "numba" and not (WITH_NUMBA and on_cpu):
            raise ValueError("the numba backend needs numba installed and CPU tensors")
        self.backend = backend
        self.num_events = 0
        self._last_t: Tensor | None = None
        self._start = torch.zeros(self.num_nodes, dtype=torch.long, device=device)
        self._size = torch.zeros(self.num_nodes, dtype=torch.long, device=device)
        self._cap = torch.zeros(self.num_nodes, dtype=torch.long, device=device)
        self._used = 0  # slots handed out in the flat arrays
        self._nbr = torch.empty(0, dtype=torch.long, device=device)
        self._eid = torch.empty(0, dtype=torch.long, device=device)
        self._ts = torch.empty(0, dtype=t.dtype, device=device)
        if backend == "numba":
            self._count = np.zeros(self.num_nodes, dtype=np.int64)  # scratch for the kernels
        self.insert(src, dst, t)

    # ------------------------------------------------------------------ building
    def insert(self, src: Tensor, dst: Tensor, t: Tensor) -> TemporalNeighborSampler:
        """Append events ``(src, dst, t)``; they must not be earlier than any event held.

        Returns ``self``. Amortised cost ``O(B log B)`` for a batch of ``B`` events.
        """
        if self.backend == "numba":
            return self._insert_numba(src, dst, t)
        src, dst, t = self._check_events(src, dst, t)
        num = src.numel()
        if num == 0:
            return self
        # Interleave both directions so that entries stay in event order, then group by node
        # with a stable sort: entry i of the interleaved order belongs to event i // 2.
        node = torch.stack([src, dst], dim=1).view(-1)
        other = torch.stack([dst, src], dim=1).view(-1)
        node, perm = torch.sort(node, stable=True)
        event = torch.div(perm, 2, rounding_mode="floor")
        uniq, inverse, counts = torch.unique_consecutive(
            node, return_inverse=True, return_counts=True)
        self._reserve(uniq, counts)
        # slot of the first new entry of each node, shifted back by its first sorted position
        # (index_select / index_copy_ rather than indexing: about twice as fast on CPU)
        size = self._size.index_select(0, uniq)
        base = self._start.index_select(0, uniq) + size - (torch.cumsum(counts, 0) - counts)
        pos = base.index_select(0, inverse) + torch.arange(node.numel(), device=self.device)
        self._nbr.index_copy_(0, pos, other.index_select(0, perm))
        self._eid.index_copy_(0, pos, event + self.num_events)
        self._ts.index_copy_(0, pos, t.index_select(0, event))
        self._size.index_copy_(0, uniq, size + counts)
        self.num_events += num
        self._last_t = t[-1:].clone()
        return self

    def _insert_numba(self, src: Tensor, dst: Tensor, t: Tensor) -> TemporalNeighborSampler:
        from graphkit.sampling import _temporal_numba as nb

        src, dst, t = self._as_events(src, dst, t)
        if src.numel() == 0:
            return self
        s, d, tn = src.numpy(), dst.numpy(), t.numpy()
        has_last = self._last_t is not None
        last = self._last_t.numpy()[0] if has_last else tn[0]
        if nb.check_events(s, d, tn, self.num_nodes, last, has_last):
            self._check_events(src, dst, t)  # raises with the details
        extra = nb.plan_insert(s, d, self._size.numpy(), self._cap.numpy(), self._count)
        if self._used + extra > self._nbr.numel():
            self._grow_arrays(max(self._used + extra, 2 * self._nbr.numel()))
        self._used = nb.apply_insert(
            s, d, tn, self.num_events, self._start.numpy(), self._size.numpy(),
            self._cap.numpy(), self._used, self._nbr.numpy(), self._eid.numpy(),
            self._ts.numpy(), self._count)
        self.num_events += src.numel()
        self._last_t = t[-1:].clone()
        return self

    def _as_events(self, src: Tensor, dst: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Shape and dtype checks; events moved to the sampler's device and dtypes."""
        for name, v in (("src", src), ("dst", dst), ("t", t)):
            if not isinstance(v, Tensor) or v.dim() != 1:
                raise ValueError(f"{name} must be a one-dimensional tensor")
        if not (src.numel() == dst.numel() == t.numel()):
            raise ValueError(
                f"src, dst and t must have the same length, got "
                f"{src.numel()}, {dst.numel()} and {t.numel()}"
            )
        for name, v in (("src", src), ("dst", dst)):
            if v.is_floating_point() or v.dtype == torch.bool:
                raise ValueError(f"{name} must hold integer node ids, got dtype {v.dtype}")
        if t.dtype == torch.bool:
            raise ValueError("t must hold timestamps, got dtype torch.bool")
        src = src.to(self.device, torch.long).contiguous()
        dst = dst.to(self.device, torch.long).contiguous()
        t = t.to(self.device)
        if self._used == 0 and t.numel():
            self._ts = self._ts.to(t.dtype)  # nothing held yet: adopt the stream's dtype
        elif t.dtype != self._ts.dtype:
            if t.is_floating_point() and not self._ts.is_floating_point() \
                    and bool((t != t.round()).any()):
                raise ValueError(
                    f"t has fractional timestamps but the sampler holds {self._ts.dtype} ones"
                )
            t = t.to(self._ts.dtype)
        return src, dst, t.contiguous()

    def _check_events(self, src: Tensor, dst: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        src, dst, t = self._as_events(src, dst, t)
        if src.numel() == 0:
            return src, dst, t
        # All checks in one device synchronisation; details only when one fails.
        lo, hi = torch.aminmax(torch.cat([src, dst]))
        last = self._last_t if self._last_t is not None else t[:1]
        flags = torch.stack([
            lo < 0,
            hi >= self.num_nodes,
            (t[1:] < t[:-1]).any() | (t[:1] < 0).any(),
            (~torch.isfinite(t)).any() if t.is_floating_point() else lo < lo,
            (t[:1] < last).any(),
        ]).tolist()
        if flags[0] or flags[1]:
            bad = int(lo) if flags[0] else int(hi)
            raise ValueError(f"node id {bad} out of range for num_nodes={self.num_nodes}")
        if flags[2] or flags[3]:
            check_timestamps(t)
        if flags[4]:
            raise ValueError(
                f"inserted events must not be earlier than the last event held "
                f"(t={float(t[0])} < {float(last[0])})"
            )
        return src, dst, t

    def _reserve(self, nodes: Tensor, extra: Tensor) -> None:
        """Make room for ``extra`` more entries in each of ``nodes``' segments."""
        need = self._size.index_select(0, nodes) + extra
        grow = need > self._cap.index_select(0, nodes)
        if not bool(grow.any()):
            return
        nodes, need = nodes[grow], need[grow]
        old_cap = self._cap.index_select(0, nodes)
        # Capacity at least doubles on every move (amortised O(1) per entry), minimum 4.
        new_cap = torch.maximum(torch.maximum(2 * old_cap, need), torch.full_like(need, 4))
        new_start = self._used + torch.cumsum(new_cap, 0) - new_cap
        total = self._used + int(new_cap.sum())
        if total > self._nbr.numel():
            self._grow_arrays(max(total, 2 * self._nbr.numel()))
        # Move the used part of each relocated segment.
        size = self._size.index_select(0, nodes)
        moved = int(size.sum())
        if moved > 0:
            seg = torch.repeat_interleave(torch.arange(nodes.numel(), device=self.device), size,
                                          output_size=moved)
            idx = torch.arange(moved, device=self.device)
            idx = idx - (torch.cumsum(size, 0) - size).index_select(0, seg)
            old = self._start.index_select(0, nodes).index_select(0, seg) + idx
            new = new_start.index_select(0, seg) + idx
            for a in (self._nbr, self._eid, self._ts):
                a.index_copy_(0, new, a.index_select(0, old))
        self._start.index_copy_(0, nodes, new_start)
        self._cap.index_copy_(0, nodes, new_cap)
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
        if nodes is None:
            return self._size.clone()
        if not isinstance(nodes, Tensor):
            raise ValueError(f"nodes must be a tensor of node ids, got {type(nodes).__name__}")
        nodes, _, _ = self._check_queries(nodes, torch.zeros_like(nodes))
        return self._size[nodes]

    def num_before(self, nodes: Tensor, times: Tensor) -> Tensor:
        """For each query ``(v, tau)``, the number of ``v``'s interactions with ``t < tau``."""
        nodes, times, _ = self._check_queries(nodes, times)
        return self._num_before(nodes, times)

    def _num_before(self, nodes: Tensor, times: Tensor) -> Tensor:
        """Vectorised binary search of ``times`` in each node's time-sorted segment."""
        start = self._start[nodes]
        lo, hi = start, start + self._size[nodes]
        if nodes.numel() and self._ts.numel():
            steps = max(int(self._size.max()), 1).bit_length()
            last = self._ts.numel() - 1
            for _ in range(steps):  # no early exit: avoids a device sync per step
                active = lo < hi
                mid = torch.div(lo + hi, 2, rounding_mode="floor")
                right = active & (self._ts[mid.clamp(max=last)] < times)
                lo = torch.where(right, mid + 1, lo)
                hi = torch.where(active & ~right, mid, hi)
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
        if int(k) <= 0 or int(k) != k:
            raise ValueError(f"k must be a positive integer, got {k}")
        k = int(k)
        if self.backend == "numba":
            return self._sample_numba(nodes, times, k, strategy, generator)
        nodes, times, all_after = self._check_queries(nodes, times)
        if self._ts.numel() == 0:
            pad = torch.full((nodes.numel(), k), -1, dtype=torch.long, device=self.device)
            return pad, pad.clone(), pad.to(self._ts.dtype)
        # Streaming fast path: queries after the last event see every interaction held.
        start = self._start.index_select(0, nodes)
        count = self._size.index_select(0, nodes) if all_after else \
            self._num_before(nodes, times)
        cols = torch.arange(k, device=self.device)
        if strategy == "recent":
            back = cols.expand(nodes.numel(), k)  # 0 = latest
        else:
            back = floyd_sample(count, k, generator).sort(dim=1).values
        pad = back >= count.unsqueeze(1)
        # slot of the back-th latest earlier interaction (clamped for padding entries)
        pos = ((start + count - 1).unsqueeze(1) - back).clamp_(min=0).view(-1)
        shape = (nodes.numel(), k)
        nbr = self._nbr.index_select(0, pos).view(shape).masked_fill_(pad, -1)
        eid = self._eid.index_select(0, pos).view(shape).masked_fill_(pad, -1)
        ts = self._ts.index_select(0, pos).view(shape).masked_fill_(pad, -1)
        return nbr, eid, ts

    def _sample_numba(self, nodes: Tensor, times: Tensor, k: int, strategy: str,
                      generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
        from graphkit.sampling import _temporal_numba as nb

        nodes, times, bad_times = self._as_queries(nodes, times)
        if bad_times is not None and bool(bad_times):
            self._raise_bad_times()
        b = nodes.numel()
        nbr = torch.full((b, k), -1, dtype=torch.long)
        eid = torch.full((b, k), -1, dtype=torch.long)
        ts = torch.full((b, k), -1, dtype=self._ts.dtype)
        uniform = strategy == "uniform"
        seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if uniform else 0
        bad = nb.sample(self._start.numpy(), self._size.numpy(), self._nbr.numpy(),
                        self._eid.numpy(), self._ts.numpy(), nodes.numpy(), times.numpy(), k,
                        uniform, False, seed, nbr.numpy(), eid.numpy(), ts.numpy())
        if bad >= 0:
            raise ValueError(f"query node ids must lie in [0, {self.num_nodes}), "
                             f"got {int(nodes[bad])}")
        return nbr, eid, ts

    def _as_queries(self, nodes: Tensor, times: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Shape and dtype checks; queries on the sampler's device and dtypes, and (for float
        query times) a 0-dim flag, not yet read, of times that cannot be compared: NaN, or
        infinite ones for a sampler holding integer timestamps."""
        for name, v in (("nodes", nodes), ("times", times)):
            if not isinstance(v, Tensor):
                raise ValueError(f"{name} must be a tensor, got {type(v).__name__}")
        if nodes.dim() != 1 or times.dim() != 1 or nodes.numel() != times.numel():
            raise ValueError(
                f"nodes and times must be one-dimensional and of equal length, got shapes "
                f"{list(nodes.shape)} and {list(times.shape)}"
            )
        if nodes.is_floating_point() or nodes.dtype == torch.bool:
            raise ValueError(f"nodes must hold integer node ids, got dtype {nodes.dtype}")
        nodes = nodes.to(self.device, torch.long).contiguous()
        times = times.to(self.device)
        bad_times = None
        if times.is_floating_point() and times.numel():
            bad = torch.isnan(times) if self._ts.is_floating_point() else ~torch.isfinite(times)
            bad_times = bad.any()
        if times.is_floating_point() and not self._ts.is_floating_point():
            times = torch.ceil(times)  # t < 5.5 holds exactly for integer t <= 5, i.e. t < 6
        return nodes, times.to(self._ts.dtype).contiguous(), bad_times

    def _raise_bad_times(self) -> None:
        inf = "" if self._ts.is_floating_point() else " or infinite"
        raise ValueError(f"times holds NaN{inf} query times (the sampler holds {self._ts.dtype} "
                         "timestamps)")

    def _check_queries(self, nodes: Tensor, times: Tensor) -> tuple[Tensor, Tensor, bool]:
        """Validate queries; also say whether every query time is after every event held."""
        nodes, times, bad_times = self._as_queries(nodes, times)
        if nodes.numel() == 0:
            return nodes, times, False
        lo, hi = torch.aminmax(nodes)
        after = (times > self._last_t).all() if self._last_t is not None else lo < lo
        flags = [lo < 0, hi >= self.num_nodes, after]
        if bad_times is not None:  # read in the same device synchronisation
            flags.append(bad_times)
        bad_lo, bad_hi, all_after, *bad_t = torch.stack(flags).tolist()
        if bad_lo or bad_hi:
            raise ValueError(f"query node ids must lie in [0, {self.num_nodes}), got "
                             f"{int(lo) if bad_lo else int(hi)}")
        if bad_t and bad_t[0]:
            self._raise_bad_times()
        return nodes, times, all_after

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
            f"num_events={self.num_events}, backend={self.backend!r})"
        )

