"""The interface every node-classification scheme follows (forward learning and backprop)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphkit.data.validation import check_graph
from graphkit.train.forward.trainer import LayerwiseTrainer, StoppingLog

__all__ = ["NodeScheme", "check_node_inputs"]


def check_node_inputs(data: Data, train_mask: Tensor, val_mask: Tensor) -> int:
    """Validate a node-classification problem; return the number of classes."""
    for name in ("x", "edge_index", "y"):
        if getattr(data, name, None) is None:
            raise ValueError(f"data.{name} is missing")
    check_graph(data)
    n = data.num_nodes
    y = data.y
    if y.dim() != 1 or y.is_floating_point() or y.numel() != n:
        raise ValueError("data.y must be a vector of integer class ids, one per node")
    for name, m in (("train_mask", train_mask), ("val_mask", val_mask)):
        if m.dtype != torch.bool or m.shape != (n,):
            raise ValueError(f"{name} must be a boolean mask of length num_nodes={n}")
    if not bool(train_mask.any()):
        raise ValueError("train_mask selects no node")
    if int(y.min()) < 0:
        raise ValueError("class ids must be non-negative")
    return int(y.max()) + 1


class NodeScheme(nn.Module, ABC):
    """A model trained by :meth:`fit` and queried with :meth:`layer_scores` / :meth:`predict`.

    ``fit`` keeps the graph and training labels it was given (the virtual-node augmentation and
    the label vectors depend on them); the prediction methods then score any node set.
    """

    name = "scheme"

    def __init__(self) -> None:
        super().__init__()
        self.data: Data | None = None
        self.train_mask: Tensor | None = None

    @abstractmethod
    def fit(self, data: Data, train_mask: Tensor, val_mask: Tensor,
            trainer: LayerwiseTrainer | None = None) -> list[StoppingLog]:
        """Train on ``data`` (validation accuracy on ``val_mask`` drives early stopping)."""
        ...

    @abstractmethod
    def layer_scores(self, eval_mask: Tensor, labelled: Tensor | None = None) -> list[Tensor]:
        """Class scores ``[n_eval, C]`` of ``eval_mask`` nodes using layers ``1..l``, for each l.

        ``labelled`` (default: the training mask) are nodes whose true labels the scheme may use
        as input at inference (only label-appending FF uses them).
        """
        ...

    def predict(self, eval_mask: Tensor, labelled: Tensor | None = None) -> Tensor:
        """Class scores ``[n_eval, C]`` of the whole model (the last entry of layer_scores)."""
        return self.layer_scores(eval_mask, labelled)[-1]

    def _fitted(self) -> Data:
        if self.data is None:
            raise ValueError(f"{self.name}: call fit() before predicting")
        return self.data
