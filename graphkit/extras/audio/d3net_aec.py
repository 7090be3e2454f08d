"""Complex-valued multidilated CNN for joint acoustic echo cancellation and noise suppression.

`End-to-End Complex-Valued Multidilated Convolutional Neural Network for Joint Acoustic Echo
Cancellation and Noise Suppression <https://arxiv.org/abs/2110.00745>`_ (Watcharasupat, Nguyen,
Gan, Zhao, Ma; ICASSP 2022).

The STFTs of the microphone and of the far-end reference are two complex channels of one
pseudo-complex map. A pseudo-complex stem, D3 blocks of multi-dilated convolutions
(:class:`~graphkit.extras.layers.multidilated.D3Block`, no pooling, so the output keeps the
input's time-frequency resolution) with 1×1 complex transitions, and a complex head give two
bounded complex masks: :math:`M_e` cancels the echo, :math:`M_n` suppresses noise, applied in
turn to the microphone spectrum,

.. math::
    \\hat S = M_n \\odot (M_e \\odot X_{mic}), \\qquad \\hat s = \\mathrm{iSTFT}(\\hat S).

The paper reports 354K parameters; its layer table is not reproduced here, so the default
widths below are graphkit's (see the class docstring for the count they give).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.complex import (
    ComplexConv2d,
    apply_complex_mask,
    bounded_complex_mask,
    from_pseudo_complex,
    to_pseudo_complex,
)
from graphkit.extras.layers.multidilated import D3Block

__all__ = ["ComplexD3NetAEC", "complex_d3net_aec", "erle"]

_PAPER = (
    "End-to-End Complex-Valued Multidilated Convolutional Neural Network for Joint Acoustic "
    "Echo Cancellation and Noise Suppression"
)


def erle(mic: Tensor, output: Tensor, eps: float = 1e-10) -> Tensor:
    r"""Echo return loss enhancement in dB, :math:`10 \log_{10} (\sum m^2 / \sum y^2)`, per
    signal, for far-end single talk (the microphone holds echo and noise only).

    Shapes:
        - mic, output: :math:`(B, T)`; output: :math:`(B,)`
    """
    if mic.shape != output.shape or mic.dim() != 2:
        raise ValueError(
            f"erle expects two (B, T) tensors of one shape, got {tuple(mic.shape)} "
            f"and {tuple(output.shape)}"
        )
    return 10 * torch.log10((mic.pow(2).sum(-1) + eps) / (output.pow(2).sum(-1) + eps))


class ComplexD3NetAEC(nn.Module):
    r"""Joint AEC and noise suppression with pseudo-complex D3 blocks and a dual complex mask.

    Stem ``ComplexConv2d(2 -> channels, 3)``; ``num_d3`` times a :class:`D3Block` (``num_d2``
    D2 blocks of ``num_layers`` multi-dilated layers adding ``growth`` channels) and a 1×1
    complex transition back to ``channels``; head: norm, ReLU, ``ComplexConv2d(channels -> 2,
    3)``; each output channel is a mask bounded by :func:`bounded_complex_mask`. The default
    configuration has 68,516 parameters (counted here; the paper's 354K model is wider, but
    its per-layer widths are not available to this implementation).

    Args:
        n_fft (int): STFT size. (default: ``512``)
        hop_length (int): STFT hop. (default: ``128``)
        channels (int): complex width between D3 blocks. (default: ``16``)
        growth (int): complex channels each D2 layer adds. (default: ``8``)
        num_layers (int): layers per D2 block (dilations up to :math:`2^{L-1}`). (default: ``3``)
        num_d2 (int): D2 blocks per D3 block. (default: ``2``)
        num_d3 (int): D3 blocks. (default: ``2``)
        kernel_size (int): odd kernel of every multi-dilated layer. (default: ``3``)

    Shapes:
        - input: ``mic`` and ``farend`` :math:`(B, T)`
        - output: :math:`(B, T)` the estimated near-end speech
    """

    def __init__(
        self,
        n_fft: int = 512,
        hop_length: int = 128,
        channels: int = 16,
        growth: int = 8,
        num_layers: int = 3,
        num_d2: int = 2,
        num_d3: int = 2,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        check_positive(n_fft=n_fft, hop_length=hop_length, channels=channels, num_d3=num_d3)
        if hop_length > n_fft:
            raise ValueError(f"hop_length ({hop_length}) must not exceed n_fft ({n_fft})")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.stem = ComplexConv2d(2, channels, 3)
        blocks: list[nn.Module] = []
        for _ in range(num_d3):
            d3 = D3Block(channels, growth, num_layers, num_d2, kernel_size, complex=True)
            blocks += [d3, ComplexConv2d(d3.out_channels, channels, 1)]
        self.body = nn.Sequential(*blocks)
        self.head_norm = nn.BatchNorm2d(2 * channels)
        self.head = ComplexConv2d(channels, 2, 3)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def _stft(self, x: Tensor) -> Tensor:
        return torch.stft(
            x, self.n_fft, self.hop_length, window=self.window, return_complex=True
        )

    def masks(self, spec: Tensor) -> Tensor:
        """The two bounded masks ``(B, 2, 2, F, T)`` (echo, noise) for a pseudo-complex
        ``(B, 2, 2, F, T)`` input of microphone and far-end spectra; same F and T."""
        h = self.body(self.stem(spec))
        h = torch.relu(self.head_norm(h.flatten(1, 2))).unflatten(1, (2, -1))
        return bounded_complex_mask(self.head(h))

    def forward(self, mic: Tensor, farend: Tensor) -> Tensor:
        if mic.dim() != 2 or mic.shape != farend.shape:
            raise ValueError(
                "ComplexD3NetAEC expects mic and farend as (B, T) tensors of one shape, got "
                f"{tuple(mic.shape)} and {tuple(farend.shape)}"
            )
        if mic.size(1) < self.n_fft:
            raise ValueError(f"signals must have at least n_fft={self.n_fft} samples")
        if not (torch.isfinite(mic).all() and torch.isfinite(farend).all()):
            raise ValueError("ComplexD3NetAEC input contains NaN or infinite samples")
        spec = to_pseudo_complex(torch.stack([self._stft(mic), self._stft(farend)], dim=1))
        masks = self.masks(spec)
        echo_free = apply_complex_mask(masks[:, :, 0:1], spec[:, :, 0:1])
        est = apply_complex_mask(masks[:, :, 1:2], echo_free)
        return torch.istft(
            from_pseudo_complex(est)[:, 0],
            self.n_fft,
            self.hop_length,
            window=self.window,
            length=mic.size(1),
        )


@register_model("complex_d3net_aec", family="audio", paper=_PAPER)
def complex_d3net_aec(**kwargs: Any) -> ComplexD3NetAEC:
    """A :class:`ComplexD3NetAEC` (graphkit's default widths)."""
    return ComplexD3NetAEC(**kwargs)
