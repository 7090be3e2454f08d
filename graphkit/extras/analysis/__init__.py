"""Theory-to-code and analysis tools: measures papers compute on trained networks."""

from graphkit.extras.analysis.convergent import (
    Matching,
    SparsePrediction,
    bipartite_match,
    semi_match,
    sparse_prediction,
    spectral_clusters,
    unit_correlation,
)
from graphkit.extras.analysis.hebbian import (
    DenseHebbianNetwork,
    glauber_dynamics,
    hebbian_couplings,
    mattis_magnetization,
    noisy_examples,
    retrieval_sweep,
)
from graphkit.extras.analysis.neural_collapse import (
    ImbalancedGeometry,
    NCMetrics,
    imbalanced_mse_geometry,
    nc_metrics,
)

__all__ = [
    "DenseHebbianNetwork",
    "ImbalancedGeometry",
    "Matching",
    "NCMetrics",
    "SparsePrediction",
    "bipartite_match",
    "glauber_dynamics",
    "hebbian_couplings",
    "imbalanced_mse_geometry",
    "mattis_magnetization",
    "nc_metrics",
    "noisy_examples",
    "retrieval_sweep",
    "semi_match",
    "sparse_prediction",
    "spectral_clusters",
    "unit_correlation",
]
