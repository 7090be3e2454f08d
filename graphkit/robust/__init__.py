"""Defences against graph structure poisoning.

* STABLE (Li et al., KDD 2022): :class:`STABLE`, :func:`stable_refine`, :func:`stable_preset`
  and its parts: :func:`jaccard_prune`, :func:`recover_edges`, :func:`contrastive_embeddings`,
  :func:`cosine_prune`, :func:`knn_add`, :class:`DegreePowerGCN`.
* Baselines: :class:`GCNDefense` (plain GCN), :class:`GCNJaccard`, :class:`GCNSVD`.
* Attacks: :func:`random_attack`.
"""

from graphkit.robust.attacks import random_attack
from graphkit.robust.augment import recover_edges, undirected_pairs
from graphkit.robust.baselines import (
    GCNSVD,
    GCNDefense,
    GCNJaccard,
    low_rank_adjacency,
    tune_on_validation,
)
from graphkit.robust.classifier import DegreePowerGCN
from graphkit.robust.contrastive import (
    ContrastiveResult,
    DGIEncoder,
    RecoverDGI,
    contrastive_embeddings,
)
from graphkit.robust.jaccard import jaccard_prune, jaccard_similarity
from graphkit.robust.refine import cosine_prune, cosine_similarity_edges, knn_add
from graphkit.robust.stable import STABLE, RefinedGraph, STABLEConfig, stable_preset, stable_refine

__all__ = [
    "STABLE",
    "STABLEConfig",
    "RefinedGraph",
    "stable_refine",
    "stable_preset",
    "jaccard_similarity",
    "jaccard_prune",
    "recover_edges",
    "undirected_pairs",
    "DGIEncoder",
    "RecoverDGI",
    "ContrastiveResult",
    "contrastive_embeddings",
    "cosine_similarity_edges",
    "cosine_prune",
    "knn_add",
    "DegreePowerGCN",
    "GCNDefense",
    "GCNJaccard",
    "GCNSVD",
    "low_rank_adjacency",
    "tune_on_validation",
    "random_attack",
]
