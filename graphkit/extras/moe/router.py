"""Token routers for mixtures of experts: sparse top-k and dense (temperature, activation) gates.

One :class:`Router` covers the gates the catalogue needs: the top-:math:`k` softmax router of
Mixtral / `MixLoRA <https://arxiv.org/abs/2404.15159>`_, and the dense-to-sparse gates studied in
`Is Temperature Sample Efficient for Softmax Gaussian Mixture of Experts?
<https://arxiv.org/abs/2401.13875>`_.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras.moe.losses import load_balance_loss

GATES = ("topk", "softmax", "temperature", "activation")


@dataclass
class RouterAux:
    """What a routing decision leaves for auxiliary losses and inspection.

    Attributes:
        balance: the Switch load-balancing term :math:`E\\sum_i f_i P_i` (1 when balanced).
        logits: the gate's scores before the softmax, shape ``(N, E)``.
        probs: the dense softmax probabilities over all experts, shape ``(N, E)``.
    """

    balance: Tensor
    logits: Tensor
    probs: Tensor


class Router(nn.Module):
    r"""A linear router :math:`s = W x + b` followed by one of four gates.

    .. math::
        \text{topk:}\quad & p = \mathrm{softmax}(s) \\
        \text{softmax:}\quad & p = \mathrm{softmax}(s) \\
        \text{temperature:}\quad & p = \mathrm{softmax}(s / \tau) \\
        \text{activation:}\quad & p = \mathrm{softmax}(\sigma(s) / \tau)

    Each token keeps its :math:`k` most probable experts, with weights renormalised over them
    (for ``"topk"`` this is the softmax over the :math:`k` largest logits, as in Mixtral and
    MixLoRA). The dense gates default to :math:`k = E`, where the weights are :math:`p` itself
    in expert order.

    Args:
        in_dim: token width.
        n_experts: number of experts :math:`E`.
        gate: ``"topk"``, ``"softmax"``, ``"temperature"`` or ``"activation"``
            (default: ``"topk"``).
        k: experts kept per token (default: 2 for ``"topk"``, :math:`E` otherwise).
        tau: temperature :math:`\tau > 0` of the two temperature gates (default: 1.0).
        learn_tau: make :math:`\tau` a trainable parameter (default: ``False``).
        activation: :math:`\sigma` of the activation gate (default: :func:`torch.tanh`).
        bias: learn :math:`b` (default: ``False``; MixLoRA's router has none).
        init_std: standard deviation of the normal initialisation of :math:`W`
            (default: 0.02, MixLoRA's ``router_init_range``).

    Shapes:
        input ``(*, in_dim)``; output ``(weights (*, k), indices (*, k), aux)`` where ``aux``
        is a :class:`RouterAux` over the flattened ``N`` tokens.
    """

    def __init__(
        self,
        in_dim: int,
        n_experts: int,
        gate: str = "topk",
        k: int | None = None,
        tau: float = 1.0,
        learn_tau: bool = False,
        activation: Callable[[Tensor], Tensor] = torch.tanh,
        bias: bool = False,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if in_dim < 1 or n_experts < 1:
            raise ValueError(f"in_dim and n_experts must be >= 1, got {in_dim}, {n_experts}")
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}; choose one of {GATES}")
        if k is None:
            k = min(2, n_experts) if gate == "topk" else n_experts
        if not 1 <= k <= n_experts:
            raise ValueError(f"k must lie in [1, n_experts={n_experts}], got {k}")
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau must be a positive finite number, got {tau}")
        if init_std < 0:
            raise ValueError(f"init_std must be >= 0, got {init_std}")
        self.in_dim, self.n_experts, self.gate, self.k = in_dim, n_experts, gate, k
        self.activation, self.init_std = activation, init_std
        self.linear = nn.Linear(in_dim, n_experts, bias=bias)
        log_tau = torch.tensor(math.log(tau))
        if learn_tau:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)
        self._tau0 = tau
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.linear.weight, std=self.init_std)
        if self.linear.bias is not None:
            nn.init.zeros_(self.linear.bias)
        with torch.no_grad():
            self.log_tau.fill_(math.log(self._tau0))

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp()

    def scores(self, x: Tensor) -> Tensor:
        """The gate's logits (the softmax's argument), shape ``(*, E)``."""
        s = self.linear(x)
        if self.gate == "temperature":
            s = s / self.tau
        elif self.gate == "activation":
            s = self.activation(s) / self.tau
        return s

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, RouterAux]:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"expected tokens of width {self.in_dim}, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("router input contains NaN or infinite values")
        lead = x.shape[:-1]
        logits = self.scores(x.reshape(-1, self.in_dim))
        probs = F.softmax(logits, dim=-1)
        if self.k == self.n_experts and self.gate != "topk":
            weights = probs
            indices = torch.arange(self.n_experts, device=x.device).expand_as(probs)
        else:
            top, indices = probs.topk(self.k, dim=-1)
            weights = top / top.sum(dim=-1, keepdim=True)
        if logits.shape[0]:
            balance = load_balance_loss(probs, indices)
        else:
            balance = logits.new_ones(())  # no tokens: nothing is unbalanced
        aux = RouterAux(balance=balance, logits=logits, probs=probs)
        return weights.reshape(*lead, self.k), indices.reshape(*lead, self.k), aux

    def extra_repr(self) -> str:
        return (
            f"{self.in_dim}, n_experts={self.n_experts}, gate={self.gate!r}, k={self.k}, "
            f"tau={self.tau.item():g}"
        )
