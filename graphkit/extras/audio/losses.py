"""Source-separation objectives: scale-invariant SNR and permutation-invariant training.

SI-SNR from `SDR - half-baked or well done? <https://arxiv.org/abs/1811.02508>`_ (Le Roux et al.,
ICASSP 2019); utterance-level PIT from `Multi-talker Speech Separation with Utterance-level
Permutation Invariant Training of Deep Recurrent Neural Networks
<https://arxiv.org/abs/1703.06284>`_ (Kolbæk et al., 2017). Used by MossFormer2.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

__all__ = ["pairwise_si_snr", "pit_si_snr", "pit_si_snr_loss", "si_snr", "si_snr_improvement"]


def _check_pair(estimate: Tensor, reference: Tensor, who: str) -> None:
    if estimate.shape != reference.shape:
        raise ValueError(
            f"{who}: estimate and reference shapes differ, "
            f"{tuple(estimate.shape)} vs {tuple(reference.shape)}"
        )
    if estimate.dim() < 1 or estimate.size(-1) < 2:
        raise ValueError(f"{who} needs signals of at least 2 samples, got {tuple(estimate.shape)}")


def si_snr(estimate: Tensor, reference: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Scale-invariant signal-to-noise ratio in dB over the last dimension.

    Both signals are made zero-mean; then with :math:`s_t = \frac{\langle \hat s, s\rangle}
    {\lVert s \rVert^2} s` and :math:`e = \hat s - s_t`,

    .. math::
        \mathrm{SI\text{-}SNR} = 10 \log_{10} \frac{\lVert s_t \rVert^2}{\lVert e \rVert^2}

    Args:
        estimate (Tensor): :math:`(\dots, T)`.
        reference (Tensor): :math:`(\dots, T)`, same shape.
        eps (float): guards the divisions. (default: ``1e-8``)

    Returns:
        :math:`(\dots)` SI-SNR values in dB.
    """
    _check_pair(estimate, reference, "si_snr")
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (
        reference.pow(2).sum(-1, keepdim=True) + eps
    )
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10(target.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps) + eps)


def pairwise_si_snr(estimates: Tensor, references: Tensor, eps: float = 1e-8) -> Tensor:
    """SI-SNR of every estimate against every reference: ``out[b, i, j] = si_snr(est_i, ref_j)``.

    Shapes:
        - estimates, references: :math:`(B, S, T)`; output: :math:`(B, S, S)`
    """
    if estimates.dim() != 3 or estimates.shape != references.shape:
        raise ValueError(
            "pairwise_si_snr expects two (B, S, T) tensors of one shape, got "
            f"{tuple(estimates.shape)} and {tuple(references.shape)}"
        )
    n_src = estimates.size(1)
    return si_snr(
        estimates.unsqueeze(2).expand(-1, -1, n_src, -1),
        references.unsqueeze(1).expand(-1, n_src, -1, -1),
        eps,
    )


#: The most sources :func:`pit_si_snr` takes (8! = 40,320 permutations; 12! would not fit).
MAX_PIT_SOURCES = 8


def pit_si_snr(estimates: Tensor, references: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    r"""Utterance-level PIT: the source permutation that maximises the mean SI-SNR.

    .. math::
        \pi^\star = \arg\max_\pi \frac{1}{S} \sum_j \mathrm{SI\text{-}SNR}(\hat s_{\pi(j)}, s_j)

    searched exhaustively over the :math:`S!` permutations (fine for the usual 2-4 sources).

    Args:
        estimates (Tensor): :math:`(B, S, T)`.
        references (Tensor): :math:`(B, S, T)`.
        eps (float): see :func:`si_snr`. (default: ``1e-8``)

    Returns:
        ``(best, perm)``: the best mean SI-SNR per utterance :math:`(B,)` and the permutation
        :math:`(B, S)` (``perm[b, j]`` is the estimate matched to reference ``j``).
    """
    if estimates.dim() == 3 and estimates.size(1) > MAX_PIT_SOURCES:
        raise ValueError(
            f"pit_si_snr searches all S! source permutations: S={estimates.size(1)} is too many "
            f"(at most {MAX_PIT_SOURCES})"
        )
    scores = pairwise_si_snr(estimates, references, eps)  # (B, est, ref)
    n_src = scores.size(1)
    perms = torch.tensor(
        list(itertools.permutations(range(n_src))), device=scores.device, dtype=torch.long
    )  # (P, S)
    ref_index = torch.arange(n_src, device=scores.device)
    # per_perm[b, p] = mean_j scores[b, perms[p, j], j]
    per_perm = scores[:, perms, ref_index].mean(-1)
    best, which = per_perm.max(dim=1)
    return best, perms[which]


def pit_si_snr_loss(estimates: Tensor, references: Tensor, eps: float = 1e-8) -> Tensor:
    """Negative PIT SI-SNR averaged over the batch (the loss MossFormer2 is trained with).

    Shapes:
        - estimates, references: :math:`(B, S, T)`; output: a scalar
    """
    return -pit_si_snr(estimates, references, eps)[0].mean()


def si_snr_improvement(
    estimates: Tensor, references: Tensor, mixture: Tensor, eps: float = 1e-8
) -> Tensor:
    """SI-SNRi in dB: the PIT SI-SNR of the estimates minus the mixture's SI-SNR to each source.

    Shapes:
        - estimates, references: :math:`(B, S, T)`; mixture: :math:`(B, T)`; output: :math:`(B,)`
    """
    if mixture.dim() != 2 or mixture.shape != (references.size(0), references.size(-1)):
        raise ValueError(
            f"mixture must be (B, T) = {(references.size(0), references.size(-1))}, "
            f"got {tuple(mixture.shape)}"
        )
    best, _ = pit_si_snr(estimates, references, eps)
    base = si_snr(mixture.unsqueeze(1).expand_as(references), references, eps).mean(-1)
    return best - base
