"""Pure functions on hypergraphs stored as a ``hyperedge_index``.

A hypergraph with ``N`` vertices and ``M`` hyperedges is stored as PyG stores it for
:class:`torch_geometric.nn.HypergraphConv`: a ``[2, nnz]`` integer tensor whose column
``(v, e)`` says that vertex ``v`` belongs to hyperedge ``e``. It is the coordinate list of the
incidence matrix :math:`\\mathbf{H} \\in \\{0, 1\\}^{N \\times M}`.

With hyperedge weights :math:`w_e` (default 1), the degrees are

.. math::
    d(v) = \\sum_{e} w_e \\, h(v, e), \\qquad \\delta(e) = \\sum_{v} h(v, e) = |e|.

Every function validates its input and raises a :class:`ValueError` naming the problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.utils import scatter

__all__ = [
    "check_hyperedge_index",
    "hyperedge_index_from_list",
    "num_hyperedges_of",
    "incidence_matrix",
    "vertex_degree",
    "hyperedge_degree",
    "vertex_to_hyperedge",
    "hyperedge_to_vertex",
    "add_singleton_hyperedges",
    "unique_hyperedges",
    "clique_expansion",
    "sample_hyperedges",
    "subhypergraph",
]


def check_hyperedge_index(
    hyperedge_index: Tensor | np.ndarray,
    num_nodes: int | None = None,
    num_hyperedges: int | None = None,
    name: str = "hyperedge_index",
    unique: bool = True,
) -> Tensor:
    r"""Return ``hyperedge_index`` as a ``[2, nnz]`` int64 tensor after checking it.

    Row 0 holds vertex ids (``< num_nodes``), row 1 hyperedge ids (``< num_hyperedges``).
    ``unique``: also refuse a ``(vertex, hyperedge)`` pair listed twice, which every degree
    and the incidence matrix :math:`\mathbf{H} \in \{0, 1\}` would count twice (a sort:
    a layer's forward pass skips it, its data is checked where it enters).
    """
    if isinstance(hyperedge_index, np.ndarray):
        if hyperedge_index.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {hyperedge_index.dtype}")
        hyperedge_index = torch.from_numpy(np.ascontiguousarray(hyperedge_index))
    if not isinstance(hyperedge_index, Tensor):
        raise ValueError(f"{name} must be a tensor or array, got {type(hyperedge_index).__name__}")
    _refuse_sparse(hyperedge_index, name)
    if (hyperedge_index.is_floating_point() or hyperedge_index.is_complex()
            or hyperedge_index.dtype == torch.bool):
        raise ValueError(f"{name} must hold integers, got dtype {hyperedge_index.dtype}")
    if hyperedge_index.dim() != 2 or hyperedge_index.size(0) != 2:
        raise ValueError(
            f"{name} must have shape [2, nnz] (vertex ids, hyperedge ids), "
            f"got {list(hyperedge_index.shape)}"
        )
    hyperedge_index = hyperedge_index.long()
    if hyperedge_index.numel() == 0:
        return hyperedge_index
    if int(hyperedge_index.min()) < 0:
        raise ValueError(f"{name} holds a negative id ({int(hyperedge_index.min())})")
    if num_nodes is not None:
        hi = int(hyperedge_index[0].max())
        if hi >= num_nodes:
            raise ValueError(f"{name} holds vertex id {hi}, out of range for num_nodes={num_nodes}")
    if num_hyperedges is not None:
        hi = int(hyperedge_index[1].max())
        if hi >= num_hyperedges:
            raise ValueError(
                f"{name} holds hyperedge id {hi}, out of range for num_hyperedges={num_hyperedges}"
            )
    if unique:
        v, e = hyperedge_index
        n = int(v.max()) + 1
        key, counts = torch.unique(e * n + v, return_counts=True)
        if bool((counts > 1).any()):
            first = int(key[counts > 1][0])
            vertex, edge = first % n, first // n
            raise ValueError(f"{name} lists vertex {vertex} in hyperedge {edge} more than once "
                             "(H is 0/1: merge the repeats, e.g. with torch.unique(..., dim=1))")
    return hyperedge_index


def _refuse_sparse(hyperedge_index: Tensor, name: str) -> None:
    """A sparse incidence matrix is not an index: its float values were reported as a wrong
    dtype, which hid what to pass instead."""
    if isinstance(hyperedge_index, Tensor) and hyperedge_index.layout != torch.strided:
        raise ValueError(f"{name} must be a [2, nnz] integer index (vertex ids, hyperedge ids), "
                         f"not a sparse matrix ({hyperedge_index.layout}); of a 0/1 incidence "
                         f"matrix H it is H.to_sparse_coo().coalesce().indices()")


def _check_layout(hyperedge_index: Tensor) -> None:
    """Shape and dtype of ``hyperedge_index`` only (no device sync: these run in losses)."""
    from graphkit.nn._checks import check_edge_index_layout  # graphkit.nn imports this module

    _refuse_sparse(hyperedge_index, "hyperedge_index")
    check_edge_index_layout(hyperedge_index, name="hyperedge_index")


def num_hyperedges_of(hyperedge_index: Tensor, num_hyperedges: int | None = None) -> int:
    """``num_hyperedges`` if given, else one more than the largest hyperedge id."""
    if num_hyperedges is not None:
        return int(num_hyperedges)
    return int(hyperedge_index[1].max()) + 1 if hyperedge_index.numel() else 0


def _num_nodes_of(hyperedge_index: Tensor, num_nodes: int | None) -> int:
    if num_nodes is not None:
        return int(num_nodes)
    return int(hyperedge_index[0].max()) + 1 if hyperedge_index.numel() else 0


def hyperedge_index_from_list(
    hyperedges: Iterable[Sequence[int]],
    num_nodes: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, int]:
    """Build ``(hyperedge_index, num_hyperedges)`` from a plain list of hyperedges.

    Hyperedge ``i`` of the list gets id ``i``. Each hyperedge must be a non-empty collection of
    distinct non-negative integer vertex ids below ``num_nodes`` (when given).

    Example:
        >>> hyperedge_index_from_list([[0, 1, 2], [2, 3]])
        (tensor([[0, 1, 2, 2, 3],
                 [0, 0, 0, 1, 1]]), 2)
    """
    if isinstance(hyperedges, (str, bytes)):
        raise ValueError("hyperedges must be a list of vertex collections, got a string")
    vertices: list[np.ndarray] = []
    for i, edge in enumerate(hyperedges):
        try:
            members = np.asarray(list(edge))
        except (TypeError, ValueError):  # a bare id, or nested lists of unequal length
            raise ValueError(f"hyperedge {i} must be a flat collection of vertex ids, got "
                             f"{edge!r}") from None
        if members.size == 0:
            raise ValueError(f"hyperedge {i} is empty")
        if members.dtype.kind not in "iu":
            raise ValueError(f"hyperedge {i} holds non-integer vertex ids ({members.dtype})")
        if members.ndim != 1:
            raise ValueError(f"hyperedge {i} must be a flat collection of vertex ids")
        if int(members.min()) < 0:
            raise ValueError(f"hyperedge {i} holds a negative vertex id ({int(members.min())})")
        if num_nodes is not None and int(members.max()) >= num_nodes:
            raise ValueError(
                f"hyperedge {i} holds vertex id {int(members.max())}, out of range for "
                f"num_nodes={num_nodes}"
            )
        if np.unique(members).size != members.size:
            raise ValueError(f"hyperedge {i} lists a vertex more than once")
        vertices.append(members.astype(np.int64))
    if not vertices:
        return torch.empty(2, 0, dtype=torch.long, device=device), 0
    sizes = np.fromiter((v.size for v in vertices), dtype=np.int64, count=len(vertices))
    row = np.concatenate(vertices)
    col = np.repeat(np.arange(len(vertices), dtype=np.int64), sizes)
    index = torch.from_numpy(np.stack([row, col])).to(device)
    return index, len(vertices)


def incidence_matrix(
    hyperedge_index: Tensor,
    num_nodes: int | None = None,
    num_hyperedges: int | None = None,
    layout: str = "sparse",
) -> Tensor:
    """The incidence matrix :math:`\\mathbf{H} \\in \\{0,1\\}^{N \\times M}`.

    Args:
        layout: ``"sparse"`` (a coalesced ``torch.sparse_coo`` tensor) or ``"dense"``.
    """
    hyperedge_index = check_hyperedge_index(hyperedge_index, num_nodes, num_hyperedges)
    n = _num_nodes_of(hyperedge_index, num_nodes)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    values = torch.ones(hyperedge_index.size(1), device=hyperedge_index.device)
    H = torch.sparse_coo_tensor(hyperedge_index, values, (n, m), check_invariants=False)
    H = H.coalesce()
    if layout == "sparse":
        return H
    if layout == "dense":
        return H.to_dense()
    raise ValueError(f"layout must be 'sparse' or 'dense', got {layout!r}")


def vertex_degree(
    hyperedge_index: Tensor,
    num_nodes: int | None = None,
    hyperedge_weight: Tensor | None = None,
) -> Tensor:
    """Weighted vertex degrees :math:`d(v) = \\sum_e w_e h(v, e)` as a float tensor ``[N]``."""
    hyperedge_index = check_hyperedge_index(hyperedge_index, num_nodes)
    n = _num_nodes_of(hyperedge_index, num_nodes)
    if hyperedge_weight is None:
        w = torch.ones(hyperedge_index.size(1), device=hyperedge_index.device)
    else:
        m = num_hyperedges_of(hyperedge_index)
        if hyperedge_weight.dim() != 1 or hyperedge_weight.numel() < m:
            raise ValueError(
                f"hyperedge_weight must have one entry per hyperedge ({m}), "
                f"got shape {list(hyperedge_weight.shape)}"
            )
        w = hyperedge_weight[hyperedge_index[1]]
        if not w.is_floating_point():
            w = w.float()  # float64 weights stay float64
    return scatter(w, hyperedge_index[0], dim=0, dim_size=n, reduce="sum")


def hyperedge_degree(hyperedge_index: Tensor, num_hyperedges: int | None = None) -> Tensor:
    """Hyperedge sizes :math:`\\delta(e) = |e|` as a float tensor ``[M]``."""
    hyperedge_index = check_hyperedge_index(hyperedge_index, None, num_hyperedges)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    ones = torch.ones(hyperedge_index.size(1), device=hyperedge_index.device)
    return scatter(ones, hyperedge_index[1], dim=0, dim_size=m, reduce="sum")


def vertex_to_hyperedge(
    x: Tensor,
    hyperedge_index: Tensor,
    num_hyperedges: int | None = None,
    reduce: str = "mean",
) -> Tensor:
    """Aggregate vertex rows into hyperedge rows,
    :math:`x_e = \\operatorname{reduce}_{v \\in e} x_v`.

    With ``reduce="mean"`` this is :math:`\\mathbf{D}_e^{-1} \\mathbf{H}^\\top \\mathbf{X}`;
    empty hyperedges get zeros.

    Only the layout of ``hyperedge_index`` is checked here (this runs inside losses, where a
    range check would synchronise the GPU); :func:`check_hyperedge_index` checks the ids.
    """
    _check_layout(hyperedge_index)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    return scatter(x[hyperedge_index[0]], hyperedge_index[1], dim=0, dim_size=m, reduce=reduce)


def hyperedge_to_vertex(
    x_e: Tensor,
    hyperedge_index: Tensor,
    num_nodes: int,
    reduce: str = "mean",
) -> Tensor:
    """Aggregate hyperedge rows into vertex rows,
    :math:`x_v = \\operatorname{reduce}_{e \\ni v} x_e`."""
    _check_layout(hyperedge_index)
    return scatter(x_e[hyperedge_index[1]], hyperedge_index[0], dim=0, dim_size=num_nodes,
                   reduce=reduce)


def add_singleton_hyperedges(
    hyperedge_index: Tensor,
    num_nodes: int,
    num_hyperedges: int | None = None,
) -> tuple[Tensor, int]:
    """Give every isolated vertex (degree 0) a hyperedge of its own.

    The new hyperedges get ids ``num_hyperedges, num_hyperedges + 1, ...`` in vertex order, as
    DHG's ``fix_iso_v`` in the LightHGNN code does. Returns ``(hyperedge_index, num_hyperedges)``.
    """
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    hyperedge_index = check_hyperedge_index(hyperedge_index, num_nodes, num_hyperedges)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    covered = torch.zeros(num_nodes, dtype=torch.bool, device=hyperedge_index.device)
    covered[hyperedge_index[0]] = True
    iso = (~covered).nonzero().view(-1)
    extra = torch.stack([iso, torch.arange(m, m + iso.numel(), device=iso.device)])
    return torch.cat([hyperedge_index, extra], dim=1), m + iso.numel()


def unique_hyperedges(
    hyperedge_index: Tensor,
    num_hyperedges: int | None = None,
) -> tuple[Tensor, int]:
    """Merge hyperedges with the same member set into one.

    DHG's ``Hypergraph`` (used by the HGNN and LightHGNN code) stores each distinct hyperedge
    once (its ``merge_op`` combines their weights, so unit weights stay 1); the HyperGCN
    co-citation files list some hyperedges several times. The first occurrence of each member
    set is kept, in order, and renumbered ``0 .. K-1``; hyperedge ids without members are
    dropped. Returns ``(hyperedge_index, K)``.
    """
    hyperedge_index = check_hyperedge_index(hyperedge_index, None, num_hyperedges)
    device = hyperedge_index.device
    if hyperedge_index.numel() == 0:
        return hyperedge_index, 0
    idx = hyperedge_index.cpu().numpy()
    order = np.lexsort((idx[0], idx[1]))  # by hyperedge, then vertex
    v, e = idx[0, order], idx[1, order]
    edge_ids, starts = np.unique(e, return_index=True)
    seen: dict[bytes, int] = {}
    keep = np.zeros(edge_ids.size, dtype=bool)
    for i, members in enumerate(np.split(v, starts[1:])):
        key = members.tobytes()
        if key not in seen:
            seen[key] = i
            keep[i] = True
    new_id = np.full(int(edge_ids.max()) + 1, -1, dtype=np.int64)
    new_id[edge_ids[keep]] = np.arange(int(keep.sum()))
    cols = new_id[idx[1]]
    kept = cols >= 0
    out = np.stack([idx[0, kept], cols[kept]])
    return torch.from_numpy(out).to(device), int(keep.sum())


def clique_expansion(
    hyperedge_index: Tensor,
    num_nodes: int | None = None,
    num_hyperedges: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The clique expansion: an edge between every two vertices that share a hyperedge.

    Returns ``(edge_index, edge_weight)``: both directions of every pair, sorted, without
    self-loops, where the weight counts the hyperedges the two vertices share (the off-diagonal
    of :math:`\\mathbf{H}\\mathbf{H}^\\top`).
    """
    hyperedge_index = check_hyperedge_index(hyperedge_index, num_nodes, num_hyperedges)
    n = _num_nodes_of(hyperedge_index, num_nodes)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    device = hyperedge_index.device
    idx = hyperedge_index.cpu().numpy()
    H = sp.csr_matrix((np.ones(idx.shape[1]), (idx[0], idx[1])), shape=(n, m))
    A = (H @ H.T).tocoo()
    off = A.row != A.col
    order = np.lexsort((A.col[off], A.row[off]))
    row, col, val = A.row[off][order], A.col[off][order], A.data[off][order]
    edge_index = torch.from_numpy(np.stack([row, col]).astype(np.int64)).to(device)
    return edge_index, torch.from_numpy(val.astype(np.float32)).to(device)


def sample_hyperedges(
    hyperedge_index: Tensor,
    keep_prob: Tensor | float,
    num_hyperedges: int | None = None,
    relabel: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Keep each hyperedge independently with probability ``keep_prob`` (Bernoulli sampling).

    Args:
        keep_prob: one probability for all hyperedges or a ``[M]`` tensor of probabilities.
        relabel: renumber the kept hyperedges ``0 .. K-1`` (default: keep their ids).
        generator: a :class:`torch.Generator` on the device of ``hyperedge_index``.

    Returns:
        ``(hyperedge_index, mask)``: the incidences of the kept hyperedges and the ``[M]``
        boolean mask of kept hyperedges.
    """
    hyperedge_index = check_hyperedge_index(hyperedge_index, None, num_hyperedges)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    device = hyperedge_index.device
    p = torch.as_tensor(keep_prob, dtype=torch.float, device=device)
    if p.dim() == 0:
        p = p.expand(m)
    if p.shape != (m,):
        raise ValueError(f"keep_prob must be a scalar or have shape [{m}], got {list(p.shape)}")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((p > 1).any()):
        raise ValueError("keep_prob must lie in [0, 1]")
    mask = torch.bernoulli(p.contiguous(), generator=generator).bool()
    kept = hyperedge_index[:, mask[hyperedge_index[1]]]
    if relabel:
        new_id = torch.cumsum(mask.long(), 0) - 1
        kept = torch.stack([kept[0], new_id[kept[1]]])
    return kept, mask


def subhypergraph(
    subset: Tensor,
    hyperedge_index: Tensor,
    num_nodes: int,
    num_hyperedges: int | None = None,
) -> tuple[Tensor, int, Tensor]:
    """The sub-hypergraph observed on the vertices in ``subset``.

    Each hyperedge is restricted to its members in ``subset`` and kept if at least one member
    remains (as in LightHGNN's production setting). Vertices are renumbered by their position
    in ``subset`` (index tensor) or by order (boolean mask); kept hyperedges ``0 .. K-1``.

    Returns:
        ``(hyperedge_index, num_kept_hyperedges, hyperedge_mask)`` where ``hyperedge_mask``
        marks the original hyperedges that were kept.
    """
    hyperedge_index = check_hyperedge_index(hyperedge_index, num_nodes, num_hyperedges)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    device = hyperedge_index.device
    if subset.dim() != 1 or subset.is_floating_point() or subset.is_complex():
        raise ValueError(f"subset must be a vector of vertex ids or a boolean mask, got dtype "
                         f"{subset.dtype} and shape {list(subset.shape)}")
    if subset.dtype == torch.bool:
        if subset.numel() != num_nodes:
            raise ValueError(f"subset mask has {subset.numel()} entries, expected {num_nodes}")
        subset = subset.nonzero().view(-1)
    subset = subset.long().to(device)
    if subset.numel() and (int(subset.min()) < 0 or int(subset.max()) >= num_nodes):
        raise ValueError(f"subset holds a vertex id out of range for num_nodes={num_nodes}")
    if torch.unique(subset).numel() != subset.numel():
        raise ValueError("subset lists a vertex more than once")
    new_vid = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
    new_vid[subset] = torch.arange(subset.numel(), device=device)
    keep = new_vid[hyperedge_index[0]] >= 0
    row, col = new_vid[hyperedge_index[0, keep]], hyperedge_index[1, keep]
    edge_mask = torch.zeros(m, dtype=torch.bool, device=device)
    edge_mask[col] = True
    new_eid = torch.cumsum(edge_mask.long(), 0) - 1
    return torch.stack([row, new_eid[col]]), int(edge_mask.sum()), edge_mask
