"""The GraphNAS message-passing operator: attention function x heads x aggregator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear, Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from graphkit.data.validation import check_edge_index
from graphkit.nn._checks import check_edge_index_layout, check_node_features
from graphkit.nn.conv.degree_power_gcn import degree_power_norm

__all__ = ["GraphNASConv", "GRAPHNAS_ATTENTIONS", "GRAPHNAS_AGGREGATIONS"]

#: attention functions of the GraphNAS / Auto-GNN space
GRAPHNAS_ATTENTIONS = ("const", "gcn", "gat", "sym-gat", "cos", "linear", "generalized_linear")
#: neighbourhood aggregators of the GraphNAS / Auto-GNN space
GRAPHNAS_AGGREGATIONS = ("sum", "mean", "max", "mlp")

# which attention vectors each function reads: a_l scores the target, a_r the source
_USES_LEFT = {"gat", "sym-gat", "cos", "generalized_linear"}
_USES_RIGHT = {"gat", "sym-gat", "cos", "linear", "generalized_linear"}


class GraphNASConv(MessagePassing):
    r"""One layer of the GraphNAS search space, from `"Graph Neural Architecture Search"
    <https://www.ijcai.org/proceedings/2020/195>`_ (Gao et al., IJCAI 2020), also the space of
    `"Auto-GNN: Neural Architecture Search of Graph Neural Networks"
    <https://arxiv.org/abs/1909.03184>`_ (Zhou et al., 2019).

    With :math:`h = xW` split into :math:`K` heads of :math:`C` channels, per head

    .. math::
        m_{ij} = \phi\big(\alpha_{ij} h_j\big), \qquad
        x_i' = \mathop{\mathrm{AGG}}_{j \in \mathcal{N}(i) \cup \{i\}} m_{ij},

    and the heads are concatenated (or averaged, ``concat=False``), plus a bias. The
    attention coefficient :math:`\alpha_{ij}` is

    - ``const``: :math:`1`;
    - ``gcn``: :math:`1/\sqrt{d_i d_j}` (degrees with self-loops);
    - otherwise :math:`\mathrm{softmax}_j(e_{ij})` over the neighbours of :math:`i`, with
      ``gat``: :math:`e_{ij} = \mathrm{LeakyReLU}(a_l^\top h_i + a_r^\top h_j)`;
      ``sym-gat``: :math:`e_{ij} + e_{ji}` of ``gat``;
      ``cos``: :math:`e_{ij} = \langle a_l \circ h_i, a_r \circ h_j\rangle`;
      ``linear``: :math:`e_{ij} = \tanh(a_r^\top h_j)`;
      ``generalized_linear``: :math:`e_{ij} = w^\top \tanh(a_l \circ h_i + a_r \circ h_j)`.

    The aggregator AGG is a sum (``sum``, ``mlp``), mean (``mean``) or element-wise max
    (``max``); for ``mean``, ``max`` and ``mlp`` the messages first pass the two-layer MLP
    :math:`\phi(m) = W_2\,\mathrm{ReLU}(W_1 m + b_1) + b_2` (hidden ``pool_dim``, shared by
    the heads), as in GraphSAGE's pooling aggregators; for ``sum`` :math:`\phi` is the
    identity. GraphNAS stacks its two pooling linears without the ReLU, which makes them one
    linear map; the ReLU here makes the ``mlp`` aggregator differ from ``sum``.

    Only the parameters a function reads are created (``const`` and ``gcn`` have no attention
    vectors; ``linear`` only :math:`a_r`), so two layers have the same parameter shapes only
    when their widths, heads, aggregators and attention families agree.

    Args:
        in_channels (int): input size.
        out_channels (int): channels per head :math:`C`.
        heads (int): attention heads :math:`K` (default: ``1``).
        concat (bool): concatenate the heads, else average them (default: ``True``).
        attention (str): one of :data:`GRAPHNAS_ATTENTIONS` (default: ``"gat"``).
        aggregation (str): one of :data:`GRAPHNAS_AGGREGATIONS` (default: ``"sum"``).
        pool_dim (int): hidden size of the message MLP (default: ``128``, GraphNAS's).
        negative_slope (float): LeakyReLU slope of ``gat`` and ``sym-gat`` (default: ``0.2``).
        dropout (float): dropout on the attention coefficients in training (default: ``0``).
        bias (bool): learn an additive bias (default: ``True``).
        **kwargs: passed to :class:`~torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)` (self-loops are replaced by one per node)
        - **output:** :math:`(|\mathcal{V}|, K C)` with ``concat``, else
          :math:`(|\mathcal{V}|, C)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        attention: str = "gat",
        aggregation: str = "sum",
        pool_dim: int = 128,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        bias: bool = True,
        **kwargs,
    ) -> None:
        if attention not in GRAPHNAS_ATTENTIONS:
            raise ValueError(f"attention must be one of {GRAPHNAS_ATTENTIONS}, got {attention!r}")
        if aggregation not in GRAPHNAS_AGGREGATIONS:
            raise ValueError(
                f"aggregation must be one of {GRAPHNAS_AGGREGATIONS}, got {aggregation!r}"
            )
        if min(in_channels, out_channels, heads, pool_dim) < 1:
            raise ValueError(
                "in_channels, out_channels, heads and pool_dim must be positive, got "
                f"{in_channels}, {out_channels}, {heads}, {pool_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if not math.isfinite(negative_slope):
            raise ValueError(f"negative_slope must be finite, got {negative_slope}")
        kwargs.setdefault("aggr", {"sum": "add", "mlp": "add"}.get(aggregation, aggregation))
        super().__init__(node_dim=0, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.attention = attention
        self.aggregation = aggregation
        self.pool_dim = pool_dim
        self.negative_slope = float(negative_slope)
        self.dropout = float(dropout)

        self.lin = Linear(in_channels, heads * out_channels, bias=False)
        shape = (1, heads, out_channels)
        self.att_l = Parameter(torch.empty(shape)) if attention in _USES_LEFT else None
        self.att_r = Parameter(torch.empty(shape)) if attention in _USES_RIGHT else None
        self.att_w = (Linear(out_channels, 1, bias=False)
                      if attention == "generalized_linear" else None)
        if aggregation == "sum":
            self.pool1 = self.pool2 = None
        else:
            self.pool1 = Linear(out_channels, pool_dim)
            self.pool2 = Linear(pool_dim, out_channels)
        size = heads * out_channels if concat else out_channels
        self.bias = Parameter(torch.empty(size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights and attention vectors, zero biases (GraphNAS's initialisation)."""
        super().reset_parameters()
        glorot(self.lin.weight)
        for p in (self.att_l, self.att_r):
            if p is not None:
                glorot(p)
        if self.att_w is not None:
            glorot(self.att_w.weight)
        for layer in (self.pool1, self.pool2):
            if layer is not None:
                glorot(layer.weight)
                zeros(layer.bias)
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        if x.size(0) == 0:
            raise ValueError("the graph is empty: x has no rows")
        if isinstance(edge_index, Tensor) and edge_index.layout != torch.strided:
            # its attention sets the edge weights, so a weighted adjacency has no meaning here
            raise ValueError(f"{self.__class__.__name__} takes an edge_index [2, num_edges], "
                             f"got a sparse adjacency ({edge_index.layout}): convert it with "
                             "torch_geometric.utils.to_edge_index")
        check_edge_index_layout(edge_index)
        num_nodes = x.size(0)
        # out-of-range ids would fall outside every scatter and be dropped silently
        edge_index = check_edge_index(edge_index, num_nodes)
        edge_index, _ = remove_self_loops(edge_index)
        h = self.lin(x).view(num_nodes, self.heads, self.out_channels)
        if self.attention == "gcn":
            edge_index, coef = degree_power_norm(edge_index, num_nodes=num_nodes, dtype=h.dtype)
            coef = coef.view(-1, 1)
        else:
            edge_index, _ = add_self_loops(edge_index, num_nodes=num_nodes)
            coef = None if self.attention == "const" else self._attention(h, edge_index)
        out = self.propagate(edge_index, h=h, coef=coef)
        out = out.reshape(num_nodes, -1) if self.concat else out.mean(dim=1)
        return out if self.bias is None else out + self.bias

    def _attention(self, h: Tensor, edge_index: Tensor) -> Tensor:
        """Softmax-normalised coefficients ``[E, heads]`` of the learned functions."""
        src, dst = edge_index
        att = self.attention
        if att in ("gat", "sym-gat"):
            left = (h * self.att_l).sum(-1)
            right = (h * self.att_r).sum(-1)
            e = F.leaky_relu(left[dst] + right[src], self.negative_slope)
            if att == "sym-gat":
                e = e + F.leaky_relu(left[src] + right[dst], self.negative_slope)
        elif att == "cos":
            e = ((h[dst] * self.att_l) * (h[src] * self.att_r)).sum(-1)
        elif att == "linear":
            e = torch.tanh((h * self.att_r).sum(-1))[src]
        else:  # generalized_linear
            e = self.att_w(torch.tanh(h[dst] * self.att_l + h[src] * self.att_r)).squeeze(-1)
        alpha = softmax(e, dst, num_nodes=h.size(0))
        return F.dropout(alpha, p=self.dropout, training=self.training)

    def message(self, h_j: Tensor, coef: Tensor | None) -> Tensor:
        msg = h_j if coef is None else coef.unsqueeze(-1) * h_j
        if self.pool1 is not None:
            msg = self.pool2(F.relu(self.pool1(msg)))
        return msg

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, attention={self.attention!r}, "
                f"aggregation={self.aggregation!r}, concat={self.concat})")
