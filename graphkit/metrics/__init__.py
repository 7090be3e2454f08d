"""Evaluation metrics on tensors or arrays; every score is a fraction in [0, 1].

* classification: :func:`accuracy`, :func:`f1_score` (micro/macro, single- and multi-label),
  :func:`top_k_predictions` / :func:`top_k_f1` (DeepWalk's multi-label protocol),
  :func:`roc_auc`, :func:`average_precision`;
* ranking: :func:`mrr`, :func:`hits_at_k`; per source node: :func:`per_node_ranking`
  (Hits / Recall / Precision / NDCG@K);
* clustering: :func:`clustering_accuracy` and :func:`clustering_f1` (after Hungarian matching),
  :func:`normalized_mutual_info`, :func:`adjusted_rand_index`, :func:`clustering_scores`;
* :class:`Evaluator`: a drop-in for OGB's ``Evaluator`` on ogbn-* and ogbl-* names;
* :func:`linear_probe`: node classification from embeddings by logistic regression.
"""

from graphkit.metrics.classification import (
    accuracy,
    average_precision,
    f1_score,
    roc_auc,
    top_k_f1,
    top_k_predictions,
)
from graphkit.metrics.clustering import (
    adjusted_rand_index,
    clustering_accuracy,
    clustering_f1,
    clustering_scores,
    contingency_matrix,
    match_clusters,
    normalized_mutual_info,
)
from graphkit.metrics.evaluator import OGB_METRICS, Evaluator
from graphkit.metrics.per_node import NodeRanking, per_node_ranking
from graphkit.metrics.probe import linear_probe
from graphkit.metrics.ranking import hits_at_k, mrr, ranks

__all__ = [
    "accuracy",
    "f1_score",
    "top_k_predictions",
    "top_k_f1",
    "roc_auc",
    "average_precision",
    "ranks",
    "mrr",
    "hits_at_k",
    "NodeRanking",
    "per_node_ranking",
    "adjusted_rand_index",
    "clustering_accuracy",
    "clustering_f1",
    "clustering_scores",
    "contingency_matrix",
    "match_clusters",
    "normalized_mutual_info",
    "Evaluator",
    "OGB_METRICS",
    "linear_probe",
]
