"""Dense prediction and restoration models of the catalogue (segmentation, counting)."""

from graphkit.extras.dense.crowd_hmode import (
    HMoDE,
    HMoDEOutput,
    PixelSoftGate,
    RelativeLocalCountLoss,
    gaussian_density,
    hmode_loss,
    local_count_map,
)

__all__ = [
    "HMoDE",
    "HMoDEOutput",
    "PixelSoftGate",
    "RelativeLocalCountLoss",
    "gaussian_density",
    "hmode_loss",
    "local_count_map",
]
