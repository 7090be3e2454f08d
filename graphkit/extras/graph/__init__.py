"""Graph learning methods of the paper collection beyond graphkit's main list: topological
concentration for link prediction (TC / ATC) and meta-node contrastive graph clustering (PamC)."""

from graphkit.extras.graph.pamc import (
    PamC,
    PamCFit,
    dense_infonce_loss,
    fit_pamc,
    influence_weights,
    init_centres,
    meta_node_loss,
    meta_node_similarity,
    pretrain_autoencoder,
    student_t_assignment,
    target_distribution,
)
from graphkit.extras.graph.topological_concentration import (
    approximate_topological_concentration,
    atc_limit,
    tc_reweight,
    topological_concentration,
    topological_concentration_loop,
)

__all__ = [
    "PamC",
    "PamCFit",
    "approximate_topological_concentration",
    "atc_limit",
    "dense_infonce_loss",
    "fit_pamc",
    "influence_weights",
    "init_centres",
    "meta_node_loss",
    "meta_node_similarity",
    "pretrain_autoencoder",
    "student_t_assignment",
    "target_distribution",
    "tc_reweight",
    "topological_concentration",
    "topological_concentration_loop",
]
