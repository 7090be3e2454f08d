"""The graph convolutional network of Kipf and Welling, on PyG's ``GCNConv``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GCNConv

from graphkit.nn._cache import CachedGraph, check_pyg_gcn_cache
from graphkit.nn._checks import check_edge_index_layout, check_node_features

__all__ = ["GCN"]


class GCN(torch.nn.Module):
    r"""The GCN from `"Semi-supervised Classification with Graph Convolutional Networks"
    <https://arxiv.org/abs/1609.02907>`_ (Kipf and Welling, ICLR 2017).

    Each layer propagates with the symmetrically normalised adjacency with self-loops,

    .. math::
        \mathbf{H}^{(l+1)} = \sigma\left(\hat{\mathbf{D}}^{-1/2} \hat{\mathbf{A}}
        \hat{\mathbf{D}}^{-1/2} \, \mathrm{dropout}(\mathbf{H}^{(l)}) \, \mathbf{W}^{(l)}\right),
        \qquad \hat{\mathbf{A}} = \mathbf{A} + \mathbf{I},

    with :math:`\sigma = \mathrm{ReLU}` on hidden layers and no activation on the last one, which
    returns logits. Dropout is applied to the input of every layer, the input features
    included (probability ``input_dropout``), as in the paper's implementation; PyG's
    ``BasicGNN`` GCN has no input dropout (``input_dropout=0``), which on wide dense features
    is also markedly faster per epoch.

    Args:
        in_channels (int): input feature size.
        hidden_channels (int): hidden size.
        out_channels (int): number of classes.
        num_layers (int): number of ``GCNConv`` layers. (default: :obj:`2`)
        dropout (float): dropout probability. (default: :obj:`0.5`)
        input_dropout (float, optional): dropout probability of the input features.
            (default: :obj:`None`, the same as ``dropout``)
        cached (bool): normalise the adjacency on the first call and reuse it: transductive
            use on one fixed graph only; a call with another graph raises a ValueError until
            :meth:`reset_parameters`. (default: :obj:`False`)
        **kwargs: further arguments of :class:`torch_geometric.nn.conv.GCNConv`
            (e.g. ``add_self_loops``, ``normalize``, ``bias``).

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, optional edge weights :math:`(|\mathcal{E}|)`
        - **output:** logits :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int = 2,
        dropout: float = 0.5,
        input_dropout: float | None = None,
        cached: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        input_dropout = dropout if input_dropout is None else input_dropout
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {p}")
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("out_channels", out_channels)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.input_dropout = input_dropout
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = torch.nn.ModuleList(
            GCNConv(a, b, cached=cached, **kwargs) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self._cached_graph: CachedGraph | None = None  # the graph the convs' caches hold
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every layer (Glorot weights, zero biases)."""
        for conv in self.convs:
            conv.reset_parameters()
        self._cached_graph = None

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        check_node_features(x, self.in_channels)
        check_edge_index_layout(edge_index)
        check_pyg_gcn_cache(self, self.convs, x, edge_index, edge_weight)
        for i, conv in enumerate(self.convs):
            p = self.input_dropout if i == 0 else self.dropout
            x = F.dropout(x, p=p, training=self.training)
            x = conv(x, edge_index, edge_weight)
            if i < self.num_layers - 1:
                x = x.relu()
        return x

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, num_layers={self.num_layers}, dropout={self.dropout}, "
                f"input_dropout={self.input_dropout})")
