"""A cheap check of a layer's graph input: shape and dtype only, never a device sync."""

from __future__ import annotations

import torch
from torch import Tensor


def check_edge_index_layout(edge_index: object, name: str = "edge_index") -> None:
    """Reject a dense ``edge_index`` that is not a ``[2, E]`` tensor of signed integers.

    It reads only metadata, so it costs nothing per forward call; node-id ranges need a
    reduction and are checked where the code already synchronises, and by
    :func:`graphkit.data.validation.check_graph` at the training entry points. Sparse
    adjacencies (``torch.sparse`` layouts, ``SparseTensor``) pass unchecked.
    """
    if not isinstance(edge_index, Tensor) or edge_index.layout != torch.strided:
        return
    if edge_index.is_floating_point() or edge_index.is_complex() or \
            not edge_index.dtype.is_signed:
        raise ValueError(f"{name} must hold integer node ids, got dtype {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, num_edges], got {list(edge_index.shape)}")


def check_node_features(x: object, in_channels: int, name: str = "x") -> None:
    """Reject node features that are not a ``[num_nodes, in_channels]`` tensor.

    Metadata only, like :func:`check_edge_index_layout`: a wrong width otherwise surfaces as
    a matrix-product error deep inside the first linear layer, naming neither the argument nor
    the width the model was built for. A negative ``in_channels`` (PyG's lazy ``-1``) skips
    the width check.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor of node features, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [num_nodes, {in_channels}], "
                         f"got {list(x.shape)}")
    if in_channels >= 0 and x.size(1) != in_channels:
        raise ValueError(f"{name} has {x.size(1)} features, but in_channels is {in_channels}")


def check_floating(x: Tensor, name: str = "x") -> None:
    """Reject integer features, which otherwise fail in the first linear layer with "result
    type Float can't be cast", naming neither the argument nor its dtype."""
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {x.dtype}")


def unweighted_edge_index(edge_index: Tensor, layer: str) -> Tensor:
    """:func:`as_edge_index` for a layer that takes no edge weights: a ``torch.sparse``
    adjacency becomes its ``edge_index``, and values other than 1 are refused rather than
    dropped (the conversion reads the values anyway)."""
    index, weight = as_edge_index(edge_index)
    if weight is not None and not bool((weight == 1).all()):
        raise ValueError(f"{layer} takes no edge weights, but the sparse adjacency holds values "
                         f"other than 1")
    return index


def as_edge_index(edge_index: Tensor, edge_weight: Tensor | None = None,
                  ) -> tuple[Tensor, Tensor | None]:
    """Accept either of PyG's graph inputs where a layer needs an ``edge_index``.

    A ``torch.sparse`` adjacency is read in PyG's ``adj_t`` convention (row ``i`` holds the
    in-neighbours of node ``i``, as ``ToSparseTensor`` builds it) and becomes
    ``(edge_index, values)``, its values the edge weights; an ``edge_index`` passes unchanged.
    """
    if not isinstance(edge_index, Tensor) or edge_index.layout == torch.strided:
        return edge_index, edge_weight
    if edge_weight is not None:
        raise ValueError("a sparse adjacency carries its edge weights as its values: "
                         "pass edge_weight=None")
    from torch_geometric.utils import to_edge_index

    index, weight = to_edge_index(edge_index)
    return index.flip(0), weight
