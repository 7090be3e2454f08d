"""PyG transform storing FastRP embeddings on a graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from graphkit.data.validation import check_num_nodes
from graphkit.embed import fastrp
from graphkit.embed.fastrp import _check_dim

__all__ = ["FastRP"]


class FastRP(BaseTransform):
    r"""Compute `FastRP <https://arxiv.org/abs/1908.11512>`_ node embeddings
    (:func:`graphkit.embed.fastrp`) and store them on the data object.

    .. math::
        E = \mathrm{standardize}\Big(\sum_{i=1}^{k} \alpha_i\,
        \mathrm{normalize}\big(M^i D^{\beta} R\big)\Big), \qquad M = D^{-1} A

    Args:
        dim (int): Embedding dimension. (default: :obj:`512`)
        iteration_weights (sequence of float): :math:`\alpha_1..\alpha_k`.
            (default: :obj:`(0, 0, 1, 6.67)`)
        beta (float): Degree exponent. (default: :obj:`-0.64`)
        attr (str): Attribute to store the ``[num_nodes, dim]`` float tensor in; ``"x"``
            concatenates to existing features when ``cat`` is set. (default: :obj:`"fastrp"`)
        cat (bool): With ``attr="x"``, append to ``data.x`` instead of replacing it.
            (default: :obj:`False`)
        **kwargs: Further arguments of :func:`graphkit.embed.fastrp` (``seed``, ``dtype``,
            ``backend``, ``device``, ``normalization``, ``standardize``, ...).
    """

    def __init__(
        self,
        dim: int = 512,
        iteration_weights: Sequence[float] = (0.0, 0.0, 1.0, 6.67),
        beta: float = -0.64,
        attr: str = "fastrp",
        cat: bool = False,
        **kwargs: Any,
    ) -> None:
        dim = _check_dim(dim)  # a fractional dim was truncated silently
        if not attr:  # data[""] = emb stored the embedding under an empty name
            raise ValueError("attr must be a non-empty attribute name")
        self.dim = int(dim)
        self.iteration_weights = tuple(float(w) for w in iteration_weights)
        self.beta = float(beta)
        self.attr = attr
        self.cat = cat
        self.kwargs = kwargs

    def forward(self, data: Data) -> Data:
        if data.num_nodes is None:
            raise ValueError("data has no num_nodes: cannot embed its nodes")
        graph = data.edge_index
        if self.kwargs.get("weighted"):  # the weights travel with the Data object
            if getattr(data, "edge_weight", None) is None:
                raise ValueError("weighted=True needs data.edge_weight")
            graph = Data(edge_index=data.edge_index, edge_weight=data.edge_weight,
                         num_nodes=data.num_nodes)
        emb = fastrp(graph, dim=self.dim, iteration_weights=self.iteration_weights,
                     beta=self.beta, num_nodes=data.num_nodes, **self.kwargs)
        emb = emb if isinstance(emb, torch.Tensor) else torch.from_numpy(emb)
        emb = emb.to(data.edge_index.device)
        if self.attr == "x" and self.cat and getattr(data, "x", None) is not None:
            x = data.x.view(-1, 1) if data.x.dim() == 1 else data.x
            # named here: torch.cat's size errors named neither data.x nor the node count
            if x.dim() != 2:
                raise ValueError(f"data.x must be one- or two-dimensional to append the "
                                 f"embedding to it, got shape {list(data.x.shape)}")
            check_num_nodes(emb.size(0), x, name="data.x")
            emb = torch.cat([x, emb.to(x.dtype)], dim=-1)
        data[self.attr] = emb
        return data

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(dim={self.dim}, "
                f"iteration_weights={list(self.iteration_weights)}, beta={self.beta}, "
                f"attr='{self.attr}')")
