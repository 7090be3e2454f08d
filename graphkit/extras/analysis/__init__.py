"""Theory-to-code and analysis tools: measures papers compute on trained networks."""

from graphkit.extras.analysis import bricks
from graphkit.extras.analysis.bricks import (
    LoRABrick,
    LoRABrickLibrary,
    NeuronStats,
    auc_scores,
    mask_neurons,
    neuron_specialization,
    partition_neurons,
)
from graphkit.extras.analysis.convergent import (
    Matching,
    SparsePrediction,
    bipartite_match,
    semi_match,
    sparse_prediction,
    spectral_clusters,
    unit_correlation,
)
from graphkit.extras.analysis.efficiency import (
    FusedResidualBlock,
    GapRow,
    HardwareProfile,
    LatencyModel,
    LayerCost,
    WaterlineRow,
    efficiency_gap,
    layer_costs,
    waterline,
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
    "FusedResidualBlock",
    "GapRow",
    "HardwareProfile",
    "ImbalancedGeometry",
    "LatencyModel",
    "LayerCost",
    "LoRABrick",
    "LoRABrickLibrary",
    "Matching",
    "NCMetrics",
    "NeuronStats",
    "SparsePrediction",
    "WaterlineRow",
    "auc_scores",
    "bipartite_match",
    "bricks",
    "efficiency_gap",
    "glauber_dynamics",
    "hebbian_couplings",
    "imbalanced_mse_geometry",
    "layer_costs",
    "mask_neurons",
    "mattis_magnetization",
    "nc_metrics",
    "neuron_specialization",
    "noisy_examples",
    "partition_neurons",
    "retrieval_sweep",
    "semi_match",
    "sparse_prediction",
    "spectral_clusters",
    "unit_correlation",
    "waterline",
]
