"""Co-citation and co-authorship hypergraphs of the HyperGCN release.

`HyperGCN: A New Method of Training Graph Convolutional Networks on Hypergraphs
<https://arxiv.org/abs/1809.02589>`_ (Yadati et al., NeurIPS 2019). Files under
``<root>/hypergraph/hypergcn/<kind>/<name>/``: ``hypergraph.pickle`` (``{key: [node ids]}``),
``features.pickle`` (SciPy CSR), ``labels.pickle`` and ``splits/<1..10>.pickle``
(``{"train": [...], "test": [...]}``).

Returned ``Data``: ``x [N, F]`` float32, ``y [N]`` int64, ``hyperedge_index [2, sum |e|]``
(row 0 node ids, row 1 hyperedge ids, as PyG's ``HypergraphConv``; hyperedges numbered in the
pickle's order, members sorted), ``num_hyperedges``, ``train_mask``, ``test_mask``.
Rule: hyperedges are kept as shipped (no member is repeated in any shipped hyperedge; a repeated
one raises ``ValueError``); nodes in no hyperedge stay as isolated nodes.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from graphkit.data.download import ensure_files, parsing, resolve_root
from graphkit.data.hypergraph import hyperedge_index_from_list
from graphkit.data.registry import register
from graphkit.data.validation import check_features

__all__ = ["HYPERGCN_DATASETS", "load_hypergcn"]

_COMMIT = "de049387d8d8c9fe6ebab83cb4b49cacfd4ed534"
HYPERGCN_DATASETS = {
    "cocitation-cora": "2708 nodes, 1579 hyperedges, 7 classes",
    "cocitation-citeseer": "3312 nodes, 1079 hyperedges, 6 classes",
    "cocitation-pubmed": "19717 nodes, 7963 hyperedges, 3 classes",
    "coauthorship-cora": "2708 nodes, 1072 hyperedges, 7 classes",
    "coauthorship-dblp": "41302 nodes, 22363 hyperedges, 6 classes",
}


def _unpickle(path: Path, expected: type | tuple[type, ...], what: str) -> Any:
    """Unpickle ``path`` and check that it holds ``what`` (an ``expected`` instance)."""
    with parsing(path, "pickle"), open(path, "rb") as f:
        obj = pickle.load(f)
    if not isinstance(obj, expected):
        raise ValueError(f"{path} must hold {what}, got {type(obj).__name__}")
    return obj


def load_hypergcn(root: str, name: str, split: int = 1, features: bool = True) -> Data:
    """Load a HyperGCN hypergraph with train/test split number ``split`` (1 to 10).

    Args:
        root: the data root.
        name: ``cocitation-cora``, ``cocitation-citeseer``, ``cocitation-pubmed``,
            ``coauthorship-cora`` or ``coauthorship-dblp``.
        split: which of the 10 released splits to use (default: 1).
        features: set ``False`` to skip ``features.pickle`` (``x`` is then ``None``); the
            features of cocitation-pubmed and coauthorship-dblp are not in the shared data.
    """
    if name not in HYPERGCN_DATASETS:
        choices = list(HYPERGCN_DATASETS)
        raise ValueError(f"unknown HyperGCN dataset '{name}': choose one of {choices}")
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 1 <= split <= 10:
        raise ValueError(f"split must be an integer from 1 to 10, got {split!r}")
    kind, short = name.split("-")
    base = f"hypergraph/hypergcn/{kind}/{short}"
    wanted = [f"{base}/hypergraph.pickle", f"{base}/labels.pickle", f"{base}/splits/{split}.pickle"]
    if features:
        wanted.append(f"{base}/features.pickle")
    try:
        files = ensure_files(name, root, wanted)
    except FileNotFoundError as e:
        # The hint only when features.pickle itself is the missing file (the manifest's
        # note names features.pickle in every message of these datasets).
        present = [(resolve_root(root) / w).is_file() for w in wanted]
        if features and present[:3] == [True] * 3 and not present[3]:
            raise FileNotFoundError(f"{e} Pass features=False to load without features.") from None
        raise

    labels = _unpickle(files[wanted[1]], (list, tuple, np.ndarray), "a list of class ids")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{files[wanted[1]]} must hold integer class ids") from None
    n = labels.size
    if n == 0:
        raise ValueError(f"{files[wanted[1]]} holds no labels: the dataset has no nodes")
    raw = _unpickle(files[wanted[0]], dict, "a dict of hyperedges (key -> node ids)")
    try:
        hyperedges = [sorted(int(v) for v in members) for members in raw.values()]
        hyperedge_index, m = hyperedge_index_from_list(hyperedges, num_nodes=n)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{files[wanted[0]]}: {e}") from None
    data = Data(
        y=torch.from_numpy(labels),
        hyperedge_index=hyperedge_index,
        num_hyperedges=m,
        num_nodes=n,
    )
    if features:
        x = _unpickle(files[wanted[3]], (sp.spmatrix, sp.sparray, np.ndarray), "a feature matrix")
        x = x.toarray() if sp.issparse(x) else np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"{files[wanted[3]]} must hold a 2-D feature matrix, got {x.shape}")
        if x.shape[0] != n:
            raise ValueError(
                f"node-count mismatch: {files[wanted[3]]} has {x.shape[0]} rows but {name} has "
                f"{n} labelled nodes"
            )
        data.x = check_features(torch.from_numpy(x.astype(np.float32)))
    split_dict = _unpickle(files[wanted[2]], dict, "a dict with 'train' and 'test' node lists")
    for key in ("train", "test"):
        if key not in split_dict:
            raise ValueError(f"{files[wanted[2]]} lacks the key '{key}'")
        try:
            idx = torch.as_tensor(np.asarray(split_dict[key], dtype=np.int64).reshape(-1))
        except (TypeError, ValueError):
            raise ValueError(f"{files[wanted[2]]}: '{key}' must be a list of node ids") from None
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise ValueError(f"{files[wanted[2]]}: {key} ids out of range for {n} nodes")
        mask = torch.zeros(n, dtype=torch.bool)
        mask[idx] = True
        data[f"{key}_mask"] = mask
    return data


def _register(name: str, size: str) -> None:
    def loader(root: str, split: int = 1, features: bool = True) -> Data:
        return load_hypergcn(root, name, split=split, features=features)

    loader.__name__ = f"load_{name.replace('-', '_')}"
    loader.__doc__ = f"HyperGCN {name} hypergraph; kwargs split=1..10, features=True."
    kind, short = name.split("-")
    register(
        name,
        task="hypergraph node classification",
        size=size,
        source=f"https://github.com/malllabiisc/HyperGCN/tree/{_COMMIT}/data/{kind}/{short}",
        citation="Yadati, Nimishakavi, Yadav, Nitin, Louis, Talukdar. HyperGCN: A New Method of "
        "Training Graph Convolutional Networks on Hypergraphs. NeurIPS 2019",
        license="Apache-2.0",
        manifest=name,
    )(loader)


for _name, _size in HYPERGCN_DATASETS.items():
    _register(_name, _size)
