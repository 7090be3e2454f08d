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
from graphkit.extras.dense.rev_unet3d import (
    MBConv3d,
    RevMBConvUNet3D,
    rev_mbconv_block,
    soft_dice_loss,
)

__all__ = [
    "HMoDE",
    "HMoDEOutput",
    "MBConv3d",
    "PixelSoftGate",
    "RelativeLocalCountLoss",
    "RevMBConvUNet3D",
    "gaussian_density",
    "hmode_loss",
    "local_count_map",
    "rev_mbconv_block",
    "soft_dice_loss",
]
