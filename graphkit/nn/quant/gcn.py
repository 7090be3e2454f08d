r"""GCN layer with quantised weights, input activations and normalisation coefficients."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphkit.nn._cache import CachedGraph, check_cached_graph
from graphkit.nn._checks import (
    check_edge_index_layout,
    check_node_features,
    unweighted_edge_index,
)
from graphkit.nn.quant.formats import coef_format as _coef_format
from graphkit.nn.quant.linear import QuantizedLayer, check_bias_bits, qmatmul
from graphkit.nn.quant.quantizer import FULL, QFormat, fixed_point_quantize

__all__ = ["QGCNConv"]


class QGCNConv(QuantizedLayer, MessagePassing):
    r"""Fake-quantised GCN layer (`Kipf and Welling, ICLR 2017
    <https://arxiv.org/abs/1609.02907>`_) as used by LPGNAS (`Zhao et al., 2020
    <https://arxiv.org/abs/2009.09232>`_):

    .. math::
        x_i' = \sum_{j \in \mathcal{N}(i) \cup \{i\}} Q_c\!\left(\frac{1}{\sqrt{\hat d_i
        \hat d_j}}\right) Q_a(x_j)\, Q_w(W)^\top + Q_w(b)

    with fixed-point quantisers :math:`Q_w` (weights), :math:`Q_a` (layer input) and
    :math:`Q_c` (normalisation coefficients, a buffer). With fixed-point formats every term is
    an integer times a power of two, which :mod:`graphkit.nn.quant.integer` exploits.

    Args:
        in_channels (int): input size.
        out_channels (int): output size.
        weight_format (QFormat): format of :math:`W`. (default: full precision)
        act_format (QFormat): format of the input :math:`x`. (default: full precision)
        coef_format (QFormat): format of the edge coefficients. (default: ``uQ1.15``)
        bias (bool): learn an additive bias. (default: :obj:`True`)
        bias_bits (int, optional): ``None``: the bias in the weight format, counted at its
            width; ``32``: on the accumulator grid, counted as 32-bit words.
            (default: :obj:`None`)
        cached (bool): cache the normalisation coefficients: transductive use on one fixed
            graph only; a call with another graph raises a ValueError until
            :meth:`reset_parameters`. (default: False)

    Shapes:
        input ``x [N, in_channels]``, ``edge_index [2, E]``; output ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 weight_format: QFormat = FULL, act_format: QFormat = FULL,
                 coef_format: QFormat | None = None, bias: bool = True,
                 cached: bool = False, bias_bits: int | None = None) -> None:
        super().__init__(aggr="add")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got {in_channels}, {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight_format, self.act_format = weight_format, act_format
        self.coef_format = _coef_format(16) if coef_format is None else coef_format
        self.cached = cached
        self.bias_bits = check_bias_bits(bias_bits)
        self._cache: tuple[Tensor, Tensor] | None = None
        self._graph: CachedGraph | None = None  # the graph the cache was built from
        self.weight = Parameter(torch.empty(out_channels, in_channels))
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        torch.nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)
        self._cache = self._graph = None

    def coefficients(self, edge_index: Tensor, num_nodes: int,
                     dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """Edges with self-loops and their quantised symmetric normalisation."""
        if self.cached and self._cache is not None:
            self._graph = check_cached_graph(type(self).__name__, self._graph, num_nodes,
                                             {"edge_index": edge_index})
        # The cache is kept in the layer's precision, rebuilt after .double() (float32
        # coefficients cast to float64 are not the float64 normalisation); a caller asking
        # another dtype of the layer (integer export) gets the layer's own coefficients cast.
        if self.cached and self._cache is not None and \
                self._cache[0].device == edge_index.device and \
                self._cache[1].dtype == self.weight.dtype:
            ei, w = self._cache[0], self._cache[1].to(dtype)
        else:
            ei, w = gcn_norm(edge_index, None, num_nodes, add_self_loops=True, dtype=dtype)
            if self.cached:  # unquantised, so that a full-precision pass does not stick
                self._cache = (ei, w)
                self._graph = CachedGraph(num_nodes, {"edge_index": edge_index})
        return ei, fixed_point_quantize(w, self.coef_format)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        check_edge_index_layout(edge_index)
        edge_index = unweighted_edge_index(edge_index, "QGCNConv")  # a torch.sparse adjacency too
        h = qmatmul(x, self.weight, self.act_format, self.weight_format)
        ei, w = self.coefficients(edge_index, x.size(0), x.dtype)
        out = self.propagate(ei, x=h, coef=w)
        return self.add_bias(out)

    def message(self, x_j: Tensor, coef: Tensor) -> Tensor:
        return coef.view(-1, 1) * x_j

    def weight_tensors(self) -> tuple[Tensor, ...]:
        return (self.weight,)

    def accumulator_formats(self) -> tuple[QFormat, ...]:
        return self.act_format, self.coef_format

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"w={self.weight_format}, a={self.act_format}, c={self.coef_format})")
