r"""Single-forward learning with top-down signals: SF-Top2Loss and SF-Top2Input.

`Forward Learning of Graph Neural Networks <https://arxiv.org/abs/2403.11004>`_ (Park et al.,
ICLR 2024), Section 3.3. Training runs in *time steps*; at each step every layer takes one
local optimisation step on the SF loss (:mod:`~graphkit.train.forward.node_sf`), and upper layers
feed information back down without any gradient crossing layers.

* **Top2Loss**: the embedding scored by layer :math:`l`'s loss is the mean of its fresh output
  and the (detached, L2-normalised) outputs of the layers above it at the previous time step,
  :math:`\bar{\mathbf{h}}^{(l)} = \mathrm{mean}(\mathbf{h}^{(l)}_t, \hat{\mathbf{h}}^{(l+1)}_{t-1},
  \dots, \hat{\mathbf{h}}^{(L)}_{t-1})`; every layer reads the state below it from the previous
  time step too (all layers update in parallel), and gradient norms are clipped to 1, as in the
  official ``GNNTop2LossSF``.
* **Top2Input**: layer :math:`l` reads
  :math:`[\hat{\mathbf{h}}^{(l-1)} \,\|\, \hat{\mathbf{h}}^{(l+1)}]`, the normalised states
  below and above; above the top layer is the label matrix (one-hot for training nodes,
  uniform for the others, identity rows for the virtual nodes). With alternating updates the
  even layers are updated first and the odd layers then read their fresh states. Inference runs
  ``test_time_steps`` recurrent steps and sums the class probabilities of every layer over
  steps ``2 .. test_time_steps - 1``.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.metrics import accuracy
from graphkit.train.forward.augment import AugmentedGraph, VirtualClassNodes, label_matrix
from graphkit.train.forward.base import NodeScheme, check_node_inputs
from graphkit.train.forward.layers import (
    SPARSE_INPUT_MODELS,
    ForwardLayer,
    l2_normalize_rows,
    make_conv,
)
from graphkit.train.forward.losses import sf_loss
from graphkit.train.forward.node_sf import augment_training_nodes, class_probabilities
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog, local_step

__all__ = ["SFTop2Input", "SFTop2Loss"]


class _TopDown(NodeScheme):
    """Shared set-up and time-step training loop of the top-down SF schemes."""

    def __init__(self, num_classes: int, in_channels: int, temperature: float) -> None:
        super().__init__()
        self.num_classes, self.temperature = num_classes, temperature
        self.virtual = VirtualClassNodes(num_classes, in_channels)
        self.graph: AugmentedGraph | None = None
        self.layers = nn.ModuleList()

    def _loss(self, out: Tensor) -> Tensor:
        """The SF loss of one layer's output on the training nodes."""
        return sf_loss(out[self._train_idx], out[self.graph.num_real:], self._y_train,
                       self.temperature)

    @abstractmethod
    def _time_step(self, states: list[Tensor], optimizers: list, trainer: LayerwiseTrainer
                   ) -> tuple[list[Tensor], Tensor]:
        ...

    @abstractmethod
    def _init_states(self) -> list[Tensor]:
        ...

    def fit(self, data: Data, train_mask: Tensor, val_mask: Tensor,
            trainer: LayerwiseTrainer | None = None) -> list[StoppingLog]:
        if check_node_inputs(data, train_mask, val_mask) > self.num_classes:
            raise ValueError(f"data has more classes than num_classes={self.num_classes}")
        trainer = trainer or LayerwiseTrainer()
        self.data, self.train_mask = data, train_mask
        # indices rather than masks in the loss: no device sync per step
        self._train_idx = train_mask.nonzero().view(-1)
        self._y_train = data.y[self._train_idx]
        self.graph = augment_training_nodes(self.virtual, data, train_mask)
        optimizers = [trainer.optimizer(layer) for layer in self.layers]
        with torch.no_grad():
            states = self._init_states()

        def epoch() -> Tensor:
            nonlocal states
            states, loss = self._time_step(states, optimizers, trainer)
            return loss

        def score() -> float:
            return accuracy(self.predict(val_mask), data.y[val_mask])

        return [trainer.fit(self, epoch, score)]


class SFTop2Loss(_TopDown):
    r"""SF-Top2Loss: each layer's SF loss sees the mean of its output and the layers above.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_classes (int): number of classes.
        num_layers (int): number of layers. (default: 4)
        temperature (float): softmax temperature. (default: 1.0)
    """

    name = "sf-top2loss"
    #: gradient-norm clipping of every local step (as in the official code)
    grad_clip = 1.0

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, temperature: float = 1.0) -> None:
        super().__init__(num_classes, in_channels, temperature)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers.extend(
            ForwardLayer(make_conv(model, in_channels if i == 0 else hidden_channels,
                                   hidden_channels),
                         sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))

    def _bottom_up(self) -> list[Tensor]:
        h, states = self.graph.x, []
        for layer in self.layers:
            h = layer(h, self.graph.edge_index)
            states.append(h)
        return states

    def _init_states(self) -> list[Tensor]:
        return self._bottom_up()

    @staticmethod
    def _mixed(l: int, out: Tensor, states: list[Tensor]) -> Tensor:
        """Mean of layer ``l``'s raw ``out`` and the L2-normalised states of the layers above."""
        return torch.stack([out, *(l2_normalize_rows(s) for s in states[l + 1:])]).mean(dim=0)

    def _time_step(self, states: list[Tensor], optimizers: list, trainer: LayerwiseTrainer
                   ) -> tuple[list[Tensor], Tensor]:
        inputs = [self.graph.x, *states]  # the previous time step's states: parallel updates
        upper = [s.detach() for s in states]
        new, total = [], 0.0
        for l, (layer, opt) in enumerate(zip(self.layers, optimizers)):
            out = layer(inputs[l].detach(), self.graph.edge_index)
            loss = self._loss(self._mixed(l, out, upper))
            total += local_step(layer, opt, loss, self.grad_clip)
            new.append(out.detach())
        return new, total

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """One bottom-up pass; per layer the mean with the layers above; probabilities summed."""
        self._fitted()
        self.eval()
        states = self._bottom_up()
        total, out = 0.0, []
        for l, h in enumerate(states):
            total = total + class_probabilities(self._mixed(l, h, states), self.graph, eval_mask,
                                                self.temperature)
            out.append(total)
        return out


class SFTop2Input(_TopDown):
    r"""SF-Top2Input: layer :math:`l` reads the normalised states below and above it.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_classes (int): number of classes.
        num_layers (int): number of layers. (default: 4)
        temperature (float): softmax temperature. (default: 1.0)
        alternating (bool): update even layers, then odd ones. (default: :obj:`True`)
        test_time_steps (int): recurrent steps at inference. (default: 10)
        skip_steps (int): first steps left out of the sum at inference. (default: 2)
    """

    name = "sf-top2input"

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, temperature: float = 1.0, alternating: bool = True,
                 test_time_steps: int = 10, skip_steps: int = 2) -> None:
        super().__init__(num_classes, in_channels, temperature)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0 <= skip_steps < test_time_steps:
            raise ValueError(f"need 0 <= skip_steps < test_time_steps, got {skip_steps}, "
                             f"{test_time_steps}")
        self.alternating, self.test_time_steps = alternating, test_time_steps
        self.skip_steps = skip_steps
        sizes = [in_channels] + [hidden_channels] * num_layers + [num_classes]
        # each layer normalises its two halves itself, so the conv sees the raw concatenation
        self.layers.extend(
            ForwardLayer(make_conv(model, sizes[i] + sizes[i + 2], sizes[i + 1]),
                         normalize=False, sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))

    def _run_layer(self, l: int, below: Tensor, above: Tensor) -> Tensor:
        x = torch.cat([l2_normalize_rows(below), l2_normalize_rows(above)], dim=1).detach()
        return self.layers[l](x, self.graph.edge_index)

    def _labels(self) -> Tensor:
        real = label_matrix(self.data.y, self.train_mask, self.num_classes)
        return torch.cat([real, torch.eye(self.num_classes, device=real.device)])

    def _init_states(self) -> list[Tensor]:
        """``[x, h_1 .. h_L, labels]`` from one bottom-up pass with zero top-down input."""
        states = [self.graph.x]
        for l, layer in enumerate(self.layers):
            width = layer.conv.in_channels - states[-1].size(1)
            zeros = states[-1].new_zeros(states[-1].size(0), width)
            states.append(self._run_layer(l, states[-1], zeros))
        states.append(self._labels())
        return states

    def _order(self) -> list[int]:
        idx = list(range(len(self.layers)))
        return idx[0::2] + idx[1::2] if self.alternating else idx

    def _step(self, states: list[Tensor], visit) -> list[Tensor]:
        """One recurrent step; ``visit(l, out)`` sees each layer's output (and may train)."""
        new: list[Tensor | None] = [None] * len(states)
        new[0], new[-1] = states[0], states[-1]
        for l in self._order():
            fresh = self.alternating
            below = new[l] if fresh and new[l] is not None else states[l]
            above = new[l + 2] if fresh and new[l + 2] is not None else states[l + 2]
            out = self._run_layer(l, below, above)
            visit(l, out)
            new[l + 1] = out.detach()
        return new

    def _time_step(self, states: list[Tensor], optimizers: list, trainer: LayerwiseTrainer
                   ) -> tuple[list[Tensor], Tensor]:
        total = 0.0

        def train(l: int, out: Tensor) -> None:
            nonlocal total
            total += trainer.step(self.layers[l], optimizers[l], self._loss(out))

        return self._step(states, train), total

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """Probabilities summed over steps ``skip_steps..`` and over layers ``1..l``."""
        self._fitted()
        self.eval()
        states = self._init_states()
        per_layer = [0.0] * len(self.layers)
        for t in range(self.test_time_steps):
            keep = t >= self.skip_steps

            def record(l: int, out: Tensor, keep: bool = keep) -> None:
                if keep:
                    per_layer[l] = per_layer[l] + class_probabilities(
                        out, self.graph, eval_mask, self.temperature)

            states = self._step(states, record)
        out, total = [], 0.0
        for p in per_layer:
            total = total + p
            out.append(total)
        return out
