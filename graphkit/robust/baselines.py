"""Pre-processing defences evaluated beside STABLE: GCN, GCN-Jaccard and GCN-SVD.

* GCN-Jaccard (Wu et al., IJCAI 2019): drop edges with feature Jaccard similarity below a
  threshold, then train a GCN.
* GCN-SVD (Entezari et al., "All You Need Is Low (Rank)", WSDM 2020): replace the adjacency by
  its rank-``k`` truncated SVD, then train a GCN on that dense, weighted matrix.

Each ``fit`` trains :class:`graphkit.nn.models.GCN` with
:func:`graphkit.train.train_node_classifier` (best validation accuracy);
``tune_on_validation`` picks a hyperparameter by validation accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import fmean

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphkit.data.validation import check_edge_index
from graphkit.nn.models import GCN
from graphkit.robust.jaccard import jaccard_prune
from graphkit.train import run_repeated, train_node_classifier

__all__ = ["GCNDefense", "GCNJaccard", "GCNSVD", "low_rank_adjacency", "tune_on_validation"]


class GCNDefense:
    """A 2-layer GCN (hidden 16, dropout 0.5 on the hidden layer only, as DeepRobust's GCN used
    by Pro-GNN; Adam 0.01, weight decay 5e-4, 200 epochs) on the graph produced by
    :meth:`preprocess`; the identity here, i.e. the undefended GCN."""

    name = "gcn"

    def __init__(self, hidden_channels: int = 16, dropout: float = 0.5, lr: float = 0.01,
                 weight_decay: float = 5e-4, epochs: int = 200,
                 device: torch.device | str = "cpu") -> None:
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.device = torch.device(device)
        self.model_: GCN | None = None
        self.result_ = None
        self._graph: Data | None = None

    def preprocess(self, data: Data) -> Data:
        return Data(x=data.x, edge_index=data.edge_index, num_nodes=data.num_nodes)

    def _forward(self) -> Callable[[torch.nn.Module, Data], Tensor] | None:
        return None

    def fit(self, data: Data) -> GCNDefense:
        if getattr(data, "y", None) is None:
            raise ValueError("data has no labels y to fit the classifier on")
        if not isinstance(getattr(data, "x", None), torch.Tensor):  # was an AttributeError
            raise ValueError("data has no node features x to fit the classifier on")
        graph = self.preprocess(data)
        for key in ("y", "train_mask", "val_mask", "test_mask"):
            graph[key] = getattr(data, key, None)
        x = graph.x.to_dense() if graph.x.layout != torch.strided else graph.x
        graph.x = x
        self.model_ = GCN(x.size(1), self.hidden_channels, int(data.y.max()) + 1,
                          dropout=self.dropout, input_dropout=0.0, cached=True)
        self.result_ = train_node_classifier(
            self.model_, graph, lr=self.lr, weight_decay=self.weight_decay, epochs=self.epochs,
            selection="val_acc", device=self.device, forward=self._forward(),
        )
        self._graph = graph
        return self

    @torch.no_grad()
    def predict(self) -> Tensor:
        """Predicted class of every node, ``[N]``."""
        if self.model_ is None or self._graph is None:
            raise ValueError("call fit() before predict()")
        self.model_.eval()
        forward = self._forward() or (lambda m, d: m(d.x, d.edge_index))
        return forward(self.model_, self._graph.to(self.device)).argmax(dim=-1).cpu()


class GCNJaccard(GCNDefense):
    """GCN on the graph without edges of Jaccard similarity ``< threshold`` (default 0.03)."""

    name = "jaccard"

    def __init__(self, threshold: float = 0.03, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"the Jaccard threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold

    def preprocess(self, data: Data) -> Data:
        kept, _ = jaccard_prune(data.edge_index, data.x, self.threshold)
        return Data(x=data.x, edge_index=kept, num_nodes=data.num_nodes)


def low_rank_adjacency(edge_index: Tensor, num_nodes: int, rank: int) -> Tensor:
    r"""Dense rank-``rank`` truncated SVD :math:`U_k \Sigma_k V_k^\top` of the adjacency."""
    # no edges: ARPACK failed on the zero matrix ("starting vector is zero")
    edge_index = check_edge_index(edge_index, num_nodes, allow_empty=False)
    if not isinstance(rank, (int, np.integer)) or not 0 < rank < num_nodes:
        raise ValueError(f"rank must be an integer in [1, num_nodes - 1], got {rank!r}")
    a = sp.csr_matrix((np.ones(edge_index.size(1)), edge_index.cpu().numpy()),
                      shape=(num_nodes, num_nodes))
    a.data[:] = 1.0
    u, s, vt = sla.svds(a, k=rank, v0=np.ones(num_nodes) / np.sqrt(num_nodes))
    return torch.from_numpy((u * s) @ vt).float().to(edge_index.device)


def _sym_norm_dense(adj: Tensor) -> Tensor:
    """:math:`D^{-1/2}(A + I)D^{-1/2}` of a dense matrix; non-positive degrees get weight 0."""
    a = adj + torch.eye(adj.size(0), dtype=adj.dtype, device=adj.device)
    deg = a.sum(dim=1)
    inv = torch.where(deg > 0, deg.clamp(min=1e-12).pow(-0.5), torch.zeros_like(deg))
    return inv.view(-1, 1) * a * inv.view(1, -1)


def _dense_gcn_forward(model: GCN, data: Data) -> Tensor:
    """``model``'s layers with the propagation done as a dense matmul by ``data.adj``."""
    x = data.x
    for i, conv in enumerate(model.convs):
        if i > 0:
            x = F.dropout(x, p=model.dropout, training=model.training)
        x = data.adj @ conv.lin(x)
        if conv.bias is not None:
            x = x + conv.bias
        if i < model.num_layers - 1:
            x = x.relu()
    return x


class GCNSVD(GCNDefense):
    """GCN on the rank-``rank`` SVD approximation of the adjacency (default rank 15).

    The low-rank matrix is dense (:math:`N^2` weights), so propagation is a dense matmul with
    its symmetric normalisation (as DeepRobust's ``GCNSVD``); memory is :math:`O(N^2)`.
    """

    name = "svd"

    def __init__(self, rank: int = 15, **kwargs) -> None:
        super().__init__(**kwargs)
        if rank < 1:
            raise ValueError(f"rank must be positive, got {rank}")
        self.rank = rank

    def preprocess(self, data: Data) -> Data:
        low = low_rank_adjacency(data.edge_index, data.num_nodes, self.rank)
        graph = Data(x=data.x, edge_index=data.edge_index, num_nodes=data.num_nodes)
        graph.adj = _sym_norm_dense(low)
        return graph

    def _forward(self):
        return _dense_gcn_forward


def tune_on_validation(
    make: Callable[[float], GCNDefense],
    data: Data,
    grid: Sequence[float],
    runs: int = 2,
    seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """Pick the grid value whose defence has the best mean validation accuracy over ``runs``.

    Returns:
        ``(best value, {value: mean validation accuracy})``.
    """
    if not grid:
        raise ValueError("the tuning grid is empty")
    scores = {}
    for value in grid:
        scores[value] = fmean(run_repeated(
            lambda _, value=value: make(value).fit(data).result_.val_acc, runs, seed))
    best = max(grid, key=lambda v: scores[v])
    return best, scores
