"""Training methods and learning rules: distillation losses, metric-learning heads, local
learning, adversarial training."""

from graphkit.extras.training.adversarial import fgsm_attack, pgd_attack, robust_accuracy
from graphkit.extras.training.distill import affinity_loss, feature_mse, kd_kl, multi_teacher_kd
from graphkit.extras.training.knowledge_concentration import (
    KnowledgeConcentration,
    StructurallyConnectedLinear,
)
from graphkit.extras.training.local_learning import MANLocalTrainer, local_head
from graphkit.extras.training.metric import (
    HypersphericalHead,
    NormalizedSoftmaxLoss,
    PrototypeClassifier,
)
from graphkit.extras.training.mgd import MGDLoss, MGDTrainer

__all__ = [
    "HypersphericalHead",
    "KnowledgeConcentration",
    "MANLocalTrainer",
    "MGDLoss",
    "MGDTrainer",
    "NormalizedSoftmaxLoss",
    "PrototypeClassifier",
    "StructurallyConnectedLinear",
    "affinity_loss",
    "feature_mse",
    "fgsm_attack",
    "kd_kl",
    "local_head",
    "multi_teacher_kd",
    "pgd_attack",
    "robust_accuracy",
]
