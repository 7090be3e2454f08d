"""Pre-attacked graphs of Pro-GNN (clean, metattack, nettack) on DeepRobust's node set.

`Graph Structure Learning for Robust Graph Neural Networks
<https://arxiv.org/abs/2005.10203>`_ (Jin et al., KDD 2020). Attacks: metattack (Zügner and
Günnemann, ICLR 2019), nettack (Zügner et al., KDD 2018).

The clean graph is rebuilt as DeepRobust's ``Dataset(setting="prognn")`` does: the
gnn-meta-attack adjacency :math:`A` becomes :math:`A + A^\\top`, binarised, restricted to its
largest connected component (nodes kept in ascending index order) and given a zero diagonal;
features and labels are sliced to the same nodes. ``pubmed`` uses the whole Planetoid graph
(its 3 self-loops removed, recorded in ``data.cleaning``).
The attacked adjacencies shipped by Pro-GNN are in that node order (checked by the tests: the
share of changed undirected entries equals the metattack rate exactly).

Returned ``Data``: ``x`` (the identity for ``polblogs``, which has no features, as in Pro-GNN),
``edge_index`` (symmetric, no self-loops), ``y``, Pro-GNN's ``train_mask``/``val_mask``/
``test_mask``, ``lcc_nodes`` (row of each node in the clean npz) and, for nettack,
``target_mask`` (the attacked test nodes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from graphkit.data.datasets.npz import read_npz_arrays
from graphkit.data.download import ensure_files, parsing
from graphkit.data.registry import register
from graphkit.data.validation import check_features

__all__ = ["ATTACKS", "NAMES", "load_prognn", "prognn_clean_adjacency"]

_COMMIT = "90e11956bf8145dc2ff441fc9923bc95b535f289"
NAMES = ("cora", "citeseer", "cora_ml", "polblogs", "pubmed")
META_RATES = (0.05, 0.1, 0.15, 0.2, 0.25)
NETTACK_RATES = (1, 2, 3, 4, 5)
ATTACKS = ("clean", "meta", "nettack")


def prognn_clean_adjacency(adj: sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """DeepRobust's preprocessing: symmetrise, binarise, keep the LCC, zero the diagonal.

    Returns:
        ``(adjacency of the LCC, sorted LCC node ids)``.
    """
    a = sp.csr_matrix(adj + adj.T)
    a.data[:] = 1.0
    _, comp = sp.csgraph.connected_components(a, directed=False)
    largest = int(np.argmax(np.bincount(comp)))
    nodes = np.flatnonzero(comp == largest)
    a = sp.lil_matrix(a[nodes][:, nodes])
    a.setdiag(0)
    a = a.tocsr().astype(np.float32)
    a.eliminate_zeros()
    return a, nodes


def _check_rate(attack: str, rate: float | None) -> str | None:
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    if attack == "clean":
        if rate not in (None, 0, 0.0):
            raise ValueError(f"attack='clean' takes no rate, got rate={rate}")
        return None
    allowed = META_RATES if attack == "meta" else NETTACK_RATES
    if rate is None:
        raise ValueError(f"attack={attack!r} needs a rate, one of {allowed}")
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"rate for attack={attack!r} must be a number, one of {allowed}, got "
                         f"{rate!r}") from None
    for r in allowed:
        if math.isclose(value, r, abs_tol=1e-9):
            return f"{r}" if attack == "meta" else f"{r}.0"
    unit = "perturbation rate" if attack == "meta" else "perturbations per target node"
    raise ValueError(f"rate for attack={attack!r} ({unit}) must be one of {allowed}, got {rate}")


def _clean_graph(root: str, name: str, features: bool) -> tuple[sp.csr_matrix, Data]:
    if name == "pubmed":
        from graphkit.data.datasets.planetoid import load_planetoid, read_planetoid_structure

        adj, y = read_planetoid_structure(root, "PubMed")
        loops = int(adj.diagonal().astype(bool).sum())
        adj.setdiag(0)
        adj.eliminate_zeros()
        data = Data(y=y, num_nodes=adj.shape[0])
        if features:
            try:
                data.x = load_planetoid(root, "PubMed").x
            except FileNotFoundError as e:
                raise FileNotFoundError(
                    f"{e} Pass features=False to load prognn-pubmed without node features."
                ) from None
        data.lcc_nodes = torch.arange(adj.shape[0])
        data.cleaning = {"self_loops": loops, "self_loops_removed": loops > 0}
        return adj, data
    files = ensure_files(f"prognn-{name}", root, [f"prognn/clean/{name}.npz"])
    raw, attr, labels = read_npz_arrays(next(iter(files.values())))
    adj, nodes = prognn_clean_adjacency(raw)
    data = Data(num_nodes=len(nodes), y=torch.from_numpy(labels[nodes].astype(np.int64)))
    if features and attr is None:  # polblogs: Pro-GNN uses the identity as features
        data.x = torch.eye(len(nodes))
    elif features:
        dense = attr[nodes].toarray() if sp.issparse(attr) else attr[nodes]
        data.x = check_features(torch.from_numpy(np.asarray(dense, dtype=np.float32)))
    data.lcc_nodes = torch.from_numpy(nodes.astype(np.int64))
    return adj, data


def _mask(split: dict, key: str, n: int, path: Path) -> torch.Tensor:
    """The boolean mask of ``split[key]``, a list of node ids below ``n`` read from ``path``."""
    if key not in split:
        raise ValueError(f"{path} lacks the key '{key}' (it has {sorted(split)})")
    try:
        idx = np.asarray(split[key], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: '{key}' must be a list of integer node ids") from None
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)][0]
        raise ValueError(f"{path}: '{key}' holds node id {bad}, out of range for {n} nodes")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.from_numpy(idx)] = True
    return mask


def load_prognn(
    root: str,
    name: str,
    attack: str = "clean",
    rate: float | None = None,
    features: bool = True,
) -> Data:
    """Pro-GNN graph ``prognn-<name>`` under ``attack`` at ``rate``, with Pro-GNN's split.

    Args:
        root: the data root.
        name: ``prognn-cora``, ``prognn-citeseer``, ``prognn-cora_ml``, ``prognn-polblogs`` or
            ``prognn-pubmed`` (the bare name also works).
        attack: ``"clean"``, ``"meta"`` (metattack) or ``"nettack"``.
        rate: metattack's perturbation rate (0.05, 0.1, 0.15, 0.2, 0.25) or nettack's number of
            perturbations per target node (1 to 5); not used for ``"clean"``.
        features: set ``False`` to skip the node features (``x`` is then ``None``); this lets
            ``prognn-pubmed`` load without Planetoid's missing ``ind.pubmed.allx``.
    """
    name = name.removeprefix("prognn-")
    if name not in NAMES:
        raise ValueError(f"unknown Pro-GNN dataset '{name}': choose one of {NAMES}")
    tag = _check_rate(attack, rate)
    if attack == "nettack" and name == "cora_ml":
        raise ValueError("Pro-GNN ships no nettack graphs for cora_ml")
    adj, data = _clean_graph(root, name, features)
    n = adj.shape[0]
    manifest = f"prognn-{name}"
    split_file = (
        f"prognn/nettack/{name}_nettacked_nodes.json"
        if attack == "nettack"
        else f"prognn/splits/{name}_prognn_splits.json"
    )
    wanted = [split_file]
    if attack != "clean":
        wanted.append(f"prognn/{attack}/{name}_{attack}_adj_{tag}.npz")
    files = ensure_files(manifest, root, wanted)
    if attack != "clean":
        with parsing(files[wanted[1]], "SciPy sparse .npz"):
            adj = sp.load_npz(files[wanted[1]]).tocsr()
        if adj.shape != (n, n):
            raise ValueError(
                f"{files[wanted[1]]} has shape {adj.shape}, but the clean LCC of {name} has "
                f"{n} nodes: the attacked graph does not match this node set"
            )
        if (adj != adj.T).nnz or adj.diagonal().any():
            raise ValueError(f"{files[wanted[1]]} is not symmetric with a zero diagonal")
    with parsing(files[split_file], "JSON"), open(files[split_file]) as f:
        split = json.load(f)
    if not isinstance(split, dict):
        raise ValueError(f"{files[split_file]} must hold a JSON object of index lists")
    coo = sp.coo_matrix(adj)
    order = np.lexsort((coo.col, coo.row))
    data.edge_index = torch.from_numpy(
        np.stack([coo.row[order], coo.col[order]]).astype(np.int64)
    )
    data.train_mask = _mask(split, "idx_train", n, files[split_file])
    data.val_mask = _mask(split, "idx_val", n, files[split_file])
    data.test_mask = _mask(split, "idx_test", n, files[split_file])
    if attack == "nettack":
        data.target_mask = _mask(split, "attacked_test_nodes", n, files[split_file])
    return data


register(
    "prognn-*",
    task="node classification (adversarial robustness)",
    size="cora 2485, citeseer 2110, cora_ml 2810, polblogs 1222, pubmed 19717 nodes",
    source=f"https://github.com/ChandlerBang/Pro-GNN/tree/{_COMMIT}",
    citation="Jin, Ma, Liu, Tang, Wang, Tang. Graph Structure Learning for Robust Graph Neural "
    "Networks. KDD 2020",
    license="none stated upstream (clean graphs from gnn-meta-attack: MIT)",
    manifest="{name}",
)(load_prognn)
