r"""GraphSAGE (mean) layer with quantised weights, input activations and mean coefficients."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import degree

from graphkit.nn._checks import (
    check_edge_index_layout,
    check_node_features,
    unweighted_edge_index,
)
from graphkit.nn.quant.formats import coef_format as _coef_format
from graphkit.nn.quant.linear import QuantizedLayer, check_bias_bits, qmatmul
from graphkit.nn.quant.quantizer import FULL, QFormat, fixed_point_quantize

__all__ = ["QSAGEConv"]


class QSAGEConv(QuantizedLayer, MessagePassing):
    r"""Fake-quantised GraphSAGE layer with mean aggregation (`Hamilton et al., NeurIPS 2017
    <https://arxiv.org/abs/1706.02216>`_), the LPGNAS way (`Zhao et al., 2020
    <https://arxiv.org/abs/2009.09232>`_):

    .. math::
        x_i' = \Big(\sum_{j \in \mathcal{N}(i)} Q_c(1/d_i)\, Q_a(x_j)\Big) Q_w(W_l)^\top
        + Q_a(x_i)\, Q_w(W_r)^\top + Q_w(b)

    Args:
        in_channels (int): input size.
        out_channels (int): output size.
        weight_format (QFormat): format of :math:`W_l, W_r`. (default: full precision)
        act_format (QFormat): format of the input :math:`x`. (default: full precision)
        coef_format (QFormat): format of the mean coefficients. (default: ``uQ1.15``)
        bias (bool): learn an additive bias. (default: :obj:`True`)
        bias_bits (int, optional): ``None``: the bias in the weight format, counted at its
            width; ``32``: on the accumulator grid, counted as 32-bit words.
            (default: :obj:`None`)

    Shapes:
        input ``x [N, in_channels]``, ``edge_index [2, E]`` (source, target); output
        ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 weight_format: QFormat = FULL, act_format: QFormat = FULL,
                 coef_format: QFormat | None = None, bias: bool = True,
                 bias_bits: int | None = None) -> None:
        super().__init__(aggr="add")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got {in_channels}, {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight_format, self.act_format = weight_format, act_format
        self.coef_format = _coef_format(16) if coef_format is None else coef_format
        self.bias_bits = check_bias_bits(bias_bits)
        self.weight_l = Parameter(torch.empty(out_channels, in_channels))
        self.weight_r = Parameter(torch.empty(out_channels, in_channels))
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        torch.nn.init.uniform_(self.weight_l, -bound, bound)
        torch.nn.init.uniform_(self.weight_r, -bound, bound)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def coefficients(self, edge_index: Tensor, num_nodes: int,
                     dtype: torch.dtype = torch.float32) -> Tensor:
        """Quantised ``1 / in-degree`` of each edge's target."""
        deg = degree(edge_index[1], num_nodes, dtype=dtype)
        return fixed_point_quantize(deg.clamp(min=1).reciprocal()[edge_index[1]],
                                    self.coef_format)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        check_edge_index_layout(edge_index)
        edge_index = unweighted_edge_index(edge_index, "QSAGEConv")  # a torch.sparse adjacency too
        # (sum_j c_ij x_j) W_l^T computed as sum_j c_ij (x_j W_l^T): equal by linearity, and
        # cheaper for wide (or sparse) inputs.
        h = qmatmul(x, self.weight_l, self.act_format, self.weight_format)
        out = self.propagate(edge_index, x=h,
                             coef=self.coefficients(edge_index, x.size(0), h.dtype))
        out = out + qmatmul(x, self.weight_r, self.act_format, self.weight_format)
        return self.add_bias(out)

    def message(self, x_j: Tensor, coef: Tensor) -> Tensor:
        return coef.view(-1, 1) * x_j

    def weight_tensors(self) -> tuple[Tensor, ...]:
        return (self.weight_l, self.weight_r)

    def accumulator_formats(self) -> tuple[QFormat, ...]:
        return self.act_format, self.coef_format

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"w={self.weight_format}, a={self.act_format}, c={self.coef_format})")
