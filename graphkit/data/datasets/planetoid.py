"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split.

`Revisiting Semi-Supervised Learning with Graph Embeddings <https://arxiv.org/abs/1603.08861>`_
(Yang, Cohen and Salakhutdinov, ICML 2016). The raw pickles under
``<root>/Planetoid/<Name>/raw/`` are read with PyG's ``read_planetoid_data``, which writes
nothing (PyG's ``Planetoid`` class would write ``processed/`` into the read-only root).

Rule: as in PyG, duplicate edges are merged, self-loops removed (CiteSeer has 124, PubMed 3),
both directions stored, and ``data.cleaning`` records the counts; CiteSeer's 15 isolated test
nodes absent from ``tx`` are padded with zero features and ``y = 0``, outside every mask.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from graphkit.data.download import ensure_files, parsing
from graphkit.data.edges import undirected_edge_index
from graphkit.data.registry import register
from graphkit.data.text import read_table
from graphkit.data.validation import check_edge_index, check_features

__all__ = ["load_planetoid", "read_planetoid_structure"]

_COMMIT = "af6abf468a772cc055bec88c52e4d6f51b7c37e3"
SOURCE = f"https://github.com/kimiyoung/planetoid/tree/{_COMMIT}/data"
CITATION = (
    "Yang, Cohen, Salakhutdinov. Revisiting Semi-Supervised Learning with Graph Embeddings. "
    "ICML 2016"
)
SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def load_planetoid(root: str, name: str) -> Data:
    """Load ``Cora``, ``CiteSeer`` or ``PubMed`` with the public split (20 labels per class).

    Returns a ``Data`` with ``x``, ``edge_index``, ``y``, ``train_mask``, ``val_mask`` (500
    nodes) and ``test_mask`` (1000 nodes).
    """
    from torch_geometric.io import read_planetoid_data

    files = ensure_files(name, root)
    raw_dir = next(iter(files.values())).parent
    try:
        data = read_planetoid_data(str(raw_dir), name.lower())
    except Exception as e:
        _raise_for_bad_file(files, e)
        raise
    # PyG accepts a short test.index silently (fewer test nodes): compare it with ty.
    prefix = raw_dir / f"ind.{name.lower()}"
    num_test = len(_test_index(Path(f"{prefix}.test.index")))
    num_ty = len(_unpickle(Path(f"{prefix}.ty")))
    if num_test != num_ty:
        raise ValueError(f"{prefix}.test.index lists {num_test} test nodes but {prefix}.ty has "
                         f"{num_ty} rows")
    check_features(data.x)
    check_edge_index(data.edge_index, data.num_nodes)
    graph = _unpickle(Path(f"{prefix}.graph"))
    pairs = np.array([(u, v) for u, nbrs in graph.items() for v in nbrs], dtype=np.int64)
    edge_index, data.cleaning = undirected_edge_index(pairs, data.num_nodes, self_loops="remove")
    n = data.num_nodes
    pyg_keys = torch.sort(data.edge_index[0] * n + data.edge_index[1]).values
    if not torch.equal(pyg_keys, edge_index[0] * n + edge_index[1]):
        raise ValueError(f"{raw_dir}: the adjacency lists are not symmetric")
    data.edge_index = edge_index  # the same edges, sorted by source then target
    return data


def _unpickle(path: Path) -> Any:
    with parsing(path, "Planetoid pickle"), open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")  # Python-2 pickles


def _test_index(path: Path) -> np.ndarray:
    return read_table(path, 1).reshape(-1)


def _raise_for_bad_file(files: dict[str, Path], error: Exception) -> None:
    """PyG's reader failed with ``error``: raise a ValueError naming the file that caused it.

    PyG's own messages (an ``UnpicklingError``, a shape mismatch) do not say which of the
    eight files is at fault, so each is re-read here; returns if every file parses.
    """
    for rel, path in files.items():
        if rel.endswith(".test.index"):
            _test_index(path)
        else:
            _unpickle(path)
    if isinstance(error, (IndexError, ValueError, RuntimeError)):  # files parse, don't agree
        folder = next(iter(files.values())).parent
        raise ValueError(
            f"the Planetoid files in {folder} do not fit together ({type(error).__name__}: "
            f"{error}); one of them is probably from another dataset or version"
        ) from error


def read_planetoid_structure(root: str, name: str) -> tuple[sp.csr_matrix, torch.Tensor]:
    """The adjacency and labels of a Planetoid graph, without reading any feature file.

    Nodes are numbered as in the ``graph`` pickle (GCN/DeepRobust order: training and unlabelled
    nodes, then the test nodes at the positions given by ``test.index``). The adjacency is the
    symmetric, binary matrix of the adjacency lists, self-loops included.

    Returns:
        ``(adjacency [N, N] CSR float32, y [N] int64)``.
    """
    prefix = name.lower()
    raw = f"Planetoid/{name}/raw/ind.{prefix}"
    wanted = [f"{raw}.{s}" for s in ("ally", "ty", "graph", "test.index")]
    files = ensure_files(name, root, wanted)
    objs = {suffix: _unpickle(files[f"{raw}.{suffix}"]) for suffix in ("ally", "ty", "graph")}
    test_index = _test_index(files[f"{raw}.test.index"])
    graph = objs["graph"]
    if not isinstance(graph, dict):
        raise ValueError(f"{files[f'{raw}.graph']} must hold a dict of adjacency lists")
    if len(test_index) != np.shape(objs["ty"])[0]:
        raise ValueError(
            f"{files[f'{raw}.test.index']} lists {len(test_index)} test nodes but "
            f"{files[f'{raw}.ty']} has {np.shape(objs['ty'])[0]} rows"
        )
    n = len(graph)
    pairs = np.array([(u, v) for u, nbrs in graph.items() for v in nbrs], dtype=np.int64)
    if pairs.size and (pairs.max() >= n or pairs.min() < 0):
        raise ValueError(f"{files[f'{raw}.graph']}: node ids must lie in 0..{n - 1}")
    adj = sp.coo_matrix((np.ones(len(pairs), np.float32), (pairs[:, 0], pairs[:, 1])), (n, n))
    adj = sp.csr_matrix(adj + adj.T)
    adj.data[:] = 1.0
    labels = np.vstack([objs["ally"], objs["ty"]])
    if labels.shape[0] != n:
        raise ValueError(
            f"node-count mismatch: {name} has {labels.shape[0]} label rows but {n} graph nodes"
        )
    labels[test_index] = labels[np.sort(test_index)]
    return adj, torch.from_numpy(labels.argmax(1).astype(np.int64))


def _register(name: str, size: str) -> None:
    def loader(root: str) -> Data:
        return load_planetoid(root, name)

    loader.__name__ = f"load_{name.lower()}"
    loader.__doc__ = f"{name} citation graph, Planetoid public split (Yang et al. 2016)."
    register(
        name,
        task="node classification",
        size=size,
        source=SOURCE,
        citation=CITATION,
        license="MIT",
        manifest=name,
    )(loader)


_register("Cora", "2708 nodes, 5278 edges, 7 classes")
_register("CiteSeer", "3327 nodes, 4552 edges, 6 classes")
_register("PubMed", "19717 nodes, 44324 edges, 3 classes")
