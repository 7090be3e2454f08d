"""The gnn-benchmark ``.npz`` format (Amazon, Coauthor, Cora-Full, ... and its Cora/CiteSeer).

`Pitfalls of Graph Neural Network Evaluation <https://arxiv.org/abs/1811.05868>`_ (Shchur et al.,
2018). A file holds the adjacency (``adj_data/adj_indices/adj_indptr/adj_shape``, CSR), optional
attributes (``attr_*``, CSR, or a dense ``attr_matrix``) and ``labels``. The same layout is used
by gnn-meta-attack's clean graphs for Pro-GNN.

Rule of :func:`read_npz`: edges are symmetrised, duplicates merged, weights dropped (binary
graph) and self-loops removed; ``data.cleaning`` records the counts. Use
:func:`graphkit.data.splits.random_planetoid_split` for the 20/30/rest split and
:func:`graphkit.data.splits.largest_connected_component` for the LCC.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data

from graphkit.data.download import ensure_files, parsing
from graphkit.data.edges import undirected_edge_index
from graphkit.data.registry import register
from graphkit.data.splits import largest_connected_component, random_planetoid_split
from graphkit.data.validation import check_features, check_num_nodes

__all__ = ["read_npz", "read_npz_arrays"]

_COMMIT = "1e72912a0810cdf27ae54fd589a3b43358a2b161"


def _csr(z: dict[str, np.ndarray], prefix: str, path: Path) -> sp.csr_matrix:
    for part in ("indices", "indptr"):  # SciPy would truncate float ids to integers
        arr = z.get(f"{prefix}_{part}")
        if arr is not None and arr.dtype.kind not in "iu":
            raise ValueError(f"{path}: {prefix}_{part} must hold integers, got dtype {arr.dtype}")
    try:
        m = sp.csr_matrix(
            (z[f"{prefix}_data"], z[f"{prefix}_indices"], z[f"{prefix}_indptr"]),
            shape=tuple(z[f"{prefix}_shape"]),
        )
        m.check_format(full_check=True)  # column ids in range, indptr monotone
        return m
    except KeyError as e:
        raise ValueError(f"{path} lacks the array {e.args[0]} of the '{prefix}' matrix") from None
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: malformed '{prefix}' CSR matrix ({e})") from None


def read_npz_arrays(
    path: str | os.PathLike,
) -> tuple[sp.csr_matrix, sp.csr_matrix | np.ndarray | None, np.ndarray | None]:
    """Return the raw ``(adjacency, attributes or None, labels or None)`` of an npz file.

    Only numeric arrays are read (``allow_pickle=False``: an npz file must not be able to run
    code); the object arrays some files hold (``node_names``, ``idx_to_node``) are skipped.

    Raises:
        ValueError: the file is not a readable npz archive (truncated, corrupt, or holding
            pickled data where an array is needed), lacks the adjacency, or its parts disagree.
    """
    path = Path(path)
    with parsing(path, "NumPy .npz"):
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not an archive of named arrays")
        with archive:  # read eagerly: a damaged member only fails when it is decompressed
            z = {k: archive[k] for k in archive.files if k.startswith(("adj_", "attr_", "labels"))}
    adj = _csr(z, "adj", path)
    if "attr_data" in z:
        attr = _csr(z, "attr", path)
    elif "attr_matrix" in z:
        attr = np.asarray(z["attr_matrix"])
    else:
        attr = None
    if "labels" in z:
        labels = np.asarray(z["labels"])
    elif "labels_data" in z:
        labels = _csr(z, "labels", path).toarray()
    else:
        labels = None
    if adj.shape[0] != adj.shape[1]:
        raise ValueError(f"{path}: the adjacency must be square, got shape {adj.shape}")
    if adj.dtype.kind in "fc" and not np.isfinite(adj.data).all():
        raise ValueError(f"{path}: the adjacency holds NaN or infinite entries")
    if labels is not None and labels.ndim not in (1, 2):
        raise ValueError(f"{path}: labels must be a vector [N] or a 0/1 matrix [N, C], got "
                         f"shape {labels.shape}")
    if labels is not None and labels.ndim == 2 and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path}: multi-label labels [N, C] must hold only 0 and 1")
    n = adj.shape[0]
    if labels is not None and labels.dtype.kind not in "iub":
        if labels.dtype.kind != "f" or not np.all(np.isfinite(labels)) or np.any(
            labels != np.round(labels)
        ):
            raise ValueError(f"{path}: labels must be integers (0/1 for multi-label), got "
                             f"non-integral or NaN values of dtype {labels.dtype}")
    for what, arr in (("attributes", attr), ("labels", labels)):
        if arr is not None and arr.shape[0] != n:
            raise ValueError(
                f"{path}: node-count mismatch: {what} have {arr.shape[0]} rows but the "
                f"adjacency has {n} nodes"
            )
    return adj, attr, labels


def read_npz(path: str | os.PathLike) -> Data:
    """Read a gnn-benchmark ``.npz`` file as an undirected, unweighted PyG ``Data``.

    Returns ``Data(x [N, F] float32, edge_index, y [N] int64 (or [N, C] float32 when the
    labels are multi-label), cleaning)``; ``x`` is ``None`` when the file has no attributes.
    """
    adj, attr, labels = read_npz_arrays(path)
    try:
        n = check_num_nodes(adj.shape[0])
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    coo = adj.tocoo()
    edge_index, report = undirected_edge_index(
        np.stack([coo.row, coo.col], axis=1), n, self_loops="remove"
    )
    data = Data(edge_index=edge_index, num_nodes=n)
    if attr is not None:
        dense = attr.toarray() if sp.issparse(attr) else attr
        try:
            data.x = check_features(torch.from_numpy(np.asarray(dense, dtype=np.float32)))
        except ValueError as e:
            raise ValueError(f"{path}: attributes: {e}") from None
    if labels is not None:
        if labels.ndim == 1:
            data.y = torch.from_numpy(labels.astype(np.int64))
        else:
            data.y = torch.from_numpy(labels.astype(np.float32))
    data.cleaning = report
    return data


def _register(name: str, size: str) -> None:
    def loader(root: str, lcc: bool = False, split_seed: int | None = None) -> Data:
        (path,) = ensure_files(f"gnn-benchmark-{name}", root).values()
        data = read_npz(path)
        if lcc:
            data = largest_connected_component(data)
        if split_seed is not None:
            data = random_planetoid_split(data, 20, 30, seed=split_seed)
        return data

    loader.__name__ = f"load_gnn_benchmark_{name}"
    loader.__doc__ = (
        f"gnn-benchmark {name}.npz (undirected, unweighted, no self-loops); kwargs: lcc "
        "(keep the largest connected component), split_seed (20/30/rest random split)."
    )
    register(
        f"gnn-benchmark-{name}",
        task="node classification",
        size=size,
        source=f"https://github.com/shchur/gnn-benchmark/tree/{_COMMIT}/data/npz",
        citation="Shchur, Mumme, Bojchevski, Günnemann. Pitfalls of Graph Neural Network "
        "Evaluation. R2L workshop, NeurIPS 2018",
        license="MIT",
        manifest=f"gnn-benchmark-{name}",
    )(loader)


_register("cora", "2708 nodes, 5278 edges, 7 classes")
_register("citeseer", "3312 nodes, 4536 edges, 6 classes")
