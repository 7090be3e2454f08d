r"""LPGNAS: differentiable joint search over GNN architecture and bit-widths.

`Learned Low Precision Graph Neural Networks <https://arxiv.org/abs/2009.09232>`_ (Zhao, Wang,
Bates, Mullins, Jamnik, Lio; EuroMLSys 2021). Every choice set :math:`j` (per layer: conv type,
skip, weight bits, input-activation bits; per hidden layer: activation and width) has logits
:math:`a_j`; the supernet's output mixes the candidates with :math:`p_j = \mathrm{softmax}(a_j
/ \tau)` (or a Gumbel-softmax sample). Weights and biases are mixed as
:math:`\sum_b p_b Q_b(W)` (with the layer's weight bits), layer inputs as
:math:`\sum_b p_b Q_b(x)`, conv types and activations as mixtures of their outputs, widths by
the mask :math:`\sum_h p_h [c < h]`. The search minimises, DARTS-style with
alternating first-order steps, the training loss for the weights and

.. math::
    \mathcal{L}_{\text{arch}} = \mathrm{CE}_{\text{val}} + \gamma\,
    \frac{\mathbb{E}_p[\text{size}]}{\text{size}_{\text{ref}}}

for the logits, where :math:`\mathbb{E}_p[\text{size}]` is the exact expectation (in bits) of
the derived model's :meth:`~graphkit.nn.quant.model.QuantGNN.size_bits` under independent
choices and :math:`\text{size}_{\text{ref}}` the FP32 GCN of the widest hidden size (the
validation logits may carry a learned temperature, see :func:`search`). Weight formats follow
:func:`~graphkit.nn.quant.formats.weight_format` scaled to each supernet layer's Glorot bound.
:func:`derive` takes the argmax of each choice set; the result is retrained with QAT.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter, ParameterDict
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, degree, remove_self_loops, softmax

from graphkit.data.validation import check_data
from graphkit.device import check_device
from graphkit.nn._checks import (
    check_edge_index_layout,
    check_floating,
    check_node_features,
    unweighted_edge_index,
)
from graphkit.nn.quant.formats import act_format, coef_format, glorot_bound, weight_format
from graphkit.nn.quant.linear import BIAS_BITS, check_bias_bits, coo_features, dropout
from graphkit.nn.quant.model import ACTIVATIONS, CONVS, LayerSpec
from graphkit.nn.quant.quantizer import fixed_point_quantize

__all__ = ["SearchSpace", "Supernet", "SearchResult", "search", "derive"]

#: weight matrices per conv type (as multiples of in x out) and attention vectors (x out)
_MATS = {"gcn": 1, "sage": 2, "gat": 1}
_ATTS = {"gcn": 0, "sage": 0, "gat": 2}


@dataclass(frozen=True)
class SearchSpace:
    """Candidates of every choice set (defaults: the space used by the benchmark)."""

    convs: tuple[str, ...] = CONVS
    acts: tuple[str, ...] = ("relu", "elu", "tanh", "identity")
    hidden: tuple[int, ...] = (8, 16, 32, 64)
    skip: tuple[bool, ...] = (False, True)
    weight_bits: tuple[int, ...] = (2, 4, 8, 16, 32)
    act_bits: tuple[int, ...] = (4, 8, 16, 32)

    def __post_init__(self) -> None:
        for name in ("convs", "acts", "hidden", "skip", "weight_bits", "act_bits"):
            if len(getattr(self, name)) == 0:
                raise ValueError(f"search space {name} is empty")
        for c in self.convs:
            if c not in CONVS:
                raise ValueError(f"unknown conv {c!r}; choose from {CONVS}")
        for a in self.acts:
            if a not in ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; choose from {tuple(ACTIVATIONS)}")
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) for h in self.hidden) \
                or min(self.hidden) < 1:
            raise ValueError(f"hidden sizes must be integers >= 1, got {self.hidden}")
        for s in self.skip:
            if s not in (False, True):
                raise ValueError(f"skip candidates must be booleans, got {s!r}")
        for b in self.weight_bits:
            weight_format(b)
        for b in self.act_bits:
            act_format(b)
        for name in ("weight_bits", "act_bits", "hidden"):  # NumPy integers become plain ints
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))


class Supernet(torch.nn.Module):
    r"""The LPGNAS supernet of `"Learned Low Precision Graph Neural Networks"
    <https://arxiv.org/abs/2009.09232>`_ (Zhao et al., EuroMLSys 2021) over ``num_layers``
    layers. Every choice set :math:`j` mixes its candidates with
    :math:`p_j = \mathrm{softmax}(\mathbf{a}_j / \tau)` (see the module docstring):

    .. math::
        \mathbf{x}^{(l+1)} = \sum_{\sigma} p_{\sigma}\,\sigma\Big(\mathbf{m}_h \odot
        \Big[\sum_{c} p_c\,\mathrm{conv}_c\big(\textstyle\sum_b p_b Q_b(\mathbf{x}^{(l)}),
        \sum_{b'} p_{b'} Q_{b'}(\mathbf{W}_c)\big) + p_{\mathrm{skip}}\,\mathrm{skip}\Big]\Big),
        \qquad (\mathbf{m}_h)_k = \sum_h p_h [\,k < h\,],

    with dropout on :math:`\mathbf{x}^{(l)}` and no width mask or activation in the last layer.

    Args:
        in_channels (int): input features.
        out_channels (int): classes.
        space (SearchSpace): the candidates. (default: :class:`SearchSpace()`)
        num_layers (int): layers. (default: :obj:`2`)
        dropout (float): dropout on layer inputs. (default: :obj:`0.5`)
        coef_bits (int): bit-width of edge coefficients (fixed). (default: :obj:`16`)
        gumbel (bool): Gumbel-softmax samples instead of the softmax. (default: False)
        tau (float): temperature. (default: :obj:`1.0`)
        bias_bits (int, optional): ``None``: biases are quantised and counted with their
            layer's weight bits; ``32``: counted as 32-bit words as in
            :class:`~graphkit.nn.quant.model.QuantGNN`, and left unquantised (QuantGNN keeps
            them in 31 bits with at least 8 integer bits: a trained bias does not feel the
            grid). (default: :obj:`None`)
    """

    def __init__(self, in_channels: int, out_channels: int, space: SearchSpace | None = None,
                 num_layers: int = 2, dropout: float = 0.5, coef_bits: int = 16,
                 gumbel: bool = False, tau: float = 1.0, bias_bits: int | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not (math.isfinite(tau) and tau > 0):  # NaN made every output NaN without a word
            raise ValueError(f"tau must be a finite positive number, got {tau}")
        self.space = space or SearchSpace()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_layers, self.dropout, self.gumbel, self.tau = num_layers, dropout, gumbel, tau
        self.coef_format = coef_format(coef_bits)
        self.bias_bits = check_bias_bits(bias_bits)
        sp, hmax = self.space, max(self.space.hidden)
        self.weights = ParameterDict()
        self.arch = ParameterDict()
        self._bounds: list[float] = []
        for lay in range(num_layers):
            d = in_channels if lay == 0 else hmax
            o = out_channels if lay == num_layers - 1 else hmax
            self._bounds.append(glorot_bound(d, o))
            for c in sp.convs:
                for m in range(_MATS[c]):
                    self.weights[f"{lay}_{c}_w{m}"] = Parameter(torch.empty(o, d))
                if _ATTS[c]:
                    self.weights[f"{lay}_{c}_att"] = Parameter(torch.empty(2, o))
                self.weights[f"{lay}_{c}_b"] = Parameter(torch.empty(o))
            self.weights[f"{lay}_skip"] = Parameter(torch.empty(o, d))
            self.arch[f"{lay}_conv"] = Parameter(torch.zeros(len(sp.convs)))
            self.arch[f"{lay}_skip"] = Parameter(torch.zeros(len(sp.skip)))
            self.arch[f"{lay}_wbits"] = Parameter(torch.zeros(len(sp.weight_bits)))
            self.arch[f"{lay}_abits"] = Parameter(torch.zeros(len(sp.act_bits)))
            if lay < num_layers - 1:
                self.arch[f"{lay}_act"] = Parameter(torch.zeros(len(sp.acts)))
                self.arch[f"{lay}_hidden"] = Parameter(torch.zeros(len(sp.hidden)))
        self.register_buffer("_masks", torch.stack(
            [(torch.arange(hmax) < h).float() for h in sp.hidden]), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, p in self.weights.items():
            if name.endswith("_b"):
                torch.nn.init.zeros_(p)
            else:
                bound = glorot_bound(*p.shape[::-1]) if not name.endswith("_att") else \
                    glorot_bound(1, p.size(1))
                torch.nn.init.uniform_(p, -bound, bound)
        for p in self.arch.values():
            torch.nn.init.zeros_(p)

    def weight_parameters(self) -> list[Parameter]:
        return list(self.weights.values())

    def arch_parameters(self) -> list[Parameter]:
        return list(self.arch.values())

    def probs(self, name: str, sample: bool | None = None) -> Tensor:
        """Probabilities of choice set ``name`` (``"<layer>_<set>"``)."""
        logits = self.arch[name]
        if self.gumbel if sample is None else sample:
            return F.gumbel_softmax(logits, tau=self.tau)
        return F.softmax(logits / self.tau, dim=0)

    # ----------------------------------------------------------------- forward
    def _mix_weight(self, w: Tensor, p: Tensor, bound: float) -> Tensor:
        return sum(pi * fixed_point_quantize(w, weight_format(b, bound))
                   for pi, b in zip(p, self.space.weight_bits))

    def _mix_input(self, x: Tensor, p: Tensor) -> Tensor:
        if x.is_sparse:
            x = x.coalesce()
            v = sum(pi * fixed_point_quantize(x.values(), act_format(b))
                    for pi, b in zip(p, self.space.act_bits))
            return torch.sparse_coo_tensor(x.indices(), v, x.shape, check_invariants=False)
        return sum(pi * fixed_point_quantize(x, act_format(b))
                   for pi, b in zip(p, self.space.act_bits))

    @staticmethod
    def _mm(x: Tensor, w: Tensor) -> Tensor:
        return torch.sparse.mm(x, w.t()) if x.is_sparse else x @ w.t()

    def _conv(self, lay: int, c: str, x: Tensor, pw: Tensor, graph: dict) -> Tensor:
        bound = self._bounds[lay]
        w = self._mix_weight(self.weights[f"{lay}_{c}_w0"], pw, bound)
        h = self._mm(x, w)
        n = h.size(0)
        out = torch.zeros_like(h)
        if c == "gcn":
            ei, coef = graph["gcn"]
            out = out.index_add(0, ei[1], coef.view(-1, 1) * h[ei[0]])
        elif c == "sage":
            ei, coef = graph["sage"]
            out = out.index_add(0, ei[1], coef.view(-1, 1) * h[ei[0]])
            out = out + self._mm(x, self._mix_weight(self.weights[f"{lay}_{c}_w1"], pw, bound))
        else:
            ei = graph["gat"]
            # the vectors' own (wider) initial range, as in QGATConv
            att_w = self.weights[f"{lay}_{c}_att"]
            att = self._mix_weight(att_w, pw, glorot_bound(1, att_w.size(1)))
            a_s, a_d = h @ att[0], h @ att[1]
            alpha = softmax(F.leaky_relu(a_s[ei[0]] + a_d[ei[1]], 0.2), ei[1], num_nodes=n)
            alpha = fixed_point_quantize(alpha, self.coef_format)
            out = out.index_add(0, ei[1], alpha.view(-1, 1) * h[ei[0]])
        b = self.weights[f"{lay}_{c}_b"]
        return out + (b if self.bias_bits is not None else self._mix_weight(b, pw, bound))

    def _graph(self, edge_index: Tensor, n: int, dtype: torch.dtype) -> dict:
        ei, w = gcn_norm(edge_index, None, n, add_self_loops=True, dtype=dtype)
        deg = degree(edge_index[1], n, dtype=dtype).clamp(min=1)
        sage = fixed_point_quantize(deg.reciprocal()[edge_index[1]], self.coef_format)
        gat, _ = add_self_loops(remove_self_loops(edge_index)[0], num_nodes=n)
        return {"gcn": (ei, fixed_point_quantize(w, self.coef_format)),
                "sage": (edge_index, sage), "gat": gat}

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        check_floating(x)
        x = coo_features(x)  # sparse CSR features too: the quantisers read COO values
        check_edge_index_layout(edge_index)
        # a torch.sparse adj_t too, as QuantGNN's layers take it (weighted ones are refused)
        edge_index = unweighted_edge_index(edge_index, "Supernet")
        graph = self._graph(edge_index, x.size(0), x.dtype)  # float32 unless .double()
        sp = self.space
        for lay in range(self.num_layers):
            x = dropout(x, self.dropout, self.training)
            xa = self._mix_input(x, self.probs(f"{lay}_abits"))
            pw, pc = self.probs(f"{lay}_wbits"), self.probs(f"{lay}_conv")
            out = sum(p * self._conv(lay, c, xa, pw, graph) for p, c in zip(pc, sp.convs))
            ps = self.probs(f"{lay}_skip")
            skip = self._mm(xa, self._mix_weight(self.weights[f"{lay}_skip"], pw,
                                                 self._bounds[lay]))
            out = out + sum(p * float(s) for p, s in zip(ps, sp.skip)) * skip
            if lay < self.num_layers - 1:
                out = out * (self.probs(f"{lay}_hidden") @ self._masks)
                pa = self.probs(f"{lay}_act")
                out = sum(p * ACTIVATIONS[a](out) for p, a in zip(pa, sp.acts))
            x = out
        return x

    # ------------------------------------------------------------------- size
    def expected_size_bits(self) -> Tensor:
        r"""Exact expectation of the derived model's size in bits under the (softmax)
        probabilities: per layer
        :math:`\big(\sum_t p_t (m_t \mathbb{E}[d]\mathbb{E}[o] + a_t \mathbb{E}[o])
        + p_{\text{skip}} \mathbb{E}[d]\mathbb{E}[o] + \mathbb{E}[o]\big)\mathbb{E}[b_w]`,
        the last term the bias (with ``bias_bits=32``: :math:`32\,\mathbb{E}[o]` instead);
        input and output widths and the weight bits are independent choices."""
        sp = self.space
        dev = self._masks.device
        dtype = self.arch["0_conv"].dtype  # float32 unless .double()
        hidden = torch.tensor(sp.hidden, dtype=dtype, device=dev)
        wbits = torch.tensor(sp.weight_bits, dtype=dtype, device=dev)
        skip = torch.tensor([float(s) for s in sp.skip], dtype=dtype, device=dev)
        total = torch.zeros((), dtype=dtype, device=dev)
        e_in = torch.tensor(float(self.in_channels), dtype=dtype, device=dev)
        for lay in range(self.num_layers):
            if lay < self.num_layers - 1:
                e_out = self.probs(f"{lay}_hidden", sample=False) @ hidden
            else:
                e_out = torch.tensor(float(self.out_channels), dtype=dtype, device=dev)
            pc = self.probs(f"{lay}_conv", sample=False)
            mats = sum(p * (_MATS[c] * e_in * e_out + _ATTS[c] * e_out)
                       for p, c in zip(pc, sp.convs))
            mats = mats + (self.probs(f"{lay}_skip", sample=False) @ skip) * e_in * e_out
            e_bits = self.probs(f"{lay}_wbits", sample=False) @ wbits
            if self.bias_bits is None:
                total = total + (mats + e_out) * e_bits
            else:
                total = total + mats * e_bits + BIAS_BITS * e_out
            e_in = e_out
        return total

    def reference_size_bits(self) -> float:
        """Size of the FP32 GCN with the widest hidden size (the penalty's unit)."""
        dims = [self.in_channels] + [max(self.space.hidden)] * (self.num_layers - 1) + \
            [self.out_channels]
        return float(sum(32 * (a * b + b) for a, b in zip(dims[:-1], dims[1:])))


def derive(net: Supernet) -> list[LayerSpec]:
    """The discrete architecture: the argmax of every choice set."""
    bad = [name for name, logits in net.arch.items() if not bool(torch.isfinite(logits).all())]
    if bad:  # e.g. a gamma so large that the size term overflowed: argmax of NaN is no choice
        raise ValueError(f"the architecture logits {bad} are not finite: the search diverged "
                         "(a smaller gamma or learning rate keeps them finite)")
    sp, specs = net.space, []
    for lay in range(net.num_layers):
        def pick(name: str, options: tuple, lay: int = lay):
            return options[int(net.arch[f"{lay}_{name}"].argmax())]
        last = lay == net.num_layers - 1
        specs.append(LayerSpec(
            conv=pick("conv", sp.convs),
            out_channels=net.out_channels if last else pick("hidden", sp.hidden),
            act="identity" if last else pick("act", sp.acts),
            skip=pick("skip", sp.skip), weight_bits=pick("wbits", sp.weight_bits),
            act_bits=pick("abits", sp.act_bits)))
    return specs


@dataclass
class SearchResult:
    """What :func:`search` found: the derived ``specs``, the final probabilities of every
    choice set and the per-epoch ``history`` (val loss, expected size in bytes)."""

    specs: list[LayerSpec]
    probs: dict[str, list[float]]
    history: list[dict[str, float]] = field(default_factory=list)


def search(data: Data, gamma: float, *, space: SearchSpace | None = None, epochs: int = 100,
           warmup: int | None = None, lr: float = 0.01, weight_decay: float = 5e-4,
           label_smoothing: float = 0.0, arch_lr: float = 0.05, arch_eval: bool = True,
           calibrate: bool = True, num_layers: int = 2, dropout: float = 0.5,
           gumbel: bool = False, tau: float = 1.0, arch_loss: str = "val",
           bias_bits: int | None = None,
           callback: Callable[[int, Supernet], None] | None = None,
           device: str | torch.device = "cpu") -> SearchResult:
    """Run the LPGNAS search on a node-classification ``data`` (``train_mask``, ``val_mask``).

    The first ``warmup`` epochs (default: 30% of ``epochs``) train the supernet weights alone
    (uniform choices); then each epoch is one Adam step of the weights on the training
    cross-entropy (label smoothing ``label_smoothing``, weight decay ``weight_decay``) followed
    by one Adam step of the logits on validation cross-entropy + ``gamma`` * expected size /
    reference size (first-order DARTS), computed without dropout when ``arch_eval``. With
    ``calibrate`` the validation logits are multiplied by a learned temperature :math:`e^{t}`
    (updated with the logits).

    The weight step uses the recipe every derived model is retrained with (Adam lr 0.01, weight
    decay 5e-4, no label smoothing), so the supernet weights are trained as the derived models
    will be. An earlier version regularised the supernet (weight decay 5e-3, label smoothing
    0.3) against over-confident validation logits; under-confident, it preferred bounded
    activations (tanh in 16 of 20 Cora searches) and GAT first layers, which retrain below the
    plain GCN with ReLU. With this recipe, trial searches on Cora picked a GCN layer with ReLU
    first (6 of 6); on CiteSeer the over-confidence remains: at ``gamma = 0`` the last layer
    got 2-bit weights in 3 of 3 trial searches, with the learned temperature and also with a
    temperature fitted exactly at every step. ``data.x`` may be a sparse COO or CSR tensor.

    ``arch_loss="train"`` computes the architecture step's cross-entropy on the training nodes
    instead (single-level optimisation; the spec leaves open which data the logits see).
    ``callback(epoch, net)``, if given, runs after every epoch (diagnostics). ``bias_bits``
    as in :class:`Supernet` (retrain the derived specs with the same value).
    """
    if not (gamma >= 0 and math.isfinite(gamma)):  # NaN or inf: NaN logits, argmax of NaN
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma}")
    if arch_loss not in ("val", "train"):
        raise ValueError(f"arch_loss must be 'val' or 'train', got {arch_loss!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if warmup is None:
        warmup = epochs * 3 // 10
    if not 0 <= warmup < epochs:
        raise ValueError(f"warmup must be in [0, epochs), got {warmup} (epochs={epochs})")
    for m in ("x", "y", "train_mask", "val_mask"):
        if getattr(data, m, None) is None:
            raise ValueError(f"data has no {m}")
    check_data(data)  # the graph, and y and every mask one row per node (masks boolean)
    check_floating(data.x, "data.x")
    y = data.y
    if y.dim() != 1 or y.dtype != torch.long:
        raise ValueError(f"data.y must be a vector of int64 class ids, got dtype {y.dtype} and "
                         f"shape {tuple(y.shape)}")
    for m in ("train_mask", "val_mask"):
        if not bool(data[m].any()):
            raise ValueError(f"{m} selects no nodes")
        lo = int(y[data[m]].min())
        if lo < 0:
            raise ValueError(f"data.y holds class {lo} at a node of {m}")
    check_device(device, flag="device")  # before any work, in one line
    data = data.to(device)
    num_classes = int(data.y.max()) + 1
    net = Supernet(data.num_features, num_classes, space, num_layers, dropout, gumbel=gumbel,
                   tau=tau, bias_bits=bias_bits).to(device)
    if data.x.is_floating_point():
        net = net.to(data.x.dtype)  # float64 features search a float64 supernet
    opt_w = torch.optim.Adam(net.weight_parameters(), lr=lr, weight_decay=weight_decay)
    log_scale = torch.zeros((), device=device, requires_grad=True)
    opt_a = torch.optim.Adam(net.arch_parameters() + ([log_scale] if calibrate else []),
                             lr=arch_lr, betas=(0.5, 0.999))
    ref = net.reference_size_bits()
    history = []
    for epoch in range(1, epochs + 1):
        net.train()
        opt_w.zero_grad()
        out = net(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask],
                        label_smoothing=label_smoothing).backward()
        opt_w.step()
        if epoch <= warmup:
            if callback is not None:
                callback(epoch, net)
            continue
        opt_a.zero_grad()
        net.train(not arch_eval)
        out = net(data.x, data.edge_index)
        mask = data.val_mask if arch_loss == "val" else data.train_mask
        val = F.cross_entropy(out[mask] * log_scale.exp(), data.y[mask])
        size = net.expected_size_bits()
        (val + gamma * size / ref).backward()
        opt_a.step()
        history.append({"epoch": epoch, "val_loss": float(val.detach()),
                        "expected_size_bytes": float(size.detach()) / 8})
        if callback is not None:
            callback(epoch, net)
    probs = {k: F.softmax(v.detach() / tau, 0).tolist() for k, v in net.arch.items()}
    return SearchResult(derive(net), probs, history)
