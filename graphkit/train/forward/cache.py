r"""Propagation caching for a layer whose input is frozen (possible only without backprop).

While forward learning trains layer :math:`l`, its input :math:`\hat{\mathbf{H}}^{(l-1)}` does
not change. For a GCN layer the propagation commutes with the linear map,

.. math::
    \mathrm{ReLU}\big(\hat{\mathbf{A}} \hat{\mathbf{H}}^{(l-1)} \mathbf{W} + \mathbf{b}\big)
    = \mathrm{ReLU}\big(\mathbf{P} \mathbf{W} + \mathbf{b}\big), \qquad
    \mathbf{P} = \hat{\mathbf{A}} \hat{\mathbf{H}}^{(l-1)},

with :math:`\hat{\mathbf{A}} = \tilde{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I})
\tilde{\mathbf{D}}^{-1/2}`, so :math:`\mathbf{P}` is computed once per layer (one sparse
product) and every training step is a dense linear map with no per-edge messages. This is the
``CachedGCNConv`` of the official ForwardGNN code (`Park et al., ICLR 2024
<https://arxiv.org/abs/2403.11004>`_); backpropagation cannot use it, since there the input of
every layer changes at every step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphkit.train.forward.layers import SPARSE_DENSITY, ForwardLayer, l2_normalize_rows

__all__ = ["frozen_input_forward", "supports_propagation_cache"]


def supports_propagation_cache(layer: ForwardLayer) -> bool:
    """Whether :func:`frozen_input_forward` can cache ``layer``'s propagation (a normalising
    :class:`~torch_geometric.nn.GCNConv`; other convolutions run unchanged)."""
    conv = layer.conv
    return isinstance(conv, GCNConv) and conv.normalize and not conv.cached


def frozen_input_forward(layer: ForwardLayer, x: Tensor, edge_index: Tensor,
                         always: bool = False) -> Callable[[], Tensor]:
    """A function returning ``layer(x, edge_index)`` for a fixed input ``x``.

    For a GCN layer (:func:`supports_propagation_cache`) :math:`\\hat{A} x` is computed here once
    and each call costs one linear map; otherwise each call runs the layer. A sparse ``x``
    (bag-of-words features kept as sparse CSR) gives a sparse cache, one sparse-sparse product.
    Gradients flow to the layer's parameters only.

    Args:
        always (bool): cache even when the cache is larger than the per-edge messages of one
            uncached step (:math:`(|E| + N) \\times F_{out}` values); the cache holds
            :math:`N \\times F_{in}` values for a dense ``x`` and at most
            :math:`\\sum_{(j, i) \\in E \\cup \\text{loops}} \\mathrm{nnz}(x_j)` values (with their
            column indices) for a sparse one. By default a larger cache is not built and the
            layer runs uncached, as for a first layer on wide dense features.
            (default: :obj:`False`)
    """
    if not supports_propagation_cache(layer):
        return lambda: layer(x, edge_index)
    if x.layout != torch.strided:
        return _sparse_input_forward(layer, x, edge_index, always)
    n, f_in = x.shape
    if not always and n * f_in > (edge_index.size(1) + n) * layer.conv.out_channels:
        return lambda: layer(x, edge_index)
    conv = layer.conv
    with torch.no_grad():
        x = x.detach()
        if layer.normalize:
            x = l2_normalize_rows(x)
        adj = _normalized_adjacency(conv, edge_index, n, x.dtype)
        propagated = torch.sparse.mm(adj, x)
        del adj

    def forward() -> Tensor:
        return _finish(layer, conv.lin(propagated))

    return forward


def _normalized_adjacency(conv: GCNConv, edge_index: Tensor, n: int, dtype: torch.dtype,
                          keep: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """:math:`\\hat{A}` of ``conv`` as a coalesced sparse COO matrix whose row i gathers the
    messages node i receives; ``keep(src)`` selects the entries kept (by source node)."""
    index, weight = gcn_norm(edge_index, None, n, conv.improved, conv.add_self_loops,
                             conv.flow, dtype)
    dst, src = (index[1], index[0]) if conv.flow == "source_to_target" else (index[0], index[1])
    if keep is not None:
        mask = keep(src)
        dst, src, weight = dst[mask], src[mask], weight[mask]
    return torch.sparse_coo_tensor(torch.stack([dst, src]), weight, (n, n),
                                   check_invariants=False).coalesce()


def _finish(layer: ForwardLayer, out: Tensor) -> Tensor:
    if layer.conv.bias is not None:
        out = out + layer.conv.bias
    return out.relu() if layer.act else out


class _SparseLinear(torch.autograd.Function):
    """``x @ weight.T`` for a constant sparse ``x`` given with its transpose ``x_t``: the weight
    gradient is ``(x_t @ grad).T``, with no transposition of ``x`` at each backward pass."""

    @staticmethod
    def forward(ctx, weight: Tensor, x: Tensor, x_t: Tensor) -> Tensor:
        ctx.x_t = x_t
        return torch.sparse.mm(x, weight.t())

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return torch.sparse.mm(ctx.x_t, grad).t(), None, None


def _sparse_input_forward(layer: ForwardLayer, x: Tensor, edge_index: Tensor,
                          always: bool) -> Callable[[], Tensor]:
    """:func:`frozen_input_forward` for a sparse ``x`` (bag-of-words features with a few dense
    rows, such as the virtual class nodes' random features).

    :math:`\\hat{A} x W = \\hat{A}_{:,S}\\, x_S W + \\hat{A}_{:,D}\\, (x_D W)`, with
    :math:`D` the dense rows (more than :data:`SPARSE_DENSITY` of their entries non-zero) and
    :math:`S` the others: the first product is cached as a sparse matrix (at most
    :math:`\\sum_{(j, i),\\, j \\in S} \\mathrm{nnz}(x_j)` entries), the second is recomputed at
    each call from the :math:`|D|` dense rows, so no per-edge message tensor is made.
    """
    if layer.normalize:  # row norms of a sparse matrix: no scheme needs them
        return lambda: layer(x, edge_index)
    conv = layer.conv
    n, f_in = x.shape
    with torch.no_grad(), warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        x = x.detach().to_sparse_csr()
        row_nnz = x.crow_indices().diff()
        dense = row_nnz > SPARSE_DENSITY * f_in
        src = edge_index[0] if conv.flow == "source_to_target" else edge_index[1]
        light = ~dense[src]
        # entries: a value and an int64 column index, 3 float32 words; plus the dense rows
        size = (3 * (int(row_nnz[src[light]].sum()) + int(row_nnz[~dense].sum()))
                + int(dense.sum()) * f_in)
        if not always and size > (edge_index.size(1) + n) * conv.out_channels:
            return lambda: layer(x, edge_index)
        adj_s = _normalized_adjacency(conv, edge_index, n, x.dtype, lambda s: ~dense[s])
        cached = torch.sparse.mm(adj_s.to_sparse_csr(), x)  # CSR @ CSR: a CSR product
        del adj_s
        # and its transpose, also CSR: the weight gradient (cached^T @ grad) then needs no
        # transposition of the cache at each backward pass
        cached_t = cached.t().to_sparse_csr()
        rows = dense.nonzero().view(-1)
        x_dense = x.to_sparse_coo().index_select(0, rows).to_dense()
        position = torch.full((n,), -1, dtype=torch.long, device=x.device)
        position[rows] = torch.arange(rows.numel(), device=x.device)
        adj_d = _normalized_adjacency(conv, edge_index, n, x.dtype, lambda s: dense[s])
        i = adj_d.indices()
        adj_d = torch.sparse_coo_tensor(torch.stack([i[0], position[i[1]]]), adj_d.values(),
                                        (n, rows.numel()), check_invariants=False).coalesce()

    def forward() -> Tensor:
        out = _SparseLinear.apply(conv.lin.weight, cached, cached_t)
        if getattr(conv.lin, "bias", None) is not None:
            out = out + conv.lin.bias
        if rows.numel():
            out = out + torch.sparse.mm(adj_d, conv.lin(x_dense))
        return _finish(layer, out)

    return forward
