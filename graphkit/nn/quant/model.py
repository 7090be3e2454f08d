r"""A stack of quantised GNN layers described by per-layer choices (a derived LPGNAS model)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.data.validation import is_integer
from graphkit.nn._checks import check_floating
from graphkit.nn.quant.formats import act_format, coef_format, glorot_bound, weight_format
from graphkit.nn.quant.gat import QGATConv
from graphkit.nn.quant.gcn import QGCNConv
from graphkit.nn.quant.linear import QLinear, check_bias_bits, dropout
from graphkit.nn.quant.sage import QSAGEConv

__all__ = ["LayerSpec", "QuantGNN", "CONVS", "ACTIVATIONS", "uniform_specs"]

CONVS = ("gcn", "sage", "gat")

ACTIVATIONS = {
    "relu": F.relu,
    "elu": F.elu,
    "tanh": torch.tanh,
    "identity": lambda x: x,
}


@dataclass(frozen=True)
class LayerSpec:
    """The choices of one layer.

    Args:
        conv (str): ``"gcn"``, ``"sage"`` or ``"gat"``.
        out_channels (int): output size (per head for GAT).
        act (str): activation after the layer, one of :data:`ACTIVATIONS`.
        skip (bool): add a quantised linear projection of the layer input.
        weight_bits (int): weight bit-width (32: full precision).
        act_bits (int): bit-width of the layer input.
        heads (int): GAT heads (concatenated, except in the last layer where they average).
    """

    conv: str
    out_channels: int
    act: str = "relu"
    skip: bool = False
    weight_bits: int = 32
    act_bits: int = 32
    heads: int = 1

    def __post_init__(self) -> None:
        if self.conv not in CONVS:
            raise ValueError(f"conv must be one of {CONVS}, got {self.conv!r}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {tuple(ACTIVATIONS)}, got {self.act!r}")
        for name in ("out_channels", "heads"):  # 2.5 failed later in torch.empty
            v = getattr(self, name)
            if not is_integer(v):
                raise ValueError(f"{name} must be an integer, got {v!r}")
        if self.out_channels < 1 or self.heads < 1:
            raise ValueError(f"out_channels and heads must be >= 1, got {self.out_channels}, "
                             f"{self.heads}")
        weight_format(self.weight_bits)
        act_format(self.act_bits)
        for name in ("weight_bits", "act_bits"):  # NumPy integers become plain ints
            object.__setattr__(self, name, int(getattr(self, name)))


def uniform_specs(conv: str, hidden: int, out_channels: int, weight_bits: int, act_bits: int,
                  num_layers: int = 2, heads: int = 1) -> list[LayerSpec]:
    """A plain ``num_layers`` model with one conv type and uniform bit-widths (baselines)."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    specs = [LayerSpec(conv, hidden, "elu" if conv == "gat" else "relu", False, weight_bits,
                       act_bits, heads) for _ in range(num_layers - 1)]
    specs.append(LayerSpec(conv, out_channels, "identity", False, weight_bits, act_bits,
                           1))
    return specs


class QuantGNN(torch.nn.Module):
    r"""Quantised GNN of LPGNAS (`Zhao et al., 2020 <https://arxiv.org/abs/2009.09232>`_):
    layer :math:`l` computes

    .. math::
        x^{(l+1)} = \sigma_l\big(\mathrm{conv}_l(\mathrm{drop}(x^{(l)})) + [\text{skip}_l]\,
        \mathrm{QLinear}_l(\mathrm{drop}(x^{(l)}))\big),

    with weights, inputs and edge coefficients fixed-point quantised per layer. A layer's
    weight format is :func:`~graphkit.nn.quant.formats.weight_format` of its bit-width scaled
    to the layer's Glorot bound (the skip projection shares it), and its bias is quantised
    with that format and counted at its width: the size is every parameter times its
    component's bits, as the LPGNAS size model has it.

    Args:
        in_channels (int): input features.
        specs (list[LayerSpec]): one per layer; the last one's ``out_channels`` is the number
            of classes.
        dropout (float): dropout on every layer input. (default: :obj:`0.5`)
        coef_bits (int): bit-width of edge coefficients. (default: :obj:`16`)
        att_dropout (float): GAT attention dropout. (default: :obj:`0`)
        cached (bool): cache GCN coefficients. (default: :obj:`False`)
        bias_bits (int, optional): ``None``: biases in their layer's weight format;
            ``32``: on the accumulator grid, counted as 32-bit words (the accounting of
            graphkit before 2026-11-26, kept for comparison). (default: :obj:`None`)
    """

    def __init__(self, in_channels: int, specs: list[LayerSpec], dropout: float = 0.5,
                 coef_bits: int = 16, att_dropout: float = 0.0, cached: bool = False,
                 bias_bits: int | None = None) -> None:
        super().__init__()
        if not specs:
            raise ValueError("specs must hold at least one layer")
        self.specs, self.dropout = list(specs), dropout
        self.bias_bits = check_bias_bits(bias_bits)
        self.convs = torch.nn.ModuleList()
        self.skips = torch.nn.ModuleList()
        c_fmt = coef_format(coef_bits)
        dim = in_channels
        for i, s in enumerate(self.specs):
            last = i == len(self.specs) - 1
            fan_out = s.out_channels * (s.heads if s.conv == "gat" else 1)
            w = weight_format(s.weight_bits, glorot_bound(dim, fan_out))
            a = act_format(s.act_bits)
            if s.conv == "gcn":
                conv = QGCNConv(dim, s.out_channels, w, a, c_fmt, cached=cached,
                                bias_bits=bias_bits)
                out = s.out_channels
            elif s.conv == "sage":
                conv = QSAGEConv(dim, s.out_channels, w, a, c_fmt, bias_bits=bias_bits)
                out = s.out_channels
            else:
                conv = QGATConv(dim, s.out_channels, s.heads, concat=not last,
                                weight_format=w, act_format=a, coef_format=c_fmt,
                                dropout=att_dropout, bias_bits=bias_bits)
                out = s.out_channels * (1 if last else s.heads)
            self.convs.append(conv)
            self.skips.append(QLinear(dim, out, w, a, bias=False) if s.skip
                              else torch.nn.Identity())
            dim = out
        self.out_channels = dim

    def reset_parameters(self) -> None:
        for conv, skip in zip(self.convs, self.skips):
            conv.reset_parameters()
            if isinstance(skip, QLinear):
                skip.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_floating(x)  # else a cast error inside the first layer (GAT ran on integers)
        for s, conv, skip in zip(self.specs, self.convs, self.skips):
            x = dropout(x, self.dropout, self.training)
            out = conv(x, edge_index)
            if s.skip:
                out = out + skip(x)
            x = ACTIVATIONS[s.act](out)
        return x

    def size_bits(self) -> int:
        """Exact model size: every parameter (biases included) at its layer's weight width;
        with ``bias_bits=32`` biases as 32-bit words."""
        total = 0
        for conv, skip in zip(self.convs, self.skips):
            total += conv.size_bits()
            if isinstance(skip, QLinear):
                total += skip.size_bits()
        return total

    def size_bytes(self) -> float:
        """:meth:`size_bits` / 8."""
        return self.size_bits() / 8
