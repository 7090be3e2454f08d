"""MixLoRA: LoRA experts inside the frozen feed-forward blocks of a transformer.

Paper: `MixLoRA: Enhancing Large Language Models Fine-Tuning with LoRA-based Mixture of Experts
<https://arxiv.org/abs/2404.15159>`_ (official code: TUDB-Labs/MixLoRA).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphkit.extras._core.modules import replace_module
from graphkit.extras._core.registry import register_model
from graphkit.extras.moe.experts import LoRAExperts
from graphkit.extras.moe.router import Router, RouterAux

PAPER = "MixLoRA: Enhancing Large Language Models Fine-Tuning with LoRA-based Mixture of Experts"


def _linear_children(module: nn.Module, names: Sequence[str] | None) -> list[str]:
    found = [n for n, m in module.named_modules() if n and isinstance(m, nn.Linear)]
    if names is not None:
        found = [n for n in found if n.rsplit(".", 1)[-1] in names]
    return found


class MixLoRAFFN(nn.Module):
    r"""One frozen feed-forward block turned into a top-:math:`k` mixture of LoRA experts.

    Expert :math:`e` is the frozen FFN with LoRA deltas :math:`B_e A_e` added to its linear
    layers; the router keeps :math:`k` experts per token with softmax weights over their logits:

    .. math::
        y = \mathrm{FFN}(x) + \sum_{j=1}^{k} w_j \bigl(\mathrm{FFN}_{e_j}(x) - \mathrm{FFN}(x)\bigr)

    which equals MixLoRA's :math:`\sum_j w_j \mathrm{FFN}_{e_j}(x)` because the weights sum to
    one; written as a difference (both terms evaluated on the same tokens) the output is bitwise
    the frozen FFN's while every :math:`B_e = 0`. The price is one extra frozen pass per routed
    group and one over all tokens (:math:`2k + 1` FFN passes per token instead of :math:`k`).
    The FFN must act on each token independently (any MLP or gated MLP does).

    Args:
        ffn: the frozen feed-forward module (modified in place: its linear layers become
            :class:`LoRAExperts`).
        num_experts: :math:`E` (default: 8).
        top_k: :math:`k` (default: 2).
        rank, alpha, dropout: LoRA settings of the experts (default: 8, 16, 0.05).
        targets: names of the FFN's linear layers that get experts (default: all of them).
        router_init_std: normal initialisation of the router (default: 0.02).

    Shapes:
        input ``(*, d)`` -> ``(*, d)``; :attr:`last_aux` and :attr:`last_indices` ``(N, k)``
        hold the latest routing.
    """

    def __init__(
        self,
        ffn: nn.Module,
        num_experts: int = 8,
        top_k: int = 2,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.05,
        targets: Sequence[str] | None = None,
        router_init_std: float = 0.02,
    ) -> None:
        super().__init__()
        names = _linear_children(ffn, targets)
        if not names:
            raise ValueError(f"no nn.Linear named {list(targets or [])} in the FFN {ffn!r}")
        first = ffn.get_submodule(_linear_children(ffn, None)[0])
        self.d_model = first.in_features
        ffn.requires_grad_(False)
        for n in names:
            experts = LoRAExperts(ffn.get_submodule(n), num_experts, rank, alpha, dropout)
            replace_module(ffn, n, experts)
        self.ffn = ffn
        self.adapter_names = names
        self.num_experts, self.top_k = num_experts, top_k
        self.router = Router(
            self.d_model, num_experts, gate="topk", k=top_k, init_std=router_init_std
        ).to(device=first.weight.device, dtype=first.weight.dtype)  # beside the frozen FFN
        self.last_aux: RouterAux | None = None
        self.last_indices: Tensor | None = None

    def _set_active(self, e: int | None) -> None:
        for n in self.adapter_names:
            self.ffn.get_submodule(n).active = e

    def forward(self, x: Tensor) -> Tensor:
        weights, indices, aux = self.router(x)
        self.last_aux, self.last_indices = aux, indices.reshape(-1, self.top_k)
        self._set_active(None)
        base = self.ffn(x)
        flat, out = x.reshape(-1, x.shape[-1]), base.reshape(-1, base.shape[-1]).clone()
        weights, indices = weights.reshape(-1, self.top_k), self.last_indices
        try:
            for e in range(self.num_experts):
                tok, slot = (indices == e).nonzero(as_tuple=True)
                if tok.numel() == 0:
                    continue
                xe = flat[tok]
                self._set_active(None)
                frozen = self.ffn(xe)
                self._set_active(e)
                out.index_add_(0, tok, weights[tok, slot, None] * (self.ffn(xe) - frozen))
        finally:
            self._set_active(None)
        return out.reshape(base.shape)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, top_k={self.top_k}, targets={self.adapter_names}"


@register_model("mixlora", family="moe", paper=PAPER)
class MixLoRA(nn.Module):
    r"""MixLoRA wrapped around a frozen transformer.

    Every module whose name ends in one of ``ffn_names`` becomes a :class:`MixLoRAFFN` (a
    top-:math:`k` router over :math:`E` LoRA experts sharing the frozen FFN); every
    ``nn.Linear`` whose name ends in one of ``attn_targets`` gets its own single LoRA adapter
    (``attn_lora=True``). Everything of the base model is frozen; only the routers and the
    LoRA matrices train. Per block the trainable parameters number

    .. math::
        E d + E r \sum_{\text{FFN linears}} (d_\text{in} + d_\text{out})
        + r \sum_{\text{attention linears}} (d_\text{in} + d_\text{out}).

    After a forward pass :meth:`aux_loss` gives ``aux_coef`` times the mean over blocks of the
    Switch balancing term :math:`E\sum_i f_i P_i` (``aux_coef`` when routing is balanced).
    Defaults follow the official configuration (TUDB-Labs/MixLoRA ``mixlora/config.py`` and
    README: 8 experts, top-2, r = 8, alpha = 16, dropout 0.05, router init std 0.02,
    ``router_aux_loss_coef`` 0.001 when unset; the README's example sets 0.01).

    Args:
        base_model: a frozen transformer (modified in place; ``deepcopy`` it first to keep it).
        num_experts: :math:`E` (default: 8).
        top_k: :math:`k` (default: 2).
        rank: LoRA rank :math:`r` of experts and attention adapters (default: 8).
        alpha: LoRA :math:`\alpha` (default: 16).
        dropout: LoRA input dropout (default: 0.05).
        attn_lora: add LoRA adapters to the attention projections (default: ``True``).
        aux_coef: weight of the balancing term (default: 0.001).
        ffn_names: names (last component) of the feed-forward modules
            (default: ``("mlp", "ffn", "feed_forward")``).
        ffn_targets: names of the FFN linear layers that get experts (default: all).
        attn_targets: names of the attention projections
            (default: ``("q_proj", "k_proj", "v_proj", "o_proj")``).

    Shapes:
        whatever ``base_model`` takes and returns.
    """

    def __init__(
        self,
        base_model: nn.Module,
        num_experts: int = 8,
        top_k: int = 2,
        rank: int = 8,
        alpha: float = 16.0,
        dropout: float = 0.05,
        attn_lora: bool = True,
        aux_coef: float = 0.001,
        ffn_names: Sequence[str] = ("mlp", "ffn", "feed_forward"),
        ffn_targets: Sequence[str] | None = None,
        attn_targets: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj"),
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must lie in [1, num_experts={num_experts}], got {top_k}")
        if aux_coef < 0:
            raise ValueError(f"aux_coef must be >= 0, got {aux_coef}")
        base_model.requires_grad_(False)
        ffns = [n for n, _ in base_model.named_modules() if n and n.rsplit(".", 1)[-1] in ffn_names]
        if not ffns:
            raise ValueError(f"no feed-forward module named {list(ffn_names)} in base_model")
        attn = _linear_children(base_model, attn_targets) if attn_lora else []
        attn = [n for n in attn if not any(n.startswith(f + ".") for f in ffns)]
        if attn_lora and not attn:
            raise ValueError(
                f"attn_lora=True but no nn.Linear named {list(attn_targets)} in base_model"
            )
        for n in attn:
            adapter = LoRAExperts(base_model.get_submodule(n), 1, rank, alpha, dropout)
            adapter.active = 0
            replace_module(base_model, n, adapter)
        for n in ffns:
            block = MixLoRAFFN(
                base_model.get_submodule(n), num_experts, top_k, rank, alpha, dropout, ffn_targets
            )
            replace_module(base_model, n, block)
        self.model = base_model
        self.ffn_names, self.attn_names = ffns, attn
        self.num_experts, self.top_k, self.rank, self.aux_coef = num_experts, top_k, rank, aux_coef

    def moe_blocks(self) -> list[MixLoRAFFN]:
        return [self.model.get_submodule(n) for n in self.ffn_names]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        for block in self.moe_blocks():
            block.last_aux = None
        return self.model(*args, **kwargs)

    def aux_loss(self) -> Tensor:
        """``aux_coef`` times the mean balancing term of the blocks used in the last forward."""
        terms = [b.last_aux.balance for b in self.moe_blocks() if b.last_aux is not None]
        if not terms:
            raise RuntimeError("aux_loss() needs a forward pass first")
        return self.aux_coef * torch.stack(terms).mean()

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, top_k={self.top_k}, rank={self.rank}, "
            f"moe_blocks={len(self.ffn_names)}, attn_adapters={len(self.attn_names)}"
        )
