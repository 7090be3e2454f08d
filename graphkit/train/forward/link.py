r"""Link prediction by forward learning (``sf``, ``ff``) and by backpropagation (``bp``).

`Forward Learning of Graph Neural Networks <https://arxiv.org/abs/2403.11004>`_ (Park et al.,
ICLR 2024), Section 3.4 (``GNN_FL`` in the official code). Layer :math:`l` is trained alone, on
the detached, L2-normalised output of layer :math:`l-1` over the training graph, with

.. math::
    \mathcal{L}_l = \mathrm{BCE}\big(\sigma(\mathbf{h}^{(l)\top}_u \mathbf{h}^{(l)}_v),
    y_{uv}\big)

over the training pairs (positives and fixed negatives, one forward pass per step). A pair's
score is the mean over layers of :math:`\sigma(\mathbf{h}^{(l)\top}_u \mathbf{h}^{(l)}_v)`.
:class:`FFLink` (the official code's FF variant of ``GNN_FL``) scores a pair by the goodness
:math:`\sum_d (h_{ud} h_{vd})^2 - \theta` instead, in its loss and at inference.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.data.validation import check_edge_index, check_graph
from graphkit.metrics import roc_auc
from graphkit.train.forward.backprop import BackpropGNN
from graphkit.train.forward.base import check_feature_dtype, param_dtype
from graphkit.train.forward.layers import SPARSE_INPUT_MODELS, ForwardLayer, handoff, make_conv
from graphkit.train.forward.losses import ff_link_logits, ff_link_loss, link_logits, link_loss
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog

__all__ = ["BackpropLink", "FFLink", "ForwardLink", "check_link_data"]


def check_link_data(data: Data, name: str, in_channels: int = -1, labels: bool = True,
                    dtype: torch.dtype | None = None) -> None:
    """``data`` must carry ``x`` (``in_channels`` wide, when ``>= 0``, and of the model's
    parameters' ``dtype``, when given), ``edge_index``, ``edge_label_index`` and (``labels``)
    ``edge_label``, one 0/1 label per pair."""
    from graphkit.nn._checks import check_node_features  # graphkit.nn imports graphkit.train

    keys = ("x", "edge_index", "edge_label_index") + (("edge_label",) if labels else ())
    for key in keys:
        if getattr(data, key, None) is None:
            raise ValueError(f"{name}.{key} is missing (use link_split)")
    check_graph(data)
    check_node_features(data.x, in_channels, name=f"{name}.x")
    check_feature_dtype(data.x, dtype, f"{name}.x")
    check_edge_index(data.edge_label_index, data.num_nodes, name=f"{name}.edge_label_index")
    if not labels:
        return
    if data.edge_label_index.size(1) != data.edge_label.numel():
        raise ValueError(f"{name}.edge_label has {data.edge_label.numel()} entries for "
                         f"{data.edge_label_index.size(1)} pairs")
    if not bool(((data.edge_label == 0) | (data.edge_label == 1)).all()):
        raise ValueError(f"{name}.edge_label must hold 0/1 labels (1: an edge, 0: a negative)")
    # scored by ROC-AUC, which needs both an edge and a negative
    if data.edge_label.unique().numel() < 2:
        raise ValueError(f"{name}.edge_label needs both edges (1) and negatives (0), got "
                         f"{data.edge_label.numel()} pairs with labels "
                         f"{sorted(set(data.edge_label.tolist()))}")


class ForwardLink(nn.Module):
    r"""Layer-wise link prediction with dot-product BCE losses (no backprop across layers)
    (Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    Layer :math:`l` minimises the BCE of :math:`\mathbf{h}^{(l)}_u \cdot \mathbf{h}^{(l)}_v`
    over edges (label 1) and negative pairs (label 0) on its frozen input; a pair's score is the
    mean over layers of :math:`\sigma(\mathbf{h}^{(l)}_u \cdot \mathbf{h}^{(l)}_v)`.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_layers (int): number of layers. (default: 4)
    """

    name = "sf"
    #: the official scripts' Adam weight decay for this scheme
    weight_decay = 5e-4

    def __init__(self, model: str, in_channels: int, hidden_channels: int,
                 num_layers: int = 4) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.in_channels = in_channels
        self.layers = nn.ModuleList(
            ForwardLayer(make_conv(model, in_channels if i == 0 else hidden_channels,
                                   hidden_channels), normalize=False,
                         sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))

    def reset_parameters(self) -> None:
        """Re-initialise every layer as at construction."""
        for layer in self.layers:
            layer.reset_parameters()

    def fit(self, train: Data, val: Data, trainer: LayerwiseTrainer | None = None
            ) -> list[StoppingLog]:
        """Train layer by layer on ``train``; early-stop each layer on ``val`` ROC-AUC."""
        check_link_data(train, "train", self.in_channels, dtype=param_dtype(self))
        check_link_data(val, "val", self.in_channels, dtype=param_dtype(self))
        trainer = trainer or LayerwiseTrainer(weight_decay=self.weight_decay)
        h_train, h_val = train.x, val.x
        val_sum = torch.zeros(val.edge_label.numel(), device=val.x.device)
        logs = []
        for l, layer in enumerate(self.layers):
            inp, inp_val = handoff(h_train), handoff(h_val)
            logs.append(self._fit_layer(layer, l, inp, inp_val, val_sum, train, val, trainer))
            with torch.no_grad():
                h_train = layer(inp, train.edge_index)
                h_val = layer(inp_val, val.edge_index)
                val_sum = val_sum + self.pair_logits(h_val, val.edge_label_index).sigmoid()
        return logs

    def pair_logits(self, h: Tensor, edge_label_index: Tensor) -> Tensor:
        """A pair's logit from one layer's output: the dot product."""
        return link_logits(h, edge_label_index)

    def pair_loss(self, h: Tensor, edge_label_index: Tensor, edge_label: Tensor) -> Tensor:
        """One layer's local loss: BCE of :meth:`pair_logits` against the labels."""
        return link_loss(h, edge_label_index, edge_label)

    def _fit_layer(self, layer: ForwardLayer, l: int, inp: Tensor, inp_val: Tensor,
                   val_sum: Tensor, train: Data, val: Data, trainer: LayerwiseTrainer
                   ) -> StoppingLog:
        """Train layer ``l`` on its frozen input; validate with the mean over layers ``<= l``."""
        optimizer = trainer.optimizer(layer)

        def epoch() -> Tensor:
            h = layer(inp, train.edge_index)
            return trainer.step(layer, optimizer,
                                self.pair_loss(h, train.edge_label_index, train.edge_label))

        def score() -> float:
            s = self.pair_logits(layer(inp_val, val.edge_index), val.edge_label_index).sigmoid()
            return roc_auc(val.edge_label, (val_sum + s) / (l + 1))

        return trainer.fit(layer, epoch, score)

    @torch.no_grad()
    def layer_scores(self, data: Data) -> list[Tensor]:
        """Scores of ``data.edge_label_index`` averaged over layers ``1..l``, for each l."""
        check_link_data(data, "data", self.in_channels, labels=False,
                        dtype=param_dtype(self))
        self.eval()
        h, total, out = data.x, 0.0, []
        for l, layer in enumerate(self.layers):
            h = layer(handoff(h), data.edge_index)
            total = total + self.pair_logits(h, data.edge_label_index).sigmoid()
            out.append(total / (l + 1))
        return out

    def predict(self, data: Data) -> Tensor:
        """Pair scores of the whole model, from one forward pass over ``data.edge_index``."""
        return self.layer_scores(data)[-1]


class FFLink(ForwardLink):
    r"""Layer-wise link prediction with Forward-Forward goodness (the official ``GNN_FL`` with
    its FF loss, Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004): layer :math:`l`
    pushes the goodness of :math:`\mathbf{h}^{(l)}_u \odot \mathbf{h}^{(l)}_v` above
    :math:`\theta` for edges and below it for the negative pairs; a pair's score is the mean
    over layers of :math:`\sigma(\sum_d (h_{ud} h_{vd})^2 - \theta)`.

    For links the negatives of both FF schemes are the split's negative pairs: there are no
    class labels to append or class nodes to link, so ``ff-la`` and ``ff-vn`` both train this
    model on the link task.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_layers (int): number of layers. (default: 4)
        theta (float): goodness threshold :math:`\theta`. (default: 2.0)
    """

    name = "ff"

    def __init__(self, model: str, in_channels: int, hidden_channels: int,
                 num_layers: int = 4, theta: float = 2.0) -> None:
        super().__init__(model, in_channels, hidden_channels, num_layers)
        self.theta = theta

    def pair_logits(self, h: Tensor, edge_label_index: Tensor) -> Tensor:
        # a NaN goodness (an overflowing square) would make the whole ROC-AUC undefined
        return torch.nan_to_num(ff_link_logits(h, edge_label_index, self.theta))

    def pair_loss(self, h: Tensor, edge_label_index: Tensor, edge_label: Tensor) -> Tensor:
        return ff_link_loss(h, edge_label_index, edge_label, self.theta)


class BackpropLink(nn.Module):
    """BP link prediction: a :class:`BackpropGNN` with output width ``hidden_channels``.

    Args: as :class:`ForwardLink`.
    """

    name = "bp"
    weight_decay = 5e-4

    def __init__(self, model: str, in_channels: int, hidden_channels: int,
                 num_layers: int = 4) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.gnn = BackpropGNN(model, in_channels, hidden_channels, hidden_channels, num_layers)

    def reset_parameters(self) -> None:
        """Re-initialise the network as at construction."""
        self.gnn.reset_parameters()

    def fit(self, train: Data, val: Data, trainer: LayerwiseTrainer | None = None
            ) -> list[StoppingLog]:
        """Train end to end on ``train``; early-stop on ``val`` ROC-AUC."""
        check_link_data(train, "train", self.in_channels, dtype=param_dtype(self))
        check_link_data(val, "val", self.in_channels, dtype=param_dtype(self))
        trainer = trainer or LayerwiseTrainer(weight_decay=self.weight_decay)
        optimizer = trainer.optimizer(self.gnn)

        def epoch() -> Tensor:
            h = self.gnn(train.x, train.edge_index)
            return trainer.step(self.gnn, optimizer,
                                link_loss(h, train.edge_label_index, train.edge_label))

        def score() -> float:
            return roc_auc(val.edge_label, self._scores(val))

        return [trainer.fit(self.gnn, epoch, score)]

    @torch.no_grad()
    def layer_scores(self, data: Data) -> list[Tensor]:
        """The sigmoid dot-product scores of the whole network (one entry)."""
        check_link_data(data, "data", self.in_channels, labels=False,
                        dtype=param_dtype(self))
        return [self._scores(data)]

    @torch.no_grad()
    def _scores(self, data: Data) -> Tensor:
        self.eval()
        h = self.gnn(data.x, data.edge_index)
        return link_logits(h, data.edge_label_index).sigmoid()

    def predict(self, data: Data) -> Tensor:
        """Pair scores of ``data.edge_label_index``."""
        return self.layer_scores(data)[-1]
