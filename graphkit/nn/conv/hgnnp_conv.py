"""The HGNN+ two-stage mean hypergraph convolution (Gao et al., TPAMI 2022)."""

from __future__ import annotations

from torch import Tensor

from graphkit.nn.conv.hgnn_conv import HGNNConv, _degrees, _inv, _weights

__all__ = ["HGNNPConv", "hgnnp_norm"]


def hgnnp_norm(
    hyperedge_index: Tensor,
    num_nodes: int,
    num_hyperedges: int,
    hyperedge_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-incidence coefficients of the two mean stages of the HGNN+ convolution.

    For incidence ``(v, e)``: :math:`\\delta(e)^{-1}` (mean over the members of ``e``) and
    :math:`w_e / d(v)` (weighted mean over the hyperedges of ``v``), i.e.
    :math:`\\mathbf{D}_v^{-1}\\mathbf{H}\\mathbf{W}\\mathbf{D}_e^{-1}\\mathbf{H}^\\top`.
    """
    w = _weights(hyperedge_index, num_hyperedges, hyperedge_weight)
    dv, de = _degrees(hyperedge_index, num_nodes, num_hyperedges, w)
    dv, de = _inv(dv), _inv(de)
    v, e = hyperedge_index
    return de[e], w[e] * dv[v]


class HGNNPConv(HGNNConv):
    r"""The general hypergraph convolution of HGNN+ from `"HGNN+: General Hypergraph Neural
    Networks" <https://arxiv.org/abs/2203.12835>`_ (Gao et al., TPAMI 2022): a
    vertex-to-hyperedge mean followed by a hyperedge-to-vertex (weighted) mean,

    .. math::
        \mathbf{x}_e = \frac{1}{|e|} \sum_{v \in e} \mathbf{\Theta}^{\top}\mathbf{x}_v,
        \qquad
        \mathbf{x}^{\prime}_v = \frac{\sum_{e \ni v} w_e \mathbf{x}_e}{\sum_{e \ni v} w_e}
        + \mathbf{b},

    that is :math:`\mathbf{X}^{\prime} = \mathbf{D}_v^{-1}\mathbf{H}\mathbf{W}\mathbf{D}_e^{-1}
    \mathbf{H}^{\top}\mathbf{X}\mathbf{\Theta} + \mathbf{b}` (DHG's ``HGNNPConv``, ``v2v`` with
    ``aggr="mean"``).

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample.
        bias (bool, optional): Learn an additive bias. (default: :obj:`True`)
        cached (bool, optional): Reuse the normalisation of the first call: transductive
            use on one fixed hypergraph only, a constant (no gradient reaches
            ``hyperedge_weight``); a call with another hypergraph raises a ValueError until
            :meth:`reset_cache`. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** vertex features :math:`(N, F_{in})`, hyperedge indices
          :math:`(2, \text{nnz})`, hyperedge weights :math:`(M)` *(optional)*
        - **output:** vertex features :math:`(N, F_{out})`
    """

    def normalize(
        self,
        hyperedge_index: Tensor,
        num_nodes: int,
        num_hyperedges: int,
        hyperedge_weight: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """The two per-incidence coefficient vectors (see :func:`hgnnp_norm`)."""
        return hgnnp_norm(hyperedge_index, num_nodes, num_hyperedges, hyperedge_weight)
