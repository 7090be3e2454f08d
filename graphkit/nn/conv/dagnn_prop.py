"""The adaptive propagation layer of DAGNN (Liu, Gao and Ji, KDD 2020)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse, spmm, to_torch_csr_tensor

from graphkit.data.validation import check_edge_index
from graphkit.nn._cache import CachedGraph, check_cached_graph
from graphkit.nn._checks import check_edge_index_layout
from graphkit.nn.hop_features import sparse_matmul, transpose_csr

__all__ = ["DAGNNProp"]


class DAGNNProp(MessagePassing):
    r"""The adaptive propagation of the `"Towards Deeper Graph Neural Networks"
    <https://arxiv.org/abs/2007.09296>`_ paper (DAGNN, KDD 2020).

    .. math::
        \mathbf{H}_0 &= \mathbf{Z}, \qquad
        \mathbf{H}_k = \mathbf{\hat{D}}^{-1/2} \mathbf{\hat{A}}
        \mathbf{\hat{D}}^{-1/2} \mathbf{H}_{k-1}, \quad k = 1, \ldots, K

        s_{ik} &= \sigma\left(\mathbf{H}_{k,i} \cdot \mathbf{s} + b\right)

        \mathbf{z}^{\prime}_i &= \sum_{k=0}^{K} s_{ik} \, \mathbf{H}_{k,i},

    where :math:`\mathbf{\hat{A}} = \mathbf{A} + \mathbf{I}` (self-loops are added only
    where missing, as in :func:`~torch_geometric.nn.conv.gcn_conv.gcn_norm`) and
    :math:`(\mathbf{s}, b)` is one :class:`~torch.nn.Linear` ``(channels, 1)`` shared by every
    hop and node. The retention scores :math:`s_{ik}` are independent sigmoid gates: they are
    **not** normalised across hops (unlike softmax hop attention).

    Args:
        channels (int): Size :math:`c` of each input sample (the class logits in DAGNN).
        K (int): Number of propagation steps :math:`K`.
        bias (bool, optional): If set to :obj:`False`, the retention projection has no bias
            :math:`b` (the paper's equation; the official code has one). (default: :obj:`True`)
        cached (bool, optional): If set to :obj:`True`, the normalised adjacency is computed on
            the first call and reused: transductive use on one fixed graph only. A call with
            another graph raises a ValueError until :meth:`reset_parameters`. The cached graph
            is a constant: learned edge weights need :obj:`cached=False`.
            (default: :obj:`False`)
        add_self_loops (bool, optional): If set to :obj:`False`, no self-loops are added before
            normalising. (default: :obj:`True`)
        normalize (bool, optional): If set to :obj:`False`, ``edge_weight`` is used as given.
            (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, c)`, edge indices
          :math:`(2, |\mathcal{E}|)` or a sparse adjacency, edge weights
          :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, c)`, and with
          ``return_retention_scores=True`` also the scores :math:`(|\mathcal{V}|, K + 1)`
    """

    def __init__(
        self,
        channels: int,
        K: int,
        bias: bool = True,
        cached: bool = False,
        add_self_loops: bool = True,
        normalize: bool = True,
        **kwargs,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        if K < 0:
            raise ValueError(f"K (number of propagation steps) must be >= 0, got {K}")
        self.channels = channels
        self.K = K
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self.proj = Linear(channels, 1, bias=bias)
        self._cache: tuple[Adj, OptTensor] | None = None
        self._graph: CachedGraph | None = None  # the graph the cache was built from
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.proj.reset_parameters()
        self._cache = self._graph = None

    def _normalized(self, edge_index: Adj, edge_weight: OptTensor, x: Tensor):
        """The propagation graph: ``(adj, adj_T)``, the normalised adjacency as a sparse CSR
        matrix (row ``i`` holds the edges into node ``i``) and its transpose, for an
        ``edge_index`` input; ``(edge_index, edge_weight)`` as PyG's ``gcn_norm`` returns them
        for a sparse input, without normalisation, or while PyG's explainer masks messages."""
        # PyG's Explainer masks messages inside propagate(): no sparse products then
        explain = bool(self._explain)
        num_nodes = x.size(self.node_dim)
        given = {"edge_index": edge_index, "edge_weight": edge_weight}  # as the caller has them
        if self._cache is not None and not explain:
            self._graph = check_cached_graph(type(self).__name__, self._graph, num_nodes, given)
            if self._cache_matches(x):
                return self._cache
        if edge_weight is not None:
            if isinstance(edge_index, Tensor) and not is_sparse(edge_index) and \
                    (edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1)):
                raise ValueError(f"edge_weight must have shape [{edge_index.size(1)}] (one "
                                 f"weight per edge), got {list(edge_weight.shape)}")
            edge_weight = edge_weight.to(x.dtype)  # PyG's layers promote as well
        if isinstance(edge_index, Tensor) and not is_sparse(edge_index):
            # gcn_norm synchronises anyway; an out-of-range id would otherwise fail inside it
            check_edge_index(edge_index, num_nodes)
        out = (edge_index, edge_weight)
        if self.normalize:
            out = gcn_norm(edge_index, edge_weight, num_nodes, False, self.add_self_loops,
                           self.flow, dtype=x.dtype)
        if isinstance(out[0], Tensor) and not is_sparse(out[0]) and not explain:
            # One sparse product per hop (and one per hop backwards, with the cached
            # transpose) instead of a gather and a scatter: the same sums, several times faster.
            index, weight = out
            if weight is None:
                weight = torch.ones(index.size(1), dtype=x.dtype, device=index.device)
            if self.flow == "source_to_target":
                index = index.flip(0)
            adj = to_torch_csr_tensor(index, weight, size=(num_nodes, num_nodes))
            out = (adj, transpose_csr(adj))
        if self.cached and not explain:
            # a cached graph is a constant: no gradient reaches edge_weight through it
            self._cache = tuple(t.detach() if isinstance(t, Tensor) else t for t in out)
            self._graph = CachedGraph(num_nodes, given)
            return self._cache
        return out

    def _cache_matches(self, x: Tensor) -> bool:
        """Whether the cached graph suits ``x``: after ``.double()`` or ``.to(device)`` it is
        rebuilt instead of mixing dtypes or devices."""
        graph = self._cache[0]
        if not isinstance(graph, Tensor):
            return True
        values = graph if graph.layout != torch.strided else self._cache[1]
        return graph.device == x.device and (values is None or values.dtype == x.dtype)

    def __getstate__(self) -> dict:
        # Sparse CSR tensors cannot be deep-copied or pickled: a copy rebuilds its cache.
        return {**super().__getstate__(), "_cache": None, "_graph": None}

    def propagate_hops(self, x: Tensor, edge_index: Adj, edge_weight: OptTensor = None) -> Tensor:
        """Stacked hops :math:`[\\mathbf{H}_0, \\ldots, \\mathbf{H}_K]`, shape ``(N, K+1, c)``."""
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise ValueError(f"x must have shape (num_nodes, {self.channels}), "
                             f"got {tuple(x.shape)}")
        check_edge_index_layout(edge_index)
        graph, second = self._normalized(edge_index, edge_weight, x)
        csr = isinstance(graph, Tensor) and graph.layout == torch.sparse_csr and \
            isinstance(second, Tensor) and second.layout == torch.sparse_csr
        hops = [x]
        for _ in range(self.K):
            if csr:
                x = sparse_matmul(graph, x, second)
            else:
                x = self.propagate(graph, x=x, edge_weight=second)
            hops.append(x)
        return torch.stack(hops, dim=1)

    def retention_scores(self, hops: Tensor) -> Tensor:
        """Sigmoid retention scores :math:`s_{ik}` of stacked hops, shape ``(N, K+1)``."""
        return torch.sigmoid(self.proj(hops)).squeeze(-1)

    def forward(
        self,
        x: Tensor,
        edge_index: Adj,
        edge_weight: OptTensor = None,
        return_retention_scores: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        hops = self.propagate_hops(x, edge_index, edge_weight)
        scores = self.retention_scores(hops)
        out = torch.bmm(scores.unsqueeze(1), hops).squeeze(1)
        if return_retention_scores:
            return out, scores
        return out

    def message(self, x_j: Tensor, edge_weight: OptTensor) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Adj, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce=self.aggr)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, K={self.K})"
