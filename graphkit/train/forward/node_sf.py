r"""Single-forward (SF) node classification: `Forward Learning of Graph Neural Networks
<https://arxiv.org/abs/2403.11004>`_ (Park et al., ICLR 2024), Section 3.2.

The graph gets one virtual node per class, linked both ways to the *training* nodes of that
class. Layer :math:`l` is trained alone, on the detached and L2-normalised output of layer
:math:`l-1`, to minimise

.. math::
    \mathcal{L}_l = -\frac{1}{|\mathcal{V}_{tr}|}\sum_{i \in \mathcal{V}_{tr}}
    \log \frac{\exp(\mathbf{h}^{(l)\top}_i \mathbf{h}^{(l)}_{v_{y_i}} / \tau)}
    {\sum_c \exp(\mathbf{h}^{(l)\top}_i \mathbf{h}^{(l)}_{v_c} / \tau)},

with no negative inputs: one forward pass per step. A node's prediction is
:math:`\arg\max_c \sum_l \mathrm{softmax}_c(\mathbf{h}^{(l)\top}_i \mathbf{h}^{(l)}_{v_c}/\tau)`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.metrics import accuracy
from graphkit.train.forward.augment import AugmentedGraph, VirtualClassNodes
from graphkit.train.forward.base import NodeScheme, check_node_inputs, param_dtype
from graphkit.train.forward.cache import frozen_input_forward
from graphkit.train.forward.layers import (
    SPARSE_INPUT_MODELS,
    ForwardLayer,
    check_adjacency,
    handoff,
    handoff_rows,
    make_conv,
    propagation_input,
)
from graphkit.train.forward.losses import sf_logits, sf_loss
from graphkit.train.forward.rowsplit import RowSplitForward, supports_row_split
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog

__all__ = ["SingleForward", "augment_training_nodes", "class_probabilities"]


def augment_training_nodes(virtual: VirtualClassNodes, data: Data, train_mask: Tensor
                           ) -> AugmentedGraph:
    """Link every training node (and no other) to the virtual node of its true class."""
    idx = train_mask.nonzero().view(-1)
    return virtual.augment(data.x, data.edge_index, idx, data.y[idx])


def class_probabilities(h: Tensor, graph: AugmentedGraph, mask: Tensor,
                        temperature: float = 1.0) -> Tensor:
    """``softmax`` over classes of the dot products of ``mask`` nodes with the virtual nodes."""
    n = graph.num_real
    return sf_logits(h[:n][mask], h[n:], temperature).softmax(dim=-1)


class SingleForward(NodeScheme):
    r"""SF: layer-wise training against virtual class nodes (no negatives, no backprop)
    (Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    Each layer :math:`l` is trained alone, on its frozen input, to minimise
    :math:`-\frac{1}{|\mathcal{V}_{train}|}\sum_i \log
    \operatorname{softmax}_c(\mathbf{h}_i^{(l)} \cdot \mathbf{h}_{v_c}^{(l)} / \tau)_{y_i}`,
    where :math:`v_c` is the virtual node of class :math:`c` (linked to the training nodes of
    class :math:`c`); a node's prediction sums these class probabilities over the layers.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_classes (int): number of classes.
        num_layers (int): number of layers. (default: 4)
        temperature (float): softmax temperature :math:`\tau`. (default: 1.0)
        cache_propagation (bool): while a GCN layer trains, propagate its frozen input once and
            train on the cached product (:func:`~graphkit.train.forward.frozen_input_forward`;
            the same function, less memory and time per step). (default: :obj:`False`)
        sparse_input (bool): keep the frozen first-layer input (the normalised features with
            the virtual nodes appended) as a sparse CSR matrix when fewer than
            :data:`~graphkit.train.forward.layers.SPARSE_DENSITY` of its entries are non-zero,
            as for bag-of-words features, and the first convolution transforms before it
            propagates (GCN, GAT): the model then holds no dense copy of the features.
            (default: :obj:`True`)
        adjacency (str): ``"edges"``: the convolutions propagate over the augmented edge list
            (PyG's per-edge messages); ``"sparse"``: over the augmented adjacency as a sparse
            CSR matrix built once in :meth:`input_graph` (GCN and SAGE; the same function, no
            per-edge message tensor). (default: ``"edges"``)
        row_split (bool): with ``adjacency="edges"`` and no propagation cache, a training step
            propagates only the messages into the rows its loss reads (training and class
            nodes), and validation and the hand-off run in two blocks of rows
            (:class:`~graphkit.train.forward.rowsplit.RowSplitForward`; the same function, a
            smaller per-edge tensor). Applies to GCN, SAGE and GAT layers
            (:func:`~graphkit.train.forward.rowsplit.supports_row_split`); other layers
            propagate over the whole graph. (default: :obj:`True`)
    """

    name = "sf"

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, temperature: float = 1.0,
                 cache_propagation: bool = False, sparse_input: bool = True,
                 adjacency: str = "edges", row_split: bool = True) -> None:
        super().__init__()
        check_adjacency(model, adjacency)
        self.in_channels = in_channels
        self.adjacency, self.row_split = adjacency, row_split
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_classes, self.temperature = num_classes, temperature
        self.cache_propagation = cache_propagation
        self.sparse_input = sparse_input and model in SPARSE_INPUT_MODELS
        self.layers = nn.ModuleList(
            ForwardLayer(make_conv(model, in_channels if i == 0 else hidden_channels,
                                   hidden_channels), normalize=False,
                         sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))
        self.virtual = VirtualClassNodes(num_classes, in_channels)
        self.graph: AugmentedGraph | None = None

    def fit(self, data: Data, train_mask: Tensor, val_mask: Tensor,
            trainer: LayerwiseTrainer | None = None) -> list[StoppingLog]:
        if check_node_inputs(data, train_mask, val_mask, self.in_channels,
                             param_dtype(self)) > self.num_classes:
            raise ValueError(f"data has more classes than num_classes={self.num_classes}")
        trainer = trainer or LayerwiseTrainer()
        self.data, self.train_mask = data, train_mask
        self._build_fitted_inputs()
        graph = self.graph
        inp = graph.x
        val_probs = torch.zeros(int(val_mask.sum()), self.num_classes, device=inp.device)
        logs = []
        for layer in self.layers:
            forward, loss_forward = self._layer_forward(layer, inp)
            logs.append(self._fit_layer(layer, forward, loss_forward, val_probs, val_mask,
                                        trainer))
            with torch.no_grad():
                h = forward()
                val_probs = val_probs + class_probabilities(h, graph, val_mask, self.temperature)
                inp = handoff(h)
                # neither the output nor a cache is alive while the next layer trains
                del h, forward, loss_forward
        return logs

    def _build_fitted_inputs(self) -> None:
        self.graph = self.input_graph(self.data, self.train_mask)

    def input_graph(self, data: Data, train_mask: Tensor) -> AugmentedGraph:
        """The graph with virtual class nodes whose features are the first layer's input, the
        detached row-normalised augmented features: one :math:`(N + C) \\times F` copy, sparse
        where ``sparse_input`` applies, built a few rows at a time
        (:func:`~graphkit.train.forward.layers.handoff_rows`: no concatenated or unnormalised
        full-size copy is made)."""
        idx = train_mask.nonzero().view(-1)
        edge_index, edge_type = self.virtual.edges(data.edge_index, data.num_nodes, idx,
                                                   data.y[idx])
        x = handoff_rows([data.x, self.virtual.features.to(data.x.dtype)], self.sparse_input)
        n = data.num_nodes + self.num_classes
        adj = None if self.adjacency == "edges" else propagation_input(
            edge_index, n, self.adjacency, param_dtype(self))
        return AugmentedGraph(x, edge_index, edge_type, data.num_nodes, self.num_classes, adj)

    def _layer_forward(self, layer: ForwardLayer, inp: Tensor
                       ) -> tuple[Callable[[], Tensor], Callable[[], Tensor]]:
        """``layer`` on its frozen input ``inp``: the whole output, and the output exact on the
        rows the loss reads (training and class nodes). With the propagation cache where
        ``cache_propagation`` applies (training, validation and the hand-off all use it), else
        split by rows where ``row_split`` applies."""
        graph = self.graph
        if self.cache_propagation:
            forward = frozen_input_forward(layer, inp, graph.edge_index)
            return forward, forward
        if self.row_split and self.adjacency == "edges" and supports_row_split(layer):
            loss_rows = torch.cat([self.train_mask, self.train_mask.new_ones(graph.num_classes)])
            split = RowSplitForward(layer, inp, graph.edge_index, [loss_rows, ~loss_rows])
            return split, lambda: split.rows(0)
        return (lambda: layer(inp, graph.propagation)), (lambda: layer(inp, graph.propagation))

    def _fit_layer(self, layer: ForwardLayer, forward: Callable[[], Tensor],
                   loss_forward: Callable[[], Tensor], val_probs: Tensor, val_mask: Tensor,
                   trainer: LayerwiseTrainer) -> StoppingLog:
        """Train one layer on its frozen input; validate with the layers below accumulated."""
        graph, train_mask, y = self.graph, self.train_mask, self.data.y
        n = graph.num_real
        optimizer = trainer.optimizer(layer)
        train_idx = train_mask.nonzero().view(-1)  # index, not mask: no device sync per step
        y_train = y[train_idx]

        def epoch() -> Tensor:
            out = loss_forward()
            loss = sf_loss(out[train_idx], out[n:], y_train, self.temperature)
            return trainer.step(layer, optimizer, loss)

        def score() -> float:
            probs = class_probabilities(forward(), graph, val_mask, self.temperature)
            return accuracy(val_probs + probs, y[val_mask])

        return trainer.fit(layer, epoch, score)

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """Accumulated class probabilities after each layer, from a single forward pass."""
        self._fitted(eval_mask, labelled)
        self.eval()
        graph = self.graph
        inp, total, out = graph.x, 0.0, []  # graph.x is already the normalised input
        for layer in self.layers:
            h = layer(inp, graph.propagation)
            total = total + class_probabilities(h, graph, eval_mask, self.temperature)
            out.append(total)
            inp = handoff(h)
        return out
