r"""PamC: the proxy-approximated meta-node contrastive loss for deep graph clustering.

From `Efficient block contrastive learning via parameter-free meta-node approximation
<https://arxiv.org/abs/2209.14067>`_ (Kulatilleke, Portmann and Chandra; official code
``gayanku/PAMC``, built on SCGC, ``gayanku/SCGC``). A node-level contrastive loss over all
pairs costs :math:`O(n^2)`; PamC keeps the positives on graph neighbours (:math:`O(m)`) and
replaces the :math:`n^2` negative pairs by the :math:`k^2` pairs of *meta-nodes*, the
assignment-weighted sums of node embeddings of the :math:`k` clusters.

With :math:`\hat z_i = z_i / \lVert z_i \rVert`, :math:`s_{ij} = \hat z_i^\top \hat z_j`
(:math:`s_{ii} := 0`, as the official code masks the diagonal), the neighbour weights
:math:`W = \sum_{t=1}^{r} P^t` of :math:`P = D^{-1}(A + I)` (SCGC's "influence" positives of
order :math:`r`), assignments :math:`Q \in \mathbb{R}^{n \times k}` and meta-nodes
:math:`C = Q^\top Z`:

.. math::
    \mathcal{L}_\text{PamC} = -\frac1n \sum_i \log \sum_j W_{ij} e^{\tau s_{ij}}
        + \frac1k \sum_a \log \sum_b e^{\tau \cos(C_a, C_b)}

against the dense InfoNCE of SCGC* (Graph-MLP's neighbour contrast) that it replaces,

.. math::
    \mathcal{L}_\text{dense} = -\frac1n \sum_i \log
        \frac{\sum_j W_{ij} e^{\tau s_{ij}}}{\sum_j e^{\tau s_{ij}}}.

:math:`\tau` multiplies the similarity, as in the official code (an inverse temperature). The
meta-node similarities are the cluster-weighted block sums of the node similarities, exactly:
:math:`C C^\top = Q^\top (Z Z^\top) Q` (:func:`meta_node_similarity`). The clustering head is
DEC's Student-t assignment to learnt centres with the KL divergence to the sharpened target
:math:`P`; the total loss is :math:`\beta\,\mathrm{KL}(P \Vert Q) + \alpha\,\mathcal{L}`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import to_undirected

from graphkit.benchmarking import synchronize
from graphkit.data.validation import check_edge_index, check_features, check_num_nodes
from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.nn.hop_features import normalized_adjacency
from graphkit.train.seed import seed_everything
from graphkit.typing import require

__all__ = [
    "PAPER",
    "LOSSES",
    "influence_weights",
    "meta_node_similarity",
    "meta_node_loss",
    "dense_infonce_loss",
    "student_t_assignment",
    "target_distribution",
    "PamC",
    "PamCFit",
    "pretrain_autoencoder",
    "init_centres",
    "fit_pamc",
]

PAPER = "Efficient block contrastive learning via parameter-free meta-node approximation"
LOSSES = ("pamc", "infonce")


# ----------------------------------------------------------------------------- the graph side
def influence_weights(
    edge_index: Tensor, num_nodes: int, order: int = 1, cumulative: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    r"""The positive weights :math:`W = \sum_{t=1}^{r} P^t` (or :math:`P^r` when not
    ``cumulative``) of :math:`P = D^{-1}(A + I)` on the symmetrised graph, as SCGC builds them.

    Args:
        edge_index: ``[2, E]`` edges (made undirected here).
        num_nodes: number of nodes, positive.
        order (int): the largest power :math:`r`, positive. (default: ``1``)
        cumulative (bool): sum the powers 1..r (SCGC's ``--influence``) instead of taking the
            r-th power alone. (default: :obj:`True`)
        dtype (torch.dtype): of the weights, computed in float64. (default: ``torch.float32``)

    Returns:
        ``(edge_index, weight)``: pair ``(i, j)`` makes ``j`` a positive of anchor ``i`` with
        weight ``weight``; self-pairs are included (the losses give them similarity 0).
    """
    check_positive(num_nodes=num_nodes, order=order)
    edge_index = check_edge_index(edge_index, num_nodes)
    und = to_undirected(edge_index.cpu(), num_nodes=num_nodes)
    p = normalized_adjacency(und, num_nodes, "mean", add_self_loops=True, dtype=torch.float64)
    p = sp.csr_matrix((p.values().numpy(), p.col_indices().numpy(), p.crow_indices().numpy()),
                      shape=(num_nodes, num_nodes))
    power, total = p, p.copy()
    for _ in range(order - 1):
        power = power @ p
        total = total + power if cumulative else power
    coo = total.tocoo()
    ei = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return ei.to(edge_index.device), torch.from_numpy(coo.data).to(edge_index.device, dtype)


# ----------------------------------------------------------------------------- the losses
def _check_z(z: Tensor) -> int:
    if not isinstance(z, Tensor) or z.dim() != 2:
        raise ValueError(f"z must be a [num_nodes, dim] tensor, got {getattr(z, 'shape', z)}")
    if z.size(0) == 0:
        raise ValueError("z is empty: the graph has no nodes")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("z holds NaN or infinite values")
    return z.size(0)


def _check_tau(tau: float) -> None:
    if not tau > 0 or not np.isfinite(tau):
        raise ValueError(f"tau must be a positive finite number, got {tau}")


def _check_edge_weight(edge_weight: Tensor, num_edges: int) -> None:
    if not isinstance(edge_weight, Tensor) or edge_weight.shape != (num_edges,):
        shape = tuple(edge_weight.shape) if isinstance(edge_weight, Tensor) else \
            type(edge_weight).__name__
        raise ValueError(f"edge_weight must have shape [{num_edges}], got {shape}")
    if bool((edge_weight < 0).any()) or not bool(torch.isfinite(edge_weight).all()):
        raise ValueError("edge_weight must be finite and non-negative")


def _positive_sums(
    z_hat: Tensor, edge_index: Tensor, edge_weight: Tensor | None, tau: float,
    mask_diagonal: bool,
) -> Tensor:
    """:math:`\\sum_j W_{ij} e^{\\tau s_{ij}}` per anchor ``i`` from the listed pairs only."""
    n = z_hat.size(0)
    edge_index = check_edge_index(edge_index, n).to(z_hat.device)
    src, dst = edge_index
    if edge_weight is None:
        edge_weight = z_hat.new_ones(src.numel())
    else:
        _check_edge_weight(edge_weight, src.numel())
    sim = (z_hat[src] * z_hat[dst]).sum(1)
    if mask_diagonal:
        sim = sim.masked_fill(src == dst, 0.0)
    terms = edge_weight.to(sim) * torch.exp(tau * sim)
    return sim.new_zeros(n).index_add(0, src, terms)


def meta_node_similarity(z: Tensor, assign: Tensor, mask_diagonal: bool = True) -> Tensor:
    r"""Cosine similarities of the meta-nodes :math:`C = Q^\top Z`.

    :math:`C_a^\top C_b = \sum_{i,j} Q_{ia} Q_{jb}\, z_i^\top z_j` is the cluster-weighted sum
    of all node-pair inner products it stands for; the cosine divides by the meta-node norms.

    Args:
        z: node embeddings ``[n, d]``.
        assign: non-negative assignments ``[n, k]`` (soft :math:`Q` or one-hot).
        mask_diagonal (bool): set :math:`\cos(C_a, C_a)` to 0 as the official code does.
            (default: :obj:`True`)

    Returns:
        ``[k, k]``; an empty cluster's row and column are 0.
    """
    n = _check_z(z)
    if not isinstance(assign, Tensor) or assign.dim() != 2 or assign.size(0) != n:
        shape = tuple(assign.shape) if isinstance(assign, Tensor) else type(assign).__name__
        raise ValueError(f"assign must be [{n}, num_clusters], got {shape}")
    if assign.size(1) == 0:
        raise ValueError("assign has no clusters")
    if not bool(torch.isfinite(assign).all()) or bool((assign < 0).any()):
        raise ValueError("assign must be finite and non-negative")
    # an empty cluster's meta-node is the zero vector: cosine 0 with every other (the official
    # code divides by its zero norm); dropping it instead would reward collapsing clusters
    meta_hat = F.normalize(assign.to(z).t() @ z, dim=1)
    sim = meta_hat @ meta_hat.t()
    if mask_diagonal:
        sim = sim.masked_fill(torch.eye(sim.size(0), dtype=torch.bool, device=sim.device), 0.0)
    return sim


def meta_node_loss(
    z: Tensor,
    assign: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    tau: float = 0.5,
    mask_diagonal: bool = True,
    eps: float = 1e-10,
) -> Tensor:
    r"""The PamC loss (module docstring): neighbour positives in :math:`O(m d)`, meta-node
    negatives in :math:`O(n k d + k^2 d)`; the official ``NcontrastCCSP``.

    Args:
        z: node embeddings ``[n, d]``.
        assign: non-negative cluster assignments ``[n, k]``; gradients flow through it (pass
            a detached one-hot, as the official code does, to stop them).
        edge_index: ``[2, E]`` positive pairs ``(anchor, positive)``.
        edge_weight: ``[E]`` non-negative pair weights (default: all 1).
        tau (float): inverse temperature multiplying the cosines. (default: ``0.5``)
        mask_diagonal (bool): self-similarities count as 0. (default: :obj:`True`)
        eps (float): added inside the positive log, as the official code does; an anchor
            without positives then adds a constant. (default: ``1e-10``)

    Returns:
        The scalar loss.
    """
    _check_z(z)
    _check_tau(tau)
    pos = _positive_sums(F.normalize(z, dim=1), edge_index, edge_weight, tau, mask_diagonal)
    neg = meta_node_similarity(z, assign, mask_diagonal)
    return -torch.log(pos + eps).mean() + torch.logsumexp(tau * neg, dim=1).mean()


def dense_infonce_loss(
    z: Tensor,
    edge_index: Tensor,
    edge_weight: Tensor | None = None,
    tau: float = 0.5,
    mask_diagonal: bool = True,
    eps: float = 1e-8,
) -> Tensor:
    r"""The full pairwise InfoNCE that PamC replaces (SCGC*'s Graph-MLP neighbour contrast):
    :math:`O(n^2)` time and memory, with the positive weights densified as the official code
    does.

    Args:
        z: node embeddings ``[n, d]``.
        edge_index: ``[2, E]`` positive pairs ``(anchor, positive)``.
        edge_weight: ``[E]`` non-negative pair weights (default: all 1).
        tau (float): inverse temperature multiplying the cosines. (default: ``0.5``)
        mask_diagonal (bool): self-similarities count as 0. (default: :obj:`True`)
        eps (float): added to each ratio before the log, as the official code does.
            (default: ``1e-8``)
    """
    n = _check_z(z)
    _check_tau(tau)
    edge_index = check_edge_index(edge_index, n).to(z.device)
    if edge_weight is None:
        edge_weight = z.new_ones(edge_index.size(1))
    _check_edge_weight(edge_weight, edge_index.size(1))
    z_hat = F.normalize(z, dim=1)
    sim = z_hat @ z_hat.t()
    if mask_diagonal:
        sim = sim.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), 0.0)
    e = torch.exp(tau * sim)
    w = torch.sparse_coo_tensor(edge_index, edge_weight.to(z), (n, n)).to_dense()
    return -torch.log((e * w).sum(1) / e.sum(1) + eps).mean()


# ----------------------------------------------------------------------------- the head
def student_t_assignment(z: Tensor, centres: Tensor, v: float = 1.0) -> Tensor:
    r"""DEC's soft assignment :math:`q_{ia} \propto (1 + \lVert z_i - \mu_a\rVert^2/v)^{-(v+1)/2}`,
    rows summing to 1. Shapes: ``z [n, d]``, ``centres [k, d]`` -> ``[n, k]``."""
    if not isinstance(z, Tensor) or z.dim() != 2:
        raise ValueError(f"z must be a [num_nodes, dim] tensor, got {getattr(z, 'shape', z)}")
    if not isinstance(centres, Tensor) or centres.dim() != 2 or centres.size(1) != z.size(1):
        raise ValueError(f"centres must be [num_clusters, {z.size(1)}] (z's width), got "
                         f"{tuple(getattr(centres, 'shape', ()))}")
    if not v > 0 or not np.isfinite(v):
        raise ValueError(f"v must be a positive finite number, got {v}")
    d2 = torch.cdist(z, centres).pow(2)
    q = (1.0 + d2 / v).pow(-(v + 1.0) / 2.0)
    return q / q.sum(1, keepdim=True)


def target_distribution(q: Tensor) -> Tensor:
    r"""DEC's sharpened target :math:`p_{ia} \propto q_{ia}^2 / \sum_i q_{ia}`, rows summing
    to 1."""
    if not isinstance(q, Tensor) or q.dim() != 2:
        raise ValueError(f"q must be a [num_nodes, num_clusters] tensor, got "
                         f"{getattr(q, 'shape', q)}")
    weight = q.pow(2) / q.sum(0)
    return weight / weight.sum(1, keepdim=True)


@register_model("pamc", family="graph", paper=PAPER)
class PamC(nn.Module):
    r"""SCGC*'s clustering model that PamC trains: an MLP encoder (no graph convolution; the
    graph enters through the loss only) and a Student-t clustering head on learnt centres.

    Args:
        in_channels (int): input feature width.
        num_clusters (int): number of clusters :math:`k`.
        hidden_channels (Sequence[int]): encoder widths. (default: ``(500, 500, 2000)``, SDCN's
            autoencoder)
        out_channels (int): embedding width. (default: ``10``)
        v (float): Student-t degrees of freedom. (default: ``1.0``)

    Shapes:
        - input: ``x [n, in_channels]``
        - output: ``(z [n, out_channels], q [n, num_clusters])``
    """

    def __init__(
        self,
        in_channels: int,
        num_clusters: int,
        hidden_channels: Sequence[int] = (500, 500, 2000),
        out_channels: int = 10,
        v: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, num_clusters=num_clusters,
                       out_channels=out_channels)
        check_positive(**{f"hidden_channels[{i}]": h for i, h in enumerate(hidden_channels)})
        if not v > 0:
            raise ValueError(f"v must be positive, got {v}")
        self.in_channels, self.num_clusters, self.out_channels = in_channels, num_clusters, \
            out_channels
        self.hidden_channels, self.v = tuple(hidden_channels), float(v)
        widths = [in_channels, *self.hidden_channels, out_channels]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.centres = nn.Parameter(torch.empty(num_clusters, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.encoder:
            lin.reset_parameters()
        nn.init.xavier_normal_(self.centres)

    def embed(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"x must be [n, {self.in_channels}], got {tuple(x.shape)}")
        if x.dtype != self.centres.dtype:  # was the first linear layer's bare dtype error
            raise ValueError(f"x has dtype {x.dtype} but the model's parameters are "
                             f"{self.centres.dtype}; convert x (or the model) first")
        for lin in self.encoder[:-1]:
            x = F.relu(lin(x))
        return self.encoder[-1](x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.embed(x)
        return z, student_t_assignment(z, self.centres, self.v)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Cluster ids ``[n]`` (arg-max of the soft assignment)."""
        return self(x)[1].argmax(1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, num_clusters={self.num_clusters}, "
                f"hidden={list(self.hidden_channels)}, out={self.out_channels})")


# ----------------------------------------------------------------------------- training
def pretrain_autoencoder(
    model: PamC, x: Tensor, epochs: int = 30, lr: float = 1e-3, batch_size: int = 256,
) -> float:
    """Pretrain the encoder as SDCN's autoencoder (mirrored decoder, MSE reconstruction, Adam,
    shuffled mini-batches); the decoder is dropped afterwards. Seed before calling.

    Returns:
        The mean reconstruction loss of the last epoch.
    """
    check_positive(epochs=epochs, batch_size=batch_size)
    x = check_features(x)
    check_num_nodes(x.size(0))
    widths = [model.out_channels, *reversed(model.hidden_channels), model.in_channels]
    decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    # the model's device and dtype (not x's): a float64 PamC got a float32 decoder
    decoder = decoder.to(device=model.centres.device, dtype=model.centres.dtype)
    params = list(model.encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    last = float("nan")
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(x.size(0), device=x.device).split(batch_size):
            h = model.embed(x[idx])
            for lin in decoder[:-1]:
                h = F.relu(lin(h))
            loss = F.mse_loss(decoder[-1](h), x[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        last = total / x.size(0)
    return last


@torch.no_grad()
def init_centres(model: PamC, x: Tensor, n_init: int = 20, seed: int = 0) -> Tensor:
    """Set the centres to k-means (scikit-learn, ``n_init`` restarts) on the embeddings, as
    SDCN/SCGC do; returns the k-means labels."""
    require("sklearn")
    from sklearn.cluster import KMeans

    z = model.embed(check_features(x)).cpu().double().numpy()
    if z.shape[0] < model.num_clusters:
        raise ValueError(f"{z.shape[0]} nodes cannot form {model.num_clusters} clusters")
    km = KMeans(n_clusters=model.num_clusters, n_init=n_init, random_state=seed).fit(z)
    model.centres.copy_(torch.as_tensor(km.cluster_centers_, dtype=model.centres.dtype))
    return torch.as_tensor(km.labels_, dtype=torch.long)


@dataclass
class PamCFit:
    """What :func:`fit_pamc` measured.

    Attributes:
        labels: cluster ids ``[n]`` after the last epoch.
        epoch_times: seconds of each training step (forward, both losses, backward, step),
            waiting for its CUDA kernels to finish.
        losses: total loss of each step.
        epoch_labels: the arg-max assignment seen at each step (before its update), for the
            official protocol, which reports the best epoch's score against the labels.
        pretrain_loss: final reconstruction loss of the pretraining (NaN when skipped).
    """

    labels: Tensor
    epoch_times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    epoch_labels: list[Tensor] = field(default_factory=list)
    pretrain_loss: float = float("nan")


def fit_pamc(
    model: PamC,
    x: Tensor,
    edge_index: Tensor,
    *,
    loss: str = "pamc",
    epochs: int = 200,
    lr: float = 1e-3,
    alpha: float = 2.0,
    beta: float = 2.5,
    tau: float = 0.5,
    order: int = 3,
    cumulative: bool = True,
    soft_meta_nodes: bool = False,
    pretrain_epochs: int = 30,
    pretrain_lr: float = 1e-3,
    batch_size: int = 256,
    kmeans_init: int = 20,
    seed: int = 0,
    reset: bool = True,
    keep_epoch_labels: bool = False,
) -> PamCFit:
    r"""Train ``model`` as the official ``train.py``: pretrain the encoder as an autoencoder,
    k-means the centres, then full-batch Adam on :math:`\beta\,\mathrm{KL}(P\Vert Q) +
    \alpha\,\mathcal{L}` with the target :math:`P` recomputed every epoch.

    Defaults are the official CiteSeer settings of PamC (alpha 2, beta 2.5, order 3, tau 0.5,
    lr 1e-3, influence positives); SCGC*'s (``loss="infonce"``) were alpha 1, beta 0.1,
    order 1, tau 0.25, lr 1e-4.

    Args:
        model: a :class:`PamC`; its parameters are overwritten.
        x: node features ``[n, in_channels]``.
        edge_index: ``[2, E]`` graph edges.
        loss (str): ``"pamc"`` (:func:`meta_node_loss`) or ``"infonce"``
            (:func:`dense_infonce_loss`, the :math:`O(n^2)` peer). (default: ``"pamc"``)
        soft_meta_nodes (bool): build meta-nodes from the soft :math:`Q` (gradients reach the
            head through them) instead of the official detached one-hot arg-max.
            (default: :obj:`False`)
        pretrain_epochs (int): autoencoder epochs; 0 skips pretraining. (default: ``30``)
        kmeans_init (int): k-means restarts. (default: ``20``)
        seed (int): seeds everything (:func:`~graphkit.train.seed.seed_everything`).
        reset (bool): reset the parameters and pretrain; :obj:`False` keeps the current
            encoder (pretrained once, e.g. to start two losses from the same point) and only
            re-runs k-means. (default: :obj:`True`)
        keep_epoch_labels (bool): keep each epoch's arg-max assignment. (default: :obj:`False`)

    Returns:
        A :class:`PamCFit`.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    check_positive(epochs=epochs, kmeans_init=kmeans_init)
    if pretrain_epochs < 0:
        raise ValueError(f"pretrain_epochs must be >= 0, got {pretrain_epochs}")
    for name, value in (("lr", lr), ("alpha", alpha), ("beta", beta), ("pretrain_lr", pretrain_lr)):
        if not value >= 0 or not np.isfinite(value):
            raise ValueError(f"{name} must be a non-negative finite number, got {value}")
    _check_tau(tau)
    x = check_features(x)
    n = check_num_nodes(x.size(0))
    if model.num_clusters > n:
        raise ValueError(f"{n} nodes cannot form {model.num_clusters} clusters")
    device = model.centres.device
    x = x.to(device)
    # in the model's dtype: a float64 model's loss used float32-rounded weights
    pos_index, pos_weight = influence_weights(edge_index, n, order, cumulative,
                                              dtype=model.centres.dtype)
    pos_index, pos_weight = pos_index.to(device), pos_weight.to(device)

    seed_everything(seed)
    fit = PamCFit(labels=torch.empty(0, dtype=torch.long))
    if reset:
        model.reset_parameters()
    if reset and pretrain_epochs:
        fit.pretrain_loss = pretrain_autoencoder(model, x, pretrain_epochs, pretrain_lr,
                                                 batch_size)
    init_centres(model, x, kmeans_init, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        synchronize(device)
        t0 = time.perf_counter()
        z, q = model(x)
        hard = q.detach().argmax(1)
        kl = F.kl_div(q.log(), target_distribution(q.detach()), reduction="batchmean")
        if loss == "pamc":
            assign = q if soft_meta_nodes else F.one_hot(hard, model.num_clusters).to(z)
            contrast = meta_node_loss(z, assign, pos_index, pos_weight, tau)
        else:
            contrast = dense_infonce_loss(z, pos_index, pos_weight, tau)
        total = beta * kl + alpha * contrast
        opt.zero_grad()
        total.backward()
        opt.step()
        synchronize(device)  # else on CUDA the loss tail, backward and step are still queued
        fit.epoch_times.append(time.perf_counter() - t0)
        fit.losses.append(float(total.detach()))
        if keep_epoch_labels:
            fit.epoch_labels.append(hard.cpu())
    fit.labels = model.predict(x).cpu()
    return fit
