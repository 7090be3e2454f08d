"""Converters between the graph inputs users hand to graphkit.

Every method that takes a ``graph`` accepts an ``edge_index`` (tensor or array), a SciPy sparse
matrix, a networkx graph or a PyG :class:`~torch_geometric.data.Data`; these helpers turn any of
them into the form the method needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index, check_edge_weight

__all__ = ["GraphLike", "to_csr", "to_edge_index", "infer_num_nodes"]

GraphLike = Any  # Tensor | np.ndarray | sp.spmatrix | sp.sparray | nx.Graph | Data


def _is_networkx(graph: Any) -> bool:
    return type(graph).__module__.startswith("networkx")


def infer_num_nodes(edge_index: Tensor, num_nodes: int | None = None) -> int:
    if num_nodes is not None:
        return int(num_nodes)
    return int(edge_index.max()) + 1 if edge_index.numel() else 0


def to_edge_index(
    graph: GraphLike, num_nodes: int | None = None
) -> tuple[Tensor, Tensor | None, int]:
    """Return ``(edge_index, edge_weight or None, num_nodes)`` for any supported graph input.

    A networkx graph's nodes are numbered in ``graph.nodes`` order; an undirected networkx graph
    yields both directions of each edge, as PyG does, and its ``"weight"`` attributes (where any
    edge has one; a missing one counts 1, as in networkx) are the edge weights, in float32 as
    PyG's layers expect (:func:`to_csr` keeps a float64 matrix's or graph's precision).
    """
    from torch_geometric.data import Data

    if num_nodes is not None and (isinstance(num_nodes, bool) or not isinstance(
            num_nodes, (int, np.integer)) or num_nodes < 0):
        raise ValueError(f"num_nodes must be a non-negative integer, got {num_nodes!r}")
    if isinstance(graph, Data):
        n = graph.num_nodes if num_nodes is None else num_nodes
        ei = check_edge_index(graph.edge_index, n)
        w = getattr(graph, "edge_weight", None)
        if w is not None:
            check_edge_weight(w, ei.size(1))
        return ei, w, int(n)
    if sp.issparse(graph):
        if graph.shape[0] != graph.shape[1]:
            raise ValueError(f"adjacency matrix must be square, got shape {graph.shape}")
        coo = sp.coo_matrix(graph)
        n = coo.shape[0] if num_nodes is None else num_nodes
        if num_nodes is not None and num_nodes != coo.shape[0]:
            raise ValueError(
                f"num_nodes={num_nodes} does not match the matrix's {coo.shape[0]} rows"
            )
        ei = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        w = torch.from_numpy(coo.data.astype(np.float32)) if coo.nnz else torch.empty(0)
        return ei, w, int(n)
    if _is_networkx(graph):
        nodes = list(graph.nodes)
        index = {v: i for i, v in enumerate(nodes)}
        edges = list(graph.edges(data="weight"))
        pairs = [(index[u], index[v]) for u, v, _ in edges]
        # networkx's own convention: an edge without a "weight" attribute weighs 1
        weights = [1.0 if w is None else float(w) for _, _, w in edges]
        if not graph.is_directed():
            back = [i for i, (u, v) in enumerate(pairs) if u != v]
            pairs += [pairs[i][::-1] for i in back]
            weights += [weights[i] for i in back]
        ei = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
        n = len(nodes) if num_nodes is None else num_nodes
        w = None
        if any(attr is not None for _, _, attr in edges):
            w = check_edge_weight(torch.tensor(weights, dtype=torch.float32), ei.size(1))
        return check_edge_index(ei, n), w, int(n)
    ei = check_edge_index(graph, num_nodes)
    return ei, None, infer_num_nodes(ei, num_nodes)


def to_csr(
    graph: GraphLike, num_nodes: int | None = None, weighted: bool = False, dtype=np.float32
) -> sp.csr_matrix:
    """Return the graph as an ``n x n`` SciPy CSR adjacency matrix.

    Duplicate edges are summed when ``weighted`` and collapsed to 1 otherwise; an entry stored
    as zero (or summing to zero) is no edge. The input is never modified.
    """
    if _is_networkx(graph) and graph.number_of_nodes() and (
            num_nodes is None or num_nodes >= graph.number_of_nodes()):
        import networkx as nx

        # read at the requested precision (to_edge_index's float32 would round 1e-50 to 0);
        # missing "weight" attributes count 1, parallel edges are summed, as in to_edge_index
        a = nx.to_scipy_sparse_array(graph, nodelist=list(graph.nodes), weight="weight",
                                     dtype=dtype, format="csr")
        a = sp.csr_matrix(a)
        if num_nodes is not None:  # nodes beyond the graph's own: isolated
            a.resize((num_nodes, num_nodes))
    elif sp.issparse(graph) and (num_nodes is None or num_nodes == graph.shape[0]):
        if graph.shape[0] != graph.shape[1]:
            raise ValueError(f"adjacency matrix must be square, got shape {graph.shape}")
        # a copy: the caller's matrix must keep its values (csr_matrix shares a CSR input's
        # arrays when the dtype matches, and the lines below write into them)
        a = sp.csr_matrix(graph, dtype=dtype, copy=True)
    else:
        ei, w, n = to_edge_index(graph, num_nodes)
        if weighted and w is None and ei.numel():
            # the 0/1 adjacency would stand in for the weights asked for without a word
            raise ValueError("weighted=True, but the graph has no edge weights (a PyG Data "
                             "carries them in edge_weight, one per edge; pass "
                             "weighted=False for the 0/1 adjacency)")
        row, col = ei.numpy()
        data = np.ones(len(row), dtype=dtype) if w is None else w.numpy().astype(dtype)
        a = sp.csr_matrix((data, (row, col)), shape=(n, n))
    a.sum_duplicates()
    bad = ~np.isfinite(a.data)
    if bad.any():
        r = int(np.searchsorted(a.indptr, int(np.flatnonzero(bad)[0]), side="right") - 1)
        raise ValueError(f"the adjacency holds NaN or infinite edge weights (first in row {r})")
    a.eliminate_zeros()  # a stored zero (SciPy keeps one where an entry was set to 0)
    if not weighted:
        a.data[:] = 1
    a.sort_indices()
    return a
