"""The HGNN hypergraph convolution (Feng et al., AAAI 2019)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import zeros
from torch_geometric.utils import scatter, to_torch_csr_tensor

from graphkit.data.hypergraph import check_hyperedge_index, num_hyperedges_of
from graphkit.nn._cache import CachedGraph, check_cached_graph
from graphkit.nn._checks import check_node_features
from graphkit.nn.hop_features import sparse_matmul, transpose_csr

__all__ = ["HGNNConv", "hgnn_norm"]


def _inv(t: Tensor, power: float = 1.0) -> Tensor:
    out = t.pow(-power)
    return out.masked_fill(torch.isinf(out), 0.0)


def hgnn_norm(
    hyperedge_index: Tensor,
    num_nodes: int,
    num_hyperedges: int,
    hyperedge_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-incidence coefficients of the two stages of the HGNN convolution.

    For incidence ``(v, e)`` the vertex-to-hyperedge stage uses
    :math:`\\delta(e)^{-1} d(v)^{-1/2}` and the hyperedge-to-vertex stage
    :math:`w_e \\, d(v)^{-1/2}`, so the two stages together apply
    :math:`\\mathbf{D}_v^{-1/2}\\mathbf{H}\\mathbf{W}\\mathbf{D}_e^{-1}\\mathbf{H}^\\top
    \\mathbf{D}_v^{-1/2}`. Zero degrees give zero coefficients.
    """
    w = _weights(hyperedge_index, num_hyperedges, hyperedge_weight)
    dv, de = _degrees(hyperedge_index, num_nodes, num_hyperedges, w)
    dv, de = _inv(dv, 0.5), _inv(de)
    v, e = hyperedge_index
    return de[e] * dv[v], w[e] * dv[v]


def _degrees(hyperedge_index: Tensor, num_nodes: int, num_hyperedges: int,
             w: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted vertex degrees ``[N]`` and hyperedge sizes ``[M]`` of a checked index
    (the unchecked core of :func:`graphkit.data.hypergraph.vertex_degree` and
    :func:`~graphkit.data.hypergraph.hyperedge_degree`)."""
    v, e = hyperedge_index
    dv = scatter(w[e], v, dim=0, dim_size=num_nodes, reduce="sum")
    de = scatter(torch.ones_like(w[e]), e, dim=0, dim_size=num_hyperedges, reduce="sum")
    return dv, de


def _weights(hyperedge_index: Tensor, num_hyperedges: int, weight: Tensor | None) -> Tensor:
    if weight is None:
        return torch.ones(num_hyperedges, device=hyperedge_index.device)
    if weight.dim() != 1 or weight.numel() != num_hyperedges:
        raise ValueError(
            f"hyperedge_weight must have shape [{num_hyperedges}], got {list(weight.shape)}"
        )
    weight = weight if weight.is_floating_point() else weight.float()
    # a negative weight can make d(v) negative (d(v)^{-1/2} is NaN) and a NaN spreads to
    # every member: both gave NaN outputs silently; zero weights are fine (d(v) = 0 -> 0)
    bad = ~(torch.isfinite(weight) & (weight >= 0))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"hyperedge_weight must be finite and non-negative, got "
                         f"{float(weight[i])} for hyperedge {i}")
    return weight


class HGNNConv(MessagePassing):
    r"""The hypergraph convolution from `"Hypergraph Neural Networks"
    <https://arxiv.org/abs/1809.09401>`_ (Feng et al., AAAI 2019):

    .. math::
        \mathbf{X}^{\prime} = \mathbf{D}_v^{-1/2} \mathbf{H} \mathbf{W}
        \mathbf{D}_e^{-1} \mathbf{H}^{\top} \mathbf{D}_v^{-1/2} \mathbf{X} \mathbf{\Theta}
        + \mathbf{b}

    where :math:`\mathbf{H}` is the incidence matrix, :math:`\mathbf{W}` the diagonal finite,
    non-negative hyperedge weights (default 1), :math:`\mathbf{D}_v` the weighted vertex degrees
    :math:`d(v) = \sum_e w_e h(v, e)` and :math:`\mathbf{D}_e` the hyperedge sizes. It is
    computed as two message-passing stages (vertex to hyperedge, hyperedge to vertex), never
    forming the :math:`N \times N` operator. PyG's
    :class:`~torch_geometric.nn.conv.HypergraphConv` normalises with :math:`\mathbf{D}_v^{-1}`
    on the left only; this layer uses the symmetric form of the paper and of DHG's ``HGNNConv``.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        bias (bool, optional): Learn an additive bias :math:`\mathbf{b}`. (default: :obj:`True`)
        cached (bool, optional): Compute the normalisation on the first call and reuse it;
            only for a fixed hypergraph (transductive training). The cached layer keeps the
            two stages as sparse CSR matrices (and their transposes, for the backward pass)
            and applies them as sparse products, several times faster than the gather and
            scatter of an uncached call. A call with another hypergraph raises a ValueError
            until :meth:`reset_cache`. The cache is a constant: learned hyperedge weights
            need :obj:`cached=False`. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** vertex features :math:`(N, F_{in})`, hyperedge indices
          :math:`(2, \text{nnz})` (vertex id, hyperedge id) per incidence, hyperedge
          weights :math:`(M)` *(optional)*
        - **output:** vertex features :math:`(N, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        cached: bool = False,
        **kwargs,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(flow="source_to_target", node_dim=0, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.cached = cached
        # (v2e, to_edges, to_edges_t, to_vertices, to_vertices_t): the first stage's
        # per-incidence coefficients (their count, dtype and device say whether the cache
        # fits) and the two stages as CSR matrices with their transposes
        self._cache: tuple[Tensor, ...] | None = None
        self._graph: CachedGraph | None = None  # the hypergraph the cache was built from
        self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.bias is not None:
            zeros(self.bias)
        self.reset_cache()

    def reset_cache(self) -> None:
        """Forget the cached normalisation (call after changing the hypergraph)."""
        self._cache = self._graph = None

    def normalize(
        self,
        hyperedge_index: Tensor,
        num_nodes: int,
        num_hyperedges: int,
        hyperedge_weight: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """The two per-incidence coefficient vectors (see :func:`hgnn_norm`)."""
        return hgnn_norm(hyperedge_index, num_nodes, num_hyperedges, hyperedge_weight)

    def forward(
        self,
        x: Tensor,
        hyperedge_index: Tensor,
        hyperedge_weight: Tensor | None = None,
        num_hyperedges: int | None = None,
    ) -> Tensor:
        check_node_features(x, self.in_channels)
        num_nodes = x.size(0)
        given = {"hyperedge_index": hyperedge_index, "hyperedge_weight": hyperedge_weight}
        if self._cache is not None:
            self._graph = check_cached_graph(type(self).__name__, self._graph, num_nodes, given,
                                             "reset_cache()", "hypergraph", "vertices")
            if self._cache[0].device != x.device or self._cache[0].dtype != x.dtype:
                self._cache = None  # after .to() or .double(): rebuild on the new device / dtype
        if self._cache is None:
            # no repeat check here (a sort per call): a repeated (vertex, hyperedge) pair
            # counts twice, cached or not, as in PyG's HypergraphConv; the data layer refuses it
            hyperedge_index = check_hyperedge_index(hyperedge_index, num_nodes, num_hyperedges,
                                                    unique=False)
            m = num_hyperedges_of(hyperedge_index, num_hyperedges)
            # coefficients in x's dtype: float32 as before, float64 after .double()
            weight = torch.ones(m, dtype=x.dtype, device=hyperedge_index.device) \
                if hyperedge_weight is None else hyperedge_weight.to(x.dtype)
            v2e, e2v = self.normalize(hyperedge_index, num_nodes, m, weight)
            if self.cached:
                self._cache = self._stages(hyperedge_index, v2e, e2v, num_nodes, m)
                self._graph = CachedGraph(num_nodes, given)
        x = self.lin(x)
        if self._cache is not None:  # every call of a cached layer, its first included
            _, to_edges, to_edges_t, to_vertices, to_vertices_t = self._cache
            out = sparse_matmul(to_vertices, sparse_matmul(to_edges, x, to_edges_t),
                                to_vertices_t)
        else:
            x_e = self.propagate(hyperedge_index, x=x, weight=v2e, size=(num_nodes, m))
            out = self.propagate(hyperedge_index.flip([0]), x=x_e, weight=e2v,
                                 size=(m, num_nodes))
        if self.bias is not None:
            out = out + self.bias
        return out

    @staticmethod
    def _stages(hyperedge_index: Tensor, v2e: Tensor, e2v: Tensor, num_nodes: int,
                num_hyperedges: int) -> tuple[Tensor, ...]:
        """The cache: both stages as CSR matrices, ``(M, N)`` (row ``e``: its members'
        coefficients) and ``(N, M)``, each with its transpose."""
        v, e = hyperedge_index
        # a cached hypergraph is a constant: no gradient reaches hyperedge_weight through it
        v2e, e2v = v2e.detach(), e2v.detach()
        to_edges = to_torch_csr_tensor(torch.stack([e, v]), v2e, size=(num_hyperedges, num_nodes))
        to_vertices = to_torch_csr_tensor(hyperedge_index, e2v, size=(num_nodes, num_hyperedges))
        return (v2e, to_edges, transpose_csr(to_edges), to_vertices, transpose_csr(to_vertices))

    def __getstate__(self) -> dict:
        # Sparse CSR tensors cannot be deep-copied or pickled: a copy rebuilds its cache.
        return {**super().__getstate__(), "_cache": None, "_graph": None}

    def message(self, x_j: Tensor, weight: Tensor) -> Tensor:
        return weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
