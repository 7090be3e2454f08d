r"""Link prediction by forward learning with top-down signals: Top2Input and Top2Loss.

`Forward Learning of Graph Neural Networks <https://arxiv.org/abs/2403.11004>`_ (Park et al.,
ICLR 2024), Sections 3.3-3.4. As in :mod:`~graphkit.train.forward.link`, every layer is trained
alone with the dot-product BCE of its own output on the training pairs, and no gradient crosses
layers; training runs in *time steps*, each one local step of every layer.

* :class:`LinkTop2Input` (``GNN_FL-CE-TopDown`` of the official code): layer :math:`l` reads
  :math:`[\hat{\mathbf{h}}^{(l-1)} \,\|\, \hat{\mathbf{h}}^{(l+1)}]`, the L2-normalised states
  below and above it (the top layer reads the state below only); the states start from one
  bottom-up pass with zero top-down input and are carried over time steps; with alternating
  updates the even layers are updated first and the odd layers then read their fresh states.
  A pair's score runs ``test_time_steps`` recurrent steps from a fresh bottom-up pass and
  averages :math:`\sigma(\mathbf{h}^{(l)\top}_u \mathbf{h}^{(l)}_v)` over every layer and the
  steps ``skip_steps ..``. No weight decay and no gradient clipping, as in the official script.
* :class:`LinkTop2Loss` (graphkit's link version of the node scheme ``sf-top2loss``, which the
  official code has for nodes only): layer :math:`l`'s loss scores the mean of its fresh output
  and the normalised previous-step states of the layers above; every layer reads the previous
  step's state below it; gradient norms are clipped to 1. A pair's score averages over layers
  the sigmoid logits of that mean after one bottom-up pass.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphkit.metrics import roc_auc
from graphkit.train.forward.base import param_dtype
from graphkit.train.forward.layers import (
    SPARSE_ADJACENCY_MODELS,
    SPARSE_DENSITY,
    SPARSE_INPUT_MODELS,
    ForwardLayer,
    l2_normalize_rows,
    make_conv,
    propagation_input,
    sparse_if_mostly_zero,
)
from graphkit.train.forward.link import check_link_data
from graphkit.train.forward.losses import link_logits, link_loss
from graphkit.train.forward.node_topdown import mean_with_upper_states
from graphkit.train.forward.rowsplit import given_edge_weights
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog, local_step

__all__ = ["LinkTop2Input", "LinkTop2Loss"]


def _cat_dense(below: Tensor, up: Tensor | None) -> Tensor:
    return below if up is None else torch.cat([below, up], dim=1)


class _DenseBlockAppender:
    """``[a | b]`` as sparse CSR for a fixed sparse CSR ``a`` and a dense ``b`` of a fixed
    width: the structure is built once, a call only places ``b``'s values (its zeros kept as
    stored entries, the same matrix)."""

    def __init__(self, a: Tensor, width: int) -> None:
        n, f = a.size(0), a.size(1)
        w = width - f
        ca = a.crow_indices()
        na = ca.diff()
        rows = torch.arange(n, device=ca.device)
        self.size, self.w = (n, width), w
        self.crow = ca + torch.arange(n + 1, device=ca.device) * w
        self.pos_a = torch.arange(ca[-1], device=ca.device) + rows.repeat_interleave(na) * w
        self.pos_b = ((ca[1:] + rows * w).unsqueeze(1)
                      + torch.arange(w, device=ca.device)).reshape(-1)
        self.cols = ca.new_empty(int(self.crow[-1]))
        self.cols[self.pos_a] = a.col_indices()
        self.cols[self.pos_b] = (torch.arange(w, device=ca.device) + f).repeat(n)
        self.a, self.a_values = a, a.values()

    def __call__(self, b: Tensor | None) -> Tensor:
        if b is None:
            return self.a
        values = self.a_values.new_empty(self.cols.numel())
        values[self.pos_a] = self.a_values
        values[self.pos_b] = b.reshape(-1).to(values.dtype)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.cols, values, self.size)


class _LinkTopDown(nn.Module, ABC):
    """Shared time-step training of the top-down link schemes, early-stopped on the
    validation ROC-AUC of the whole model."""

    weight_decay = 5e-4

    def __init__(self, model: str, in_channels: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.in_channels = in_channels
        self.layers = nn.ModuleList()
        #: GCN and SAGE propagate over a sparse adjacency built once per graph: the same
        #: function as per-edge messages, and every step and every recurrent test step
        #: propagates many times over the same graph
        self.sparse_adjacency = model in SPARSE_ADJACENCY_MODELS
        #: GCN's normalisation is applied to that adjacency once, not in each of the many
        #: layer calls (the same values: ``gcn_norm`` is what GCNConv would call each time)
        self.normalize_once = model == "gcn"
        self._adjacencies: list[tuple[tuple, Tensor]] = []

    def reset_parameters(self) -> None:
        """Re-initialise every layer as at construction."""
        for layer in self.layers:
            layer.reset_parameters()

    def __getstate__(self) -> dict:
        # the caches are rebuilt on demand (and sparse CSR tensors neither pickle nor deepcopy)
        state = dict(self.__dict__)
        state["_adjacencies"] = []
        if "_below0" in state:
            state["_below0"] = None
        return state

    def _adjacency(self, data: Data) -> Tensor:
        """What the layers propagate over for ``data`` (built once per graph: the training,
        validation and test graphs alternate; an in-place edit or another node count builds
        it again)."""
        if not self.sparse_adjacency:
            return data.edge_index
        conv = self.layers[0].conv
        normalize = self._normalizes_once()
        dtype = param_dtype(self)  # the values' dtype: the model's (float64 after .double())
        key = (data.edge_index, data.edge_index._version, data.num_nodes, normalize, dtype)
        for k, adj in self._adjacencies:
            if k[0] is key[0] and k[1:] == key[1:]:
                return adj
        adj = propagation_input(data.edge_index, data.num_nodes, "sparse", dtype)
        if normalize:
            adj, _ = gcn_norm(adj, None, data.num_nodes, conv.improved, conv.add_self_loops,
                              conv.flow, dtype)
        self._adjacencies = [*self._adjacencies[-2:], (key, adj)]
        return adj

    def _normalizes_once(self) -> bool:
        return (self.sparse_adjacency and self.normalize_once
                and bool(getattr(self.layers[0].conv, "normalize", False)))

    def _propagate(self, layer: ForwardLayer, x: Tensor, data: Data,
                   prepared: bool = False) -> Tensor:
        """``layer`` on ``x`` over ``data``'s graph (its adjacency from :meth:`_adjacency`,
        already normalised where :attr:`normalize_once` applies)."""
        adj = self._adjacency(data)
        if self._normalizes_once():
            with given_edge_weights(layer.conv):
                return layer(x, adj, prepared=prepared)
        return layer(x, adj, prepared=prepared)

    @abstractmethod
    def _time_step(self, states: list, train: Data, optimizers: list,
                   trainer: LayerwiseTrainer) -> tuple[list, Tensor]:
        """One local step of every layer; the new states and the summed loss."""

    @abstractmethod
    def _init_states(self, data: Data) -> list:
        """The states a training run starts from."""

    def fit(self, train: Data, val: Data, trainer: LayerwiseTrainer | None = None
            ) -> list[StoppingLog]:
        """Train every layer for up to ``trainer.epochs`` time steps on ``train``; early-stop
        on ``val`` ROC-AUC and restore the best time step's parameters."""
        check_link_data(train, "train", self.in_channels, dtype=param_dtype(self))
        check_link_data(val, "val", self.in_channels, dtype=param_dtype(self))
        trainer = trainer or LayerwiseTrainer(weight_decay=self.weight_decay)
        optimizers = [trainer.optimizer(layer) for layer in self.layers]
        with torch.no_grad():
            states = self._init_states(train)

        def epoch() -> Tensor:
            nonlocal states
            states, loss = self._time_step(states, train, optimizers, trainer)
            return loss

        def score() -> float:
            return roc_auc(val.edge_label, self._layer_scores(val)[-1])

        return [trainer.fit(self, epoch, score)]

    @abstractmethod
    def _layer_scores(self, data: Data) -> list[Tensor]:
        """Pair scores averaged over layers ``1..l``, for each ``l`` (no checks)."""

    @torch.no_grad()
    def layer_scores(self, data: Data) -> list[Tensor]:
        """Scores of ``data.edge_label_index`` averaged over layers ``1..l``, for each l."""
        check_link_data(data, "data", self.in_channels, labels=False,
                        dtype=param_dtype(self))
        self.eval()
        return self._layer_scores(data)

    def predict(self, data: Data) -> Tensor:
        """Pair scores of the whole model."""
        return self.layer_scores(data)[-1]

    @staticmethod
    def _running_means(per_layer: list[Tensor]) -> list[Tensor]:
        out, total = [], 0.0
        for l, scores in enumerate(per_layer):
            total = total + scores
            out.append(total / (l + 1))
        return out


class LinkTop2Input(_LinkTopDown):
    r"""Top-down link prediction: layer :math:`l` reads the normalised states below and above
    (the official ``GNN_FL-CE-TopDown``, Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    :math:`\mathbf{h}^{(l)}_t = f_l([\bar{\mathbf{h}}^{(l-1)}_{t-1} \,\|\,
    \bar{\mathbf{h}}^{(l+1)}_{t-1}])`, each layer trained on the link BCE of its pair dot
    products; a pair's score averages the layers' sigmoids over the recurrent test steps.

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_layers (int): number of layers. (default: 4)
        alternating (bool): update even layers, then odd ones. (default: :obj:`True`)
        test_time_steps (int): recurrent steps at inference. (default: 10)
        skip_steps (int): first steps left out of the average at inference. (default: 2)
    """

    name = "sf-top2input"
    #: the official top-down link script's Adam has no weight decay
    weight_decay = 0.0

    def __init__(self, model: str, in_channels: int, hidden_channels: int,
                 num_layers: int = 4, alternating: bool = True, test_time_steps: int = 10,
                 skip_steps: int = 2) -> None:
        super().__init__(model, in_channels, num_layers)
        if not 0 <= skip_steps < test_time_steps:
            raise ValueError(f"need 0 <= skip_steps < test_time_steps, got {skip_steps}, "
                             f"{test_time_steps}")
        self.alternating = alternating
        self.test_time_steps, self.skip_steps = test_time_steps, skip_steps
        # nothing above the top layer: its input is the state below only
        sizes = [in_channels] + [hidden_channels] * num_layers + [0]
        self.layers.extend(
            ForwardLayer(make_conv(model, sizes[i] + sizes[i + 2], sizes[i + 1]),
                         normalize=False, sparse_input=i == 0 and model in SPARSE_INPUT_MODELS)
            for i in range(num_layers))
        #: the first layer's input builder for the features (and their version) it was made for
        self._below0: tuple[Tensor, int, Callable[[Tensor | None], Tensor]] | None = None

    def _first_input(self, x: Tensor) -> Callable[[Tensor | None], Tensor]:
        """The first layer's input builder ``above -> [norm(x) | norm(above)]`` for the
        features ``x`` (kept while the same tensor comes back)."""
        if self._below0 is None or self._below0[0] is not x or self._below0[1] != x._version:
            dense = l2_normalize_rows(x).detach()
            width = self.layers[0].conv.in_channels
            csr = None
            if self.layers[0].sparse_input and dense.device.type == "cpu":
                csr = sparse_if_mostly_zero(dense)  # bag-of-words features: a cheap first map
                csr = None if csr.layout == torch.strided else csr
            if csr is not None and (csr.values().numel() + dense.size(0) * (
                    width - dense.size(1)) >= SPARSE_DENSITY * dense.size(0) * width):
                csr = None
            self._below0 = (x, x._version, _DenseBlockAppender(csr, width) if csr is not None
                            else partial(_cat_dense, dense))
        return self._below0[2]

    def _input(self, below: Tensor, above: Tensor | None, first: bool = False) -> Tensor:
        """``[norm(below) | norm(above)]`` (``first``: the first layer, whose lower half is the
        fixed features, normalised once and passed as sparse CSR where they are mostly zero;
        the same function as the dense input)."""
        up = None if above is None else l2_normalize_rows(above).detach()
        if first:
            return self._first_input(below)(up)
        below = l2_normalize_rows(below).detach()
        return below if up is None else torch.cat([below, up], dim=1)

    def _init_states(self, data: Data) -> list:
        """``[x, h_1 .. h_L, None]`` from one bottom-up pass with zero top-down input."""
        states: list = [data.x]
        for layer in self.layers:
            width = layer.conv.in_channels - states[-1].size(1)
            above = states[-1].new_zeros(states[-1].size(0), width) if width else None
            inp = self._input(states[-1], above, first=len(states) == 1)
            states.append(self._propagate(layer, inp, data, prepared=True).detach())
        return states + [None]

    def _order(self) -> list[int]:
        idx = list(range(len(self.layers)))
        return idx[0::2] + idx[1::2] if self.alternating else idx

    def _step(self, states: list, data: Data,
              visit: Callable[[int, Tensor], Tensor]) -> list:
        """One recurrent step; ``visit(l, out)`` sees layer ``l``'s output and returns its new
        state."""
        new: list = [None] * len(states)
        new[0] = states[0]
        for l in self._order():
            fresh = self.alternating
            below = new[l] if fresh and new[l] is not None else states[l]
            above = new[l + 2] if fresh and new[l + 2] is not None else states[l + 2]
            inp = self._input(below, above, first=l == 0)
            new[l + 1] = visit(l, self._propagate(self.layers[l], inp, data, prepared=True))
        new[-1] = states[-1]
        return new

    def _time_step(self, states: list, train: Data, optimizers: list,
                   trainer: LayerwiseTrainer) -> tuple[list, Tensor]:
        total = 0.0

        def learn(l: int, out: Tensor) -> Tensor:
            nonlocal total
            loss = link_loss(out, train.edge_label_index, train.edge_label)
            total = total + trainer.step(self.layers[l], optimizers[l], loss)
            return out.detach()  # the state of this step's parameters, before the step

        return self._step(states, train, learn), total

    def _layer_scores(self, data: Data) -> list[Tensor]:
        states = self._init_states(data)
        per_layer = [0.0] * len(self.layers)
        kept = self.test_time_steps - self.skip_steps
        for t in range(self.test_time_steps):

            def record(l: int, out: Tensor, keep: bool = t >= self.skip_steps) -> Tensor:
                if keep:
                    per_layer[l] = per_layer[l] + link_logits(
                        out, data.edge_label_index).sigmoid() / kept
                return out

            states = self._step(states, data, record)
        return self._running_means(per_layer)


class LinkTop2Loss(_LinkTopDown):
    r"""Top-down link prediction: each layer's loss scores the mean of its output and the
    normalised states of the layers above (graphkit's link version of
    :class:`~graphkit.train.forward.SFTop2Loss`, Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    Args:
        model (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        in_channels (int): input feature width.
        hidden_channels (int): width of every layer.
        num_layers (int): number of layers. (default: 4)
    """

    name = "sf-top2loss"
    #: gradient-norm clipping of every local step (as the node scheme's official code)
    grad_clip = 1.0

    def __init__(self, model: str, in_channels: int, hidden_channels: int,
                 num_layers: int = 4) -> None:
        super().__init__(model, in_channels, num_layers)
        self.layers.extend(
            ForwardLayer(make_conv(model, in_channels if i == 0 else hidden_channels,
                                   hidden_channels))
            for i in range(num_layers))

    def _bottom_up(self, data: Data) -> list[Tensor]:
        h, states = data.x, []
        for layer in self.layers:  # each layer normalises its input
            h = self._propagate(layer, h, data)
            states.append(h)
        return states

    def _init_states(self, data: Data) -> list[Tensor]:
        return [h.detach() for h in self._bottom_up(data)]

    def _time_step(self, states: list, train: Data, optimizers: list,
                   trainer: LayerwiseTrainer) -> tuple[list, Tensor]:
        inputs = [train.x, *states]  # the previous step's states: parallel updates
        new, total = [], 0.0
        for l, (layer, opt) in enumerate(zip(self.layers, optimizers)):
            out = self._propagate(layer, inputs[l], train)
            mixed = mean_with_upper_states(l, out, states)
            new.append(out.detach())
            total = total + local_step(layer, opt, link_loss(
                mixed, train.edge_label_index, train.edge_label), self.grad_clip)
        return new, total

    def _layer_scores(self, data: Data) -> list[Tensor]:
        states = self._bottom_up(data)
        return self._running_means([
            link_logits(mean_with_upper_states(l, h, states), data.edge_label_index).sigmoid()
            for l, h in enumerate(states)])
