"""Auxiliary router losses of sparse mixtures of experts.

The Switch Transformer's load-balancing term (`Switch Transformers
<https://arxiv.org/abs/2101.03961>`_) and the ST-MoE router z-loss (`ST-MoE
<https://arxiv.org/abs/2202.08906>`_).
"""

from __future__ import annotations

import torch
from torch import Tensor


def load_balance_loss(probs: Tensor, indices: Tensor) -> Tensor:
    r"""Switch-style load-balancing term :math:`E \sum_i f_i P_i`.

    :math:`f_i` is the share of routing assignments (token, slot) that go to expert :math:`i`
    (so :math:`\sum_i f_i = 1` for any top-:math:`k`), :math:`P_i` the mean router probability
    of expert :math:`i` over the tokens. The term is exactly 1 when routing is perfectly
    balanced (:math:`f_i = P_i = 1/E`) and grows to :math:`E` as one expert takes everything.
    Hugging Face's Mixtral loss counts :math:`f` per slot, which is :math:`k` times this.
    Gradients flow through ``probs`` only (the assignment counts are not differentiable).

    Args:
        probs: router probabilities over all experts, shape ``(N, E)``.
        indices: chosen experts per token, shape ``(N, k)``, integers in ``[0, E)``.
    """
    if probs.dim() != 2 or indices.dim() != 2 or probs.shape[0] != indices.shape[0]:
        raise ValueError(
            f"probs must be (N, E) and indices (N, k) with the same N, got "
            f"{tuple(probs.shape)} and {tuple(indices.shape)}"
        )
    n_tokens, n_experts = probs.shape
    if n_tokens == 0:
        raise ValueError("load_balance_loss needs at least one token")
    if indices.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"indices must be integer, got {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= n_experts):
        raise ValueError(f"indices must lie in [0, {n_experts})")
    counts = torch.bincount(indices.reshape(-1), minlength=n_experts).to(probs.dtype)
    f = counts / indices.numel()
    return n_experts * (f * probs.mean(dim=0)).sum()


def z_loss(logits: Tensor) -> Tensor:
    r"""Router z-loss :math:`\frac{1}{N}\sum_n (\log \sum_i e^{z_{ni}})^2` (ST-MoE, eq. 5).

    Keeps router logits small, which stabilises training in low precision.

    Args:
        logits: router logits, shape ``(N, E)``.
    """
    if logits.dim() != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must be (N, E) with N >= 1, got {tuple(logits.shape)}")
    return torch.logsumexp(logits, dim=-1).pow(2).mean()
