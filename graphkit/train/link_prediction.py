r"""Static link prediction: mini-batch training with uniform negatives, validation Hits@K
selection, and per-node ranking of every candidate.

The recipe of OGB's link-property examples and of the official topological-concentration code:
each step re-encodes the graph, scores a batch of training edges and as many random node pairs
that share the edges' sources, and minimises

.. math::
    \mathcal L = -\frac1B \sum_{(u, v)} \log p(u, v) - \frac1B \sum_{(u, w)} \log(1 - p(u, w)),
    \qquad w \sim \mathrm{Uniform}(\mathcal V);

every ``eval_every`` epochs the model is scored by Hits@K of the validation edges against fixed
validation negatives (OGB's ``Evaluator``), and the best state is kept.

The model provides ``encode(x, edge_index) -> h`` and ``score(h_src, h_dst) -> p`` with ``p`` in
``(0, 1)`` (e.g. :class:`graphkit.nn.models.GCNLinkPredictor`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index, check_features
from graphkit.metrics import hits_at_k
from graphkit.metrics.per_node import NodeRanking, per_node_ranking
from graphkit.sampling import uniform_negative_destinations
from graphkit.train.early_stopping import EarlyStopping

__all__ = ["LinkPredictionResult", "train_link_predictor", "rank_candidates"]


class LinkPredictionResult(NamedTuple):
    """``best_val`` (validation Hits@K of the kept state), ``best_epoch`` and ``history``
    (``(epoch, val Hits@K)`` of every evaluation)."""

    best_val: float
    best_epoch: int
    history: list[tuple[int, float]]


def _checked(x: Tensor, edges: dict[str, Tensor]) -> dict[str, Tensor]:
    check_features(x)
    n = x.size(0)
    return {name: check_edge_index(e, n, name=name, allow_empty=name != "train_pos")
            for name, e in edges.items()}


def train_link_predictor(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    train_pos: Tensor,
    val_pos: Tensor,
    val_neg: Tensor,
    *,
    epochs: int = 100,
    batch_size: int = 1152,
    lr: float = 1e-3,
    eval_every: int = 5,
    k: int = 100,
    device: str | torch.device = "cpu",
) -> LinkPredictionResult:
    """Train ``model`` (module docstring) and load its state of best validation Hits@``k``.

    Args:
        model: with ``encode`` and ``score``; moved to ``device`` and trained as given.
        x: ``[N, F]`` node features.
        edge_index: ``[2, E]`` message-passing edges (the training graph).
        train_pos: ``[2, P]`` training edges to score (positives).
        val_pos, val_neg: ``[2, *]`` validation edges and their fixed negatives.
        epochs: passes over ``train_pos``. (default: ``100``)
        batch_size: positives per step. (default: ``1152``, the official TC setting)
        lr: Adam learning rate. (default: ``1e-3``)
        eval_every: epochs between validations; the last epoch is always validated.
        k: Hits@K of the selection. (default: ``100``, OGB's collab metric)
        device: where to train.

    Returns:
        :class:`LinkPredictionResult`; the model is left in ``eval()`` mode with the kept state.
        The first of equal validation scores is kept.
    """
    if epochs < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError(f"epochs, batch_size and eval_every must be >= 1, got {epochs}, "
                         f"{batch_size}, {eval_every}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    e = _checked(x, {"edge_index": edge_index, "train_pos": train_pos, "val_pos": val_pos,
                     "val_neg": val_neg})
    for name in ("val_pos", "val_neg"):
        if e[name].size(1) == 0:
            raise ValueError(f"{name} is empty: validation Hits@K needs at least one pair")
    device = torch.device(device)
    n = x.size(0)
    x = x.to(device)
    mp, pos = e["edge_index"].to(device), e["train_pos"].to(device)
    val_pos, val_neg = e["val_pos"].to(device), e["val_neg"].to(device)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # the initial weights are the fallback (Hits@K -1.0, epoch 0); no patience: every epoch runs
    stopper = EarlyStopping("max", baseline=-1.0, baseline_epoch=0)
    stopper.snapshot(model)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(pos.size(1), device=device).split(batch_size):
            h = model.encode(x, mp)
            src, dst = pos[:, batch]
            neg = uniform_negative_destinations(batch.numel(), n, device=device)
            loss = -(torch.log(model.score(h[src], h[dst]) + 1e-15).mean()
                     + torch.log(1 - model.score(h[src], h[neg]) + 1e-15).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % eval_every == 0 or epoch == epochs:
            model.eval()
            with torch.no_grad():
                h = model.encode(x, mp)
                val = hits_at_k(model.score(h[val_pos[0]], h[val_pos[1]]),
                                model.score(h[val_neg[0]], h[val_neg[1]]), k)
            history.append((epoch, float(val)))
            if stopper.step(float(val), epoch=epoch):
                stopper.snapshot(model)
    stopper.restore(model)
    model.eval()
    return LinkPredictionResult(stopper.best, stopper.best_epoch, history)


@torch.no_grad()
def rank_candidates(
    model: torch.nn.Module,
    x: Tensor,
    edge_index: Tensor,
    query: Tensor,
    known: Tensor | None = None,
    k: int = 10,
    rows_per_batch: int = 32,
) -> tuple[Tensor, NodeRanking]:
    """Rank every node as a candidate partner of every query node: per-node Hits / Recall /
    Precision / NDCG@``k`` (:func:`graphkit.metrics.per_node.per_node_ranking`).

    The official TC evaluation: the relevant candidates of node ``i`` are its ``query``
    partners (both directions of each pair count), its ``known`` partners (e.g. training and
    validation neighbours, both directions) are removed from its ranking, and it keeps itself
    as a candidate.

    Args:
        model: with ``encode`` and ``score`` (module docstring), in ``eval()`` mode.
        x, edge_index: features and message-passing edges.
        query: ``[2, Q]`` held-out edges (e.g. the test edges).
        known: ``[2, X]`` edges to exclude from the ranking. (default: ``None``)
        k: the cut-off. (default: ``10``)
        rows_per_batch: query nodes scored at once (memory: ``rows x N`` scores).

    Returns:
        ``(nodes, ranking)``: the sorted query nodes and their :class:`NodeRanking` (CPU).
    """
    e = _checked(x, {"edge_index": edge_index, "query": query,
                     **({} if known is None else {"known": known})})
    if e["query"].size(1) == 0:
        raise ValueError("query is empty: there is no node to rank candidates for")
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
    device = next(model.parameters()).device
    h = model.encode(x.to(device), e["edge_index"].to(device))
    n = x.size(0)
    both = torch.cat([e["query"], e["query"].flip(0)], dim=1).cpu()
    known = None if known is None else torch.cat([e["known"], e["known"].flip(0)], dim=1).cpu()
    nodes = torch.unique(both[0])
    slot = torch.full((n,), -1, dtype=torch.long)
    parts = []
    for chunk in nodes.split(rows_per_batch):
        slot[:] = -1
        slot[chunk] = torch.arange(chunk.numel())

        def local(pairs: Tensor) -> Tensor:
            pairs = pairs[:, slot[pairs[0]] >= 0]
            return torch.stack([slot[pairs[0]], pairs[1]])
        scores = model.score(h[chunk.to(device)].unsqueeze(1), h.unsqueeze(0)).cpu()
        parts.append(per_node_ranking(scores, local(both), k,
                                      None if known is None else local(known)))
    return nodes, NodeRanking(*(torch.cat(m) for m in zip(*parts, strict=True)))
