"""A compressed sparse row (CSR) view of a graph, with edge ids, built once and cached."""

from __future__ import annotations

import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index

__all__ = ["CSRGraph"]


class CSRGraph:
    r"""Compressed sparse rows of a directed graph, keeping each entry's original edge id.

    Row ``v`` lists the out-neighbours of ``v``: ``col[rowptr[v]:rowptr[v + 1]]``, with the
    positions of those edges in the input ``edge_index`` in ``edge_id``. Within a row, edges
    keep their input order (increasing edge id), in the CSR and its transpose alike.
    Duplicate edges and self-loops are kept.
    :meth:`transpose` gives the CSC (in-neighbours), computed once and cached.

    Args:
        rowptr (Tensor): ``[num_nodes + 1]`` row offsets.
        col (Tensor): ``[num_edges]`` column (neighbour) ids.
        edge_id (Tensor): ``[num_edges]`` original edge ids.

    Example:
        >>> csr = CSRGraph.from_edge_index(edge_index, num_nodes)
        >>> csr.neighbors(0), csr.degree()
        >>> csc = csr.transpose()  # in-neighbours: csc.neighbors(v) are the sources of v
    """

    def __init__(self, rowptr: Tensor, col: Tensor, edge_id: Tensor) -> None:
        if rowptr.dim() != 1 or rowptr.numel() < 1:
            raise ValueError("rowptr must be a non-empty one-dimensional tensor")
        if col.shape != edge_id.shape or col.dim() != 1:
            raise ValueError("col and edge_id must be one-dimensional and of equal length")
        for name, v in (("rowptr", rowptr), ("col", col), ("edge_id", edge_id)):
            if v.is_floating_point() or v.is_complex() or v.dtype == torch.bool:
                raise ValueError(f"{name} must hold integers, got dtype {v.dtype}")
        first, last, decreasing = torch.stack(
            [rowptr[0], rowptr[-1], (rowptr[1:] < rowptr[:-1]).any().to(rowptr.dtype)]).tolist()
        if last != col.numel():
            raise ValueError(
                f"rowptr[-1] = {last} does not match the {col.numel()} entries of col"
            )
        if first != 0 or decreasing:
            raise ValueError(f"rowptr must start at 0 and never decrease, got rowptr[0] = "
                             f"{first}" + (" and a decrease" if decreasing else ""))
        self.rowptr = rowptr
        self.col = col
        self.edge_id = edge_id
        self._transpose: CSRGraph | None = None

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> CSRGraph:
        """Build the CSR of ``edge_index`` (``[2, E]``, row 0 sources, row 1 targets)."""
        if int(num_nodes) < 0:
            raise ValueError(f"num_nodes must be non-negative, got {num_nodes}")
        edge_index = check_edge_index(edge_index, int(num_nodes))
        return cls._from_rows(edge_index[0], edge_index[1],
                              torch.arange(edge_index.size(1), device=edge_index.device),
                              int(num_nodes))

    @classmethod
    def _from_rows(cls, row: Tensor, col: Tensor, edge_id: Tensor, num_nodes: int) -> CSRGraph:
        row, perm = torch.sort(row, stable=True)
        counts = torch.bincount(row, minlength=num_nodes)
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=row.device)
        torch.cumsum(counts, 0, out=rowptr[1:])
        return cls(rowptr, col[perm], edge_id[perm])

    @property
    def num_nodes(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    def degree(self) -> Tensor:
        """Out-degree of every node (in-degree for a :meth:`transpose`)."""
        return self.rowptr[1:] - self.rowptr[:-1]

    def neighbors(self, v: int) -> Tensor:
        """The neighbours of node ``v`` (with repeats for duplicate edges)."""
        if not 0 <= int(v) < self.num_nodes:
            raise ValueError(f"node {v} out of range for num_nodes={self.num_nodes}")
        return self.col[int(self.rowptr[v]):int(self.rowptr[v + 1])]

    def row(self) -> Tensor:
        """The row (source) of every stored entry, ``[num_edges]``."""
        return torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device),
                                       self.degree())

    def transpose(self) -> CSRGraph:
        """The CSR of the reversed graph, i.e. this graph's CSC (cached, shares edge ids)."""
        if self._transpose is None:
            order = torch.argsort(self.edge_id)  # keep input order within each row
            t = CSRGraph._from_rows(self.col[order], self.row()[order], self.edge_id[order],
                                    self.num_nodes)
            t._transpose = self
            self._transpose = t
        return self._transpose

    def to(self, device: torch.device | str) -> CSRGraph:
        """A copy on ``device`` (the transpose is rebuilt there on demand)."""
        return CSRGraph(self.rowptr.to(device), self.col.to(device), self.edge_id.to(device))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_nodes={self.num_nodes}, num_edges={self.num_edges})"
