"""Uniform multi-hop neighbour sampling and a PyG-compatible mini-batch loader.

The sampling scheme of GraphSAGE (`Hamilton et al., "Inductive Representation Learning on Large
Graphs" <https://arxiv.org/abs/1706.02216>`_) as PyG's ``NeighborLoader`` implements it: starting
from the seed nodes, hop ``l`` samples up to ``num_neighbors[l]`` in-neighbours of every node
first reached in hop ``l - 1`` (uniformly, without replacement unless ``replace=True``;
``-1`` takes all of them). A sampled edge ``u -> v`` becomes a message edge from the neighbour
``u`` to ``v``, so ``edge_index`` has the same direction convention as PyG.

CPU tensors use a Numba kernel; other devices (CUDA) use a vectorised torch path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch_geometric.data import Data

from graphkit.data.validation import check_graph
from graphkit.sampling._random import first_occurrences, floyd_sample
from graphkit.sampling.csr import CSRGraph
from graphkit.typing import WITH_NUMBA

__all__ = ["NeighborLoader", "NeighborSampler", "SampledSubgraph"]

_BACKENDS = ("auto", "numba", "torch")


@dataclass
class SampledSubgraph:
    """The result of :meth:`NeighborSampler.sample` (all ids are int64 tensors).

    Attributes:
        n_id: global ids of the sampled nodes; the seeds come first.
        edge_index: ``[2, E']`` local ids, row 0 the sampled neighbour, row 1 the node it was
            sampled for.
        e_id: global edge id (column of the input ``edge_index``) of each sampled edge.
        batch_size: number of seeds.
        num_sampled_nodes: nodes added per hop (hop 0 = the seeds).
        num_sampled_edges: edges sampled per hop.
    """

    n_id: Tensor
    edge_index: Tensor
    e_id: Tensor
    batch_size: int
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]


class NeighborSampler:
    r"""Uniform multi-hop in-neighbour sampler over a cached CSC.

    Args:
        data (Data): a graph with ``edge_index`` (row 0 sources, row 1 targets).
        num_neighbors (list[int]): neighbours per node for each hop; ``-1`` means all.
        replace (bool): sample with replacement. (default: ``False``)
        backend (str): ``"auto"`` (Numba on CPU when available, torch otherwise),
            ``"numba"`` or ``"torch"``. (default: ``"auto"``)

    Example:
        >>> sampler = NeighborSampler(data, num_neighbors=[10, 5])
        >>> batch = sampler.batch(torch.tensor([0, 4, 7]))  # a Data like NeighborLoader's
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        replace: bool = False,
        backend: str = "auto",
    ) -> None:
        if getattr(data, "edge_index", None) is None:
            raise ValueError("NeighborSampler needs a graph with an edge_index")
        # ids in range, x finite with one row per node: a batch slices x by n_id, and an x of
        # another length is not a node attribute to PyG, so it would be passed whole
        check_graph(data)
        if any(int(k) != k for k in num_neighbors):
            raise ValueError(f"num_neighbors entries must be integers, got {list(num_neighbors)}")
        num_neighbors = [int(k) for k in num_neighbors]
        if not num_neighbors:
            raise ValueError("num_neighbors must list at least one hop")
        if any(k < -1 or k == 0 for k in num_neighbors):
            raise ValueError(f"num_neighbors entries must be positive or -1, got {num_neighbors}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        self.data = data
        self.num_nodes = int(data.num_nodes)
        self.num_neighbors = num_neighbors
        self.replace = bool(replace)
        # CSC: for every target node its sources, i.e. the CSR of the reversed graph.
        self.csc = CSRGraph.from_edge_index(data.edge_index, self.num_nodes).transpose()
        self.device = self.csc.device
        on_cpu = self.device.type == "cpu"
        if backend == "auto":
            backend = "numba" if (WITH_NUMBA and on_cpu) else "torch"
        if backend == "numba" and not on_cpu:
            raise ValueError("the numba backend needs CPU tensors; use backend='torch'")
        if backend == "numba" and not WITH_NUMBA:
            raise ValueError("the numba backend needs numba installed")
        self.backend = backend
        self._assoc_np: np.ndarray | None = None
        self._assoc: Tensor | None = None

    # ------------------------------------------------------------------ sampling
    def sample(self, seeds: Tensor, generator: torch.Generator | None = None) -> SampledSubgraph:
        """Sample the multi-hop neighbourhood of ``seeds`` (distinct node ids, ``[B]``)."""
        seeds = self._check_seeds(seeds)
        if self.backend == "numba":
            return self._sample_numba(seeds, generator)
        return self._sample_torch(seeds, generator)

    def batch(self, seeds: Tensor, generator: torch.Generator | None = None) -> Data:
        """A mini-batch :class:`~torch_geometric.data.Data` like PyG's ``NeighborLoader``'s.

        Node attributes (``x``, ``y``, masks, ...) are sliced by ``n_id``, edge attributes by
        ``e_id``; ``edge_index`` is relabelled to local ids and the seeds come first, so the
        first ``batch_size`` rows of the output belong to the seeds.
        """
        out = self.sample(seeds, generator)
        return _slice(self.data, out)

    def _check_seeds(self, seeds: Tensor) -> Tensor:
        if not isinstance(seeds, Tensor):
            seeds = torch.as_tensor(seeds)
        if seeds.dim() != 1 or seeds.is_floating_point() or seeds.dtype == torch.bool:
            raise ValueError("seeds must be a one-dimensional tensor of node ids")
        seeds = seeds.to(self.device, torch.long)
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_nodes):
            raise ValueError(f"seed node ids must lie in [0, {self.num_nodes})")
        return seeds

    def _sample_numba(self, seeds: Tensor, generator: torch.Generator | None) -> SampledSubgraph:
        from graphkit.sampling import _neighbor_numba as nb

        if self._assoc_np is None:
            self._assoc_np = np.full(self.num_nodes, -1, dtype=np.int64)
            self._np_csc = (self.csc.rowptr.numpy(), self.csc.col.numpy(),
                            self.csc.edge_id.numpy())
        assoc = self._assoc_np
        rowptr, col, eid = self._np_csc
        nb.seed_numba(int(torch.randint(0, 2**62, (1,), generator=generator)))
        seeds_np = seeds.numpy()
        dup = nb.mark_seeds(seeds_np, assoc)
        if dup >= 0:
            raise ValueError(f"seeds must be distinct; node {int(seeds_np[dup])} repeats")
        nodes, rows, cols, eids = [seeds_np], [], [], []
        frontier, offset, num_local = seeds_np, 0, seeds_np.size
        try:
            for k in self.num_neighbors:
                new, r, c, e = nb.sample_hop(rowptr, col, eid, frontier, offset, k,
                                             self.replace, assoc, num_local)
                nodes.append(new)
                rows.append(r)
                cols.append(c)
                eids.append(e)
                frontier, offset, num_local = new, num_local, num_local + new.size
        finally:
            for part in nodes:
                nb.reset(part, assoc)
        return _output(
            [torch.from_numpy(a) for a in nodes], [torch.from_numpy(a) for a in rows],
            [torch.from_numpy(a) for a in cols], [torch.from_numpy(a) for a in eids],
        )

    def _sample_torch(self, seeds: Tensor, generator: torch.Generator | None) -> SampledSubgraph:
        if self._assoc is None:
            self._assoc = torch.full((self.num_nodes,), -1, dtype=torch.long, device=self.device)
        assoc = self._assoc
        if seeds.unique().numel() != seeds.numel():
            raise ValueError("seeds must be distinct node ids")
        rowptr, col, eid = self.csc.rowptr, self.csc.col, self.csc.edge_id
        assoc[seeds] = torch.arange(seeds.numel(), device=self.device)
        nodes, rows, cols, eids = [seeds], [], [], []
        frontier, offset, num_local = seeds, 0, seeds.numel()
        try:
            for k in self.num_neighbors:
                start = rowptr[frontier]
                deg = rowptr[frontier + 1] - start
                if k < 0:
                    cnt = deg
                elif self.replace:
                    cnt = torch.where(deg > 0, k, 0)
                else:
                    cnt = deg.clamp(max=k)
                seg = torch.repeat_interleave(torch.arange(frontier.numel(), device=self.device),
                                              cnt)
                rank = torch.arange(seg.numel(), device=self.device)
                rank = rank - (torch.cumsum(cnt, 0) - cnt)[seg]
                if k < 0:
                    off = rank
                elif self.replace:
                    r = torch.rand(seg.numel(), generator=generator, device=self.device,
                                   dtype=torch.float64)
                    off = torch.minimum((r * deg[seg]).long(), deg[seg] - 1)
                else:
                    off = floyd_sample(deg, k, generator)[seg, rank]
                p = start[seg] + off
                u, e = col[p], eid[p]
                new = first_occurrences(u[assoc[u] < 0])
                assoc[new] = torch.arange(num_local, num_local + new.numel(), device=self.device)
                nodes.append(new)
                rows.append(assoc[u])
                cols.append(offset + seg)
                eids.append(e)
                frontier, offset, num_local = new, num_local, num_local + new.numel()
        finally:
            for part in nodes:
                assoc[part] = -1
        return _output(nodes, rows, cols, eids)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_neighbors={self.num_neighbors}, "
                f"replace={self.replace}, backend={self.backend!r})")


def _output(nodes: list[Tensor], rows: list[Tensor], cols: list[Tensor],
            eids: list[Tensor]) -> SampledSubgraph:
    return SampledSubgraph(
        n_id=torch.cat(nodes),
        edge_index=torch.stack([torch.cat(rows), torch.cat(cols)]),
        e_id=torch.cat(eids),
        batch_size=int(nodes[0].numel()),
        num_sampled_nodes=[int(a.numel()) for a in nodes],
        num_sampled_edges=[int(a.numel()) for a in eids],
    )


def _slice(data: Data, out: SampledSubgraph) -> Data:
    batch = Data()
    n_id, e_id = out.n_id, out.e_id
    for key, value in data.items():
        if key == "edge_index":
            continue
        if isinstance(value, Tensor) and data.is_node_attr(key):
            batch[key] = value[n_id.to(value.device)]
        elif isinstance(value, Tensor) and data.is_edge_attr(key):
            batch[key] = value[e_id.to(value.device)]
        else:
            batch[key] = value
    batch.edge_index = out.edge_index
    batch.n_id = n_id
    batch.e_id = e_id
    batch.num_nodes = n_id.numel()
    batch.batch_size = out.batch_size
    batch.input_id = None
    batch.num_sampled_nodes = out.num_sampled_nodes
    batch.num_sampled_edges = out.num_sampled_edges
    return batch


class NeighborLoader(DataLoader):
    r"""Mini-batches of seed nodes with their sampled neighbourhoods, like PyG's loader.

    Each batch is a :class:`~torch_geometric.data.Data` with ``x``/``y`` (and every other node
    or edge attribute) sliced, a relabelled ``edge_index`` whose messages flow from sampled
    neighbours to the nodes they were sampled for, ``n_id`` (seeds first), ``e_id``,
    ``batch_size``, ``input_id`` (positions of the seeds in ``input_nodes``),
    ``num_sampled_nodes`` and ``num_sampled_edges``.

    Args:
        data (Data): the graph.
        num_neighbors (list[int]): neighbours per hop (``-1``: all).
        batch_size (int): seeds per mini-batch. (default: ``1``)
        input_nodes (Tensor, optional): seed node ids or a boolean mask; all nodes if ``None``.
        shuffle (bool): reshuffle the seeds every epoch. (default: ``False``)
        replace (bool): sample with replacement. (default: ``False``)
        backend (str): see :class:`NeighborSampler`. (default: ``"auto"``)
        **kwargs: passed to :class:`torch.utils.data.DataLoader` (``num_workers``,
            ``generator``, ...).
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        batch_size: int = 1,
        input_nodes: Tensor | None = None,
        shuffle: bool = False,
        replace: bool = False,
        backend: str = "auto",
        **kwargs,
    ) -> None:
        kwargs.pop("collate_fn", None)
        self.neighbor_sampler = NeighborSampler(data, num_neighbors, replace, backend)
        n = self.neighbor_sampler.num_nodes
        if input_nodes is None:
            input_nodes = torch.arange(n)
        elif isinstance(input_nodes, Tensor) and input_nodes.dtype == torch.bool:
            if input_nodes.numel() != n:
                raise ValueError(
                    f"input_nodes mask has {input_nodes.numel()} entries for {n} nodes"
                )
            input_nodes = input_nodes.nonzero().view(-1)
        input_nodes = torch.as_tensor(input_nodes)
        if input_nodes.is_floating_point() or input_nodes.is_complex():
            raise ValueError(f"input_nodes must hold integer node ids or be a boolean mask, "
                             f"got dtype {input_nodes.dtype}")
        input_nodes = input_nodes.view(-1).long().cpu()
        if input_nodes.numel() and (int(input_nodes.min()) < 0 or int(input_nodes.max()) >= n):
            raise ValueError(f"input_nodes must lie in [0, {n})")
        self.input_nodes = input_nodes
        super().__init__(range(input_nodes.numel()), batch_size=batch_size, shuffle=shuffle,
                         collate_fn=self._collate, **kwargs)

    def _collate(self, index: list[int]) -> Data:
        input_id = torch.tensor(index, dtype=torch.long)
        batch = self.neighbor_sampler.batch(self.input_nodes[input_id])
        batch.input_id = input_id
        return batch
