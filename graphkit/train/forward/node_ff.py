r"""Forward-Forward (FF) node classification with label appending or virtual-node negatives.

`Forward Learning of Graph Neural Networks <https://arxiv.org/abs/2403.11004>`_ (Park et al.,
ICLR 2024), Section 3.1, after `Hinton's Forward-Forward algorithm
<https://arxiv.org/abs/2212.13345>`_. Each layer is trained alone to give high goodness
:math:`g(\mathbf{h}) = \sum_j h_j^2 - \theta` to training nodes of the *positive* graph and low
goodness to the same nodes in *negative* copies:

.. math::
    \mathcal{L}_l = \mathrm{BCE}(\sigma(g(\mathbf{h}^{(l)+}_i)), 1)
    + \frac{1}{K}\sum_{k=1}^{K} \mathrm{BCE}(\sigma(g(\mathbf{h}^{(l)-k}_i)), 0).

* **FF-LA** (label appending): the input is :math:`[\mathbf{x}_i \,\|\, \mathbf{e}_{y_i}]` for
  training nodes and :math:`[\mathbf{x}_i \,\|\, \mathbf{1}/C]` for the others; negative copy
  :math:`k` appends the :math:`k`-th of the node's wrong classes (in random order).
* **FF-VN** (virtual nodes): the positive graph links each training node to the virtual node of
  its class; negative copy :math:`k` links it to a wrong class node instead. At every layer the
  negative copies read the positive copy's (normalised) features, so they differ from it only
  in the links of the layer being trained (official ``GNN_VNLA``).

Negatives are drawn once before training. At inference each candidate class :math:`c` is tried
in turn (one forward pass per class) and the class with the largest goodness summed over
layers wins.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.metrics import accuracy
from graphkit.train.forward.augment import VirtualClassNodes, label_matrix
from graphkit.train.forward.base import NodeScheme, check_node_inputs, param_dtype
from graphkit.train.forward.layers import SPARSE_INPUT_MODELS, ForwardLayer, handoff, make_conv
from graphkit.train.forward.losses import ff_loss, goodness
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog

__all__ = ["FFLabelAppending", "FFVirtualNodes", "wrong_classes"]

#: one input copy of the graph: node features and edges
Copy = tuple[Tensor, Tensor]


def wrong_classes(y: Tensor, num_classes: int, num_negs: int,
                  generator: torch.Generator | None = None) -> Tensor:
    """``[min(num_negs, C-1), N]``: for every node, its wrong classes in a random order."""
    if num_negs < 1:
        raise ValueError(f"num_negs must be >= 1, got {num_negs}")
    if num_classes < 2:
        raise ValueError(f"a node needs a wrong class: num_classes must be >= 2, got "
                         f"{num_classes}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"y holds class ids outside [0, {num_classes})")
    k = min(num_negs, num_classes - 1)
    # a random permutation of the C-1 wrong classes: random keys, the true class sorted last
    keys = torch.rand(y.numel(), num_classes, generator=generator).to(y.device)
    keys[torch.arange(y.numel(), device=y.device), y] = 2.0
    return keys.argsort(dim=1)[:, :k].t().contiguous()


class _ForwardForward(NodeScheme):
    """Shared FF training and goodness-summing inference over graph copies."""

    #: negative copies take the positive copy's features at every layer and differ from it in
    #: their edges only (FF-VN); otherwise each copy propagates its own features (FF-LA)
    negatives_share_features = False

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int, theta: float, num_negs: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if num_classes < 2:  # the negatives are the wrong classes
            raise ValueError(f"Forward-Forward needs at least 2 classes, got {num_classes}")
        self.num_classes, self.theta, self.num_negs = num_classes, theta, num_negs
        self.layers = nn.ModuleList(
            ForwardLayer(make_conv(model, in_channels if i == 0 else hidden_channels,
                                   hidden_channels), normalize=False,
                         sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))
        #: per layer: mean goodness of positives minus negatives on training nodes, after fit
        #: (at the restored best-validation checkpoint)
        self.goodness_gap: list[float] = []
        #: the same gap at the last training step of each layer (before the restore)
        self.goodness_gap_last: list[float] = []
        #: per layer and training epoch, ``(positive, negative)`` mean goodness of the training
        #: nodes, read from the forward pass the epoch's step is computed on (the official
        #: ``Pos`` / ``Neg``; their difference is its ``TrainSep``)
        self.goodness_trace: list[list[tuple[float, float]]] = []

    def _appended_dtype(self) -> torch.dtype | None:
        """The dtype of the columns appended to the features (``None``: none are)."""
        return None

    # subclasses build the graph copies
    @abstractmethod
    def _positive(self, data: Data, train: Tensor) -> Copy:
        ...

    @abstractmethod
    def _negatives(self, data: Data, train: Tensor, wrong: Tensor) -> list[Copy]:
        ...

    @abstractmethod
    def _candidate(self, data: Data, c: int, eval_mask: Tensor, labelled: Tensor) -> Copy:
        ...

    def fit(self, data: Data, train_mask: Tensor, val_mask: Tensor,
            trainer: LayerwiseTrainer | None = None) -> list[StoppingLog]:
        if check_node_inputs(data, train_mask, val_mask, self.in_channels, param_dtype(self),
                             self._appended_dtype()) > self.num_classes:
            raise ValueError(f"data has more classes than num_classes={self.num_classes}")
        trainer = trainer or LayerwiseTrainer()
        self.data, self.train_mask = data, train_mask
        train = self._train_idx = train_mask.nonzero().view(-1)
        wrong = wrong_classes(data.y[train], self.num_classes, self.num_negs)
        # every copy holds (normalised input of the current layer, edges)
        pos = self._normalised(self._positive(data, train_mask))
        negs = [self._normalised(g) for g in self._negatives(data, train_mask, wrong)]
        if self.negatives_share_features:
            negs = [(pos[0], ei) for _, ei in negs]
        cands = [self._normalised(self._candidate(data, c, val_mask, train_mask))
                 for c in range(self.num_classes)]
        n = data.num_nodes
        val_good = torch.zeros(int(val_mask.sum()), self.num_classes, device=data.x.device)
        logs, self.goodness_gap, self.goodness_gap_last, self.goodness_trace = [], [], [], []
        for layer in self.layers:
            logs.append(self._fit_layer(layer, pos, negs, cands, val_good, val_mask, trainer))
            with torch.no_grad():
                self.goodness_gap.append(float(self._gap(*self._train_outputs(layer, pos,
                                                                               negs))))
                pos, negs = self._next_inputs(layer, pos, negs)
                outs = [(layer(x, ei), ei) for x, ei in cands]
                val_good = val_good + torch.stack(
                    [goodness(x[:n][val_mask], reduce="mean") for x, _ in outs], dim=1)
                cands = [(handoff(x), ei) for x, ei in outs]
        return logs

    @staticmethod
    def _normalised(copy: Copy) -> Copy:
        return handoff(copy[0]), copy[1]

    def _next_inputs(self, layer: ForwardLayer, pos: Copy, negs: list[Copy]
                     ) -> tuple[Copy, list[Copy]]:
        """The next layer's input copies: each copy's own normalised output, or, when
        :attr:`negatives_share_features`, the positive copy's output with each copy's edges."""
        x = handoff(layer(*pos))
        if self.negatives_share_features:
            return (x, pos[1]), [(x, ei) for _, ei in negs]
        return (x, pos[1]), [(handoff(layer(xn, ei)), ei) for xn, ei in negs]

    def _goodness_means(self, hp: Tensor, hn: list[Tensor]) -> Tensor:
        """``[2]``: mean goodness of the positive rows, and the mean over the negative copies
        of their rows' mean goodness."""
        return torch.stack([goodness(hp, self.theta).mean(), torch.stack(
            [goodness(h, self.theta).mean() for h in hn]).mean()])

    def _gap(self, hp: Tensor, hn: list[Tensor]) -> Tensor:
        """Mean goodness of the positive rows minus the mean over the negative copies."""
        pos, neg = self._goodness_means(hp, hn)
        return pos - neg

    def _train_outputs(self, layer: ForwardLayer, pos: Copy, negs: list[Copy]
                       ) -> tuple[Tensor, list[Tensor]]:
        """Layer outputs at the training nodes of the positive and every negative copy."""
        train = self._train_idx  # real node ids come first in every copy
        hp = layer(pos[0].detach(), pos[1])[train]
        return hp, [layer(x.detach(), ei)[train] for x, ei in negs]

    def _fit_layer(self, layer: ForwardLayer, pos: Copy, negs: list[Copy], cands: list[Copy],
                   val_good: Tensor, val_mask: Tensor, trainer: LayerwiseTrainer
                   ) -> StoppingLog:
        """Train one layer on its frozen inputs; validate with goodness summed over layers."""
        n, y = self.data.num_nodes, self.data.y
        optimizer = trainer.optimizer(layer)

        trace: list[Tensor] = []  # kept as tensors: no device sync per step

        def epoch() -> Tensor:
            hp, hn = self._train_outputs(layer, pos, negs)
            with torch.no_grad():
                trace.append(self._goodness_means(hp, hn))
            return trainer.step(layer, optimizer, ff_loss(hp, hn, self.theta))

        def score() -> float:
            g = torch.stack([goodness(layer(x, ei)[:n][val_mask], reduce="mean")
                             for x, ei in cands], dim=1)
            return accuracy(val_good + g, y[val_mask])

        log = trainer.fit(layer, epoch, score)
        means = torch.stack(trace)
        self.goodness_trace.append([(float(p), float(n)) for p, n in means.tolist()])
        self.goodness_gap_last.append(float(means[-1, 0] - means[-1, 1]))
        return log

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """Goodness summed over layers ``1..l`` for every candidate class (C forward passes)."""
        data = self._fitted(eval_mask, labelled)
        self.eval()
        labelled = self.train_mask if labelled is None else labelled
        n = data.num_nodes
        per_class = []
        for c in range(self.num_classes):
            x, edge_index = self._candidate(data, c, eval_mask, labelled)
            total, scores = 0.0, []
            for layer in self.layers:
                x = layer(handoff(x), edge_index)
                total = total + goodness(x[:n][eval_mask], reduce="mean")
                scores.append(total)
            per_class.append(scores)
        return [torch.stack([per_class[c][l] for c in range(self.num_classes)], dim=1)
                for l in range(len(self.layers))]


class FFLabelAppending(_ForwardForward):
    r"""FF-LA: Forward-Forward with one-hot labels appended to the node features
    (Hinton, "The Forward-Forward Algorithm", 2022, on graphs as in Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    Every layer minimises :func:`~graphkit.train.forward.losses.ff_loss`: the goodness
    :math:`\sum_j h_{ij}^2 - \theta` pushed up for nodes carrying their true label and down for
    wrong labels; a node is predicted as the label whose copy has the highest goodness summed
    over the layers.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width (without the label vector).
        hidden_channels (int): width of every layer.
        num_classes (int): number of classes :math:`C`.
        num_layers (int): number of layers. (default: 4)
        theta (float): goodness threshold :math:`\theta`. (default: 2.0)
        num_negs (int): negative copies, capped at :math:`C-1`. (default: 100)
    """

    name = "ff-la"

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, theta: float = 2.0, num_negs: int = 100) -> None:
        super().__init__(model, in_channels + num_classes, hidden_channels, num_classes,
                         num_layers, theta, num_negs)
        self.in_channels = in_channels  # the features', without the appended labels

    def _appended_dtype(self) -> torch.dtype:
        # label_matrix builds the labels in the default dtype; torch.cat promotes x with them
        # (integer or half features thus reach a float32 model as float32)
        return torch.get_default_dtype()

    def _with_labels(self, x: Tensor, labels: Tensor) -> Tensor:
        return torch.cat([x, labels], dim=1)

    def _positive(self, data: Data, train: Tensor) -> Copy:
        return self._with_labels(data.x, label_matrix(data.y, train, self.num_classes)), \
            data.edge_index

    def _negatives(self, data: Data, train: Tensor, wrong: Tensor) -> list[Copy]:
        out = []
        for k in range(wrong.size(0)):
            y = data.y.clone()
            y[train] = wrong[k]
            out.append((self._with_labels(data.x, label_matrix(y, train, self.num_classes)),
                        data.edge_index))
        return out

    def _candidate(self, data: Data, c: int, eval_mask: Tensor, labelled: Tensor) -> Copy:
        # an evaluated node takes the candidate class even when it is labelled too (as in the
        # official code), else all of its candidates would be equal
        y = data.y.clone()
        y[eval_mask] = c
        labels = label_matrix(y, labelled | eval_mask, self.num_classes)
        return self._with_labels(data.x, labels), data.edge_index


class FFVirtualNodes(_ForwardForward):
    r"""FF-VN: Forward-Forward whose negatives link training nodes to wrong class nodes
    (Hinton, 2022, on graphs as in Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    The positive graph links each training node to the virtual node of its class, a negative
    copy to a wrong class's; each layer minimises
    :func:`~graphkit.train.forward.losses.ff_loss` on the goodness
    :math:`\sum_j h_{ij}^2 - \theta` of the two.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_classes (int): number of classes :math:`C`.
        num_layers (int): number of layers. (default: 4)
        theta (float): goodness threshold :math:`\theta`. (default: 2.0)
        num_negs (int): negative copies, capped at :math:`C-1`. (default: 100)
    """

    name = "ff-vn"
    #: as in the official ``GNN_VNLA`` ("neg_graph uses the same features as pos_graph, yet has
    #: different links to virtual nodes"): the positive graph's output feeds every copy of the
    #: next layer, so each layer is trained, like the first, to tell a training node linked to
    #: its own class node from the same node linked to a wrong one
    negatives_share_features = True

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, theta: float = 2.0, num_negs: int = 100) -> None:
        super().__init__(model, in_channels, hidden_channels, num_classes, num_layers, theta,
                         num_negs)
        self.in_channels = in_channels
        self.virtual = VirtualClassNodes(num_classes, in_channels)

    def _linked(self, data: Data, nodes: Tensor, classes: Tensor) -> Copy:
        g = self.virtual.augment(data.x, data.edge_index, nodes, classes)
        return g.x, g.edge_index

    def _positive(self, data: Data, train: Tensor) -> Copy:
        idx = train.nonzero().view(-1)
        return self._linked(data, idx, data.y[idx])

    def _negatives(self, data: Data, train: Tensor, wrong: Tensor) -> list[Copy]:
        idx = train.nonzero().view(-1)
        return [self._linked(data, idx, wrong[k]) for k in range(wrong.size(0))]

    def _candidate(self, data: Data, c: int, eval_mask: Tensor, labelled: Tensor) -> Copy:
        nodes = (labelled | eval_mask).nonzero().view(-1)
        classes = torch.where(eval_mask[nodes], torch.full_like(nodes, c), data.y[nodes])
        return self._linked(data, nodes, classes)
