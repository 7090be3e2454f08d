r"""Local losses of forward learning (Park et al., ICLR 2024).

* Forward-Forward goodness (`Hinton, 2022 <https://arxiv.org/abs/2212.13345>`_):
  :math:`g(\mathbf{h}) = \sum_j h_j^2 - \theta`, trained with binary cross-entropy on the logit
  :math:`g` (positives towards 1, negatives towards 0).
* Single-forward (SF) loss: the logits of node :math:`i` are dot products with the virtual class
  nodes, :math:`z_{ic} = \mathbf{h}_i^\top \mathbf{h}_{v_c} / \tau`, and the loss is the
  cross-entropy against the true class.
* Link loss: the logit of a pair is :math:`\mathbf{h}_u^\top \mathbf{h}_v`, trained with binary
  cross-entropy against the edge labels.
* FF link loss (``GNN_FL`` with FF goodness in the official code): the logit of a pair is the
  goodness of :math:`\mathbf{h}_u \odot \mathbf{h}_v`; edges are the positives, the split's
  negative pairs the negatives.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["ff_link_logits", "ff_link_loss", "ff_loss", "goodness", "link_logits", "link_loss",
           "sf_logits", "sf_loss"]


def goodness(h: Tensor, theta: float = 2.0, reduce: str = "sum") -> Tensor:
    r"""FF goodness per row: :math:`\sum_j h_j^2 - \theta` (``reduce="sum"``, training) or the
    mean of squares (``reduce="mean"``, the official prediction rule; ``theta`` is not subtracted
    since it does not change an argmax)."""
    if reduce == "sum":
        return h.pow(2).sum(dim=-1) - theta
    if reduce == "mean":
        return h.pow(2).mean(dim=-1)
    raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")


def ff_loss(h_pos: Tensor, h_neg: list[Tensor] | tuple[Tensor, ...], theta: float = 2.0) -> Tensor:
    """FF loss: BCE-with-logits of the positive goodness against 1, plus the mean over the
    negative copies of the BCE of their goodness against 0."""
    if len(h_neg) == 0:
        raise ValueError("ff_loss needs at least one negative copy")
    g = goodness(h_pos, theta)
    pos = F.binary_cross_entropy_with_logits(g, g.new_ones(g.shape))
    neg = sum(F.binary_cross_entropy_with_logits(gn, gn.new_zeros(gn.shape))
              for gn in (goodness(h, theta) for h in h_neg))
    return pos + neg / len(h_neg)


def sf_logits(h_nodes: Tensor, h_virtual: Tensor, temperature: float = 1.0) -> Tensor:
    """Class logits ``h_nodes @ h_virtual.T / temperature`` (``[N, C]``)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return h_nodes @ h_virtual.t() / temperature


def sf_loss(h_nodes: Tensor, h_virtual: Tensor, y: Tensor, temperature: float = 1.0) -> Tensor:
    """Cross-entropy of :func:`sf_logits` against the class ids ``y``."""
    return F.cross_entropy(sf_logits(h_nodes, h_virtual, temperature), y)


def link_logits(h: Tensor, edge_label_index: Tensor) -> Tensor:
    """Dot-product logits of the pairs ``edge_label_index`` (``[2, E]``)."""
    return (h[edge_label_index[0]] * h[edge_label_index[1]]).sum(dim=-1)


def link_loss(h: Tensor, edge_label_index: Tensor, edge_label: Tensor) -> Tensor:
    """BCE-with-logits of :func:`link_logits` against the 0/1 ``edge_label``."""
    logits = link_logits(h, edge_label_index)
    # labels in the embeddings' dtype: float32 labels made float64 embeddings' loss float32
    return F.binary_cross_entropy_with_logits(logits, edge_label.to(logits.dtype))


def ff_link_logits(h: Tensor, edge_label_index: Tensor, theta: float = 2.0) -> Tensor:
    r"""FF goodness of the pairs: :math:`\sum_d (h_{ud} h_{vd})^2 - \theta`."""
    return goodness(h[edge_label_index[0]] * h[edge_label_index[1]], theta)


def ff_link_loss(h: Tensor, edge_label_index: Tensor, edge_label: Tensor,
                 theta: float = 2.0) -> Tensor:
    """BCE-with-logits of :func:`ff_link_logits`: the mean over the edges (label 1) against 1
    plus the mean over the negative pairs (label 0) against 0, each set weighted alike."""
    g = ff_link_logits(h, edge_label_index, theta)
    pos = edge_label.bool()
    n_pos = int(pos.sum())
    n_neg = pos.numel() - n_pos
    # the mean over an empty set is NaN: refuse it, as ff_loss refuses no negative copy
    if n_pos == 0 or n_neg == 0:
        missing = "edge (label 1)" if n_pos == 0 else "negative pair (label 0)"
        raise ValueError(f"ff_link_loss needs at least one {missing} in edge_label, got "
                         f"{n_pos} edges and {n_neg} negatives")
    return (F.binary_cross_entropy_with_logits(g[pos], g.new_ones(n_pos))
            + F.binary_cross_entropy_with_logits(g[~pos], g.new_zeros(n_neg)))
