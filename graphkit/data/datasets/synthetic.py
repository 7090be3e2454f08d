"""Embedded datasets that need no files: Zachary's karate club and two stochastic block models.

* ``karate``: `Zachary's karate club <https://doi.org/10.1086/jfr.33.4.3629752>`_ (1977), from
  networkx; ``y`` is the club each member joined (0: Mr. Hi, 1: Officer), ``x`` the identity.
* ``csbm``: a contextual stochastic block model (`Deshpande et al., Contextual Stochastic Block
  Models <https://arxiv.org/abs/1807.09596>`_, NeurIPS 2018), with ``C`` balanced classes.
  Features are :math:`x_i = s\\,\\mu_{y_i} + \\varepsilon_i` with unit-norm random class means
  :math:`\\mu_c` and :math:`\\varepsilon_i \\sim \\mathcal{N}(0, I_d)` (``s`` is
  ``feature_signal``). The graph has exactly :math:`m = \\mathrm{round}(N \\bar d / 2)` distinct
  undirected edges and no self-loops, of which :math:`\\mathrm{round}(h\\, m)` join two nodes of
  the same class (``h`` is ``homophily``, the edge homophily ratio), each intra-class edge
  uniform over same-class pairs and each inter-class edge uniform over different-class pairs
  (for balanced classes).
* ``hsbm``: a hypergraph stochastic block model with the same features: each hyperedge has a
  size uniform in ``[min_size, max_size]``; with probability ``homophily`` its members are drawn
  from one class (chosen in proportion to class size), otherwise from all nodes.

All are deterministic given ``seed`` and carry random 60/20/20 ``train/val/test`` masks
(``karate``: 4 training and 4 validation members per club, the rest test).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import torch
from torch_geometric.data import Data

from graphkit.data.registry import register
from graphkit.data.splits import random_planetoid_split

__all__ = ["contextual_sbm", "hypergraph_sbm", "karate_club"]


def karate_club(seed: int = 0) -> Data:
    """Zachary's karate club: 34 nodes, 78 edges, 2 classes (the club each member joined)."""
    import networkx as nx

    g = nx.karate_club_graph()
    pairs = torch.tensor(list(g.edges()), dtype=torch.long).t()
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    edge_index = edge_index[:, torch.argsort(edge_index[0] * 34 + edge_index[1])]
    y = torch.tensor([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in g.nodes])
    data = Data(x=torch.eye(34), edge_index=edge_index, y=y)
    return random_planetoid_split(data, train_per_class=4, val_per_class=4, seed=seed)


_INTEGER = ("num_nodes", "num_classes", "num_features", "num_hyperedges", "min_size",
            "max_size", "seed")


def _check(**kw: float) -> None:
    for key, (value, lo, hi) in kw.items():
        if key == "seed" and value is None:  # NumPy's fresh, unseeded generator
            continue
        if key in _INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"{key} must lie in [{lo}, {hi}], got {value!r}")


def _labels_features(
    rng: np.random.Generator, num_nodes: int, num_classes: int, num_features: int,
    feature_signal: float,
) -> tuple[np.ndarray, np.ndarray]:
    y = rng.permutation(np.arange(num_nodes) % num_classes)
    means = rng.standard_normal((num_classes, num_features))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    x = feature_signal * means[y] + rng.standard_normal((num_nodes, num_features))
    return y, x.astype(np.float32)


def _masks(rng: np.random.Generator, n: int) -> dict[str, torch.Tensor]:
    perm = torch.from_numpy(rng.permutation(n))
    n_train, n_val = int(0.6 * n), int(0.2 * n)
    out = {}
    for key, idx in (
        ("train_mask", perm[:n_train]),
        ("val_mask", perm[n_train : n_train + n_val]),
        ("test_mask", perm[n_train + n_val :]),
    ):
        mask = torch.zeros(n, dtype=torch.bool)
        mask[idx] = True
        out[key] = mask
    return out


def _sample_pairs(
    rng: np.random.Generator, y: np.ndarray, count: int, same: bool, seen: set[int]
) -> list[tuple[int, int]]:
    """``count`` new distinct undirected pairs, all within (``same``) or across classes."""
    n = len(y)
    order = np.argsort(y, kind="stable")
    sizes = np.bincount(y)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out: list[tuple[int, int]] = []
    for _ in range(1000):
        need = count - len(out)
        if need <= 0:
            return out
        u = rng.integers(n, size=2 * need + 16)
        if same:
            c = y[u]
        else:  # a uniformly chosen other class
            shift = rng.integers(1, len(sizes), size=u.size)
            c = (y[u] + shift) % len(sizes)
        v = order[start[c] + (rng.random(u.size) * sizes[c]).astype(np.int64)]
        for a, b in zip(np.minimum(u, v).tolist(), np.maximum(u, v).tolist()):
            key = a * n + b
            if a != b and key not in seen:
                seen.add(key)
                out.append((a, b))
                if len(out) == count:
                    return out
    raise ValueError("could not place the requested edges: lower avg_degree")


def contextual_sbm(
    num_nodes: int = 1000,
    num_classes: int = 2,
    num_features: int = 32,
    feature_signal: float = 1.0,
    homophily: float = 0.8,
    avg_degree: float = 5.0,
    seed: int = 0,
) -> Data:
    """Sample a contextual SBM graph (see the module docstring for the model).

    Returns:
        ``Data(x [N, F] float32, edge_index (both directions, sorted), y [N], train_mask,
        val_mask, test_mask)``.

    Raises:
        ValueError: an argument out of range, or more edges than the classes can hold.
    """
    _check(num_nodes=(num_nodes, 2, 1e9))  # first: the other bounds are computed from it
    _check(num_classes=(num_classes, 1, num_nodes),
           num_features=(num_features, 1, 1e6), feature_signal=(feature_signal, 0, 1e6),
           homophily=(homophily, 0, 1), avg_degree=(avg_degree, 0, num_nodes - 1),
           seed=(seed, 0, 2**63 - 1))
    if num_classes == 1 and homophily < 1:
        raise ValueError("homophily < 1 needs at least 2 classes")
    rng = np.random.default_rng(seed)
    y, x = _labels_features(rng, num_nodes, num_classes, num_features, feature_signal)
    m = round(num_nodes * avg_degree / 2)
    m_intra = round(homophily * m)
    sizes = np.bincount(y, minlength=num_classes)
    intra_pairs = int((sizes * (sizes - 1) // 2).sum())
    inter_pairs = num_nodes * (num_nodes - 1) // 2 - intra_pairs
    if m_intra > intra_pairs // 2 or m - m_intra > inter_pairs // 2:
        raise ValueError(
            f"avg_degree={avg_degree} asks for {m} edges ({m_intra} within classes), more than "
            "half of the node pairs available: lower avg_degree or raise num_nodes"
        )
    seen: set[int] = set()
    pairs = _sample_pairs(rng, y, m_intra, True, seen) + _sample_pairs(
        rng, y, m - m_intra, False, seen
    )
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    row = np.concatenate([arr[:, 0], arr[:, 1]])
    col = np.concatenate([arr[:, 1], arr[:, 0]])
    order = np.lexsort((col, row))
    data = Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(np.stack([row[order], col[order]])),
        y=torch.from_numpy(y.astype(np.int64)),
        **_masks(rng, num_nodes),
    )
    return data


def hypergraph_sbm(
    num_nodes: int = 500,
    num_classes: int = 3,
    num_features: int = 32,
    feature_signal: float = 1.0,
    num_hyperedges: int | None = None,
    min_size: int = 2,
    max_size: int = 6,
    homophily: float = 0.8,
    seed: int = 0,
) -> Data:
    """Sample a hypergraph SBM (see the module docstring); ``num_hyperedges`` defaults to N.

    Returns:
        ``Data(x, y, hyperedge_index [2, sum |e|] (node ids, hyperedge ids), num_hyperedges,
        train_mask, val_mask, test_mask)``.
    """
    m = num_nodes if num_hyperedges is None else num_hyperedges
    _check(num_nodes=(num_nodes, 2, 1e9))  # first: the other bounds are computed from it
    _check(num_classes=(num_classes, 1, num_nodes),
           num_features=(num_features, 1, 1e6), feature_signal=(feature_signal, 0, 1e6),
           num_hyperedges=(m, 1, 1e9), min_size=(min_size, 1, num_nodes),
           max_size=(max_size, min_size, num_nodes), homophily=(homophily, 0, 1),
           seed=(seed, 0, 2**63 - 1))
    rng = np.random.default_rng(seed)
    y, x = _labels_features(rng, num_nodes, num_classes, num_features, feature_signal)
    sizes = np.bincount(y, minlength=num_classes)
    if max_size > sizes.min() and homophily > 0:
        raise ValueError(f"max_size={max_size} exceeds the smallest class ({sizes.min()} nodes)")
    members_of = [np.flatnonzero(y == c) for c in range(num_classes)]
    edge_size = rng.integers(min_size, max_size + 1, size=m)
    inside = rng.random(m) < homophily
    cls = rng.choice(num_classes, size=m, p=sizes / num_nodes)
    rows, cols = [], []
    for e in range(m):
        pool = members_of[cls[e]] if inside[e] else None
        span = len(pool) if pool is not None else num_nodes
        pick = rng.choice(span, size=edge_size[e], replace=False)
        members = np.sort(pool[pick] if pool is not None else pick)
        rows.append(members)
        cols.append(np.full(members.size, e))
    hyperedge_index = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]))
    return Data(
        x=torch.from_numpy(x),
        y=torch.from_numpy(y.astype(np.int64)),
        hyperedge_index=hyperedge_index.long(),
        num_hyperedges=m,
        num_nodes=num_nodes,
        **_masks(rng, num_nodes),
    )


_EMBEDDED = "generated by graphkit (no files)"


def _takes_options_of(generator: Callable[..., Data]) -> Callable[[Callable], Callable]:
    """Give a ``loader(root, **kwargs)`` the generator's keyword signature (for the registry's
    option check and for ``help()``)."""

    def decorate(loader: Callable) -> Callable:
        root = inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
        params = [root, *inspect.signature(generator).parameters.values()]
        loader.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return loader

    return decorate


@register(
    "karate",
    task="node classification",
    size="34 nodes, 78 edges, 2 classes",
    source="https://networkx.org (networkx.karate_club_graph)",
    citation="W. W. Zachary. An Information Flow Model for Conflict and Fission in Small "
    "Groups. J. Anthropological Research 1977",
    license="public domain (networkx, BSD-3-Clause)",
)
def load_karate(root: str, seed: int = 0) -> Data:
    """Zachary's karate club; kwargs: seed (of the 4/4/rest per-club split)."""
    return karate_club(seed=seed)


@register(
    "csbm",
    task="node classification (synthetic)",
    size="num_nodes (default 1000), avg_degree 5",
    source=_EMBEDDED,
    citation="Deshpande, Sen, Montanari, Mossel. Contextual Stochastic Block Models. "
    "NeurIPS 2018",
    license="MIT (graphkit)",
)
@_takes_options_of(contextual_sbm)
def load_csbm(root: str, **kwargs) -> Data:
    """Contextual SBM; kwargs: num_nodes, num_classes, num_features, feature_signal,
    homophily, avg_degree, seed."""
    return contextual_sbm(**kwargs)


@register(
    "hsbm",
    task="hypergraph node classification (synthetic)",
    size="num_nodes (default 500), num_hyperedges = num_nodes",
    source=_EMBEDDED,
    citation="Ghoshdastidar, Dukkipati. Consistency of Spectral Partitioning of Uniform "
    "Hypergraphs under Planted Partition Model. NeurIPS 2014",
    license="MIT (graphkit)",
)
@_takes_options_of(hypergraph_sbm)
def load_hsbm(root: str, **kwargs) -> Data:
    """Hypergraph SBM; kwargs: num_nodes, num_classes, num_features, feature_signal,
    num_hyperedges, min_size, max_size, homophily, seed."""
    return hypergraph_sbm(**kwargs)
