"""Training methods and learning rules: distillation losses, metric-learning heads."""
