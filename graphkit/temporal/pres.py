r"""PRES: prediction-correction of node memories and memory coherence for large temporal
batches.

`"PRES: Toward Scalable Memory-Based Dynamic Graph Neural Networks"
<https://arxiv.org/abs/2402.04284>`_ (Su, Zou and Wu, ICLR 2024).

Inside a temporal batch the events do not see each other's memory updates: every event of the
batch reads the memory its endpoints had at the batch's start. PRES keeps, for every node, an
online Gaussian mixture of its memory increments
:math:`\Delta s = s^{\mathrm{after}} - s^{\mathrm{before}}` (``K`` components, each with a
count :math:`c_k`, mean :math:`\mu_k` and diagonal variance :math:`\sigma_k^2` updated by
Welford's rule; an increment goes to an empty component if there is one, otherwise to the
component of nearest mean), and predicts the memory an event would have read had the batch been
processed in order: an event of node :math:`i` preceded by :math:`k` events of :math:`i` in
the same batch reads the fusion of that prediction and the computed memory :math:`s_i`
(pending messages applied),

.. math::
    \hat\mu_i = \sum_k \frac{c_k}{\sum_l c_l}\,\mu_k, \qquad
    s_i^{(k)} = \gamma\,(s_i + k\,\hat\mu_i) + (1 - \gamma)\, s_i
              = s_i + \gamma\, k\, \hat\mu_i,

so a node's first event in the batch reads :math:`s_i` exactly. When the batch's true update
is written, the observed increment corrects the statistics, as an increment *per event*: the
change of the memory divided by the number of the node's messages that update followed (with
the last aggregator a node's events of one batch give one recurrent step, so a node's
:math:`k`-th event reads :math:`k/c` of the way to an update after :math:`c` events; the
prediction stays in the scale of one update instead of growing with :math:`k`, e.g. to
:math:`k \approx 500` at batch 800 on Enron). The memory-coherence term
:math:`\beta \cdot \mathrm{mean}_i\,(1 - \cos(s_i^{\mathrm{new}}, s_i^{\mathrm{prev}}))` over the
updated nodes is added to the link loss *with* its gradient into the memory updater.

``mode="node"`` (this module's earlier version) fuses one memory per node and batch instead,
:math:`\gamma\,(s^{\mathrm{prev}} + \hat\mu) + (1 - \gamma)\, s^{\mathrm{new}}` for every node
with pending messages (:math:`s^{\mathrm{prev}}` the stored memory), the same for all of the
node's events in the batch.

``mode="repo"`` reproduces the official code (jwsu825/MDGNN_BS): the prediction is a running
sum of increments min-max rescaled to :math:`[-1, 1]`, fused with :math:`\gamma = 0.9` for
every node read, and the coherence term is detached (no gradient).

:class:`PRES` wraps any model whose ``memory`` attribute is a
:class:`~graphkit.temporal.memory.TemporalMemory` (TGN, JODIE, APAN of
:mod:`graphkit.temporal.mdgnn`) and follows the
:class:`~graphkit.temporal.link_training.TemporalLinkModel` protocol. Because that loop
optimises only the BCE of the logits, the coherence gradient is injected into the backward
pass of the positive logits (:class:`_AddLossGradient`), which gives exactly the gradient of
``BCE + coherence``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.temporal.memory import TemporalMemory
from graphkit.typing import WITH_NUMBA

__all__ = ["PRES", "IncrementStatistics", "PredictionCorrection", "coherence_loss"]

MODES = ("paper", "node", "repo")


def coherence_loss(s_new: Tensor, s_prev: Tensor, mask: Tensor | None = None) -> Tensor:
    r""":math:`\mathrm{mean}_i\,(1 - \cos(s^{\mathrm{new}}_i, s^{\mathrm{prev}}_i))` over the
    rows (those where ``mask`` is true; ``0`` for no rows). The mask is applied as weights, so
    no data-dependent indexing (a GPU synchronisation) is needed."""
    if s_new.size(0) == 0:
        return s_new.sum()
    term = 1 - F.cosine_similarity(s_new, s_prev, dim=-1)
    if mask is None:
        return term.mean()
    w = mask.to(term.dtype)
    return (term * w).sum() / w.sum().clamp(min=1)


class IncrementStatistics(torch.nn.Module):
    r"""Per-node online Gaussian mixture of memory increments (counts, means, variances).

    Args:
        num_nodes (int): number of nodes.
        dim (int): increment width.
        components (int): mixture components ``K``. (default: ``1``)
    """

    def __init__(self, num_nodes: int, dim: int, components: int = 1) -> None:
        super().__init__()
        if int(components) <= 0:
            raise ValueError(f"components must be positive, got {components}")
        self.num_nodes, self.dim, self.components = int(num_nodes), int(dim), int(components)
        self.register_buffer("count", torch.zeros(self.num_nodes, self.components))
        self.register_buffer("mean", torch.zeros(self.num_nodes, self.components, self.dim))
        self.register_buffer("m2", torch.zeros(self.num_nodes, self.components, self.dim))

    def reset_state(self) -> None:
        self.count.zero_()
        self.mean.zero_()
        self.m2.zero_()

    @property
    def variance(self) -> Tensor:
        """Population variance of every component, ``[N, K, dim]`` (``0`` when empty)."""
        return self.m2 / self.count.clamp(min=1).unsqueeze(-1)

    def expected(self, nodes: Tensor) -> Tensor:
        r"""Mixture mean :math:`\hat\mu` of ``nodes`` (``0`` for nodes never observed)."""
        if self.components == 1:  # the weight is 1, and an empty component's mean is 0
            return self.mean[:, 0].index_select(0, nodes)
        c = self.count[nodes]
        w = c / c.sum(-1, keepdim=True).clamp(min=1)
        return (w.unsqueeze(-1) * self.mean[nodes]).sum(1)

    @torch.no_grad()
    def observe(self, nodes: Tensor, delta: Tensor, check: bool = True) -> None:
        """Add one increment ``delta[i]`` for each *distinct* node ``nodes[i]``.

        ``check=False`` skips the distinctness test (a sort and, on a GPU, a synchronisation)
        for callers that pass distinct nodes by construction, as
        :meth:`TemporalMemory.flush` does.
        """
        if nodes.numel() != delta.size(0) or delta.size(-1) != self.dim:
            raise ValueError(f"need one increment of width {self.dim} per node, got "
                             f"{tuple(delta.shape)} for {nodes.numel()} nodes")
        if check and torch.unique(nodes).numel() != nodes.numel():
            raise ValueError("nodes must be distinct")
        delta = delta.to(self.mean)
        if self.components == 1:  # Welford on the only component, no assignment step
            count, mean, m2 = self.count[:, 0], self.mean[:, 0], self.m2[:, 0]  # views
            c_k = count.index_select(0, nodes) + 1
            mu_k = mean.index_select(0, nodes)
            diff = delta - mu_k
            new_mu = mu_k + diff / c_k.unsqueeze(-1)
            count.index_copy_(0, nodes, c_k)
            mean.index_copy_(0, nodes, new_mu)
            m2.index_add_(0, nodes, diff * (delta - new_mu))
            return
        c, mu = self.count[nodes], self.mean[nodes]
        empty = c == 0
        dist = (mu - delta.unsqueeze(1)).pow(2).sum(-1)
        nearest = dist.masked_fill(empty, float("inf")).argmin(-1)
        first_empty = empty.to(torch.int8).argmax(-1)
        k = torch.where(empty.any(-1), first_empty, nearest)
        c_k = c.gather(1, k.view(-1, 1)).view(-1) + 1
        mu_k = mu[torch.arange(nodes.numel(), device=nodes.device), k]
        diff = delta - mu_k
        new_mu = mu_k + diff / c_k.unsqueeze(-1)
        self.count[nodes, k] = c_k
        self.mean[nodes, k] = new_mu
        self.m2[nodes, k] = self.m2[nodes, k] + diff * (delta - new_mu)


class PredictionCorrection(torch.nn.Module):
    r"""The corrector a :class:`TemporalMemory` calls (see the module docstring).

    Args:
        num_nodes (int): number of nodes.
        memory_dim (int): memory width.
        gamma (float): fusion weight :math:`\gamma`. (default: ``1.0``)
        components (int): mixture components. (default: ``1``)
        mode (str): ``"paper"`` (per event), ``"node"`` (per node) or ``"repo"``.
            (default: ``"paper"``)
        learnable_gamma (bool): learn :math:`\gamma` (through a sigmoid). (default: ``False``)
    """

    def __init__(self, num_nodes: int, memory_dim: int, gamma: float = 1.0,
                 components: int = 1, mode: str = "paper",
                 learnable_gamma: bool = False) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
        if learnable_gamma and not 0.0 < float(gamma) < 1.0:
            raise ValueError("a learnable gamma must start strictly inside (0, 1)")
        self.mode, self.learnable_gamma = mode, bool(learnable_gamma)
        self.stats = IncrementStatistics(num_nodes, memory_dim, components)
        init = torch.tensor(float(gamma))
        if self.learnable_gamma:
            self.gamma_logit = torch.nn.Parameter(torch.logit(init))
        else:
            self.register_buffer("gamma_value", init)
        self.last_coherence: Tensor | None = None

    def reset_parameters(self) -> None:
        self.reset_state()

    @property
    def gamma(self) -> Tensor:
        return torch.sigmoid(self.gamma_logit) if self.learnable_gamma else self.gamma_value

    def reset_state(self) -> None:
        self.stats.reset_state()
        self.last_coherence = None

    @property
    def per_event(self) -> bool:
        """Whether the fused memory differs between a node's events in a batch."""
        return self.mode == "paper"

    def correct_events(self, nodes: Tensor, inv: Tensor, step: Tensor, s_prev: Tensor,
                       s_new: Tensor, has: Tensor) -> Tensor:
        r"""Memory read by each event: row ``r`` is node ``nodes[inv[r]]`` preceded by
        ``step[r]`` of its events in the batch, :math:`s + \gamma\,k\,\hat\mu` (``"paper"``;
        the per-node fusion of the other modes ignores ``step``). Records the coherence term of
        the updated nodes."""
        if not self.per_event:
            return self.correct(nodes, s_prev, s_new, has).index_select(0, inv)
        self._record_coherence(s_new, s_prev, has)
        shift = self.step_increment(nodes, s_new).index_select(0, inv)
        return s_new.index_select(0, inv) + step.to(s_new).unsqueeze(-1) * shift

    def step_increment(self, nodes: Tensor, like: Tensor) -> Tensor:
        r""":math:`\gamma\,\hat\mu` of ``nodes`` (``"paper"``): what each earlier event of
        the node in the batch adds to the memory a read sees (dtype and device of ``like``)."""
        mu = self.stats.expected(nodes.to(self.stats.mean.device)).to(like)
        return self.gamma.to(like) * mu

    def correct(self, n_id: Tensor, s_prev: Tensor, s_new: Tensor, has: Tensor) -> Tensor:
        """Fused memory of the distinct ``n_id`` read once each (in ``"paper"`` mode: by
        their first event of the batch, i.e. ``s_new``); records the coherence term of the
        updated nodes."""
        if self.mode == "paper":
            self._record_coherence(s_new, s_prev, has)
            return s_new
        gamma = self.gamma.to(s_new)
        idx = n_id.to(self.stats.mean.device)
        if self.mode == "node":
            pred = s_prev + self.stats.expected(idx).to(s_new)
            fused = torch.where(has.unsqueeze(-1), gamma * pred + (1 - gamma) * s_new, s_new)
            self._record_coherence(s_new, s_prev, has)
            return fused
        acc = self.stats.mean[:, 0]  # the running sum of rescaled changes
        lo, hi = acc.min(), acc.max()
        transition = (2 * (acc - lo) / (hi - lo) - 1) if bool(hi > lo) else acc
        fused = gamma * (s_prev + transition[idx].to(s_new)) + (1 - gamma) * s_new
        with torch.no_grad():
            change = fused - s_prev
            c_lo, c_hi = change.min(), change.max()
            if bool(c_hi > c_lo):
                change = 2 * (change - c_lo) / (c_hi - c_lo) - 1
            self.stats.mean[idx, 0] += change.to(acc)
        self.last_coherence = coherence_loss(s_new, s_prev).detach()
        return fused

    def _record_coherence(self, s_new: Tensor, s_prev: Tensor, has: Tensor) -> None:
        """The coherence term of the updated rows, only where it can carry gradient (not in
        evaluation or under ``no_grad``: its value is never used, only its gradient)."""
        self.last_coherence = coherence_loss(s_new, s_prev, has) if s_new.requires_grad \
            else None

    @torch.no_grad()
    def observe_update(self, nodes: Tensor, s_prev: Tensor, s_new: Tensor,
                       events: Tensor | None = None) -> None:
        """:meth:`observe` of the increments ``s_new - s_prev``; in ``"paper"`` mode with one
        component and float32 CPU tensors one Numba call does it, with the same results."""
        st = self.stats
        if WITH_NUMBA and self.mode == "paper" and events is not None and \
                st.components == 1 and st.mean.device.type == "cpu" and \
                s_new.device.type == "cpu" and \
                st.mean.dtype == s_new.dtype == s_prev.dtype == torch.float32:
            from graphkit.temporal import _pres_numba

            _pres_numba.observe_per_event(
                st.count[:, 0].numpy(), st.mean[:, 0].numpy(), st.m2[:, 0].numpy(),
                nodes.numpy(), s_new.numpy(), s_prev.numpy(), events.numpy())
            return
        self.observe(nodes, s_new - s_prev, events)

    @torch.no_grad()
    def observe(self, nodes: Tensor, delta: Tensor, events: Tensor | None = None) -> None:
        """Correct the statistics with the true increments ``delta`` of the distinct
        ``nodes``, whose update followed ``events`` messages each: ``"paper"`` records the
        increment per event, ``delta / events``, ``"node"`` the increment per update."""
        if self.mode == "repo":
            return
        if self.mode == "paper" and events is not None:
            delta = delta / events.to(delta).unsqueeze(-1)
        self.stats.observe(nodes.to(self.stats.mean.device), delta, check=False)


class _AddLossGradient(torch.autograd.Function):
    """Identity on ``x`` whose backward also sends gradient ``weight`` to the scalar ``loss``
    (the gradient of ``weight * loss``, without a multiplication in the graph)."""

    @staticmethod
    def forward(ctx, x: Tensor, loss: Tensor, weight: float) -> Tensor:  # noqa: ANN001
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:  # noqa: ANN001
        return grad, torch.full((), ctx.weight, dtype=grad.dtype, device=grad.device), None


class PRES(torch.nn.Module):
    r"""Wrap a memory-based model (with a ``memory`` :class:`TemporalMemory`) in PRES.

    Args:
        model (torch.nn.Module): TGN, JODIE or APAN of :mod:`graphkit.temporal.mdgnn`.
        gamma (float): fusion weight; ``1.0`` (the prediction alone) was chosen on
            validation AP over ``0.1`` for 5 of 6 model/dataset pairs (TGN, JODIE, APAN on UCI
            and Enron at batch 800; TGN on Enron preferred ``0.5``); the official code's
            ``"repo"`` blend uses ``0.9``. (default: ``1.0``)
        coherence_weight (float): :math:`\beta`. (default: ``0.1``)
        components (int): mixture components per node. (default: ``1``)
        mode (str): ``"paper"`` (per event), ``"node"`` (per node) or ``"repo"``.
            (default: ``"paper"``)
        learnable_gamma (bool): learn :math:`\gamma`. (default: ``False``)
    """

    def __init__(self, model: torch.nn.Module, gamma: float = 1.0,
                 coherence_weight: float = 0.1, components: int = 1, mode: str = "paper",
                 learnable_gamma: bool = False) -> None:
        super().__init__()
        memory = getattr(model, "memory", None)
        if not isinstance(memory, TemporalMemory):
            raise ValueError("PRES needs a model whose `memory` is a TemporalMemory, got "
                             f"{type(memory).__name__}")
        if float(coherence_weight) < 0:
            raise ValueError(f"coherence_weight must be non-negative, got {coherence_weight}")
        self.model, self.coherence_weight = model, float(coherence_weight)
        memory.corrector = PredictionCorrection(memory.num_nodes, memory.memory_dim, gamma,
                                                components, mode, learnable_gamma
                                                ).to(memory.device)

    @property
    def corrector(self) -> PredictionCorrection:
        return self.model.memory.corrector

    def reset_parameters(self) -> None:
        self.model.reset_parameters()

    def reset_state(self) -> None:
        self.model.reset_state()

    def score(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, neg_dst: Tensor
              ) -> tuple[Tensor, Tensor]:
        """The wrapped model's logits; in training the coherence gradient rides on them."""
        pos, neg = self.model.score(src, dst, t, msg, neg_dst)
        coh = self.corrector.last_coherence
        if self.training and self.coherence_weight > 0 and coh is not None and \
                coh.requires_grad:
            pos = _AddLossGradient.apply(pos, coh, self.coherence_weight)
        return pos, neg

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        self.model.update_state(src, dst, t, msg)

    def __repr__(self) -> str:
        c = self.corrector
        return (f"{self.__class__.__name__}({self.model}, mode={c.mode!r}, "
                f"coherence_weight={self.coherence_weight})")
