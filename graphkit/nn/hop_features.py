"""Multi-hop feature propagation, as used by decoupled models (SGC, SIGN, DGMLP/AIR).

Pure functions: build a normalised sparse adjacency once, then stack
:math:`[\\mathbf{X}, \\mathbf{\\hat{A}}\\mathbf{X}, \\ldots, \\mathbf{\\hat{A}}^K\\mathbf{X}]`.
They are differentiable, so a model can also propagate learned logits (APPNP+AIR).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import scatter, to_torch_csr_tensor

from graphkit.data.validation import check_edge_index

__all__ = ["normalized_adjacency", "transpose_csr", "sparse_matmul", "propagate_hops"]

NORMALIZATIONS = ("sym", "mean")


def normalized_adjacency(
    edge_index: Tensor,
    num_nodes: int,
    normalization: str = "sym",
    edge_weight: Tensor | None = None,
    add_self_loops: bool | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""The propagation matrix as a sparse CSR tensor ``adj`` with ``adj @ x`` = one hop.

    * ``"sym"``: :math:`\mathbf{\hat{D}}^{-1/2}(\mathbf{A}+\mathbf{I})\mathbf{\hat{D}}^{-1/2}`
      (GCN; identical to :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`, which adds a
      self-loop only where one is missing). Self-loops are added by default.
    * ``"mean"``: :math:`\mathbf{D}^{-1}\mathbf{A}` (row mean over in-neighbours, as DGL's
      ``fn.mean`` in the official OGB scripts); no self-loops by default. Nodes without
      in-neighbours get a zero row.

    Edge ``(j, i)`` in ``edge_index`` sends a message from ``j`` to ``i``.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    edge_index = check_edge_index(edge_index, num_nodes)
    if add_self_loops is None:
        add_self_loops = normalization == "sym"
    if normalization == "sym":
        edge_index, weight = gcn_norm(edge_index, edge_weight, num_nodes, False,
                                      add_self_loops, dtype=dtype)
    else:
        if add_self_loops:
            from torch_geometric.utils import add_remaining_self_loops

            edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, 1.0,
                                                               num_nodes)
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
        deg = scatter(edge_weight, edge_index[1], 0, dim_size=num_nodes, reduce="sum")
        inv = deg.reciprocal().masked_fill_(deg == 0, 0.0)
        weight = edge_weight * inv[edge_index[1]]
    # Row i of the matrix holds the weights of the messages arriving at node i.
    return to_torch_csr_tensor(edge_index.flip(0), weight.to(dtype), size=(num_nodes, num_nodes))


def transpose_csr(adj: Tensor) -> Tensor:
    """The transpose of a sparse CSR matrix, as a CSR matrix (for :func:`sparse_matmul`)."""
    if adj.layout != torch.sparse_csr:
        raise ValueError(f"adj must be a sparse CSR tensor, got layout {adj.layout}")
    return adj.to_sparse_coo().t().coalesce().to_sparse_csr()


class _SparseMatmul(torch.autograd.Function):
    """``adj @ x`` for a constant sparse ``adj`` whose transpose is given: the backward pass
    is one sparse product (autograd of a CSR product would transpose ``adj`` on every call)."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.adj_t @ grad


def sparse_matmul(adj: Tensor, x: Tensor, adj_t: Tensor | None = None) -> Tensor:
    r"""``adj @ x`` for a sparse ``adj``.

    With ``adj_t`` (:func:`transpose_csr` of ``adj``, computed once) the gradient with respect
    to ``x``, :math:`\mathbf{A}^{\top}\mathbf{G}`, is one sparse product; repeated
    propagation (DAGNN at large K, APPNP iterates) then trains several times faster. An
    ``adj`` whose values require a gradient (learned edge weights) is multiplied by plain
    autograd instead, so the gradient reaches those values as well.
    """
    if adj_t is None or adj.requires_grad or not (torch.is_grad_enabled() and x.requires_grad):
        return adj @ x
    if adj_t.shape != (adj.size(1), adj.size(0)):
        raise ValueError(f"adj_t must have shape {(adj.size(1), adj.size(0))} (the transpose "
                         f"of adj), got {tuple(adj_t.shape)}")
    return _SparseMatmul.apply(adj, adj_t, x)


def propagate_hops(x: Tensor, adj: Tensor, num_hops: int, alpha: float = 0.0,
                   adj_t: Tensor | None = None) -> Tensor:
    r"""Stack ``num_hops + 1`` propagated copies of ``x``: shape ``(N, num_hops + 1, F)``.

    .. math::
        \mathbf{X}^{(0)} = \mathbf{X}, \qquad
        \mathbf{X}^{(k)} = (1 - \alpha)\, \mathbf{\hat{A}} \mathbf{X}^{(k-1)}
        + \alpha \mathbf{X}^{(0)},

    so ``alpha=0`` gives the SGC/SIGN powers :math:`\mathbf{\hat{A}}^k\mathbf{X}` and
    ``alpha > 0`` the personalised-PageRank (APPNP) iterates with teleport ``alpha``.

    Args:
        x (Tensor): Node features ``(N, F)``.
        adj (Tensor): Sparse ``(N, N)`` propagation matrix, e.g. from
            :func:`normalized_adjacency`.
        num_hops (int): Number of propagation steps :math:`K \ge 0`.
        alpha (float, optional): Teleport probability in ``[0, 1]``. (default: ``0``)
        adj_t (Tensor, optional): The transpose of ``adj`` for a fast backward pass (see
            :func:`sparse_matmul`).
    """
    if num_hops < 0:
        raise ValueError(f"num_hops must be >= 0, got {num_hops}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if x.dim() != 2 or x.size(0) != adj.size(1):
        raise ValueError(f"x must have shape ({adj.size(1)}, F) to match adj, got {tuple(x.shape)}")
    hops = [x]
    h = x
    for _ in range(num_hops):
        h = sparse_matmul(adj, h, adj_t)
        if alpha > 0:
            h = (1 - alpha) * h + alpha * x
        hops.append(h)
    return torch.stack(hops, dim=1)
