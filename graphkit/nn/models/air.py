"""AIR (Adaptive Initial Residual) models of DGMLP: SGC+AIR, APPNP+AIR and GCN+AIR.

From `"Model Degradation Hinders Deep Graph Neural Networks" <https://arxiv.org/abs/2206.04361>`_
(Zhang et al., KDD 2022; arXiv: `"Evaluating Deep Graph Neural Networks"
<https://arxiv.org/abs/2108.00955>`_). Propagation depth (hops) and transformation depth (MLP
layers) are set independently.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Linear, ModuleList, PReLU
from torch_geometric.nn import GCNConv

from graphkit.data.validation import check_edge_index
from graphkit.nn._cache import CachedGraph, check_cached_graph, check_pyg_gcn_cache
from graphkit.nn._checks import (
    as_edge_index,
    check_edge_index_layout,
    check_floating,
    check_node_features,
)
from graphkit.nn.conv.hop_attention import HopAttention
from graphkit.nn.hop_features import normalized_adjacency, propagate_hops, transpose_csr
from graphkit.nn.models.initial_residual_mlp import InitialResidualMLP
from graphkit.nn.sparse_input import feature_dropout

__all__ = ["SGCAIR", "APPNPAIR", "GCNAIR"]


def _check_dropout(**named: float) -> None:
    for name, p in named.items():
        if not 0.0 <= p < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p}")


class _HopFFN(torch.nn.Module):
    """Per-hop two-layer feed-forward net (``--pre-process`` of the official OGB script)."""

    def __init__(self, in_channels: int, hidden_channels: int, dropout: float) -> None:
        super().__init__()
        self.lin1 = Linear(in_channels, hidden_channels)
        self.bn = BatchNorm1d(hidden_channels)
        self.act = PReLU()
        self.lin2 = Linear(hidden_channels, hidden_channels)
        self.dropout = dropout

    def reset_parameters(self) -> None:
        for m in (self.lin1, self.bn, self.act, self.lin2):
            m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        x = F.dropout(self.act(self.bn(self.lin1(x))), p=self.dropout, training=self.training)
        return self.lin2(x)


class SGCAIR(torch.nn.Module):
    r"""SGC+AIR (DGMLP) from `"Model Degradation Hinders Deep Graph Neural Networks"
    <https://arxiv.org/abs/2206.04361>`_ (Zhang et al., KDD 2022): hop attention over
    precomputed :math:`\mathbf{\hat{A}}^k\mathbf{X}`, then an initial-residual MLP.

    .. math::
        \mathbf{r}_i = \sum_{k} \operatorname{softmax}_k\big(\sigma(\mathbf{w}^{\top}
        [\mathbf{x}^{(0)}_i \Vert \mathbf{x}^{(k)}_i] + b)\big)\, \mathbf{x}^{(k)}_i,
        \qquad \mathbf{y}_i = \mathrm{MLP}_{L}(\mathbf{r}_i)

    Inputs are the stacked hops from :func:`graphkit.nn.hop_features.propagate_hops`, so
    training is node-wise and any subset of rows can be fed (mini-batches, eval rows only).

    The official small-dataset script is hop attention + logistic regression with the last hop
    left out of the sum: ``num_layers=1, skip_last_hop=True``. The default sums every hop.
    The OGB script uses ``pre_process=True, activation="leaky_relu"``, ``att_dropout`` and a
    deep residual MLP (``num_layers=6``, ``hidden_channels=1024``).

    Args:
        in_channels (int): Feature size :math:`F`.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): MLP (and per-hop FFN) width. (default: ``64``)
        num_layers (int, optional): Transformation depth of the MLP. (default: ``1``)
        dropout (float, optional): Dropout inside the MLP. (default: ``0``)
        input_dropout (float, optional): Dropout on every hop's input features. (default: ``0``)
        att_dropout (float, optional): Dropout on the hop weights. (default: ``0``)
        activation (str, optional): Score activation of :class:`HopAttention`.
            (default: ``"sigmoid"``)
        pre_process (bool, optional): Pass each hop through its own 2-layer FFN before
            attention; needs ``num_hops``. (default: :obj:`False`)
        num_hops (int, optional): Propagation depth :math:`K` (needed with ``pre_process``).
        skip_last_hop (bool, optional): Reproduce the official off-by-one. (default: :obj:`False`)
        initial_residual (bool, optional): See :class:`InitialResidualMLP`. (default: :obj:`True`)
        first_hop (int, optional): Combine hops :math:`s` = ``first_hop`` to :math:`K` only, i.e.
            start the hop stack at :math:`\mathbf{\hat{A}}^{s}\mathbf{X}` (which then is also the
            attention's reference :math:`\mathbf{x}^{(0)}`). ``0`` (the paper) includes the raw
            features; ``1`` leaves them out, which matters at small depth: with 2 hops the raw
            features keep about a third of the weight on Cora, and the attention, trained on
            140 labels, does not lower it. Not in the official code. (default: ``0``)

    Shapes:
        - **input:** hops :math:`(N, K + 1, F)`
        - **output:** logits :math:`(N, c)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        att_dropout: float = 0.0,
        activation: str = "sigmoid",
        pre_process: bool = False,
        num_hops: int | None = None,
        skip_last_hop: bool = False,
        initial_residual: bool = True,
        first_hop: int = 0,
    ) -> None:
        super().__init__()
        _check_dropout(dropout=dropout, input_dropout=input_dropout)
        if pre_process and num_hops is None:
            raise ValueError("pre_process=True needs num_hops (one FFN per hop)")
        if num_hops is not None and num_hops < 0:  # before first_hop, whose range it sets
            raise ValueError(f"num_hops must be >= 0, got {num_hops}")
        if first_hop < 0 or (num_hops is not None and first_hop > num_hops):
            raise ValueError(f"first_hop must be in [0, num_hops], got {first_hop}")
        if pre_process and first_hop:
            raise ValueError("pre_process=True supports first_hop=0 only")
        self.first_hop = first_hop
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_hops = num_hops
        self.input_dropout = input_dropout
        att_channels = hidden_channels if pre_process else in_channels
        self.ffns = ModuleList(
            _HopFFN(in_channels, hidden_channels, dropout) for _ in range(num_hops + 1)
        ) if pre_process else None
        self.attention = HopAttention(att_channels, activation, att_dropout,
                                      skip_last_hop=skip_last_hop)
        self.mlp = InitialResidualMLP(att_channels, hidden_channels, out_channels, num_layers,
                                      dropout, initial_residual=initial_residual)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.ffns is not None:
            for ffn in self.ffns:
                ffn.reset_parameters()
        self.attention.reset_parameters()
        self.mlp.reset_parameters()

    def combine(self, hops: Tensor, return_weights: bool = False):
        """Hop-attention output :math:`\\mathbf{r}` (and optionally the weights)."""
        if hops.dim() != 3:
            raise ValueError(f"hops must have shape (num_nodes, num_hops + 1, F), "
                             f"got {tuple(hops.shape)}")
        if self.num_hops is not None and hops.size(1) != self.num_hops + 1:
            raise ValueError(f"expected {self.num_hops + 1} hops, got {hops.size(1)}")
        if hops.size(2) != self.in_channels:
            raise ValueError(f"hops have {hops.size(2)} features, but in_channels is "
                             f"{self.in_channels}")
        if self.first_hop:
            if hops.size(1) <= self.first_hop:
                raise ValueError(f"first_hop={self.first_hop} needs more than {self.first_hop} "
                                 f"hops, got {hops.size(1)}")
            hops = hops[:, self.first_hop:]
        hops = F.dropout(hops, p=self.input_dropout, training=self.training)
        if self.ffns is not None:
            hops = torch.stack([ffn(hops[:, k]) for k, ffn in enumerate(self.ffns)], dim=1)
        return self.attention(hops, return_weights=return_weights)

    def forward(self, hops: Tensor) -> Tensor:
        return self.mlp(self.combine(hops))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"num_layers={self.mlp.num_layers}, pre_process={self.ffns is not None}, "
                f"first_hop={self.first_hop})")


class _CachedAdjacency(torch.nn.Module):
    """The GCN-normalised adjacency and its transpose (for a fast backward pass, see
    :func:`~graphkit.nn.hop_features.sparse_matmul`); with ``cached`` those of the first graph,
    kept for later calls (transductive use: another graph raises)."""

    def __init__(self, cached: bool, owner: str) -> None:
        super().__init__()
        self.cached, self.owner = cached, owner  # the model named in the error
        self._adj: tuple[Tensor, Tensor] | None = None
        self._graph: CachedGraph | None = None  # the graph the cache was built from

    def reset_parameters(self) -> None:
        self._adj = self._graph = None

    def __getstate__(self) -> dict:
        # Sparse CSR tensors cannot be deep-copied or pickled: a copy rebuilds its cache.
        return {**super().__getstate__(), "_adj": None, "_graph": None}

    def forward(self, edge_index: Tensor, num_nodes: int, x: Tensor) -> tuple[Tensor, Tensor]:
        check_edge_index_layout(edge_index)
        adj = self._adj
        if adj is not None:
            self._graph = check_cached_graph(self.owner, self._graph, num_nodes,
                                             {"edge_index": edge_index})
        if adj is None or adj[0].device != x.device or adj[0].dtype != x.dtype:
            given = edge_index
            edge_index, edge_weight = as_edge_index(edge_index)
            a = normalized_adjacency(edge_index, num_nodes, "sym", edge_weight, dtype=x.dtype)
            adj = (a, transpose_csr(a))
            if self.cached:
                self._adj = adj
                self._graph = CachedGraph(num_nodes, {"edge_index": given})
        return adj


class APPNPAIR(torch.nn.Module):
    r"""APPNP+AIR from `"Model Degradation Hinders Deep Graph Neural Networks"
    <https://arxiv.org/abs/2206.04361>`_ (Zhang et al., KDD 2022): predict with an MLP,
    propagate with personalised PageRank, and mix every iterate with node-adaptive softmax hop
    attention.

    .. math::
        \mathbf{H}^{(0)} &= \mathrm{MLP}(\mathbf{X}), \qquad
        \mathbf{H}^{(k)} = (1-\alpha)\,\mathbf{\hat{A}}\mathbf{H}^{(k-1)}
        + \alpha\mathbf{H}^{(0)}

        \mathbf{y}_i &= \sum_k \operatorname{softmax}_k\big(\sigma(\mathbf{w}^{\top}
        [\mathbf{h}^{(0)}_i \Vert \mathbf{h}^{(k)}_i] + b)\big)\,\mathbf{h}^{(k)}_i

    ``alpha`` is the teleport probability (PyG's convention); the official code's ``0.95`` is
    the weight on the propagated term, i.e. ``alpha=0.05`` here.

    Args:
        in_channels (int): Feature size.
        hidden_channels (int): MLP width.
        out_channels (int): Number of classes.
        K (int): Propagation depth.
        alpha (float, optional): Teleport probability. (default: ``0.05``)
        dropout (float, optional): Dropout on the input and hidden layer. (default: ``0.5``)
        skip_last_hop (bool, optional): Reproduce the official off-by-one. (default: :obj:`False`)
        cached (bool, optional): Normalise the adjacency on the first call and reuse it:
            transductive use on one fixed graph only (full-batch training, as in graphkit's
            recipes); a call with another graph raises a ValueError until
            :meth:`reset_parameters`. (default: :obj:`False`, as in PyG)

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices :math:`(2, |\mathcal{E}|)`
        - **output:** logits :math:`(N, c)`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        K: int,
        alpha: float = 0.05,
        dropout: float = 0.5,
        skip_last_hop: bool = False,
        cached: bool = False,
    ) -> None:
        super().__init__()
        _check_dropout(dropout=dropout)
        if K < 0:
            raise ValueError(f"K (propagation depth) must be >= 0, got {K}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.K, self.alpha, self.dropout = K, alpha, dropout
        self.lin1 = Linear(in_channels, hidden_channels)
        self.lin2 = Linear(hidden_channels, out_channels)
        self.attention = HopAttention(out_channels, "sigmoid", skip_last_hop=skip_last_hop)
        self.adj = _CachedAdjacency(cached, type(self).__name__)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        self.attention.reset_parameters()
        self.adj.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.lin1.in_features)
        check_floating(x)
        x = feature_dropout(x, self.dropout, self.training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, p=self.dropout, training=self.training)
        h0 = self.lin2(x)
        adj, adj_t = self.adj(edge_index, x.size(0), x)
        hops = propagate_hops(h0, adj, self.K, self.alpha, adj_t=adj_t)
        return self.attention(hops)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(K={self.K}, alpha={self.alpha})"


class GCNAIR(torch.nn.Module):
    r"""GCN+AIR from `"Model Degradation Hinders Deep Graph Neural Networks"
    <https://arxiv.org/abs/2206.04361>`_ (Zhang et al., KDD 2022): a deep GCN whose layers mix
    in the first layer's output through a learned, node-adaptive initial residual.

    .. math::
        \mathbf{x}^{(1)} &= \mathbf{\hat{A}}\mathbf{X}\mathbf{W}_0, \qquad
        a^{(l)}_i = \sigma\big(\mathbf{v}_l^{\top}[\mathbf{x}^{(l)}_i \Vert
        \mathbf{x}^{(1)}_i] + c_l\big)

        \mathbf{x}^{(l+1)} &= \mathbf{\hat{A}}\,\mathrm{drop}\Big(\mathrm{PReLU}\big(
        (1-a^{(l)})\,\mathbf{x}^{(l)} + a^{(l)}\,\mathbf{x}^{(1)}\big)\Big)\mathbf{W}_l

        \mathbf{Y} &= \mathrm{PReLU}(\mathrm{drop}(\mathbf{x}^{(L)}))\,\mathbf{W}_{out}

    for :math:`l = 1, \ldots, L - 1` (the coupled form of the official small-dataset model,
    with its crashing script fixed).

    The first gate is inert, as in the official code: at :math:`l = 1` it mixes
    :math:`\mathbf{x}^{(1)}` with itself, :math:`(1-a^{(1)})\,\mathbf{x}^{(1)} +
    a^{(1)}\,\mathbf{x}^{(1)} = \mathbf{x}^{(1)}` whatever :math:`a^{(1)}`, so ``gates[0]``
    (:math:`\mathbf{v}_1, c_1`) never changes the output and gets no gradient. The adaptive
    residual acts from the third layer on; with ``num_layers=2`` (the official CiteSeer and
    PubMed setting) the model is a plain two-layer GCN with PReLU. The parameter is kept so
    that the parameter count and ``state_dict`` match the official model.

    Args:
        in_channels (int): Feature size.
        hidden_channels (int): Hidden width.
        out_channels (int): Number of classes.
        num_layers (int): Number of graph convolutions :math:`L \ge 1`.
        dropout (float, optional): Dropout between layers. (default: ``0.5``)
        input_dropout (float, optional): Dropout on the input features. (default: ``0``)
        cached (bool, optional): Normalise the adjacency on the first call and reuse it:
            transductive use on one fixed graph only (full-batch training, as in graphkit's
            recipes); a call with another graph raises a ValueError until
            :meth:`reset_parameters`. (default: :obj:`False`, as in PyG)

    Shapes:
        - **input:** node features :math:`(N, F)`, edge indices :math:`(2, |\mathcal{E}|)`
        - **output:** logits :math:`(N, c)`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        dropout: float = 0.5,
        input_dropout: float = 0.0,
        cached: bool = False,
    ) -> None:
        super().__init__()
        _check_dropout(dropout=dropout, input_dropout=input_dropout)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers, self.dropout, self.input_dropout = num_layers, dropout, input_dropout
        self.convs = ModuleList([GCNConv(in_channels, hidden_channels, cached=cached)] + [
            GCNConv(hidden_channels, hidden_channels, cached=cached)
            for _ in range(num_layers - 1)
        ])
        self.gates = ModuleList(Linear(2 * hidden_channels, 1) for _ in range(num_layers - 1))
        self.acts = ModuleList(PReLU() for _ in range(num_layers))
        self.out = Linear(hidden_channels, out_channels)
        self._cached_graph: CachedGraph | None = None  # the graph the convs' caches hold
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in [*self.convs, *self.gates, *self.acts, self.out]:
            m.reset_parameters()
        self._cached_graph = None

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_node_features(x, self.convs[0].in_channels)
        check_floating(x)
        check_edge_index_layout(edge_index)
        check_pyg_gcn_cache(self, self.convs, x, edge_index)
        first = self.convs[0]
        if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided and not (
                first.cached and first._cached_edge_index is not None):
            # the convs normalise in this call (gcn_norm synchronises anyway): an out-of-range
            # id would otherwise fail inside PyG without naming the node, as in DAGNN/APPNPAIR
            check_edge_index(edge_index, x.size(0))
        x = feature_dropout(x, self.input_dropout, self.training)
        x = x_in = self.convs[0](x, edge_index)
        for conv, gate, act in zip(self.convs[1:], self.gates, self.acts[:-1]):
            a = torch.sigmoid(gate(torch.cat([x, x_in], dim=-1)))
            x = (1 - a) * x + a * x_in
            x = F.dropout(act(x), p=self.dropout, training=self.training)
            x = conv(x, edge_index)
        x = self.acts[-1](F.dropout(x, p=self.dropout, training=self.training))
        return self.out(x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_layers={self.num_layers})"
