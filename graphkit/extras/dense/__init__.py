"""Dense prediction and restoration models of the catalogue (deraining, counting, 3-D
segmentation)."""

from graphkit.extras.dense.crowd_hmode import (
    HMoDE,
    HMoDEOutput,
    PixelSoftGate,
    RelativeLocalCountLoss,
    gaussian_density,
    hmode_loss,
    local_count_map,
)
from graphkit.extras.dense.dpenet import (
    DDRB,
    ERPAB,
    DerainLoss,
    DPENet,
    laplacian,
    psnr,
    rain_streak_pairs,
    ssim,
)
from graphkit.extras.dense.rev_unet3d import (
    MBConv3d,
    RevMBConvUNet3D,
    rev_mbconv_block,
    soft_dice_loss,
)

__all__ = [
    "DDRB",
    "DPENet",
    "DerainLoss",
    "ERPAB",
    "HMoDE",
    "HMoDEOutput",
    "MBConv3d",
    "PixelSoftGate",
    "RelativeLocalCountLoss",
    "RevMBConvUNet3D",
    "gaussian_density",
    "hmode_loss",
    "laplacian",
    "local_count_map",
    "psnr",
    "rain_streak_pairs",
    "rev_mbconv_block",
    "soft_dice_loss",
    "ssim",
]
