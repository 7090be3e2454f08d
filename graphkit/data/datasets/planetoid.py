"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split.

`Revisiting Semi-Supervised Learning with Graph Embeddings <https://arxiv.org/abs/1603.08861>`_
(Yang, Cohen and Salakhutdinov, ICML 2016). The raw pickles under
``<root>/Planetoid/<Name>/raw/`` are read with PyG's ``read_planetoid_data``, which writes
nothing (PyG's ``Planetoid`` class would write ``processed/`` into the read-only root).

Rule: as in PyG, duplicate edges are merged, self-loops kept, both directions stored, and
CiteSeer's 15 isolated test nodes absent from ``tx`` are padded with zero features and no label
class (``y = 0``, outside every mask).
"""

from __future__ import annotations

from torch_geometric.data import Data

from graphkit.data.download import ensure_files
from graphkit.data.registry import register
from graphkit.data.validation import check_edge_index, check_features

__all__ = ["load_planetoid"]

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
    data = read_planetoid_data(str(raw_dir), name.lower())
    check_features(data.x)
    check_edge_index(data.edge_index, data.num_nodes)
    return data


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
