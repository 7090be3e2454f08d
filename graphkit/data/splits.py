"""Split and subgraph helpers for node-level datasets.

* :func:`random_planetoid_split`: the split of `Pitfalls of Graph Neural Network Evaluation
  <https://arxiv.org/abs/1811.05868>`_ (Shchur et al., 2018): per class, ``train_per_class``
  random training nodes and ``val_per_class`` validation nodes; all the others are test nodes.
* :func:`random_supervised_split`: the full-supervised split of the graph NAS papers (GraphNAS,
  Gao et al., IJCAI 2020; Auto-GNN): from one random permutation of all nodes, ``num_val``
  validation and ``num_test`` test nodes, every other node a training node.
* :func:`largest_connected_component`: the subgraph induced by the largest (weakly) connected
  component, nodes kept in ascending order of their original index (as DeepRobust and
  gnn-benchmark do), with the mapping kept in ``data.lcc_nodes``.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphkit.data.validation import check_data, check_edge_index

__all__ = [
    "largest_connected_component",
    "per_class_split",
    "random_planetoid_split",
    "random_supervised_split",
]


def _check_ints(**values: object) -> None:
    """Counts and seeds must be integers: a float would fail later as a bare slice error."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{key} must be an integer, got {value!r}")


def _check_graph_object(data: object, who: str) -> None:
    # data.y given for data: the messages that followed spoke of a data.y it had been given
    if not isinstance(data, Data):
        raise ValueError(f"{who} takes a torch_geometric.data.Data (the whole graph), got "
                         f"{type(data).__name__}")


def per_class_split(y: Tensor, train_per_class: int, val_per_class: int,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(train_mask, val_mask, test_mask)`` over the entries of the class vector ``y``: for
    every class in increasing order, a random permutation of its nodes (drawn from
    ``generator``) gives the first ``train_per_class`` to training, the next ``val_per_class``
    to validation and the rest to test. The masks live on ``y``'s device.

    Raises:
        ValueError: ``y`` is not a vector of non-negative class ids, a count is negative, or a
            class has fewer than ``train_per_class + val_per_class`` nodes.
    """
    if not isinstance(y, Tensor) or y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        got = f"{y.dtype} {list(y.shape)}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"y must be a vector of integer class ids, got {got}")
    _check_ints(train_per_class=train_per_class, val_per_class=val_per_class)
    if train_per_class < 0 or val_per_class < 0:
        raise ValueError(
            f"train_per_class and val_per_class must be >= 0, got {train_per_class}, "
            f"{val_per_class}"
        )
    if y.numel() and int(y.min()) < 0:  # e.g. -1 for unlabelled: not a class to split
        raise ValueError(f"y holds a negative class id ({int(y.min())})")
    train, val = torch.zeros_like(y, dtype=torch.bool), torch.zeros_like(y, dtype=torch.bool)
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero().view(-1)
        if idx.numel() < train_per_class + val_per_class:
            raise ValueError(
                f"class {c} has {idx.numel()} nodes, fewer than train_per_class + "
                f"val_per_class = {train_per_class + val_per_class}"
            )
        idx = idx[torch.randperm(idx.numel(), generator=generator).to(idx.device)]
        train[idx[:train_per_class]] = True
        val[idx[train_per_class : train_per_class + val_per_class]] = True
    return train, val, ~(train | val)


def random_planetoid_split(
    data: Data, train_per_class: int = 20, val_per_class: int = 30, seed: int = 0
) -> Data:
    """Return a shallow copy of ``data`` with random ``train_mask``, ``val_mask``, ``test_mask``.

    For every class ``c``, a random permutation of the nodes with ``y == c`` (drawn from a
    ``torch.Generator`` seeded with ``seed``) gives the first ``train_per_class`` nodes to
    training, the next ``val_per_class`` to validation and the rest to test.

    Raises:
        ValueError: ``data.y`` is missing or not a vector of class ids, a count is negative, or
            a class has fewer than ``train_per_class + val_per_class`` nodes.
    """
    _check_graph_object(data, "random_planetoid_split")
    y = getattr(data, "y", None)
    if y is None or y.dim() != 1 or y.is_floating_point():
        raise ValueError("random_planetoid_split needs data.y as a vector of integer class ids")
    _check_ints(train_per_class=train_per_class, val_per_class=val_per_class, seed=seed)
    if data.num_nodes is not None and y.numel() != data.num_nodes:
        raise ValueError(f"node-count mismatch: data.y has {y.numel()} entries but the graph "
                         f"has {data.num_nodes} nodes")
    if y.numel() and int(y.min()) < 0:  # e.g. -1 for unlabelled: not a class to split
        raise ValueError(f"data.y holds a negative class id ({int(y.min())})")
    out = copy.copy(data)
    out.train_mask, out.val_mask, out.test_mask = per_class_split(
        y, train_per_class, val_per_class, torch.Generator().manual_seed(seed))
    return out


def random_supervised_split(data: Data, num_val: int = 500, num_test: int = 500,
                            seed: int = 0) -> Data:
    """Return a shallow copy of ``data`` with the full-supervised random split.

    One permutation of the ``N`` nodes (a ``torch.Generator`` seeded with ``seed``) gives its
    first ``num_val`` nodes to validation, the next ``num_test`` to test and the remaining
    ``N - num_val - num_test`` to training; labels play no part.

    Raises:
        ValueError: ``data`` has no nodes, a count is negative, or ``num_val + num_test``
            leaves no training node.
    """
    _check_graph_object(data, "random_supervised_split")
    n = data.num_nodes or 0
    _check_ints(num_val=num_val, num_test=num_test, seed=seed)
    if num_val < 0 or num_test < 0:
        raise ValueError(f"num_val and num_test must be >= 0, got {num_val}, {num_test}")
    if n - num_val - num_test < 1:
        raise ValueError(
            f"num_val + num_test = {num_val + num_test} leaves no training node in a graph "
            f"of {n} nodes"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    masks = []
    for part in (perm[:num_val], perm[num_val:num_val + num_test], perm[num_val + num_test:]):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[part] = True
        masks.append(mask)
    out = copy.copy(data)
    out.val_mask, out.test_mask, out.train_mask = masks
    return out


def lcc_nodes(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Sorted ids of the nodes in the largest weakly connected component.

    Ties between equally large components go to the one holding the smallest node id.
    """
    edge_index = check_edge_index(edge_index, num_nodes)
    if num_nodes <= 0:
        raise ValueError(f"the graph is empty (num_nodes={num_nodes})")
    row, col = edge_index.cpu().numpy()
    adj = sp.coo_matrix((np.ones(row.size), (row, col)), shape=(num_nodes, num_nodes))
    _, comp = sp.csgraph.connected_components(adj, directed=True, connection="weak")
    largest = int(np.argmax(np.bincount(comp)))  # components are numbered by first node
    return torch.from_numpy(np.flatnonzero(comp == largest).astype(np.int64))


def largest_connected_component(data: Data) -> Data:
    """Return the subgraph induced by the largest connected component of ``data``.

    Node-level tensors (``x``, ``y``, masks, ...) are sliced, edges relabelled to
    ``0..n_lcc-1`` and ``data.lcc_nodes[i]`` is the original id of new node ``i`` (ascending).
    """
    check_data(data)  # x, y and masks one row per node: else they would be sliced wrongly
    nodes = lcc_nodes(data.edge_index, data.num_nodes)
    extra = {k: data[k] for k in ("cleaning",) if k in data}
    base = copy.copy(data)
    for k in extra:
        del base[k]
    out = base.subgraph(nodes)
    out.lcc_nodes = nodes
    for k, v in extra.items():
        out[k] = v
    return out
