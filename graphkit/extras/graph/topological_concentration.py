r"""Topological concentration (TC), its linear-time approximation (ATC) and TC-guided edge
reweighting, from `A Topological Perspective on Demystifying GNN-Based Link Prediction
Performance <https://arxiv.org/abs/2310.04612>`_ (Wang et al., ICLR 2024; official code
YuWVandy/Topo_LP_GNN).

TC measures how much a node's training neighbourhood overlaps the training neighbourhoods of
its held-out (query) neighbours. With :math:`A` the binary, symmetric training adjacency,
:math:`W_a = A^a` its walk counts and :math:`B_b = [A^b > 0]` the nodes reachable in exactly
:math:`b` steps, a query edge :math:`(i, j)` scores

.. math::
    c_{ij} = \frac{\sum_{a,b=1}^{K} \beta^{a+b-2} \, W_a[i] \cdot B_b[j]}
                  {\sum_{a,b=1}^{K} \beta^{a+b-2} \, (W_a \mathbf{1})_i - [ (i,j) \in E ]},
    \qquad \mathrm{TC}_i = \operatorname{mean}_{j:\,(i,j) \in Q} c_{ij},

with :math:`\beta = 1 / \bar d` (the inverse mean training degree over all nodes). The
subtracted 1 applies to query edges that are training edges themselves (train-train TC): ``j``
lies in ``i``'s 1-hop set and cannot overlap itself. This is the official ``cal_tc``: node
``i``'s hop multisets are weighted by their multiplicity (walk counts), ``j``'s are sets.
Train-val and train-test TC come from passing the validation or test edges as the query set.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index, check_num_nodes

__all__ = [
    "approximate_topological_concentration",
    "atc_limit",
    "tc_reweight",
    "topological_concentration",
    "topological_concentration_loop",
]

#: query edges handled per sparse row-gather (bounds the memory of the intersection step)
_CHUNK = 16384


def _check_args(edge_index_train: Tensor, query_edges: Tensor, num_nodes: int,
                num_hops: int) -> tuple[Tensor, Tensor]:
    if isinstance(num_hops, bool) or not isinstance(num_hops, int) or num_hops < 1:
        raise ValueError(f"num_hops must be an integer >= 1, got {num_hops!r}")
    _check_int_num_nodes(num_nodes)
    check_num_nodes(int(num_nodes))
    train = check_edge_index(edge_index_train, num_nodes, "edge_index_train", allow_empty=False)
    query = check_edge_index(query_edges, num_nodes, "query_edges", allow_empty=False)
    return train, query


def _check_int_num_nodes(num_nodes: int) -> None:
    """A fractional ``num_nodes`` was truncated (4.5 nodes became 4) behind the range check."""
    if isinstance(num_nodes, bool) or int(num_nodes) != num_nodes:
        raise ValueError(f"num_nodes must be an integer, got {num_nodes!r}")


def _adjacency(edge_index: Tensor, num_nodes: int) -> sp.csr_matrix:
    """Binary symmetric CSR matrix (float64) of an edge list: duplicates and directions merged."""
    ei = edge_index.cpu().numpy()
    row, col = np.concatenate([ei[0], ei[1]]), np.concatenate([ei[1], ei[0]])
    a = sp.csr_matrix((np.ones(row.size), (row, col)), shape=(num_nodes, num_nodes))
    a.data[:] = 1.0
    return a


def _query_pairs(query_edges: Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every query edge, deduplicated (each node's held-out neighbour set)."""
    q = _adjacency(query_edges, num_nodes).tocoo()
    return q.row.astype(np.int64), q.col.astype(np.int64)


def _beta(beta: float | None, mean_degree: float) -> float:
    if beta is None:
        return 1.0 / mean_degree  # mean_degree > 0: the training graph has an edge
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a positive finite number, got {beta}")
    return float(beta)


def _node_mean(src: np.ndarray, values: np.ndarray, valid: np.ndarray,
               num_nodes: int) -> np.ndarray:
    """Mean of ``values`` over each node's valid pairs; 0 for nodes without one (as ``cal_tc``)."""
    total = np.bincount(src[valid], weights=values[valid], minlength=num_nodes)
    count = np.bincount(src[valid], minlength=num_nodes)
    return np.divide(total, count, out=np.zeros(num_nodes), where=count > 0)


def topological_concentration(
    edge_index_train: Tensor,
    query_edges: Tensor,
    num_nodes: int,
    num_hops: int = 1,
    beta: float | None = None,
) -> Tensor:
    r"""Per-node TC (module docstring) with sparse matrix products.

    :math:`P = \sum_a \beta^{a-1} A^a` and :math:`Q = \sum_b \beta^{b-1} [A^b > 0]` are formed
    once; the numerator of :math:`c_{ij}` is the row dot product :math:`P_i \cdot Q_j`, the
    denominator :math:`(\sum_a \beta^{a-1} (A^a \mathbf 1)_i)(\sum_b \beta^{b-1})` minus the
    train-edge correction. Cost: the :math:`K - 1` sparse products :math:`A^a` plus one row
    intersection per query edge. Computed in float64 with SciPy; the result is moved to
    ``edge_index_train``'s device.

    Args:
        edge_index_train: training edges ``[2, E]`` (undirected: one or both directions).
        query_edges: held-out edges ``[2, Q]`` (validation or test edges, or the training edges
            for train-train TC); undirected, so each edge counts for both endpoints.
        num_nodes: number of nodes.
        num_hops: hop count :math:`K \ge 1` (default: ``1``, the official ``tc_layer``).
        beta: hop decay (default: ``None``, the inverse mean training degree).

    Returns:
        ``[num_nodes]`` float64. A node's TC averages its query edges ``(i, j)`` for which
        ``i`` has a training neighbour (two when ``(i, j)`` is itself a training edge); a node
        without such an edge gets 0, as in the official code.

    Raises:
        ValueError: malformed or empty edge lists, node ids out of range, ``num_hops < 1`` or a
            non-positive ``beta``.
    """
    train, query = _check_args(edge_index_train, query_edges, num_nodes, num_hops)
    n = int(num_nodes)
    adj = _adjacency(train, n)
    beta = _beta(beta, adj.nnz / n)
    walks, p, q = adj, adj.copy(), adj.copy()
    row_sums = [np.asarray(adj.sum(axis=1)).ravel()]
    for a in range(2, num_hops + 1):
        walks = walks @ adj
        w = beta ** (a - 1)
        p = p + w * walks
        reach = walks.copy()
        reach.data[:] = 1.0
        q = q + w * reach
        row_sums.append(adj @ row_sums[-1])  # A^a 1 without forming more than A^a
    weights = beta ** np.arange(num_hops)
    src, dst = _query_pairs(query, n)
    inter = np.empty(src.size)
    for s in range(0, src.size, _CHUNK):
        rows, cols = src[s:s + _CHUNK], dst[s:s + _CHUNK]
        inter[s:s + _CHUNK] = np.asarray(p[rows].multiply(q[cols]).sum(axis=1)).ravel()
    is_train = np.asarray(adj[src, dst]).ravel() > 0
    norm = sum(w * r for w, r in zip(weights, row_sums))[src] * weights.sum() - is_train
    deg = row_sums[0][src]
    valid = deg >= np.where(is_train, 2, 1)
    values = np.divide(inter, norm, out=np.zeros_like(inter), where=valid)
    return torch.from_numpy(_node_mean(src, values, valid, n)).to(train.device)


def topological_concentration_loop(
    edge_index_train: Tensor,
    query_edges: Tensor,
    num_nodes: int,
    num_hops: int = 1,
    beta: float | None = None,
) -> Tensor:
    """The plain-Python oracle of :func:`topological_concentration`, written as the official
    ``cal_tc``: hop lists grown by repeated neighbour expansion, multiplicities in
    :class:`~collections.Counter` objects, set intersections per hop pair. Same arguments,
    result and rule for nodes without a valid query edge; slow (for tests and checks)."""
    train, query = _check_args(edge_index_train, query_edges, num_nodes, num_hops)
    n = int(num_nodes)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for u, v in train.t().tolist():
        neighbours[u].add(v)
        neighbours[v].add(u)
    held_out: list[set[int]] = [set() for _ in range(n)]
    for u, v in query.t().tolist():
        held_out[u].add(v)
        held_out[v].add(u)
    beta = _beta(beta, float(np.mean([len(s) for s in neighbours])))

    def hops(node: int) -> list[list[int]]:
        out, frontier = [], [node]
        for _ in range(num_hops):
            frontier = [w for x in frontier for w in neighbours[x]]
            out.append(frontier)
        return out

    tc = np.zeros(n)
    for i in range(n):
        mine = [Counter(h) for h in hops(i)]
        scores = []
        for j in held_out[i]:
            is_train = j in neighbours[i]
            if len(neighbours[i]) < (2 if is_train else 1):
                continue
            theirs = [set(h) for h in hops(j)]
            inter = norm = 0.0
            for a, counts in enumerate(mine):
                for b, reach in enumerate(theirs):
                    w = beta ** (a + b)
                    inter += sum(counts[x] for x in set(counts) & reach) * w
                    norm += (sum(counts.values()) - (is_train and a == b == 0)) * w
            scores.append(inter / norm)
        if scores:
            tc[i] = float(np.mean(scores))
    return torch.from_numpy(tc).to(train.device)


def approximate_topological_concentration(
    edge_index_train: Tensor,
    query_edges: Tensor,
    num_nodes: int,
    num_hops: int = 1,
    dim: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""ATC: TC approximated by the cosine similarity of propagated random vectors.

    With :math:`R \in \mathbb R^{n \times d}`, :math:`R_{uv} \sim \mathcal N(0, 1/d^2)`, and the
    mean-aggregation operator :math:`\hat A = (D + I)^{-1}(A + I)` of the training graph,

    .. math::
        Z = \frac1K \sum_{k=1}^{K} \hat A^k R, \qquad
        \mathrm{ATC}_i = \operatorname{mean}_{j:\,(i,j) \in Q} \cos(Z_i, Z_j)

    (the official ``cal_appro_tc``). :math:`Z Z^\top` is a random projection of
    :math:`M M^\top` with :math:`M = \frac1K \sum_k \hat A^k`, i.e. of the (normalised) overlap of
    the nodes' :math:`K`-hop neighbourhoods, so the cosine tends to the cosine of rows of
    :math:`M` as ``dim`` grows. Cost: :math:`O(K (|E| + n) d + |Q| d)`, on the input's device.

    Args:
        edge_index_train, query_edges, num_nodes, num_hops: as in
            :func:`topological_concentration`.
        dim: random dimensions :math:`d` (default: ``64``, as in the official code).
        generator: source of :math:`R`, on any device: :math:`R` is drawn where it lives and
            moved to the inputs' (default: ``None``, torch's global generator).

    Returns:
        ``[num_nodes]`` float32; 0 for a node without query edges.
    """
    train, query = _check_args(edge_index_train, query_edges, num_nodes, num_hops)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    n, device = int(num_nodes), train.device
    query = query.to(device)  # as exact TC, the query edges may lie on another device
    loops = torch.arange(n, device=device)
    row = torch.cat([train[0], train[1], loops])
    col = torch.cat([train[1], train[0], loops])
    key = torch.unique(col * n + row)  # merge duplicate edges: neighbours are a set
    col, row = key // n, key % n
    counts = torch.bincount(col, minlength=n)
    # keys sorted by (col, row): a CSR matrix whose rows are the aggregating nodes (col), so
    # Z <- A_hat Z averages each closed neighbourhood
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    with warnings.catch_warnings():  # torch flags every sparse CSR tensor as beta
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        a_hat = torch.sparse_csr_tensor(crow, row, (1.0 / counts.float())[col], (n, n),
                                        check_invariants=False)
    # a generator draws only on its own device (a CPU one with CUDA edges raised)
    where = device if generator is None else generator.device
    z = torch.randn(n, dim, generator=generator, device=where).to(device) / dim
    total = torch.zeros_like(z)
    for _ in range(num_hops):
        z = a_hat @ z
        total += z
    total /= num_hops
    key = torch.unique(torch.cat([query[0] * n + query[1], query[1] * n + query[0]]))
    q = torch.stack([key // n, key % n])
    unit = torch.nn.functional.normalize(total, dim=1, eps=1e-6)
    cos = (unit[q[0]] * unit[q[1]]).sum(dim=1)
    sums = torch.zeros(n, device=device).index_add_(0, q[0], cos)
    counts = torch.bincount(q[0], minlength=n)
    return torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums))


def atc_limit(
    edge_index_train: Tensor,
    query_edges: Tensor,
    num_nodes: int,
    num_hops: int = 1,
) -> Tensor:
    r"""The value ATC estimates, computed exactly: its limit as ``dim`` grows.

    With :math:`M = \frac1K \sum_{k=1}^{K} \hat A^k` (:math:`\hat A = (D + I)^{-1}(A + I)`, as
    in :func:`approximate_topological_concentration`),

    .. math::
        \mathrm{ATC}^\infty_i = \operatorname{mean}_{j:\,(i,j) \in Q}
        \frac{M_i \cdot M_j}{\lVert M_i \rVert \, \lVert M_j \rVert}.

    Comparing TC with this limit separates ATC's two errors: the random projection's sampling
    noise (ATC against the limit, which shrinks as ``dim`` grows) and the difference of target
    (the limit against TC: a cosine normalises the overlap by both end points' neighbourhoods,
    TC by the source's only). Cost: the sparse powers of :math:`\hat A` (dense-ish for large
    ``num_hops`` on graphs with hubs) and one row product per query edge.

    Args: as :func:`topological_concentration`.

    Returns:
        ``[num_nodes]`` float64; 0 for a node without query edges.
    """
    train, query = _check_args(edge_index_train, query_edges, num_nodes, num_hops)
    n = int(num_nodes)
    a = (_adjacency(train, n) + sp.eye(n, format="csr")).tocsr()
    a.data[:] = 1.0  # closed neighbourhoods as sets: a self-loop edge does not count twice
    a_hat = sp.diags(1.0 / np.asarray(a.sum(axis=1)).ravel()) @ a
    power, m = a_hat, a_hat.copy()
    for _ in range(num_hops - 1):
        power = power @ a_hat
        m = m + power
    m = (m / num_hops).tocsr()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    src, dst = _query_pairs(query, n)
    cos = np.empty(src.size)
    for lo in range(0, src.size, _CHUNK):
        s, d = src[lo:lo + _CHUNK], dst[lo:lo + _CHUNK]
        cos[lo:lo + _CHUNK] = np.asarray(m[s].multiply(m[d]).sum(axis=1)).ravel() / (
            norms[s] * norms[d])
    out = _node_mean(src, cos, np.ones(src.size, dtype=bool), n)
    return torch.from_numpy(out).to(train.device)


def tc_reweight(
    edge_index_train: Tensor,
    edge_index_valid: Tensor,
    num_nodes: int,
    alpha: float = 1.0,
) -> tuple[Tensor, Tensor]:
    r"""TC-guided edge weights for :class:`~torch_geometric.nn.conv.GCNConv` (``normalize=False``).

    For every edge :math:`(i \to j)` of the symmetrised training graph with self-loops,

    .. math::
        w'_{ij} = \frac{|N_{tr}(i) \cap N_{val}(j)|}{|N_{tr}(i)|}, \qquad
        w_{ij} = \hat w_{ij} + \alpha \frac{w'_{ij}}{\sum_{k \to j} w'_{kj}},

    where :math:`\hat w` is GCN's symmetric normalisation and a target with
    :math:`\sum_k w'_{kj} = 0` (or an edge with an empty :math:`N_{tr}(i)` or
    :math:`N_{val}(j)`) adds nothing: a neighbour ``i`` gains weight at ``j`` when ``i``'s
    training neighbours are ``j``'s validation neighbours. This is the official ``reweight``
    with ``alpha = 1``; the official code passes the result to its GCN as ``adj_t``, so it
    aggregates at ``i`` with weights normalised over ``j``; here the normalisation and the
    aggregation are both at the target ``j``.

    Args:
        edge_index_train: training edges ``[2, E]`` (undirected).
        edge_index_valid: validation edges ``[2, V]`` (undirected; may be empty).
        num_nodes: number of nodes.
        alpha: weight of the added term (default: ``1.0``).

    Returns:
        ``(edge_index, edge_weight)``: ``[2, E']`` (both directions of every training edge and
        one self-loop per node) and ``[E']`` float32, on ``edge_index_train``'s device.
    """
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    from torch_geometric.utils import coalesce, to_undirected

    _check_int_num_nodes(num_nodes)
    n = check_num_nodes(int(num_nodes))
    train = check_edge_index(edge_index_train, n, "edge_index_train", allow_empty=False)
    valid = check_edge_index(edge_index_valid, n, "edge_index_valid")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative finite number, got {alpha}")
    und = coalesce(to_undirected(train, num_nodes=n), num_nodes=n)
    und = und[:, und[0] != und[1]]
    edge_index, gcn_weight = gcn_norm(und, None, n, add_self_loops=True)
    a_tr = _adjacency(und, n)
    a_val = _adjacency(valid, n) if valid.numel() else sp.csr_matrix((n, n))
    src, dst = edge_index.cpu().numpy()
    inter = np.asarray(a_tr[src].multiply(a_val[dst]).sum(axis=1)).ravel()
    deg_tr = np.asarray(a_tr.sum(axis=1)).ravel()[src]
    new = np.divide(inter, deg_tr, out=np.zeros_like(inter), where=deg_tr > 0)
    per_target = np.bincount(dst, weights=new, minlength=n)[dst]
    added = np.divide(new, per_target, out=np.zeros_like(new), where=per_target > 0)
    extra = torch.from_numpy(alpha * added).to(gcn_weight)
    return edge_index, gcn_weight + extra
