"""Shared training utilities: seeding, a full-batch node-classification loop, a run logger.

* :func:`seed_everything`, :class:`deterministic`: reproducibility.
* :func:`train_node_classifier`: full-batch training with best-validation selection and the
  ``"patience"`` or PyG-citation (``"pyg_citation"``) early-stopping rules.
* :class:`EarlyStopping`, :func:`pyg_citation_stop`: the best-value / patience state (and
  best-weights snapshot) and the PyG-citation rule every loop uses.
* :class:`Logger`: OGB-style results over runs (best validation, mean and std).
* :func:`run_repeated`: run ``r`` seeded with ``seed + r``.
* :func:`train_link_predictor`, :func:`rank_candidates`: static link prediction (uniform
  negatives, validation Hits@K selection, per-node ranking of every candidate).
"""

from graphkit.train import forward  # noqa: F401  (ForwardGNN: layer-wise training)
from graphkit.train.early_stopping import EarlyStopping, pyg_citation_stop
from graphkit.train.link_prediction import (
    LinkPredictionResult,
    rank_candidates,
    train_link_predictor,
)
from graphkit.train.logger import Logger
from graphkit.train.node_classification import (
    NodeClassificationResult,
    default_forward,
    train_node_classifier,
)
from graphkit.train.repeat import run_repeated
from graphkit.train.seed import deterministic, seed_everything

__all__ = [
    "seed_everything",
    "deterministic",
    "train_node_classifier",
    "NodeClassificationResult",
    "default_forward",
    "Logger",
    "run_repeated",
    "train_link_predictor",
    "LinkPredictionResult",
    "rank_candidates",
    "EarlyStopping",
    "pyg_citation_stop",
]
