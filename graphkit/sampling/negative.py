"""Negative samplers for link prediction, static and temporal.

* :func:`uniform_negative_destinations` -- random destinations (the usual temporal training
  negatives, and TGB's "random" evaluation setting).
* :class:`HistoricalNegativeSampler` and :class:`InductiveNegativeSampler` -- the harder
  evaluation negatives of `Poursafaei et al., "Towards Better Evaluation for Dynamic Link
  Prediction" <https://arxiv.org/abs/2207.10128>`_ (NeurIPS 2022), following the DyGLib
  reference implementation.
* :func:`negative_edges` -- distinct non-edges of a static graph.
"""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index, check_timestamps
from graphkit.sampling._random import first_occurrences

__all__ = [
    "HistoricalNegativeSampler",
    "InductiveNegativeSampler",
    "negative_edges",
    "uniform_negative_destinations",
]


def uniform_negative_destinations(
    num: int,
    nodes: int | Tensor,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``num`` destinations drawn uniformly (with replacement).

    Args:
        num: how many to draw.
        nodes: the number of nodes (draw from ``[0, nodes)``) or a 1-D tensor pool of node ids
            to draw from (e.g. the distinct destinations of a bipartite stream).
        generator: random source (must live on ``device``).
        device: output device (default: the pool's device, else CPU).
    """
    if int(num) < 0 or int(num) != num:
        raise ValueError(f"num must be a non-negative integer, got {num}")
    if isinstance(nodes, Tensor):
        if nodes.dim() != 1 or nodes.numel() == 0:
            raise ValueError("the destination pool must be a non-empty one-dimensional tensor")
        if nodes.is_floating_point() or nodes.dtype == torch.bool:
            raise ValueError(f"the destination pool must hold integer node ids, got dtype "
                             f"{nodes.dtype}")
        device = nodes.device if device is None else device
        idx = torch.randint(0, nodes.numel(), (int(num),), generator=generator, device=device)
        return nodes.to(device)[idx]
    if int(nodes) <= 0:
        raise ValueError(f"the number of nodes must be positive, got {nodes}")
    return torch.randint(0, int(nodes), (int(num),), generator=generator, device=device)


def negative_edges(
    edge_index: Tensor,
    num_nodes: int,
    num: int,
    generator: torch.Generator | None = None,
    allow_self_loops: bool = False,
) -> Tensor:
    """``num`` distinct node pairs ``(u, v)`` that are not edges of ``edge_index``, uniformly.

    Pairs are directed: for an undirected graph pass both directions (as PyG stores them).
    Self-loops are excluded unless ``allow_self_loops``.

    Returns:
        ``[2, num]`` int64 on ``edge_index``'s device.

    Raises:
        ValueError: if the graph has fewer than ``num`` non-edges.
    """
    try:  # 2.7 pairs used to be 2 without a word
        n, num = operator.index(num_nodes), operator.index(num)
    except TypeError:
        raise ValueError(f"num_nodes and num must be integers, got {num_nodes!r} and "
                         f"{num!r}") from None
    if n < 0:
        raise ValueError(f"num_nodes must be non-negative, got {num_nodes}")
    edge_index = check_edge_index(edge_index, n)
    if num < 0:
        raise ValueError(f"num must be non-negative, got {num}")
    device = edge_index.device
    edges = torch.unique(edge_index[0] * n + edge_index[1])
    if not allow_self_loops:
        edges = edges[edges // n != edges % n]
    available = n * n - (0 if allow_self_loops else n) - edges.numel()
    if num > available:
        raise ValueError(
            f"cannot draw {num} distinct non-edges: the graph has only {available}"
        )
    if num == 0:
        return torch.empty((2, 0), dtype=torch.long, device=device)
    if n * n <= 4_000_000 and num > available // 4:
        # Dense request on a small graph: enumerate all non-edges and permute.
        keys = torch.arange(n * n, device=device)
        keep = ~torch.isin(keys, edges)
        if not allow_self_loops:
            keep &= keys // n != keys % n
        keys = keys[keep]
        keys = keys[torch.randperm(keys.numel(), generator=generator, device=device)[:num]]
    else:
        keys = torch.empty(0, dtype=torch.long, device=device)
        while keys.numel() < num:
            want = num - keys.numel()
            draw = int(want * n * n / available * 1.1) + 16
            cand = torch.randint(0, n * n, (draw,), generator=generator, device=device)
            ok = ~torch.isin(cand, edges) & ~torch.isin(cand, keys)
            if not allow_self_loops:
                ok &= cand // n != cand % n
            cand = first_occurrences(cand[ok])  # their random order kept
            keys = torch.cat([keys, cand[:want]])
    return torch.stack([keys // n, keys % n])


class _EdgeHistory:
    """Distinct directed edges of a stream, sorted by the time each first occurs."""

    def __init__(self, src: Tensor, dst: Tensor, t: Tensor, num_nodes: int | None,
                 generator: torch.Generator | None) -> None:
        if not (src.dim() == dst.dim() == t.dim() == 1) or not (
                src.numel() == dst.numel() == t.numel()):
            raise ValueError("src, dst and t must be one-dimensional and of equal length")
        if src.numel() == 0:
            raise ValueError("the event stream is empty")
        t = check_timestamps(t)
        self.num_nodes = int(num_nodes) if num_nodes is not None else \
            int(torch.maximum(src.max(), dst.max())) + 1
        check_edge_index(torch.stack([src, dst]), self.num_nodes, name="(src, dst)")
        n = self.num_nodes
        key = src.long() * n + dst.long()
        uniq, inv = torch.unique(key, return_inverse=True)
        first = torch.full((uniq.numel(),), key.numel(), dtype=torch.long, device=key.device)
        first.scatter_reduce_(0, inv, torch.arange(key.numel(), device=key.device),
                              reduce="amin")
        order = torch.argsort(first)  # events are time-sorted, so this sorts by first time
        self.keys = uniq[order]
        self.first_time = t[first[order]]
        self.src_pool = torch.unique(src).long()
        self.dst_pool = torch.unique(dst).long()
        self.generator = generator

    def count_before(self, time: float, inclusive: bool = False, name: str = "start_time"
                     ) -> int:
        """Number of distinct edges first seen at a time ``< time`` (``<=`` if inclusive)."""
        if math.isnan(float(time)):
            raise ValueError(f"{name} is NaN")
        if math.isinf(float(time)):  # before (or after) every edge
            return self.keys.numel() if time > 0 else 0
        ft = self.first_time
        if not ft.is_floating_point():  # compare an integer clock with a float time exactly
            time = math.floor(time) if inclusive else math.ceil(time)
        query = torch.tensor([time], dtype=ft.dtype, device=ft.device)
        return int(torch.searchsorted(ft, query, right=inclusive))

    def check_batch(self, batch_src: Tensor, batch_dst: Tensor, size: int | None) -> int:
        """Check a batch's positive edges (ids below ``num_nodes``, else they would exclude
        other pairs' keys) and return the number of negatives to draw."""
        for name, v in (("batch_src", batch_src), ("batch_dst", batch_dst)):
            if not isinstance(v, Tensor) or v.dim() != 1:
                raise ValueError(f"{name} must be a one-dimensional tensor of node ids")
        if batch_src.numel() != batch_dst.numel():
            raise ValueError(f"batch_src has {batch_src.numel()} events but batch_dst has "
                             f"{batch_dst.numel()}")
        check_edge_index(torch.stack([batch_src, batch_dst]), self.num_nodes,
                         name="(batch_src, batch_dst)")
        size = batch_src.numel() if size is None else int(size)
        if size < 0:
            raise ValueError(f"size must be non-negative, got {size}")
        return size

    def draw(self, pool: Tensor, batch_src: Tensor, batch_dst: Tensor, size: int
             ) -> tuple[Tensor, Tensor]:
        """``size`` negatives: from ``pool`` minus the batch's edges, topped up at random."""
        n = self.num_nodes
        batch = torch.unique(batch_src.long() * n + batch_dst.long())
        pool = pool[~torch.isin(pool, batch)]
        if pool.numel() >= size:
            perm = torch.randperm(pool.numel(), generator=self.generator,
                                  device=pool.device)[:size]
            keys = pool[perm]
        else:
            keys = torch.cat([pool, self._random(size - pool.numel(), batch)])
        return keys // n, keys % n

    def _random(self, size: int, batch: Tensor) -> Tensor:
        """Random (src, dst) keys from the node pools that are not edges of the batch."""
        n = self.num_nodes
        # the batch may hold edges outside the pools' grid: count only the pairs it removes
        in_grid = torch.isin(batch // n, self.src_pool) & torch.isin(batch % n, self.dst_pool)
        if size > 0 and self.src_pool.numel() * self.dst_pool.numel() <= int(in_grid.sum()):
            raise ValueError(f"cannot top up with {size} random negatives: every (source, "
                             "destination) pair of the stream's node pools is a positive "
                             "edge of the batch")
        out = torch.empty(0, dtype=torch.long, device=self.keys.device)
        while out.numel() < size:
            want = size - out.numel()
            s = uniform_negative_destinations(want, self.src_pool, self.generator)
            d = uniform_negative_destinations(want, self.dst_pool, self.generator)
            key = s * n + d
            out = torch.cat([out, key[~torch.isin(key, batch)]])
        return out


class HistoricalNegativeSampler:
    r"""Historical negatives: edges seen before the current batch but absent from it.

    For a batch starting at time :math:`t_0`, the pool is every distinct directed edge of the
    stream whose first occurrence is earlier than :math:`t_0`, minus the batch's own edges;
    ``size`` edges are drawn from it without replacement, and when the pool is too small it is
    used whole and topped up with random pairs (source from the stream's sources, destination
    from its destinations) that are not batch edges -- DyGLib's ``historical`` strategy
    (Poursafaei et al., NeurIPS 2022).

    Args:
        src, dst, t (Tensor): the full event stream (time-sorted).
        num_nodes (int, optional): number of nodes (default: max id + 1).
        generator (torch.Generator, optional): random source.
    """

    def __init__(self, src: Tensor, dst: Tensor, t: Tensor, num_nodes: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        self._history = _EdgeHistory(src, dst, t, num_nodes, generator)

    def sample(self, batch_src: Tensor, batch_dst: Tensor, start_time: float,
               size: int | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(neg_src, neg_dst)``, ``size`` (default: batch size) negative edges."""
        h = self._history
        size = h.check_batch(batch_src, batch_dst, size)
        pool = h.keys[: h.count_before(start_time)]
        return h.draw(pool, batch_src, batch_dst, size)


class InductiveNegativeSampler:
    r"""Inductive negatives: edges seen before the current batch but never in training.

    The pool is every distinct directed edge whose first occurrence lies after
    ``last_observed_time`` (the end of training) and before the batch start, minus the batch's
    own edges; sampling and topping up are as in :class:`HistoricalNegativeSampler` (DyGLib's
    ``inductive`` strategy, Poursafaei et al., NeurIPS 2022).

    Args:
        src, dst, t (Tensor): the full event stream (time-sorted).
        last_observed_time (float): the last training timestamp.
        num_nodes (int, optional): number of nodes (default: max id + 1).
        generator (torch.Generator, optional): random source.
    """

    def __init__(self, src: Tensor, dst: Tensor, t: Tensor, last_observed_time: float,
                 num_nodes: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        self._history = _EdgeHistory(src, dst, t, num_nodes, generator)
        # Edges whose first occurrence is <= last_observed_time were seen in training.
        self._num_observed = self._history.count_before(last_observed_time, inclusive=True,
                                                          name="last_observed_time")
        self.last_observed_time = last_observed_time

    def sample(self, batch_src: Tensor, batch_dst: Tensor, start_time: float,
               size: int | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(neg_src, neg_dst)``, ``size`` (default: batch size) negative edges."""
        h = self._history
        size = h.check_batch(batch_src, batch_dst, size)
        end = max(h.count_before(start_time), self._num_observed)
        pool = h.keys[self._num_observed:end]
        return h.draw(pool, batch_src, batch_dst, size)
