"""Temporal link prediction: NAT's N-cache and model, a TGN baseline, and the shared harness.

* :class:`NCache`: NAT's per-hop hash tables of down-sampled neighbours;
* :class:`NAT`: dictionary-type neighbourhood representations (Luo and Li, LoG 2022);
* :class:`TGN`: PyG's ``TGNMemory`` with a graph-attention embedding (Rossi et al., 2020);
* :func:`fit` and the :class:`TemporalLinkModel` protocol: the shared chronological training
  and evaluation loop (AP/AUC per batch and pooled, transductive and inductive, checkpoints).
"""

from graphkit.temporal.link_training import (
    FitResult,
    LinkMetrics,
    TemporalLinkModel,
    chronological_batches,
    fit,
    link_metrics,
    stream_scores,
    train_epoch,
)
from graphkit.temporal.mdgnn import APAN, JODIE, MemoryTGN
from graphkit.temporal.memory import TemporalMemory
from graphkit.temporal.nat import NAT, CosineTimeEncoding, joint_codes
from graphkit.temporal.ncache import NCache
from graphkit.temporal.pres import PRES, IncrementStatistics, PredictionCorrection
from graphkit.temporal.tgn import TGN, GraphAttentionEmbedding, LinkPredictor

__all__ = [
    "NCache",
    "NAT",
    "CosineTimeEncoding",
    "joint_codes",
    "TGN",
    "GraphAttentionEmbedding",
    "LinkPredictor",
    "TemporalLinkModel",
    "LinkMetrics",
    "FitResult",
    "fit",
    "train_epoch",
    "stream_scores",
    "link_metrics",
    "chronological_batches",
    "TemporalMemory",
    "MemoryTGN",
    "JODIE",
    "APAN",
    "PRES",
    "IncrementStatistics",
    "PredictionCorrection",
]
