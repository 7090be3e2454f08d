r"""The backpropagation baseline on the same convolutions (``bp``).

As ``src/train_backprop.py`` of facebookresearch/forwardgnn (PyG's ``BasicGNN`` models with
dropout 0): ``num_layers`` convolutions with ReLU in between, trained end to end with one Adam.
For node classification the last layer outputs the class logits; for link prediction it outputs
``hidden_channels`` and a pair is scored by the dot product of its end points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv

from graphkit.metrics import accuracy
from graphkit.train.forward.base import NodeScheme, check_node_inputs, param_dtype
from graphkit.train.forward.layers import (
    SPARSE_INPUT_MODELS,
    ForwardLayer,
    check_adjacency,
    handoff_rows,
    make_conv,
    propagation_input,
)
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog

__all__ = ["BackpropGNN", "BackpropNode"]


class BackpropGNN(nn.Module):
    r"""``num_layers`` convolutions, ReLU between them, none after the last.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): hidden width.
        out_channels (int): output width (a GAT output layer averages its 4 heads).
        num_layers (int): number of convolutions. (default: 4)
    """

    def __init__(self, model: str, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 4) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers = []
        for i in range(num_layers):
            last = i == num_layers - 1
            cin = in_channels if i == 0 else hidden_channels
            cout = out_channels if last else hidden_channels
            if last and model == "gat":
                conv = GATConv(cin, cout, heads=4, concat=False)
            else:
                conv = make_conv(model, cin, cout)
            layers.append(ForwardLayer(conv, normalize=False, act=not last,
                                       sparse_input=i == 0 and model in SPARSE_INPUT_MODELS))
        self.layers = nn.ModuleList(layers)

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, edge_index)
        return x


class BackpropNode(NodeScheme):
    """BP node classification: cross-entropy on the training nodes, end to end.

    Args: as :class:`BackpropGNN` with ``out_channels = num_classes``, and
        adjacency (str): ``"edges"`` (the edge list, PyG's per-edge messages) or ``"sparse"``
            (a sparse CSR adjacency built once per :meth:`fit`; GCN and SAGE), as in
            :class:`~graphkit.train.forward.SingleForward`. (default: ``"edges"``)
    """

    name = "bp"

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, adjacency: str = "edges") -> None:
        super().__init__()
        check_adjacency(model, adjacency)
        self.in_channels = in_channels
        self.num_classes, self.adjacency = num_classes, adjacency
        self.propagation: Tensor | None = None
        self.gnn = BackpropGNN(model, in_channels, hidden_channels, num_classes, num_layers)

    def fit(self, data: Data, train_mask: Tensor, val_mask: Tensor,
            trainer: LayerwiseTrainer | None = None) -> list[StoppingLog]:
        if check_node_inputs(data, train_mask, val_mask, self.in_channels,
                             param_dtype(self)) > self.num_classes:
            raise ValueError(f"data has more classes than num_classes={self.num_classes}")
        trainer = trainer or LayerwiseTrainer()
        self.data, self.train_mask = data, train_mask
        edges = self.propagation = propagation_input(data.edge_index, data.num_nodes,
                                                     self.adjacency, param_dtype(self))
        x = self._input(data.x)
        optimizer = trainer.optimizer(self.gnn)
        train_idx = train_mask.nonzero().view(-1)  # index, not mask: no device sync per step
        y_train = data.y[train_idx]

        def epoch() -> Tensor:
            out = self.gnn(x, edges)
            loss = F.cross_entropy(out[train_idx], y_train)
            return trainer.step(self.gnn, optimizer, loss)

        def score() -> float:
            return accuracy(self.gnn(x, edges)[val_mask], data.y[val_mask])

        return [trainer.fit(self.gnn, epoch, score)]

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """The logits of the whole network (only the last layer classifies)."""
        data = self._fitted(eval_mask, labelled)
        self.eval()
        return [self.gnn(self._input(data.x), self.propagation)[eval_mask]]

    def _input(self, x: Tensor) -> Tensor:
        """The features as the first layer takes them, converted once (not at every step): a
        sparse CSR copy where :class:`~graphkit.train.forward.ForwardLayer` would convert them
        (bag-of-words features on the CPU), built a few rows at a time; else ``x``."""
        first = self.gnn.layers[0]
        if first.sparse_input and x.device.type == "cpu" and not x.requires_grad:
            return handoff_rows([x], sparse=True, normalize=False)
        return x
