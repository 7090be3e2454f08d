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

import warnings
from abc import abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.metrics import accuracy
from graphkit.train.forward.augment import AugmentedGraph, VirtualClassNodes, label_matrix
from graphkit.train.forward.base import NodeScheme, check_node_inputs, param_dtype
from graphkit.train.forward.layers import (
    SPARSE_DENSITY,
    SPARSE_INPUT_MODELS,
    ForwardLayer,
    l2_normalize_rows,
    make_conv,
    sparse_if_mostly_zero,
)
from graphkit.train.forward.losses import sf_loss
from graphkit.train.forward.node_sf import augment_training_nodes, class_probabilities
from graphkit.train.forward.rowsplit import RowSplitForward, supports_row_split
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog, local_step

__all__ = ["SFTop2Input", "SFTop2Loss", "mean_with_upper_states"]


def mean_with_upper_states(l: int, out: Tensor, states: list[Tensor]) -> Tensor:
    """Top2Loss's embedding of layer ``l``: the mean of its raw ``out`` and the L2-normalised
    ``states`` of the layers above it (``states[l + 1:]``)."""
    return torch.stack([out, *(l2_normalize_rows(s) for s in states[l + 1:])]).mean(dim=0)


def cat_csr(a: Tensor, b: Tensor) -> Tensor:
    """``[a | b]`` of two sparse CSR matrices with the same rows: what ``to_sparse_csr`` of the
    dense concatenation gives (each row's entries of ``a``, then those of ``b``)."""
    ca, cb = a.crow_indices(), b.crow_indices()
    na, nb = ca.diff(), cb.diff()
    crow = ca + cb
    rows = torch.arange(na.numel(), device=ca.device)
    ra, rb = rows.repeat_interleave(na), rows.repeat_interleave(nb)
    pos_a = crow[:-1][ra] + torch.arange(ra.numel(), device=ca.device) - ca[:-1][ra]
    pos_b = crow[:-1][rb] + na[rb] + torch.arange(rb.numel(), device=ca.device) - cb[:-1][rb]
    cols = ca.new_empty(ra.numel() + rb.numel())
    vals = a.values().new_empty(cols.numel())
    cols[pos_a], cols[pos_b] = a.col_indices(), b.col_indices() + a.size(1)
    vals[pos_a], vals[pos_b] = a.values(), b.values()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, vals, (a.size(0), a.size(1) + b.size(1)))


class _TopDown(NodeScheme):
    """Shared set-up and time-step training loop of the top-down SF schemes.

    With ``row_split`` (GCN, SAGE, GAT: :func:`~graphkit.train.forward.rowsplit.supports_row_split`)
    each layer's edges, split into those into the loss rows (training and class nodes) and the
    others, and a GCN's normalisation of the whole graph are computed once per fit
    (:class:`~graphkit.train.forward.rowsplit.RowSplitForward`). A training step then
    differentiates only the loss rows' block and fills in the other rows of the new state
    without autograd; inference and the initial states propagate over the whole graph with the
    normalisation computed once. The fixed first-layer input is normalised (and made sparse)
    once. Every row sums the same terms in the same order as without the split, so the results
    are the same.
    """

    def __init__(self, num_classes: int, in_channels: int, temperature: float,
                 row_split: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes, self.temperature = num_classes, temperature
        self.row_split = row_split
        self.virtual = VirtualClassNodes(num_classes, in_channels)
        self.graph: AugmentedGraph | None = None
        self.layers = nn.ModuleList()
        #: per layer: (loss rows / other rows split, whole-graph split), or None
        self._splits: list[tuple[RowSplitForward, RowSplitForward] | None] = []

    def _build_fitted_inputs(self) -> None:
        self.graph = augment_training_nodes(self.virtual, self.data, self.train_mask)
        self._build_splits()

    def _build_splits(self) -> None:
        graph = self.graph
        loss_rows = torch.cat([self.train_mask, self.train_mask.new_ones(graph.num_classes)])
        every_row = torch.ones_like(loss_rows)
        # layer 0 keeps its (fixed) input, prepared once; the other layers are always given one
        placeholder = graph.x.new_empty(loss_rows.numel(), 0)
        self._splits = []
        for l, layer in enumerate(self.layers):
            if not (self.row_split and supports_row_split(layer)):
                self._splits.append(None)
                continue
            x = self._fixed_input() if l == 0 else placeholder
            self._splits.append((RowSplitForward(layer, x, graph.edge_index,
                                                 [loss_rows, ~loss_rows]),
                                 RowSplitForward(layer, x, graph.edge_index, [every_row])))

    def _fixed_input(self) -> Tensor:
        """The first layer's input when it does not change over time steps."""
        return self.graph.x

    def _forward(self, l: int, x: Tensor | None, prepared: bool = False) -> Tensor:
        """Layer ``l``'s whole output on ``x`` (``None``: :meth:`_fixed_input`), no autograd
        needed."""
        split = self._splits[l] if self._splits else None
        if split is None:
            x = self._fixed_input() if x is None else x
            return self.layers[l](x, self.graph.edge_index, prepared=prepared)
        whole = split[1] if x is None else split[1].with_input(x, prepared)
        return whole()

    def _train_forward(self, l: int, x: Tensor | None, prepared: bool = False
                       ) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """Layer ``l``'s output for its loss (differentiable, exact on the loss rows), and a
        function of it that returns the whole output, detached (call it before the step)."""
        split = self._splits[l] if self._splits else None
        if split is None:
            x = self._fixed_input() if x is None else x
            return self.layers[l](x, self.graph.edge_index, prepared=prepared), Tensor.detach
        rows = split[0] if x is None else split[0].with_input(x, prepared)
        return rows.rows(0), rows

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
        if check_node_inputs(data, train_mask, val_mask, self.in_channels,
                             param_dtype(self)) > self.num_classes:
            raise ValueError(f"data has more classes than num_classes={self.num_classes}")
        trainer = trainer or LayerwiseTrainer()
        self.data, self.train_mask = data, train_mask
        # indices rather than masks in the loss: no device sync per step
        self._train_idx = train_mask.nonzero().view(-1)
        self._y_train = data.y[self._train_idx]
        self._build_fitted_inputs()
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
    r"""SF-Top2Loss: each layer's SF loss sees the mean of its output and the layers above
    (Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    The loss of layer :math:`l` is the SF loss of :class:`SingleForward` on
    :math:`\frac{1}{L-l+1}(\mathbf{h}^{(l)} + \sum_{k>l} \bar{\mathbf{h}}^{(k)})`, the upper
    states detached, so the layers above steer a layer without a backward pass between them.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_classes (int): number of classes.
        num_layers (int): number of layers. (default: 4)
        temperature (float): softmax temperature. (default: 1.0)
        row_split (bool): a training step differentiates only the rows its loss reads, and
            each layer's edge split and GCN normalisation are computed once per fit (see
            :class:`SFTop2Input`; the same results, less time per step). (default: :obj:`True`)
        bottom_up (str): how the bottom-up pass that gives the initial states and every
            evaluation's states chains the layers. ``"normalized"``: each layer reads the
            L2-normalised output below, as in training. ``"raw"``: each layer reads the raw
            output below (the first layer the raw features) and only the stored states are
            normalised, as the official ``GNNTop2LossSF.bottom_up``; evaluation then scores
            each layer on the normalised state below it. (default: :obj:`"normalized"`)
    """

    name = "sf-top2loss"
    #: gradient-norm clipping of every local step (as in the official code)
    grad_clip = 1.0

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, temperature: float = 1.0, row_split: bool = True,
                 bottom_up: str = "normalized") -> None:
        super().__init__(num_classes, in_channels, temperature, row_split)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if bottom_up not in ("normalized", "raw"):
            raise ValueError(f"bottom_up must be 'normalized' or 'raw', got {bottom_up!r}")
        self.bottom_up = bottom_up
        self.layers.extend(
            ForwardLayer(make_conv(model, in_channels if i == 0 else hidden_channels,
                                   hidden_channels),
                         sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))

    def _bottom_up(self) -> list[Tensor]:
        """Every layer's output in one pass up the stack (consumers normalise them)."""
        raw = self.bottom_up == "raw"  # raw: no normalisation inside the chain
        h, states = (self.graph.x if raw else None), []  # None: the first layer's fixed input
        for l in range(len(self.layers)):
            h = self._forward(l, h, prepared=raw)
            states.append(h)
        return states

    def _init_states(self) -> list[Tensor]:
        return self._bottom_up()

    _mixed = staticmethod(mean_with_upper_states)

    def _time_step(self, states: list[Tensor], optimizers: list, trainer: LayerwiseTrainer
                   ) -> tuple[list[Tensor], Tensor]:
        # the previous time step's states: parallel updates (None: the fixed first input)
        inputs = [None, *(s.detach() for s in states)]
        upper = [s.detach() for s in states]
        new, total = [], 0.0
        for l, (layer, opt) in enumerate(zip(self.layers, optimizers)):
            out, whole = self._train_forward(l, inputs[l])
            loss = self._loss(self._mixed(l, out, upper))
            new.append(whole(out))  # before the step: the state of this step's parameters
            total += local_step(layer, opt, loss, self.grad_clip)
        return new, total

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """One bottom-up pass; per layer the mean with the layers above; probabilities summed."""
        self._fitted(eval_mask, labelled)
        self.eval()
        states = self._bottom_up()
        total, out = 0.0, []
        for l, h in enumerate(states):
            if self.bottom_up == "raw":  # layer l on the normalised state below it
                h = self._forward(l, None if l == 0 else states[l - 1])
            total = total + class_probabilities(self._mixed(l, h, states), self.graph, eval_mask,
                                                self.temperature)
            out.append(total)
        return out


class SFTop2Input(_TopDown):
    r"""SF-Top2Input: layer :math:`l` reads the normalised states below and above it
    (Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    :math:`\mathbf{h}^{(l)}_t = f_l([\bar{\mathbf{h}}^{(l-1)}_{t-1} \,\|\,
    \bar{\mathbf{h}}^{(l+1)}_{t-1}])` (:math:`\bar{\cdot}`: rows L2-normalised; the top
    layer reads the label vectors from above), each layer trained on the SF loss of
    :class:`SingleForward` at every time step.

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
        row_split (bool): each layer's edges are split once per fit into those into the loss
            rows (training and class nodes) and the others, with a GCN's normalisation of the
            whole graph computed once; a training step differentiates only the loss rows'
            block and fills in the rest of the new state without autograd; the fixed part of
            the first layer's input is normalised (and made sparse) once. Every row sums the
            same terms in the same order: the same results, less time per step. GCN, SAGE
            and GAT (:func:`~graphkit.train.forward.rowsplit.supports_row_split`); other
            layers run over the whole graph. (default: :obj:`True`)
    """

    name = "sf-top2input"

    def __init__(self, model: str, in_channels: int, hidden_channels: int, num_classes: int,
                 num_layers: int = 4, temperature: float = 1.0, alternating: bool = True,
                 test_time_steps: int = 10, skip_steps: int = 2, row_split: bool = True) -> None:
        super().__init__(num_classes, in_channels, temperature, row_split)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0 <= skip_steps < test_time_steps:
            raise ValueError(f"need 0 <= skip_steps < test_time_steps, got {skip_steps}, "
                             f"{test_time_steps}")
        self.alternating, self.test_time_steps = alternating, test_time_steps
        self._below0: Tensor | None = None  # the first layer's normalised lower half (row_split)
        self._below0_csr: Tensor | None = None
        self.skip_steps = skip_steps
        sizes = [in_channels] + [hidden_channels] * num_layers + [num_classes]
        # each layer normalises its two halves itself, so the conv sees the raw concatenation
        self.layers.extend(
            ForwardLayer(make_conv(model, sizes[i] + sizes[i + 2], sizes[i + 1]),
                         normalize=False, sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))

    def _build_splits(self) -> None:
        super()._build_splits()
        # the first layer's lower half never changes: normalised once, and kept as sparse CSR
        # where the layer takes a sparse input (the upper half is appended at every call)
        self._below0 = self._below0_csr = None
        if self.row_split:
            self._below0 = l2_normalize_rows(self.graph.x).detach()
            first = self.layers[0]
            if first.sparse_input and self._below0.device.type == "cpu":
                csr = sparse_if_mostly_zero(self._below0)  # dense features: no CSR copy
                self._below0_csr = None if csr.layout == torch.strided else csr

    def _input(self, l: int, below: Tensor, above: Tensor) -> Tensor:
        """Layer ``l``'s input ``[norm(below) | norm(above)]``, prepared
        (:meth:`ForwardLayer.prepare`)."""
        up = l2_normalize_rows(above).detach()
        if l == 0 and self._below0 is not None:
            if self._below0_csr is not None:
                nnz = self._below0_csr.values().numel() + int(torch.count_nonzero(up))
                if nnz < SPARSE_DENSITY * up.size(0) * (self._below0.size(1) + up.size(1)):
                    with warnings.catch_warnings():  # "sparse CSR support is in beta"
                        warnings.simplefilter("ignore", UserWarning)
                        return cat_csr(self._below0_csr, up.to_sparse_csr())
            return self.layers[0].prepare(torch.cat([self._below0, up], dim=1))
        x = torch.cat([l2_normalize_rows(below), up], dim=1).detach()
        return self.layers[l].prepare(x)

    def _run_layer(self, l: int, below: Tensor, above: Tensor) -> Tensor:
        return self._forward(l, self._input(l, below, above), prepared=True)

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

    def _step(self, states: list[Tensor], visit, train: bool = False) -> list[Tensor]:
        """One recurrent step; ``visit(l, out)`` sees each layer's output (``train``: exact on
        the loss rows and differentiable, for a local step)."""
        new: list[Tensor | None] = [None] * len(states)
        new[0], new[-1] = states[0], states[-1]
        for l in self._order():
            fresh = self.alternating
            below = new[l] if fresh and new[l] is not None else states[l]
            above = new[l + 2] if fresh and new[l + 2] is not None else states[l + 2]
            x = self._input(l, below, above)
            if train:
                out, whole = self._train_forward(l, x, prepared=True)
                new[l + 1] = whole(out)  # before the step: the state of this step's parameters
            else:
                out = new[l + 1] = self._forward(l, x, prepared=True).detach()
            visit(l, out)
        return new

    def _time_step(self, states: list[Tensor], optimizers: list, trainer: LayerwiseTrainer
                   ) -> tuple[list[Tensor], Tensor]:
        total = 0.0

        def train(l: int, out: Tensor) -> None:
            nonlocal total
            total += trainer.step(self.layers[l], optimizers[l], self._loss(out))

        return self._step(states, train, train=True), total

    @torch.no_grad()
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """Probabilities summed over steps ``skip_steps..`` and over layers ``1..l``."""
        self._fitted(eval_mask, labelled)
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
