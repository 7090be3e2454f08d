"""Expert containers: independent feed-forward experts and LoRA experts over a frozen layer.

``LoRAExperts`` is the expert kind of `MixLoRA <https://arxiv.org/abs/2404.15159>`_: every expert
shares one frozen ``nn.Linear`` and owns a low-rank delta (`LoRA
<https://arxiv.org/abs/2106.09685>`_).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_routing(x: Tensor, weights: Tensor, indices: Tensor, n_experts: int) -> None:
    if x.dim() != 2 or weights.shape != indices.shape or weights.shape[:1] != x.shape[:1]:
        raise ValueError(
            f"expected x (N, d), weights and indices (N, k); got {tuple(x.shape)}, "
            f"{tuple(weights.shape)}, {tuple(indices.shape)}"
        )
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"expert indices must be integer, got {indices.dtype}")
    if indices.numel() and (indices.min() < 0 or indices.max() >= n_experts):
        raise ValueError(f"expert indices must lie in [0, {n_experts})")


class FFNExperts(nn.Module):
    r""":math:`E` independent two-layer feed-forward experts, mixed per token.

    .. math::
        y_n = \sum_{j=1}^{k} w_{nj}\, W^{(2)}_{e_{nj}}\, \sigma(W^{(1)}_{e_{nj}} x_n + b^{(1)})
        + b^{(2)}

    Each expert only sees the tokens routed to it.

    Args:
        d_model: token width.
        d_hidden: hidden width of each expert.
        n_experts: number of experts :math:`E`.
        activation: :math:`\sigma` (default: :func:`torch.nn.functional.gelu`).
        bias: learn biases (default: ``True``).

    Shapes:
        ``x (N, d_model)``, ``weights (N, k)``, ``indices (N, k)`` -> ``(N, d_model)``.
    """

    def __init__(
        self,
        d_model: int,
        d_hidden: int,
        n_experts: int,
        activation: Callable[[Tensor], Tensor] = F.gelu,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if min(d_model, d_hidden, n_experts) < 1:
            raise ValueError("d_model, d_hidden and n_experts must be >= 1")
        self.d_model, self.d_hidden, self.n_experts = d_model, d_hidden, n_experts
        self.activation = activation
        self.w1 = nn.Parameter(torch.empty(n_experts, d_hidden, d_model))
        self.w2 = nn.Parameter(torch.empty(n_experts, d_model, d_hidden))
        self.b1 = nn.Parameter(torch.empty(n_experts, d_hidden)) if bias else None
        self.b2 = nn.Parameter(torch.empty(n_experts, d_model)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the per-expert nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(w.shape[-1])
            nn.init.uniform_(w, -bound, bound)
            if b is not None:
                nn.init.uniform_(b, -bound, bound)

    def expert(self, x: Tensor, e: int) -> Tensor:
        """Expert ``e`` applied to ``x`` of shape ``(M, d_model)``."""
        h = F.linear(x, self.w1[e], None if self.b1 is None else self.b1[e])
        return F.linear(self.activation(h), self.w2[e], None if self.b2 is None else self.b2[e])

    def forward(self, x: Tensor, weights: Tensor, indices: Tensor) -> Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"expected width {self.d_model}, got {tuple(x.shape)}")
        _check_routing(x, weights, indices, self.n_experts)
        out = torch.zeros_like(x)
        for e in range(self.n_experts):
            tok, slot = (indices == e).nonzero(as_tuple=True)
            if tok.numel():
                out.index_add_(0, tok, weights[tok, slot, None] * self.expert(x[tok], e))
        return out

    def extra_repr(self) -> str:
        return f"{self.d_model}, {self.d_hidden}, n_experts={self.n_experts}"


class LoRAExperts(nn.Module):
    r""":math:`E` LoRA experts over one shared, frozen linear layer.

    .. math::
        \Delta_e(x) = \frac{\alpha}{r} B_e A_e\, \mathrm{dropout}(x), \qquad
        A_e \in \mathbb{R}^{r \times d_\text{in}},\ B_e \in \mathbb{R}^{d_\text{out} \times r}

    :math:`A_e` starts Kaiming-uniform and :math:`B_e` at zero, so every expert starts equal to
    the frozen layer. The module is a drop-in replacement for ``base``: ``forward(x)`` gives
    ``base(x) + Δ_active(x)`` with the expert chosen by :attr:`active` (``None``: the base
    alone), and ``forward(x, weights, indices)`` mixes experts per token,
    :math:`\text{base}(x_n) + \sum_j w_{nj} \Delta_{e_{nj}}(x_n)`. A single LoRA adapter is
    ``LoRAExperts(base, 1)`` with ``active = 0``.

    Args:
        base: the frozen ``nn.Linear`` (its parameters are set to ``requires_grad=False``).
        n_experts: number of experts :math:`E`.
        rank: :math:`r` (default: 8, MixLoRA's configuration).
        alpha: :math:`\alpha` (default: 16, MixLoRA's configuration).
        dropout: dropout on the adapter input (default: 0.0; MixLoRA's configs use 0.05).

    Shapes:
        ``x (*, d_in)`` -> ``(*, d_out)``; with routing ``x (N, d_in)``, ``weights, indices
        (N, k)``.
    """

    def __init__(
        self,
        base: nn.Linear,
        n_experts: int,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        if n_experts < 1 or rank < 1:
            raise ValueError(f"n_experts and rank must be >= 1, got {n_experts}, {rank}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.base = base.requires_grad_(False)
        self.n_experts, self.rank, self.alpha = n_experts, rank, alpha
        self.scaling = alpha / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(n_experts, rank, base.in_features, **_like(w)))
        self.lora_B = nn.Parameter(torch.empty(n_experts, base.out_features, rank, **_like(w)))
        self.dropout = nn.Dropout(dropout)
        self.active: int | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for e in range(self.n_experts):
            nn.init.kaiming_uniform_(self.lora_A[e], a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def delta(self, x: Tensor, e: int) -> Tensor:
        """:math:`\\Delta_e(x)` for inputs ``(*, d_in)``."""
        if not 0 <= e < self.n_experts:
            raise IndexError(f"expert {e} out of range [0, {self.n_experts})")
        return self.scaling * F.linear(F.linear(self.dropout(x), self.lora_A[e]), self.lora_B[e])

    def forward(
        self, x: Tensor, weights: Tensor | None = None, indices: Tensor | None = None
    ) -> Tensor:
        if x.dim() == 0 or x.size(-1) != self.base.in_features:
            raise ValueError(f"expected width {self.base.in_features}, got {tuple(x.shape)}")
        out = self.base(x)
        if weights is None and indices is None:
            return out if self.active is None else out + self.delta(x, self.active)
        if weights is None or indices is None:
            raise ValueError("pass both weights and indices, or neither")
        _check_routing(x, weights, indices, self.n_experts)
        out = out.clone()
        for e in range(self.n_experts):
            tok, slot = (indices == e).nonzero(as_tuple=True)
            if tok.numel():
                out.index_add_(0, tok, weights[tok, slot, None] * self.delta(x[tok], e))
        return out

    def extra_repr(self) -> str:
        return f"n_experts={self.n_experts}, rank={self.rank}, alpha={self.alpha:g}"


def _like(t: Tensor) -> dict:
    return {"device": t.device, "dtype": t.dtype}
