"""Virtual class nodes and label vectors: the graph augmentations of forward learning.

Park et al. (ICLR 2024) add one *virtual node per class* with random, frozen features and link
each training node to the virtual node of its class (both directions). A layer's output at the
virtual nodes then acts as class prototypes, trained in the same forward pass as the real nodes.
Real nodes keep ids ``0..N-1``; virtual node ``c`` gets id ``N + c``. Edge type 0 marks real
edges, ``1 + c`` an edge into class node ``c`` and ``1 + C + c`` an edge out of it (for
relational convolutions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["AugmentedGraph", "VirtualClassNodes", "label_matrix"]


@dataclass
class AugmentedGraph:
    """A graph with ``num_classes`` virtual nodes appended after its ``num_real`` nodes."""

    x: Tensor
    edge_index: Tensor
    edge_type: Tensor
    num_real: int
    num_classes: int
    #: the same edges as a sparse adjacency built once, when the convolutions propagate over it
    adj: Tensor | None = None

    @property
    def propagation(self) -> Tensor:
        """What the convolutions are called with: :attr:`adj` where set, else the edge list."""
        return self.edge_index if self.adj is None else self.adj

    @property
    def virtual_edges(self) -> Tensor:
        """The added edges (``edge_type > 0``), ``[2, E_v]``."""
        return self.edge_index[:, self.edge_type > 0]


def label_matrix(y: Tensor, labelled: Tensor, num_classes: int) -> Tensor:
    """``[N, C]`` label vectors: one-hot ``y`` on ``labelled`` nodes, uniform ``1/C`` elsewhere."""
    if labelled.dtype != torch.bool or labelled.shape != y.shape:
        raise ValueError("labelled must be a boolean mask with the shape of y")
    out = torch.full((y.numel(), num_classes), 1.0 / num_classes, device=y.device)
    out[labelled] = nn.functional.one_hot(y[labelled], num_classes).float()
    return out


class VirtualClassNodes(nn.Module):
    r"""``num_classes`` virtual nodes with frozen :math:`\mathcal{N}(0, 1)` features, the
    class nodes of ForwardGNN's SF and FF-VN schemes (Park et al., ICLR 2024, https://arxiv.org/abs/2403.11004).

    The features are a buffer (they move with ``.to(device)`` and are never trained), drawn like
    the rows of a freshly initialised :class:`torch.nn.Embedding`.

    Args:
        num_classes (int): number of classes :math:`C`.
        num_features (int): feature width (that of the real nodes).
        bidirectional (bool): add edges both ways. (default: :obj:`True`)
        generator (torch.Generator, optional): random source for the features.
    """

    features: Tensor

    def __init__(self, num_classes: int, num_features: int, bidirectional: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"need at least 2 classes, got {num_classes}")
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.num_classes = num_classes
        self.bidirectional = bidirectional
        self.register_buffer("features", torch.randn(num_classes, num_features,
                                                     generator=generator))

    def reset_parameters(self) -> None:
        """Draw new features (from the global random source)."""
        with torch.no_grad():
            self.features.normal_()

    def augment(self, x: Tensor, edge_index: Tensor, nodes: Tensor, classes: Tensor
                ) -> AugmentedGraph:
        """Append the virtual nodes to ``x`` and link ``nodes[i]`` to class node ``classes[i]``.

        Args:
            x: real node features ``[N, F]``.
            edge_index: real edges ``[2, E]``.
            nodes: the real node ids to link (for training: the training nodes only).
            classes: their class ids (the true ones, or wrong ones for FF negatives).
        """
        if x.size(1) != self.features.size(1):
            raise ValueError(f"x has {x.size(1)} features, the virtual nodes "
                             f"{self.features.size(1)}")
        edges, types = self.edges(edge_index, x.size(0), nodes, classes)
        return AugmentedGraph(
            x=torch.cat([x, self.features.to(x.dtype)], dim=0),
            edge_index=edges,
            edge_type=types,
            num_real=x.size(0),
            num_classes=self.num_classes,
        )

    def edges(self, edge_index: Tensor, num_real: int, nodes: Tensor, classes: Tensor
              ) -> tuple[Tensor, Tensor]:
        """The edges and edge types of :meth:`augment` alone, for a caller that builds the node
        features itself (without the ``(N + C) x F`` concatenated copy).

        Returns:
            ``edge_index`` ``[2, E + E_v]`` (the real edges first) and ``edge_type`` ``[E + E_v]``.
        """
        n, c = num_real, self.num_classes
        for name, t in (("nodes", nodes), ("classes", classes)):
            # a boolean training mask read as ids linked nodes 0 and 1 to every label's class
            if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
                raise ValueError(f"{name} must hold integer ids (a training mask becomes ids "
                                 f"with mask.nonzero().view(-1)), got dtype {t.dtype}")
        if nodes.shape != classes.shape or nodes.dim() != 1:
            raise ValueError("nodes and classes must be 1-D tensors of equal length")
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= n):
            raise ValueError(f"nodes must be real node ids in [0, {n})")
        if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= c):
            raise ValueError(f"classes must be class ids in [0, {c})")
        virtual = classes + n
        src, dst = [nodes], [virtual]
        types = [torch.zeros(edge_index.size(1), dtype=torch.long, device=edge_index.device),
                 1 + classes]
        if self.bidirectional:
            src.append(virtual)
            dst.append(nodes)
            types.append(1 + c + classes)
        added = torch.stack([torch.cat(src), torch.cat(dst)])
        return torch.cat([edge_index, added], dim=1), torch.cat(types)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_classes={self.num_classes}, "
                f"num_features={self.features.size(1)}, bidirectional={self.bidirectional})")
