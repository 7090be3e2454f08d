r"""A GCN encoder with an MLP pair scorer: the usual static link-prediction model."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import GCNConv

from graphkit.nn._cache import CachedGraph, check_pyg_gcn_cache
from graphkit.nn._checks import check_edge_index_layout, check_node_features

__all__ = ["GCNLinkPredictor"]


class GCNLinkPredictor(torch.nn.Module):
    r"""GCN node encoder and MLP predictor on the Hadamard product of the two end points,

    .. math::
        \mathbf{H} = \mathrm{GCN}(\mathbf{X}, \mathbf{A}), \qquad
        p(u, v) = \sigma\big(\mathbf{w}_2^\top \mathrm{ReLU}(\mathbf{W}_1
        (\mathbf{h}_u \odot \mathbf{h}_v) + \mathbf{b}_1) + b_2\big),

    with ``num_layers`` ``GCNConv`` layers (ReLU between them, none after the last). This is the
    model of the official topological-concentration code (`Wang et al., "A Topological
    Perspective on Demystifying GNN-Based Link Prediction Performance", ICLR 2024
    <https://arxiv.org/abs/2310.04612>`_) and of OGB's link-property examples (``GCN`` +
    ``LinkPredictor``), which train it with :func:`graphkit.train.train_link_predictor`.

    Args:
        in_channels (int): input feature size.
        hidden_channels (int): width of every layer and of the predictor.
        num_layers (int): number of ``GCNConv`` layers. (default: :obj:`2`)
        cached (bool): normalise the adjacency on the first call and reuse it: transductive
            use on one fixed message-passing graph only (as in the official code); a call
            with another graph raises a ValueError until :meth:`reset_parameters`. (default:
            :obj:`True`)

    Shapes:
        - :meth:`encode`: :math:`(N, F)`, :math:`(2, |\mathcal{E}|)` -> :math:`(N, H)`
        - :meth:`score`: two :math:`(*, H)` -> :math:`(*)` probabilities
        - :meth:`forward`: features, message-passing edges, :math:`(2, P)` query pairs ->
          :math:`(P)` probabilities
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2,
                 cached: bool = True) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.convs = torch.nn.ModuleList(
            GCNConv(in_channels if i == 0 else hidden_channels, hidden_channels, cached=cached)
            for i in range(num_layers))
        self.lin1 = torch.nn.Linear(hidden_channels, hidden_channels)
        self.lin2 = torch.nn.Linear(hidden_channels, 1)
        self._cached_graph: CachedGraph | None = None  # the graph the convs' caches hold

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        self._cached_graph = None

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.convs[0].in_channels)
        check_edge_index_layout(edge_index)
        check_pyg_gcn_cache(self, self.convs, x, edge_index)
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = x.relu()
        return x

    def score(self, h_src: Tensor, h_dst: Tensor) -> Tensor:
        return torch.sigmoid(self.lin2(self.lin1(h_src * h_dst).relu())).squeeze(-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_label_index: Tensor) -> Tensor:
        h = self.encode(x, edge_index)
        return self.score(h[edge_label_index[0]], h[edge_label_index[1]])
