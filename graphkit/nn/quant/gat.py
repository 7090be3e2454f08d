r"""GAT layer with quantised weights, input activations and attention coefficients."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from graphkit.nn._checks import (
    check_edge_index_layout,
    check_node_features,
    unweighted_edge_index,
)
from graphkit.nn.quant.formats import coef_format as _coef_format
from graphkit.nn.quant.formats import glorot_bound, moved_format
from graphkit.nn.quant.linear import QuantizedLayer, check_bias_bits, qmatmul
from graphkit.nn.quant.quantizer import FULL, QFormat, fixed_point_quantize

__all__ = ["QGATConv"]


class QGATConv(QuantizedLayer, MessagePassing):
    r"""Fake-quantised graph attention layer (`Velickovic et al., ICLR 2018
    <https://arxiv.org/abs/1710.10903>`_), the LPGNAS way (`Zhao et al., 2020
    <https://arxiv.org/abs/2009.09232>`_). Per head,

    .. math::
        h = Q_a(x) Q_w(W)^\top,\quad
        \alpha_{ij} = Q_c\big(\mathrm{softmax}_j\,\mathrm{LeakyReLU}(Q_v(a_s)^\top h_j
        + Q_v(a_d)^\top h_i)\big),\quad
        x_i' = \sum_{j \in \mathcal{N}(i) \cup \{i\}} \alpha_{ij} h_j + Q_w(b).

    Heads are concatenated (``concat=True``) or averaged. The softmax is not integer
    arithmetic, so this layer has no integer export.

    Args:
        in_channels (int): input size.
        out_channels (int): size per head.
        heads (int): attention heads. (default: :obj:`1`)
        concat (bool): concatenate heads, else average. (default: :obj:`True`)
        weight_format (QFormat): format of :math:`W` and the bias. (default: full precision)
        act_format (QFormat): format of the input :math:`x`. (default: full precision)
        coef_format (QFormat): format of the attention coefficients. (default: ``uQ1.15``)
        att_format (QFormat, optional): format :math:`Q_v` of the attention vectors
            :math:`a_s, a_d`. Their initial range (Glorot over ``1 + out_channels``) is 6 to
            13 times wider than :math:`W`'s, so by default the weight format is moved to it
            at the same width (:func:`~graphkit.nn.quant.formats.moved_format`; a format of
            another width is refused: they are stored at the weight width); in
            :math:`W`'s own format a third to nine tenths of them would start clipped, with
            no straight-through gradient. (default: :obj:`None`)
        dropout (float): dropout on the attention coefficients. (default: :obj:`0`)
        bias (bool): learn an additive bias. (default: :obj:`True`)
        bias_bits (int, optional): ``None``: the bias in the weight format, counted at its
            width; ``32``: on the accumulator grid, counted as 32-bit words.
            (default: :obj:`None`)

    Shapes:
        input ``x [N, in_channels]``, ``edge_index [2, E]``; output
        ``[N, heads * out_channels]`` (concat) or ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 weight_format: QFormat = FULL, act_format: QFormat = FULL,
                 coef_format: QFormat | None = None, dropout: float = 0.0,
                 bias: bool = True, bias_bits: int | None = None,
                 att_format: QFormat | None = None) -> None:
        super().__init__(aggr="add", node_dim=0)
        if in_channels < 1 or out_channels < 1 or heads < 1:
            raise ValueError(f"channels and heads must be >= 1, got {in_channels}, "
                             f"{out_channels}, heads={heads}")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.concat, self.dropout = concat, dropout
        self.weight_format, self.act_format = weight_format, act_format
        self.coef_format = _coef_format(16) if coef_format is None else coef_format
        self.att_format = moved_format(
            weight_format, glorot_bound(in_channels, heads * out_channels),
            glorot_bound(1, out_channels)) if att_format is None else att_format
        if self.att_format.bits != weight_format.bits:
            # the size accounting counts the vectors at the layer's weight width
            raise ValueError(f"att_format must have the weight format's width "
                             f"({weight_format.bits} bits), got {self.att_format}")
        self.bias_bits = check_bias_bits(bias_bits)
        self.weight = Parameter(torch.empty(heads * out_channels, in_channels))
        self.att_src = Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = Parameter(torch.empty(1, heads, out_channels))
        size = heads * out_channels if concat else out_channels
        self.bias = Parameter(torch.empty(size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = glorot_bound(self.in_channels, self.heads * self.out_channels)
        torch.nn.init.uniform_(self.weight, -bound, bound)
        bound = glorot_bound(1, self.out_channels)
        torch.nn.init.uniform_(self.att_src, -bound, bound)
        torch.nn.init.uniform_(self.att_dst, -bound, bound)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        check_edge_index_layout(edge_index)
        # attention takes no edge weights: a weighted sparse adjacency is refused, not dropped
        edge_index = unweighted_edge_index(edge_index, "QGATConv")
        n, hds, c = x.size(0), self.heads, self.out_channels
        h = qmatmul(x, self.weight, self.act_format, self.weight_format).view(n, hds, c)
        a_s = (h * fixed_point_quantize(self.att_src, self.att_format)).sum(-1)
        a_d = (h * fixed_point_quantize(self.att_dst, self.att_format)).sum(-1)
        ei, _ = remove_self_loops(edge_index)
        ei, _ = add_self_loops(ei, num_nodes=n)
        out = self.propagate(ei, x=h, a_s=a_s, a_d=a_d, size=(n, n))
        out = out.reshape(n, hds * c) if self.concat else out.mean(dim=1)
        return self.add_bias(out)

    def message(self, x_j: Tensor, a_s_j: Tensor, a_d_i: Tensor, index: Tensor,
                ptr: Tensor | None, size_i: int | None) -> Tensor:
        alpha = softmax(F.leaky_relu(a_s_j + a_d_i, 0.2), index, ptr, size_i)
        alpha = fixed_point_quantize(alpha, self.coef_format)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        return alpha.unsqueeze(-1) * x_j

    def weight_tensors(self) -> tuple[Tensor, ...]:
        return (self.weight, self.att_src, self.att_dst)

    def accumulator_formats(self) -> tuple[QFormat, ...]:
        return self.act_format, self.coef_format

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, w={self.weight_format}, a={self.act_format}, "
                f"c={self.coef_format}, v={self.att_format})")
