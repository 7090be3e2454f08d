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

from collections.abc import Callable

import torch
from torch import Tensor
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphkit.train.forward.layers import ForwardLayer, l2_normalize_rows

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
    and each call costs one dense linear map; otherwise each call runs the layer. Gradients flow
    to the layer's parameters only.

    Args:
        always (bool): cache even when the cache (:math:`N \\times F_{in}` values) is larger than
            the per-edge messages of one uncached step (:math:`(|E| + N) \\times F_{out}`), as for
            a first layer on wide bag-of-words features; by default such a layer runs uncached.
            (default: :obj:`False`)
    """
    if not supports_propagation_cache(layer):
        return lambda: layer(x, edge_index)
    n, f_in = x.shape
    if not always and n * f_in > (edge_index.size(1) + n) * layer.conv.out_channels:
        return lambda: layer(x, edge_index)
    conv = layer.conv
    with torch.no_grad():
        x = x.detach()
        if layer.normalize:
            x = l2_normalize_rows(x)
        index, weight = gcn_norm(edge_index, None, n, conv.improved, conv.add_self_loops,
                                 conv.flow, x.dtype)
        # row i of A-hat gathers the messages node i receives
        dst, src = (index[1], index[0]) if conv.flow == "source_to_target" else (index[0],
                                                                                  index[1])
        adj = torch.sparse_coo_tensor(torch.stack([dst, src]), weight, (n, n),
                                      check_invariants=False).coalesce()
        x = x.to_dense() if x.layout != torch.strided else x
        propagated = torch.sparse.mm(adj, x)
        del adj, index, weight

    def forward() -> Tensor:
        out = conv.lin(propagated)
        if conv.bias is not None:
            out = out + conv.bias
        return out.relu() if layer.act else out

    return forward
