"""Audio separation and enhancement models of the catalogue, with their losses."""

from graphkit.extras.audio.d3net_aec import ComplexD3NetAEC, complex_d3net_aec, erle
from graphkit.extras.audio.losses import (
    pairwise_si_snr,
    pit_si_snr,
    pit_si_snr_loss,
    si_snr,
    si_snr_improvement,
)
from graphkit.extras.audio.mossformer2 import (
    MossFormer2,
    MossFormerLayer,
    OffsetScale,
    ScaledSinusoidalEmbedding,
    ScaleNorm,
    mossformer2,
    mossformer2_tiny,
    rotary_embedding,
)

__all__ = [
    "ComplexD3NetAEC",
    "MossFormer2",
    "MossFormerLayer",
    "OffsetScale",
    "ScaleNorm",
    "ScaledSinusoidalEmbedding",
    "complex_d3net_aec",
    "erle",
    "mossformer2",
    "mossformer2_tiny",
    "pairwise_si_snr",
    "pit_si_snr",
    "pit_si_snr_loss",
    "rotary_embedding",
    "si_snr",
    "si_snr_improvement",
]
