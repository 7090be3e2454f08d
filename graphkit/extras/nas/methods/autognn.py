r"""Auto-GNN (AGNN): a reinforced conservative controller with constrained parameter sharing.

From `"Auto-GNN: Neural Architecture Search of Graph Neural Networks"
<https://arxiv.org/abs/1909.03184>`_ (Zhou, Song, Huang and Hu, 2019). A GNN of ``L`` layers
is described per layer by the GraphNAS action classes (:data:`ACTION_CLASSES`); the output
layer's width is the number of classes, so it has no ``hidden`` action.

- **Encoding** (:func:`autognn_space`): a :class:`~graphkit.extras.nas.space.SearchSpace` with
  one sub-space ``layer<i>`` per layer; a configuration ("cfg") is
  ``{"layer0": {"hidden": 64, "attention": "gat", ...}, "layer1": {...}}``, built into a
  network by :func:`autognn` (:class:`GraphNASNet`).
- **Skip class.** The paper's sixth class could not be confirmed from its text; graphkit takes
  ``skip`` in ``{False, True}``: a learned linear projection of the layer's input added to
  the layer's output before the activation (GraphNAS's residual option).
- **Conservative controller** (:class:`ConservativeController`): keeps the best architecture;
  an LSTM *modifier* reads it (one token per action) and picks ``max_changes`` distinct actions
  to change; one LSTM *per action class* reads that class's values across the layers and
  samples a new, different value for each picked action. ``max_changes`` is 2 by default
  (the paper's value was not found; 2 of the 11 actions of a two-layer net is a small step).
- **Search** (:class:`ConservativeSearch`): REINFORCE with a moving-average baseline,
  :math:`\nabla J \approx (R - b)\,\nabla \log \pi(\text{changes}, \text{values})`, with the
  child's validation accuracy as :math:`R`; the first architecture is drawn uniformly.
- **Constrained parameter sharing** (:func:`homogeneous`, :func:`inherit_weights`): a child's
  layer takes its parent's weights iff the two layers are homogeneous: same attention function,
  same activation and the same parameter shapes. Skip projections (and batch norms, which
  these networks do not have) are never shared. :class:`ChildTrainer` then trains an
  inheriting child for a few epochs instead of from scratch.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.searchers import ReinforceSearch
from graphkit.extras.nas.space import Choice, SearchSpace
from graphkit.nn.conv.graphnas_conv import (
    GRAPHNAS_AGGREGATIONS,
    GRAPHNAS_ATTENTIONS,
    GraphNASConv,
)
from graphkit.nn.sparse_input import feature_dropout
from graphkit.train import train_node_classifier

__all__ = [
    "ACTION_CLASSES",
    "AUTOGNN_ACTIVATIONS",
    "AUTOGNN_HEADS",
    "AUTOGNN_HIDDEN",
    "ChildTrainer",
    "ConservativeController",
    "ConservativeSearch",
    "GraphNASNet",
    "Proposal",
    "autognn",
    "autognn_space",
    "changed_actions",
    "homogeneous",
    "inherit_weights",
]

PAPER = "Auto-GNN: Neural Architecture Search of Graph Neural Networks"

#: the per-layer action classes, in the order the controllers read them
ACTION_CLASSES = ("hidden", "attention", "heads", "aggregation", "activation", "skip")
AUTOGNN_HIDDEN = (4, 8, 16, 32, 64, 128, 256)
AUTOGNN_HEADS = (1, 2, 4, 6, 8, 16)
AUTOGNN_ACTIVATIONS = (
    "sigmoid", "tanh", "relu", "identity", "softplus", "leaky_relu", "relu6", "elu"
)
_ACTIVATIONS = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "identity": lambda x: x,
    "softplus": F.softplus, "leaky_relu": F.leaky_relu, "relu6": F.relu6, "elu": F.elu,
}


def autognn_space(
    num_layers: int = 2,
    hidden: Sequence[int] = AUTOGNN_HIDDEN,
    attention: Sequence[str] = GRAPHNAS_ATTENTIONS,
    heads: Sequence[int] = AUTOGNN_HEADS,
    aggregation: Sequence[str] = GRAPHNAS_AGGREGATIONS,
    activation: Sequence[str] = AUTOGNN_ACTIVATIONS,
    skip: Sequence[bool] = (False, True),
) -> SearchSpace:
    """The AGNN space of ``num_layers`` layers (defaults: the paper's options per class).

    Narrower option lists give a sub-space (e.g. for a short CPU search); every option must
    belong to the paper's list of its class.
    """
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    allowed = {"hidden": AUTOGNN_HIDDEN, "attention": GRAPHNAS_ATTENTIONS,
               "heads": AUTOGNN_HEADS, "aggregation": GRAPHNAS_AGGREGATIONS,
               "activation": AUTOGNN_ACTIVATIONS, "skip": (False, True)}
    given = {"hidden": hidden, "attention": attention, "heads": heads,
             "aggregation": aggregation, "activation": activation, "skip": skip}
    for name, options in given.items():
        outside = [o for o in options if o not in allowed[name]]
        if outside:
            raise ValueError(f"{name} options {outside} are not in the AGNN space {allowed[name]}")
    layers = []
    for i in range(num_layers):
        classes = ACTION_CLASSES if i < num_layers - 1 else ACTION_CLASSES[1:]
        layers.append(SearchSpace(f"layer{i}", [Choice(c, tuple(given[c])) for c in classes]))
    return SearchSpace("autognn", layers)


def _layers(cfg: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    n = len(cfg)
    if n == 0 or set(cfg) != {f"layer{i}" for i in range(n)}:
        raise ValueError(f"an AGNN cfg has keys layer0 .. layer<L-1>, got {sorted(cfg)}")
    layers = [cfg[f"layer{i}"] for i in range(n)]
    for i, layer in enumerate(layers):
        need = set(ACTION_CLASSES if i < n - 1 else ACTION_CLASSES[1:])
        if not isinstance(layer, Mapping) or set(layer) != need:
            got = sorted(layer) if isinstance(layer, Mapping) else layer
            raise ValueError(f"layer{i} must set exactly {sorted(need)}, got {got}")
        if layer["activation"] not in _ACTIVATIONS:
            raise ValueError(f"layer{i}: unknown activation {layer['activation']!r}")
    return layers


class GraphNASNet(nn.Module):
    r"""The network an AGNN configuration describes: a stack of :class:`GraphNASConv`.

    Layer :math:`l` computes :math:`x \leftarrow \sigma_l\big(\mathrm{conv}_l(\mathrm{drop}(x))
    + [\text{skip}_l]\, W_l\, \mathrm{drop}(x)\big)`; hidden layers concatenate their heads
    (width ``hidden * heads``), the output layer averages them (width ``num_classes``), and
    its activation is searched too (as in GraphNAS). Returns class scores.

    Args:
        cfg (Mapping): the configuration (see :func:`autognn_space`).
        in_channels (int): input features.
        num_classes (int): output classes.
        dropout (float): dropout on every layer's input and on the attention coefficients
            (default: ``0.6``, GraphNAS's).
        pool_dim (int): hidden size of the message MLP of ``mean``/``max``/``mlp``
            aggregators (default: ``128``).

    Shapes:
        input ``x [N, in_channels]`` (dense or sparse CSR/COO), ``edge_index [2, E]``;
        output ``[N, num_classes]``.
    """

    def __init__(self, cfg: Mapping[str, Any], in_channels: int, num_classes: int,
                 dropout: float = 0.6, pool_dim: int = 128) -> None:
        super().__init__()
        layers = _layers(cfg)
        if in_channels < 1 or num_classes < 1:
            raise ValueError(
                f"in_channels and num_classes must be positive, got {in_channels}, {num_classes}"
            )
        check_positive(in_channels=in_channels, num_classes=num_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.cfg = copy.deepcopy(dict(cfg))
        self.dropout = float(dropout)
        self.activations = [layer["activation"] for layer in layers]
        self.convs = nn.ModuleList()
        self.skips = nn.ModuleDict()
        width = in_channels
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            out = num_classes if last else int(layer["hidden"])
            self.convs.append(GraphNASConv(
                width, out, int(layer["heads"]), concat=not last, attention=layer["attention"],
                aggregation=layer["aggregation"], pool_dim=pool_dim, dropout=dropout))
            new_width = out if last else out * int(layer["heads"])
            if layer["skip"]:
                self.skips[str(i)] = nn.Linear(width, new_width)
            width = new_width

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        for skip in self.skips.values():
            skip.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for i, (conv, act) in enumerate(zip(self.convs, self.activations)):
            x = feature_dropout(x, self.dropout, self.training)
            out = conv(x, edge_index)
            if str(i) in self.skips:
                out = out + self.skips[str(i)](x)
            x = _ACTIVATIONS[act](out)
        return x


@register_model("autognn", family="nas", paper=PAPER)
def autognn(cfg: Mapping[str, Any], in_channels: int, num_classes: int, dropout: float = 0.6,
            pool_dim: int = 128) -> GraphNASNet:
    """Build the :class:`GraphNASNet` of an AGNN configuration (see :func:`autognn_space`)."""
    return GraphNASNet(cfg, in_channels, num_classes, dropout=dropout, pool_dim=pool_dim)


# -- constrained parameter sharing ------------------------------------------------------------
def homogeneous(parent: GraphNASNet, child: GraphNASNet, layer: int) -> bool:
    """Whether ``child``'s layer ``layer`` may inherit ``parent``'s: same attention function,
    same activation and the same shape for every parameter of the convolution."""
    for name, net in (("parent", parent), ("child", child)):
        if not isinstance(net, GraphNASNet):
            raise ValueError(f"{name} must be a GraphNASNet, got {type(net).__name__}")
    if not 0 <= layer < min(len(parent.convs), len(child.convs)):
        raise ValueError(f"layer {layer} is not a layer of both networks")
    a, b = parent.convs[layer], child.convs[layer]
    if a.attention != b.attention or parent.activations[layer] != child.activations[layer]:
        return False
    shapes_a = {k: tuple(v.shape) for k, v in a.named_parameters()}
    shapes_b = {k: tuple(v.shape) for k, v in b.named_parameters()}
    return shapes_a == shapes_b


@torch.no_grad()
def inherit_weights(parent: GraphNASNet, child: GraphNASNet) -> list[bool]:
    """Copy ``parent``'s convolution weights into each homogeneous layer of ``child``.

    Skip projections are never copied. Returns, per layer of ``child``, whether it inherited.
    """
    for name, net in (("parent", parent), ("child", child)):
        if not isinstance(net, GraphNASNet):
            raise ValueError(f"{name} must be a GraphNASNet, got {type(net).__name__}")
    flags = []
    for i, conv in enumerate(child.convs):
        ok = i < len(parent.convs) and homogeneous(parent, child, i)
        if ok:
            for p_child, p_parent in zip(conv.parameters(), parent.convs[i].parameters()):
                p_child.copy_(p_parent)
        flags.append(ok)
    return flags


# -- the reinforced conservative controller --------------------------------------------------
def changed_actions(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The ``layer<i>.<class>`` actions whose value differs between two configurations."""
    out = []
    for name, layer in before.items():
        for cls, value in layer.items():
            if after[name][cls] != value:
                out.append(f"{name}.{cls}")
    return out


@dataclass
class Proposal:
    """A child proposed from the best architecture: its cfg, the changed actions (in the order
    picked), and the summed log-probability and entropy of the decisions (with gradients)."""

    cfg: dict[str, Any]
    changed: list[str]
    log_prob: Tensor
    entropy: Tensor


class ConservativeController(nn.Module):
    r"""AGNN's reinforced conservative controller: a guided modifier and per-class controllers.

    - **Modifier:** an LSTM reads the best architecture as one token per action (an embedding
      of the (action, value) pair); a linear head scores each action, and ``max_changes``
      distinct actions are drawn from the softmax of the scores, one after the other without
      replacement (actions with a single option are never drawn).
    - **Class controllers:** for each class, an LSTM reads the class's values in layer order
      and its head gives, per layer, logits over the class's options; a picked action draws a
      new value from them with its current value masked out.

    A child therefore differs from the best in exactly ``min(max_changes, #actions)`` actions.

    Args:
        space (SearchSpace): an :func:`autognn_space`.
        max_changes (int): actions changed per step, :math:`m` (default: ``2``).
        hidden (int): LSTM size of every controller (default: ``64``).
    """

    def __init__(self, space: SearchSpace, max_changes: int = 2, hidden: int = 64) -> None:
        super().__init__()
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        if not isinstance(max_changes, int) or max_changes < 1:
            raise ValueError(f"max_changes must be a positive integer, got {max_changes!r}")
        if hidden < 1:
            raise ValueError(f"hidden must be positive, got {hidden}")
        self.space = space
        self.max_changes = max_changes
        self.actions = [(path, choice) for path, choice in space.choices()]
        self.offsets = [space.segment(path).start for path, _ in self.actions]
        self.classes: dict[str, list[int]] = {}
        for k, (path, choice) in enumerate(self.actions):
            cls = path.split(".")[-1]
            first = self.classes.setdefault(cls, [k])[0]
            if k != first:
                if self.actions[first][1].options != choice.options:
                    raise ValueError(f"class {cls!r} has different options in different layers")
                self.classes[cls].append(k)
        self.token = nn.Embedding(space.num_features, hidden)
        self.modifier = nn.LSTM(hidden, hidden, batch_first=True)
        self.modifier_head = nn.Linear(hidden, 1)
        self.value_emb = nn.ModuleDict()
        self.class_rnn = nn.ModuleDict()
        self.class_head = nn.ModuleDict()
        for cls, ks in self.classes.items():
            n = len(self.actions[ks[0]][1])
            self.value_emb[cls] = nn.Embedding(n, hidden)
            self.class_rnn[cls] = nn.LSTM(hidden, hidden, batch_first=True)
            self.class_head[cls] = nn.Linear(hidden, n)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-0.1, 0.1) everywhere, as the NAS-RL controllers."""
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def _indices(self, cfg: Mapping[str, Any]) -> list[int]:
        return [choice.index(self.space.value_at(cfg, path)) for path, choice in self.actions]

    def propose(self, best: Mapping[str, Any],
                generator: torch.Generator | None = None) -> Proposal:
        """Draw a child of ``best`` (with the decisions' log-probability, for REINFORCE)."""
        self.space.validate(best)
        idx = self._indices(best)
        device = self.token.weight.device
        tokens = torch.tensor([o + i for o, i in zip(self.offsets, idx)], device=device)
        states, _ = self.modifier(self.token(tokens).unsqueeze(0))
        scores = self.modifier_head(states[0]).squeeze(-1)
        movable = torch.tensor([len(c) > 1 for _, c in self.actions], device=device)
        log_prob = scores.new_zeros(())
        entropy = scores.new_zeros(())
        picked: list[int] = []
        for _ in range(min(self.max_changes, int(movable.sum()))):
            logp = F.log_softmax(scores.masked_fill(~movable, float("-inf")), dim=0)
            k = int(torch.multinomial(logp.detach().exp().cpu(), 1, generator=generator))
            log_prob = log_prob + logp[k]
            entropy = entropy - (logp.exp() * logp.masked_fill(~movable, 0.0)).sum()
            movable = movable.clone()
            movable[k] = False
            picked.append(k)
        child = copy.deepcopy(dict(best))
        class_logits: dict[str, Tensor] = {}
        for k in picked:
            path, choice = self.actions[k]
            cls = path.split(".")[-1]
            if cls not in class_logits:
                values = torch.tensor([idx[j] for j in self.classes[cls]], device=device)
                out, _ = self.class_rnn[cls](self.value_emb[cls](values).unsqueeze(0))
                class_logits[cls] = self.class_head[cls](out[0])
            logits = class_logits[cls][self.classes[cls].index(k)]
            keep = torch.ones(len(choice), dtype=torch.bool, device=device)
            keep[idx[k]] = False  # a picked action always changes
            logp = F.log_softmax(logits.masked_fill(~keep, float("-inf")), dim=0)
            v = int(torch.multinomial(logp.detach().exp().cpu(), 1, generator=generator))
            log_prob = log_prob + logp[v]
            entropy = entropy - (logp.exp() * logp.masked_fill(~keep, 0.0)).sum()
            layer = path.split(".")[-2]
            child[layer] = {**child[layer], cls: choice.options[v]}
        names = [".".join(self.actions[k][0].split(".")[-2:]) for k in picked]
        return Proposal(child, names, log_prob, entropy)

    def extra_repr(self) -> str:
        return f"actions={len(self.actions)}, max_changes={self.max_changes}"


class ConservativeSearch(ReinforceSearch):
    r"""AGNN's search policy behind :class:`~graphkit.extras.nas.searchers.Searcher`'s
    ``run(evaluate, budget)``, with :class:`~graphkit.extras.nas.searchers.ReinforceSearch`'s
    REINFORCE step and baseline.

    The first proposal is uniform over the space; every later one is a
    :meth:`ConservativeController.propose` of the best configuration so far. :meth:`tell`
    takes one Adam step on :math:`-(R - b)\log\pi - w_H H` for the proposal just evaluated,
    updates the baseline :math:`b \leftarrow \beta b + (1-\beta) R` (initialised to the first
    reward) and replaces the best when :math:`R` beats it (strictly).

    Args:
        space (SearchSpace): an :func:`autognn_space`.
        max_changes (int): :math:`m`, actions changed per step (default: ``2``).
        hidden (int): controller LSTM size (default: ``64``).
        lr (float): controller Adam learning rate (default: ``0.0035``, GraphNAS's).
        baseline_decay (float): :math:`\beta` (default: ``0.95``).
        entropy_weight (float): :math:`w_H` (default: ``1e-4``, GraphNAS's).
        seed (int, optional): seeds the controller and its draws (default: :obj:`None`).
    """

    def __init__(self, space: SearchSpace, max_changes: int = 2, hidden: int = 64,
                 lr: float = 0.0035, baseline_decay: float = 0.95,
                 entropy_weight: float = 1e-4, seed: int | None = None) -> None:
        self.max_changes = max_changes
        self.rng = random.Random(seed)
        super().__init__(space, hidden=hidden, lr=lr, baseline_decay=baseline_decay,
                         entropy_weight=entropy_weight, seed=seed)
        self.best: dict[str, Any] | None = None
        self.best_score = float("-inf")
        self._pending: Proposal | None = None

    def _build_controller(self, hidden: int) -> ConservativeController:
        return ConservativeController(self.space, self.max_changes, hidden)

    def ask(self) -> dict[str, Any]:
        if self.best is None:
            self._pending = None
            return self.space.sample(self.rng)
        self._pending = self.controller.propose(self.best, self.generator)
        return copy.deepcopy(self._pending.cfg)

    def tell(self, cfg: Mapping[str, Any], score: float) -> None:
        pending, self._pending = self._pending, None
        policy = None
        if pending is not None and pending.cfg == dict(cfg):
            policy = (pending.log_prob, pending.entropy)
        self._reinforce(score, policy)
        if score > self.best_score:
            self.best, self.best_score = copy.deepcopy(dict(cfg)), score


# -- evaluating children ------------------------------------------------------------------------
@dataclass
class ChildRecord:
    """One evaluated child: which layers inherited, epochs trained, its seconds, validation
    accuracy, and when it finished (seconds since :meth:`ChildTrainer.restart_clock`)."""

    inherited: list[bool]
    epochs: int
    seconds: float
    val_acc: float
    finished: float = field(default=0.0)


class ChildTrainer:
    """``evaluate(cfg) -> validation accuracy`` for a search, with constrained sharing.

    Each child is a fresh :class:`GraphNASNet`; with ``share``, its layers homogeneous to the
    best network so far inherit that network's weights (:func:`inherit_weights`), and a child
    that inherited at least one layer trains ``share_epochs`` epochs instead of ``epochs``.
    Training is :func:`graphkit.train.train_node_classifier` (Adam, best validation-loss epoch);
    the network of the highest validation accuracy is kept as the next parent.

    Args:
        data (Data): a node-classification graph with train / val masks.
        share (bool): use constrained parameter sharing (default: ``True``).
        epochs (int): epochs of a child trained from scratch (default: ``100``).
        share_epochs (int): epochs of a child that inherited (default: ``20``).
        lr, weight_decay (float): Adam's (default: ``0.005``, ``5e-4``, GraphNAS's).
        dropout (float): :class:`GraphNASNet` dropout (default: ``0.6``).
        pool_dim (int): message-MLP width (default: ``128``).
        device (str): where to train (default: ``"cpu"``).
    """

    def __init__(self, data: Data, share: bool = True, epochs: int = 100,
                 share_epochs: int = 20, lr: float = 0.005, weight_decay: float = 5e-4,
                 dropout: float = 0.6, pool_dim: int = 128,
                 device: str | torch.device = "cpu") -> None:
        if epochs < 1 or share_epochs < 1:
            raise ValueError(f"epochs must be positive, got {epochs}, {share_epochs}")
        check_positive(epochs=epochs, share_epochs=share_epochs)
        if getattr(data, "y", None) is None:
            raise ValueError("data has no y: the children are node classifiers")
        self.data = data
        self.num_classes = int(data.y.max()) + 1
        self.share = share
        self.epochs, self.share_epochs = epochs, share_epochs
        self.lr, self.weight_decay = lr, weight_decay
        self.dropout, self.pool_dim = dropout, pool_dim
        self.device = device
        self.best_model: GraphNASNet | None = None
        self.best_score = float("-inf")
        self.records: list[ChildRecord] = []
        self._start = time.perf_counter()

    def restart_clock(self) -> None:
        """Measure :attr:`ChildRecord.finished` from now (call it when the search starts)."""
        self._start = time.perf_counter()

    def build(self, cfg: Mapping[str, Any]) -> GraphNASNet:
        return GraphNASNet(cfg, self.data.num_features, self.num_classes, self.dropout,
                           self.pool_dim)

    def __call__(self, cfg: Mapping[str, Any]) -> float:
        t0 = time.perf_counter()
        model = self.build(cfg)
        inherited = [False] * len(model.convs)
        if self.share and self.best_model is not None:
            inherited = inherit_weights(self.best_model, model)
        epochs = self.share_epochs if any(inherited) else self.epochs
        res = train_node_classifier(model, self.data, lr=self.lr,
                                    weight_decay=self.weight_decay, epochs=epochs,
                                    selection="val_loss", device=self.device)
        if res.val_acc > self.best_score:
            self.best_model, self.best_score = model, res.val_acc
        now = time.perf_counter()
        self.records.append(ChildRecord(inherited, epochs, now - t0, res.val_acc,
                                        now - self._start))
        return res.val_acc
