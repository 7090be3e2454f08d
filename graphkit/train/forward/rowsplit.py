r"""A layer's propagation split by target rows: only the messages that a loss reads.

A message-passing layer computes output row :math:`i` from the messages on the edges into
:math:`i`. PyG materialises those messages as :math:`|\mathcal{E}| \times F` tensors (the gathered
source rows and the weighted messages), and for a shallow, wide layer they set the peak memory
of a training step. The single-forward loss of `Park et al. (ICLR 2024)
<https://arxiv.org/abs/2403.11004>`_ reads the rows of the training nodes and the virtual class
nodes only, so a training step needs only the edges *into* those rows; a pass that needs every
row (validation, the hand-off to the next layer) can run block by block.

This is exact when a row's output depends on the edges into that row alone:

* :class:`~torch_geometric.nn.GATConv` (attention softmax over a node's incoming edges; no
  attention dropout), :class:`~torch_geometric.nn.SAGEConv` (mean, sum, max or min over them);
* :class:`~torch_geometric.nn.GCNConv` once its symmetric normalisation
  :math:`\tilde{d}_j^{-1/2} \tilde{d}_i^{-1/2}`, which reads the *source* degrees too, is
  computed once on the whole graph (``gcn_norm``, as the layer itself would) and handed to the
  layer as edge weights with its own normalisation switched off for the call.

Any other layer (:func:`supports_row_split` is ``False``) runs on the whole graph unchanged.
Each block's edges keep their order, so every row sums the same terms in the same order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.nn.aggr import MaxAggregation, MeanAggregation, MinAggregation, SumAggregation
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphkit.train.forward.layers import ForwardLayer

__all__ = ["RowSplitForward", "supports_row_split"]

_ROW_LOCAL_AGGR = (MeanAggregation, SumAggregation, MaxAggregation, MinAggregation)


def supports_row_split(layer: ForwardLayer) -> bool:
    """Whether ``layer``'s output rows depend only on the edges into them once a GCN's edge
    normalisation is given (see the module docstring); ``False`` for any other layer,
    subclasses of the three included (they may compute their messages differently)."""
    conv = layer.conv
    if getattr(conv, "flow", None) != "source_to_target":
        return False
    if type(conv) is GCNConv:
        return not conv.cached
    if type(conv) is SAGEConv:
        return isinstance(conv.aggr_module, _ROW_LOCAL_AGGR)
    if type(conv) is GATConv:
        return conv.dropout == 0.0 and conv.edge_dim is None
    return False


@contextmanager
def given_edge_weights(conv: GCNConv) -> Iterator[None]:
    """Within the block, ``conv`` propagates with the edge weights it is given (its own
    normalisation, already applied to them, switched off)."""
    saved = conv.normalize
    conv.normalize = False
    try:
        yield
    finally:
        conv.normalize = saved


class RowSplitForward:
    r"""``layer`` on a fixed input ``x`` and graph, computed per block of target rows.

    Args:
        layer (ForwardLayer): the layer; must satisfy :func:`supports_row_split`.
        x (Tensor): its input :math:`(N, F_{in})` (dense or sparse CSR).
        edge_index (Tensor): the whole graph's edges :math:`(2, |\mathcal{E}|)`.
        blocks (list[Tensor]): boolean masks of length :math:`N` that partition the rows.

    ``rows(k)`` is the layer's output, exact on the rows of ``blocks[k]`` (the other rows are
    not meaningful); it is differentiable, for a loss on those rows. Calling the object returns
    the whole output, assembled block by block without autograd. The input is prepared
    (:meth:`ForwardLayer.prepare`) once, at the first call, and reused by every block.
    :meth:`with_input` gives the same split of the same graph (edges and GCN weights computed
    once) for another input, e.g. a layer's input at the next time step.
    """

    def __init__(self, layer: ForwardLayer, x: Tensor, edge_index: Tensor,
                 blocks: list[Tensor]) -> None:
        if not supports_row_split(layer):
            raise ValueError(f"{layer.conv} does not compute its rows from their incoming "
                             "edges alone (see supports_row_split)")
        n = x.size(0)
        covered = torch.zeros(n, dtype=torch.long, device=edge_index.device)
        for mask in blocks:
            if mask.dtype != torch.bool or mask.shape != (n,):
                raise ValueError(f"blocks must be boolean masks of length {n}")
            covered += mask.long()
        if not bool((covered == 1).all()):
            raise ValueError("blocks must partition the rows: every row in exactly one block")
        self.layer, self.blocks = layer, blocks
        self._raw: Tensor | None = x
        self._x: Tensor | None = None  # prepared at the first call
        conv = layer.conv
        weight = None
        if isinstance(conv, GCNConv) and conv.normalize:
            edge_index, weight = gcn_norm(edge_index, None, n, conv.improved,
                                          conv.add_self_loops, conv.flow, x.dtype)
        self.parts: list[tuple[Tensor, Tensor | None]] = []
        for mask in blocks:
            keep = mask[edge_index[1]]
            self.parts.append((edge_index[:, keep], None if weight is None else weight[keep]))

    @property
    def x(self) -> Tensor:
        """The input as the convolution receives it (:meth:`ForwardLayer.prepare`)."""
        if self._x is None:
            self._x, self._raw = self.layer.prepare(self._raw), None
        return self._x

    def with_input(self, x: Tensor, prepared: bool = False) -> RowSplitForward:
        """The same layer, graph and blocks on the input ``x`` (same number of rows);
        ``prepared``: ``x`` is already the output of :meth:`ForwardLayer.prepare`."""
        if x.size(0) != self.blocks[0].numel():
            raise ValueError(f"x has {x.size(0)} rows, the blocks {self.blocks[0].numel()}")
        other = copy.copy(self)
        other._raw, other._x = (None, x) if prepared else (x, None)
        return other

    def rows(self, k: int) -> Tensor:
        """The output, exact on the rows of block ``k``."""
        edge_index, weight = self.parts[k]
        if weight is None:
            return self.layer(self.x, edge_index, prepared=True)
        with given_edge_weights(self.layer.conv):
            return self.layer(self.x, edge_index, weight, prepared=True)

    @torch.no_grad()
    def __call__(self, first: Tensor | None = None) -> Tensor:
        """The whole output. ``first``: block 0's output (:meth:`rows`), already computed, e.g.
        for a loss; it is copied, not recomputed, and the other blocks fill in the rest."""
        out = self.rows(0) if first is None else first.detach().clone()
        for k in range(1, len(self.blocks)):
            mask = self.blocks[k]
            out[mask] = self.rows(k)[mask]
        return out
