"""PyG transform returning STABLE's refined graph."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from graphkit.robust import STABLEConfig, stable_refine

__all__ = ["STABLERefine"]


class STABLERefine(BaseTransform):
    r"""Refine a possibly poisoned graph with `STABLE <https://arxiv.org/abs/2207.00012>`_
    (Li et al., KDD 2022; :func:`graphkit.robust.stable_refine`), for use with any model.

    Jaccard pre-pruning, contrastive embeddings learned with recover-augmented views, then
    cosine pruning of the input graph and top-:math:`k` neighbour addition. The returned copy has
    the refined ``edge_index`` (directed k-NN additions unless ``symmetric_knn``), the embeddings
    in ``data[embedding_attr]`` (or as ``x`` when ``embedding_attr="x"``) and the removed edge
    counts in ``data.stable_info``. The input is not modified.

    Args:
        config (STABLEConfig, optional): hyperparameters (default: ``STABLEConfig()``); keyword
            arguments override single fields, e.g. ``STABLERefine(k=7, alpha=0.6)``.
        embedding_attr (str): where to store the ``[N, 512]`` embeddings
            (default: ``"stable_emb"``).
        seed (int, optional): seed of the contrastive stage.
        device: where to train the encoder (default: ``"cpu"``).
    """

    def __init__(self, config: STABLEConfig | None = None, embedding_attr: str = "stable_emb",
                 seed: int | None = None, device: torch.device | str = "cpu",
                 **overrides: Any) -> None:
        base = config or STABLEConfig()
        self.config = STABLEConfig(**{**base.to_dict(), **overrides})
        if not embedding_attr:
            raise ValueError("embedding_attr must be a non-empty attribute name")
        self.embedding_attr = embedding_attr
        self.seed = seed
        self.device = device

    def forward(self, data: Data) -> Data:
        if getattr(data, "x", None) is None:
            raise ValueError("STABLE needs node features data.x (use the identity for "
                             "featureless graphs)")
        if getattr(data, "edge_index", None) is None:
            raise ValueError("data has no edge_index to refine")
        gen = None if self.seed is None else torch.Generator().manual_seed(self.seed)
        refined = stable_refine(data.x, data.edge_index, self.config, gen, self.device)
        out = copy.copy(data)
        out.edge_index = refined.edge_index.to(data.edge_index.device)
        for key in [k for k in data.keys() if k != "edge_index" and data.is_edge_attr(k)]:
            del out[key]  # edge_weight, edge_attr, edge_type ...: no longer aligned
        out[self.embedding_attr] = refined.embeddings.to(data.x.device)
        out.stable_info = refined.info
        return out

    def __repr__(self) -> str:
        c = self.config
        return (f"{self.__class__.__name__}(jaccard_threshold={c.jaccard_threshold}, "
                f"cos_threshold={c.cos_threshold}, k={c.k}, beta={c.beta}, "
                f"recover_ratio={c.recover_ratio})")
