"""DAGNN: Deep Adaptive Graph Neural Network (Liu, Gao and Ji, KDD 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Linear
from torch_geometric.typing import Adj, OptTensor

from graphkit.nn._checks import check_floating, check_node_features
from graphkit.nn.conv.dagnn_prop import DAGNNProp
from graphkit.nn.sparse_input import feature_dropout

__all__ = ["DAGNN"]


class DAGNN(torch.nn.Module):
    r"""The Deep Adaptive Graph Neural Network from the `"Towards Deeper Graph Neural Networks"
    <https://arxiv.org/abs/2007.09296>`_ paper (KDD 2020; not the DAG network of ICLR 2021).

    A two-layer MLP predicts class logits, which :class:`~graphkit.nn.conv.DAGNNProp`
    propagates :math:`K` times and mixes per node with sigmoid retention scores:

    .. math::
        \mathbf{Z} &= \mathrm{Lin}_2\Big(\mathrm{drop}\big(\mathrm{ReLU}(
        [\mathrm{BN}]\,\mathrm{Lin}_1(\mathrm{drop}_{in}(\mathbf{X})))\big)\Big)

        \mathbf{X}^{\prime} &= \sum_{k=0}^{K} \mathrm{diag}(\mathbf{s}_k)\,
        \mathbf{\hat{A}}^k \mathbf{Z}, \qquad
        \mathbf{s}_k = \sigma(\mathbf{\hat{A}}^k \mathbf{Z} \mathbf{s} + b).

    The structure follows the official code exactly: the citation-graph model has input and
    hidden dropout; the ogbn-arxiv model (``batch_norm=True``) adds a
    :class:`~torch.nn.BatchNorm1d` after :math:`\mathrm{Lin}_1` and drops the input dropout,
    so ``DAGNN(128, 256, 40, K=16, batch_norm=True)`` has 43,857 parameters.

    Args:
        in_channels (int): Number of input features :math:`F`.
        hidden_channels (int): Hidden width :math:`h`.
        out_channels (int): Number of classes :math:`c`.
        K (int): Propagation depth.
        dropout (float, optional): Dropout on the hidden layer. (default: :obj:`0.5`)
        batch_norm (bool, optional): Batch normalisation after the first linear layer.
            (default: :obj:`False`)
        input_dropout (float, optional): Dropout on the input features; :obj:`None` means
            ``dropout`` without batch norm and :obj:`0` with it, as in the official scripts.
            (default: :obj:`None`)
        cached (bool, optional): Cache the normalised adjacency (transductive use).
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)` (dense or sparse CSR), edge indices
          :math:`(2, |\mathcal{E}|)`, edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** class logits :math:`(|\mathcal{V}|, c)` (apply ``log_softmax`` or
          ``cross_entropy`` outside)
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        K: int,
        dropout: float = 0.5,
        batch_norm: bool = False,
        input_dropout: float | None = None,
        cached: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("out_channels", out_channels)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if input_dropout is None:
            input_dropout = 0.0 if batch_norm else dropout
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.lin1 = Linear(in_channels, hidden_channels)
        self.bn = BatchNorm1d(hidden_channels) if batch_norm else None
        self.lin2 = Linear(hidden_channels, out_channels)
        self.prop = DAGNNProp(out_channels, K, cached=cached)
        self.reset_parameters()

    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        return self.prop.K

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        if self.bn is not None:
            self.bn.reset_parameters()
        self.lin2.reset_parameters()
        self.prop.reset_parameters()

    def transform(self, x: Tensor) -> Tensor:
        """The MLP part: class logits :math:`\\mathbf{Z}` before propagation."""
        check_node_features(x, self.in_channels)
        check_floating(x)
        x = feature_dropout(x, self.input_dropout, self.training)
        x = self.lin1(x)
        if self.bn is not None:
            x = self.bn(x)
        x = F.relu(x)
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.lin2(x)

    def forward(self, x: Tensor, edge_index: Adj, edge_weight: OptTensor = None) -> Tensor:
        return self.prop(self.transform(x), edge_index, edge_weight)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, K={self.K}, batch_norm={self.bn is not None})")
