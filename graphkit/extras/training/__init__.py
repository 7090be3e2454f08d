"""Training methods and learning rules: distillation losses, metric-learning heads."""

from graphkit.extras.training.distill import affinity_loss, feature_mse, kd_kl, multi_teacher_kd
from graphkit.extras.training.metric import (
    HypersphericalHead,
    NormalizedSoftmaxLoss,
    PrototypeClassifier,
)

__all__ = [
    "HypersphericalHead",
    "NormalizedSoftmaxLoss",
    "PrototypeClassifier",
    "affinity_loss",
    "feature_mse",
    "kd_kl",
    "multi_teacher_kd",
]
