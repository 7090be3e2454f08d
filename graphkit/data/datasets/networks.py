"""Labelled networks for node-embedding evaluation: BlogCatalog, PPI, and air-traffic networks.

* ``blogcatalog``: the ASU release (Tang and Liu, `Relational Learning via Latent Social
  Dimensions <https://doi.org/10.1145/1557019.1557109>`_, KDD 2009): 10312 bloggers, 333983
  friendships, 39 groups; multi-label ``y`` (float ``[N, 39]``).
* ``ppi``: node2vec's Homo sapiens protein-protein interactions (Grover and Leskovec,
  `node2vec <https://arxiv.org/abs/1607.00653>`_, KDD 2016) as redistributed by BioNEV: 3890
  proteins, 50 labels; multi-label ``y`` (float ``[N, 50]``).
* ``airports-europe``, ``airports-usa``, ``airports-brazil``: struc2vec's air-traffic networks
  (Ribeiro et al., `struc2vec <https://arxiv.org/abs/1704.03165>`_, KDD 2017); ``y`` is one of
  4 activity quartiles.

Rules, the same for all: node ids are relabelled to ``0..N-1`` in ascending order of the file's
ids, which are kept in ``data.node_ids`` (BlogCatalog and PPI ids ``1..N`` become ``0..N-1``);
label ids likewise map to columns in ascending order (``data.label_ids``). Edges are undirected:
both directions are stored, duplicates (including a pair listed in both directions) are merged,
and ``data.cleaning`` records the counts. Self-loops are kept by default (the airports of Brazil
have 71, Europe 2, PPI 894), one stored entry each; ``self_loops="remove"`` drops them, and the
count removed is recorded too. These graphs have no node features (``x`` is ``None``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch_geometric.data import Data

from graphkit.data.download import ensure_files
from graphkit.data.edges import undirected_edge_index
from graphkit.data.registry import register
from graphkit.data.text import read_ragged, read_table

__all__ = ["load_airports", "load_blogcatalog", "load_ppi", "read_airports"]


def _index_of(node_ids: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    """Positions of ``ids`` in the sorted array ``node_ids``; unknown ids raise ValueError."""
    pos = np.searchsorted(node_ids, ids)
    pos = np.clip(pos, 0, len(node_ids) - 1)
    bad = node_ids[pos] != ids
    if bad.any():
        raise ValueError(f"{what} refers to node id {ids[bad][0]}, which is not a known node")
    return pos


def _nonempty(table: np.ndarray, path: str | os.PathLike, what: str) -> np.ndarray:
    """``table`` itself; an empty one (an empty or truncated file) raises ValueError."""
    if len(table) == 0:
        raise ValueError(f"{path} holds no {what} (the file is empty or truncated)")
    return table


def _graph(pairs: np.ndarray, node_ids: np.ndarray, self_loops: str, what: str) -> Data:
    n = len(node_ids)
    if n == 0:
        raise ValueError(f"{what}: the graph is empty")
    edge_index, report = undirected_edge_index(
        _index_of(node_ids, pairs, what), n, self_loops=self_loops
    )
    data = Data(edge_index=edge_index, num_nodes=n)
    data.node_ids = torch.from_numpy(node_ids.astype(np.int64))
    data.cleaning = report
    return data


def _multilabel(rows: np.ndarray, cols: np.ndarray, n: int) -> tuple[torch.Tensor, np.ndarray]:
    label_ids, col_index = np.unique(cols, return_inverse=True)
    y = torch.zeros(n, len(label_ids))
    y[torch.from_numpy(rows), torch.from_numpy(col_index.reshape(-1))] = 1.0
    return y, label_ids


def load_blogcatalog(root: str, self_loops: str = "keep") -> Data:
    """BlogCatalog (ASU): ``Data(edge_index, y [10312, 39] float, node_ids, label_ids)``."""
    base = "networks/BlogCatalog/data"
    names = ("edges", "nodes", "groups", "group-edges")
    files = ensure_files("blogcatalog", root, [f"{base}/{f}.csv" for f in names])
    tables = {
        name: _nonempty(
            read_table(files[f"{base}/{name}.csv"], 1 if name in ("nodes", "groups") else 2,
                       delimiter=","),
            files[f"{base}/{name}.csv"], what,
        )
        for name, what in zip(names, ("edges", "nodes", "groups", "group memberships"))
    }
    node_ids = np.unique(tables["nodes"].reshape(-1))
    data = _graph(tables["edges"], node_ids, self_loops, str(files[f"{base}/edges.csv"]))
    groups = np.unique(tables["groups"].reshape(-1))
    member = tables["group-edges"]
    where = str(files[f"{base}/group-edges.csv"])
    rows = _index_of(node_ids, member[:, 0], where)
    cols = _index_of(groups, member[:, 1], f"{where} (group column)")
    data.y = torch.zeros(len(node_ids), len(groups))
    data.y[torch.from_numpy(rows), torch.from_numpy(cols)] = 1.0
    data.label_ids = torch.from_numpy(groups.astype(np.int64))
    return data


def load_ppi(root: str, self_loops: str = "keep") -> Data:
    """node2vec PPI: ``Data(edge_index, y [3890, 50] float, node_ids, label_ids)``."""
    base = "networks/PPI_node2vec"
    files = ensure_files("ppi", root)
    edge_file = files[f"{base}/node2vec_PPI.edgelist"]
    table = _nonempty(read_table(edge_file, 3, dtype=np.float64), edge_file, "edges")
    pairs = table[:, :2]
    if not np.array_equal(pairs, np.round(pairs)):
        raise ValueError(f"{edge_file}: node ids must be integers")
    if not np.isfinite(table[:, 2]).all():  # the weights are unused, but NaN means damage
        raise ValueError(f"{edge_file}: edge weights must be finite numbers")
    pairs = pairs.astype(np.int64)
    label_file = files[f"{base}/node2vec_PPI_labels.txt"]
    label_rows = read_ragged(label_file)
    if not label_rows:
        raise ValueError(f"{label_file} holds no labels (the file is empty or truncated)")
    labelled = np.array([row[0] for _, row in label_rows], dtype=np.int64)
    node_ids = np.unique(np.concatenate([labelled, pairs.reshape(-1)]))
    data = _graph(pairs, node_ids, self_loops, str(edge_file))
    rows = np.concatenate([np.full(len(row) - 1, row[0]) for _, row in label_rows])
    cols = np.concatenate([np.asarray(row[1:], dtype=np.int64) for _, row in label_rows])
    y, label_ids = _multilabel(_index_of(node_ids, rows, "labels"), cols, len(node_ids))
    data.y, data.label_ids = y, torch.from_numpy(label_ids.astype(np.int64))
    return data


def read_airports(
    edgelist: str | os.PathLike, labels: str | os.PathLike, self_loops: str = "keep"
) -> Data:
    """Read a struc2vec ``edgelist`` (``u v`` lines) and its ``labels`` file (header, then
    ``id class`` lines) as ``Data(edge_index, y, node_ids, cleaning)``.

    Raises:
        ValueError: a malformed line (with its number), a node labelled twice, or an edge
            touching an unlabelled node.
    """
    table = _nonempty(read_table(labels, 2, skip_header=1), labels, "labelled nodes")
    node_ids, first = np.unique(table[:, 0], return_index=True)
    if len(node_ids) != len(table):
        raise ValueError(f"{labels} labels a node more than once")
    pairs = _nonempty(read_table(edgelist, 2), edgelist, "edges")
    data = _graph(pairs, node_ids, self_loops, str(edgelist))
    data.y = torch.from_numpy(table[first, 1].astype(np.int64))
    return data


def load_airports(root: str, name: str, self_loops: str = "keep") -> Data:
    """struc2vec air-traffic network ``airports-<country>``: ``Data(edge_index, y, node_ids)``."""
    country = name.removeprefix("airports-")
    if country not in ("europe", "usa", "brazil"):
        raise ValueError(f"unknown airports network '{name}': use europe, usa or brazil")
    edges = f"networks/airports/{country}-airports.edgelist"
    labels = f"networks/airports/labels-{country}-airports.txt"
    files = ensure_files(f"airports-{country}", root)
    return read_airports(files[edges], files[labels], self_loops=self_loops)


_S2V = "https://github.com/leoribeiro/struc2vec/tree"
register(
    "blogcatalog",
    task="multi-label node classification",
    size="10312 nodes, 333983 edges, 39 labels",
    source=f"{_S2V}/ba6762824904631db6cd65ac9238a6bd6f5eaf03/graph/BlogCatalog-dataset",
    citation="Tang, Liu. Relational Learning via Latent Social Dimensions. KDD 2009",
    license="none stated (ASU Social Computing Data Repository)",
    manifest="blogcatalog",
)(load_blogcatalog)

register(
    "ppi",
    task="multi-label node classification",
    size="3890 nodes, 38739 edges (894 self-loops), 50 labels",
    source="https://github.com/xiangyue9607/BioNEV/tree/"
    "bf685e44f665bcb3afbde78fb1be0a966aa9c2bc/data/node2vec_PPI",
    citation="Grover, Leskovec. node2vec: Scalable Feature Learning for Networks. KDD 2016",
    license="MIT (BioNEV repository)",
    manifest="ppi",
)(load_ppi)


def _register_airports(country: str, size: str) -> None:
    def loader(root: str, self_loops: str = "keep") -> Data:
        return load_airports(root, f"airports-{country}", self_loops=self_loops)

    loader.__name__ = f"load_airports_{country}"
    loader.__doc__ = f"struc2vec air-traffic network of {country}; y = activity quartile (4)."
    register(
        f"airports-{country}",
        task="node classification (structural roles)",
        size=size,
        source=f"{_S2V}/77b4cc63e79a37b1496f340c7772d932038417ec/graph",
        citation="Ribeiro, Saverese, Figueiredo. struc2vec: Learning Node Representations from "
        "Structural Identity. KDD 2017",
        license="MIT",
        manifest=f"airports-{country}",
    )(loader)


_register_airports("brazil", "131 nodes, 1074 edges, 4 classes")
_register_airports("europe", "399 nodes, 5995 edges, 4 classes")
_register_airports("usa", "1190 nodes, 13599 edges, 4 classes")
