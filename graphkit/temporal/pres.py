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

``increment="update"`` (an option; the default is ``"event"`` above) keeps the paper's
statistic instead, the increment of one update (not divided by its events), and moves a read
preceded by :math:`k` of the node's events in the batch :math:`k / (k + 1)` of the way,

.. math::
    s_i^{(k)} = s_i + \gamma\, \frac{k}{k + 1}\, \hat\mu_i^{\mathrm{update}},

(a read depends on earlier events only: dividing by the node's events in the whole batch
would count the scored event itself, so a true destination would read differently from a
negative one), so a read moves less than one mean update away from :math:`s_i` (each
coordinate of an update of a GRU state lies in :math:`[-2, 2]`), whereas :math:`k\,\hat\mu_i`
with a per-event mean learnt from batches where the node had few events grows with :math:`k`
(at batch 800 on Enron the per-event prediction leaves the GRU's range :math:`[-1, 1]` for
more than half of the reads).

``mode="node"`` (this module's earlier version) fuses one memory per node and batch instead,
:math:`\gamma\,(s^{\mathrm{prev}} + \hat\mu) + (1 - \gamma)\, s^{\mathrm{new}}` for every node
with pending messages (:math:`s^{\mathrm{prev}}` the stored memory), the same for all of the
node's events in the batch.

``mode="repo"`` follows the official code's simplified blend (jwsu825/MDGNN_BS): the
prediction is a running sum of increments min-max rescaled to :math:`[-1, 1]`, fused with
:math:`\gamma = 0.9` for every node read, and the coherence term is detached (no gradient).
It is not a score-for-score reproduction: the official code applies pending messages to every
node and rescales and accumulates the changes of all nodes each batch, while graphkit's memory
(like PyG's) updates the nodes a batch reads, and the blend rescales and accumulates those
rows only, so the fused memories part from the second batch on.

:class:`PRES` wraps any model whose ``memory`` attribute is a
:class:`~graphkit.temporal.memory.TemporalMemory` (TGN, JODIE, APAN of
:mod:`graphkit.temporal.mdgnn`) and follows the
:class:`~graphkit.temporal.link_training.TemporalLinkModel` protocol. Because that loop
optimises only the BCE of the logits, the coherence gradient is injected into the backward
pass of the positive logits (:class:`_CoherenceGradient`), which gives the gradient of
``BCE + coherence``: the term's value is never needed in training, so it is not computed there,
and its gradient with respect to the updated memory rows is written in closed form
(:func:`coherence_gradient`; equal to autograd's through :func:`coherence_loss` up to float
round-off). The per-read memories (and embeddings) :math:`z_i + k\,\delta_i` are built by
:func:`shifted_reads`, one Numba pass forward and one backward on CPU, bit-identical to the
torch expression it replaces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.temporal.memory import TemporalMemory, Update
from graphkit.typing import WITH_NUMBA

__all__ = ["PRES", "IncrementStatistics", "PredictionCorrection", "coherence_gradient",
           "coherence_loss", "shifted_reads"]

MODES = ("paper", "node", "repo")
INCREMENTS = ("event", "update")


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


def _numba_float32(*tensors: Tensor) -> bool:
    """Whether the Numba kernels apply: Numba present, every tensor a float32 CPU tensor."""
    return WITH_NUMBA and all(x.device.type == "cpu" and x.dtype == torch.float32
                              for x in tensors)


def coherence_gradient(s_new: Tensor, s_prev: Tensor, weight: float = 1.0,
                       eps: float = 1e-8) -> Tensor:
    r"""Gradient of ``weight *`` :func:`coherence_loss` ``(s_new, s_prev)`` (no mask) with
    respect to ``s_new``, ``s_prev`` held constant: with :math:`\hat a_i = a_i / |a_i|`,
    :math:`\hat b_i = b_i / |b_i|` (norms clamped at ``eps``, as in
    :func:`torch.nn.functional.cosine_similarity`),

    .. math::
        \frac{\partial}{\partial a_i}\,\frac1n\sum_l \bigl(1 - \hat a_l^\top \hat b_l\bigr)
        = \frac{(\hat a_i^\top \hat b_i)\,\hat a_i - \hat b_i}{n\,|a_i|}.

    One Numba pass on float32 CPU tensors (norms and dot products in float64), torch
    operations otherwise; both equal autograd's gradient up to float round-off.
    """
    n = s_new.size(0)
    if n == 0:
        return torch.zeros_like(s_new)
    if _numba_float32(s_new, s_prev):
        from graphkit.temporal import _pres_numba

        out = torch.empty_like(s_new)
        _pres_numba.coherence_gradient(s_new.detach().contiguous().numpy(),
                                       s_prev.detach().contiguous().numpy(), weight / n, eps,
                                       out.numpy())
        return out
    ca = torch.linalg.vector_norm(s_new, dim=-1, keepdim=True).clamp_min(eps)
    cb = torch.linalg.vector_norm(s_prev, dim=-1, keepdim=True).clamp_min(eps)
    a, b = s_new / ca, s_prev / cb
    return ((a * b).sum(-1, keepdim=True) * a - b) * (weight / n) / ca


class _ShiftedReads(torch.autograd.Function):
    """:func:`shifted_reads` on float32 CPU tensors: one Numba pass each way."""

    @staticmethod
    def forward(ctx, z: Tensor, shift: Tensor, inv: Tensor, step: Tensor  # noqa: ANN001
                ) -> Tensor:
        from graphkit.temporal import _pres_numba

        out = z.new_empty(inv.numel(), z.size(1))
        if _pres_numba.shifted_reads(z.detach().contiguous().numpy(),
                                     shift.detach().contiguous().numpy(), inv.numpy(),
                                     step.numpy(), out.numpy()):
            raise IndexError(f"read index outside the {z.size(0)} rows")
        ctx.save_for_backward(inv, step)
        ctx.rows = z.size(0)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        from graphkit.temporal import _pres_numba

        inv, step = ctx.saved_tensors
        grad = grad.contiguous()
        grad_z = grad.new_zeros(ctx.rows, grad.size(1))
        with_shift = ctx.needs_input_grad[1]
        grad_shift = grad.new_zeros(ctx.rows if with_shift else 0, grad.size(1))
        _pres_numba.shifted_reads_backward(grad.numpy(), inv.numpy(), step.numpy(),
                                           grad_z.numpy(), grad_shift.numpy(), with_shift)
        return (grad_z if ctx.needs_input_grad[0] else None,
                grad_shift if with_shift else None, None, None)


def shifted_reads(z: Tensor, shift: Tensor, inv: Tensor, step: Tensor) -> Tensor:
    r"""Row ``r`` is ``z[inv[r]] + step[r] * shift[inv[r]]``: the memory (or an embedding
    linear in it) read by an event preceded by ``step[r]`` events of its node in the batch,
    from one row per distinct node. On float32 CPU tensors (int64 ``inv``, int64 or float32
    ``step``) one Numba pass forward and one backward replace the two gathers, the product and
    the sum and their backward passes, with bit-identical values and gradients; elsewhere the
    torch expression itself.
    """
    # step: int64 read counts, or float32 fractions of them (increment="update")
    if _numba_float32(z, shift) and inv.dtype == torch.int64 and \
            step.dtype in (torch.int64, torch.float32) and \
            inv.device.type == step.device.type == "cpu" and z.dim() == shift.dim() == 2 \
            and z.shape == shift.shape and inv.shape == step.shape and inv.dim() == 1:
        return _ShiftedReads.apply(z, shift, inv, step)
    return z.index_select(0, inv) + step.to(z).unsqueeze(-1) * shift.index_select(0, inv)


class IncrementStatistics(torch.nn.Module):
    r"""Per-node online Gaussian mixture of memory increments (counts, means, variances), the
    statistics of `"PRES: Toward Scalable Memory-Based Dynamic Graph Neural Networks"
    <https://arxiv.org/abs/2402.04284>`_ (Su, Zou and Wu, ICLR 2024). Component :math:`k` is
    updated by Welford's rule,

    .. math::
        c_k \leftarrow c_k + 1, \quad \mu_k \leftarrow \mu_k + \frac{\Delta s - \mu_k}{c_k},
        \quad M_k \leftarrow M_k + (\Delta s - \mu_k^{\mathrm{old}}) \odot (\Delta s - \mu_k),

    and :math:`\sigma_k^2 = M_k / c_k`. Buffers only (no parameters).

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
    r"""The prediction-correction step of `"PRES: Toward Scalable Memory-Based Dynamic Graph
    Neural Networks" <https://arxiv.org/abs/2402.04284>`_ (Su, Zou and Wu, ICLR 2024) that a
    :class:`TemporalMemory` calls: a read of node :math:`i` after :math:`k` of its events in
    the batch gets

    .. math::
        \mathbf{s}_i^{(k)} = \mathbf{s}_i + \gamma\, k\, \hat{\boldsymbol{\mu}}_i, \qquad
        \hat{\boldsymbol{\mu}}_i = \sum_m \frac{c_m}{\sum_l c_l}\,\boldsymbol{\mu}_m

    (the module docstring has the other modes).

    Args:
        num_nodes (int): number of nodes.
        memory_dim (int): memory width.
        gamma (float): fusion weight :math:`\gamma`. (default: ``1.0``)
        components (int): mixture components. (default: ``1``)
        mode (str): ``"paper"`` (per event), ``"node"`` (per node) or ``"repo"``.
            (default: ``"paper"``)
        learnable_gamma (bool): learn :math:`\gamma` (through a sigmoid). (default: ``False``)
        increment (str): ``"paper"`` mode's statistic and step: ``"event"`` (the increment
            per event, a read at step :math:`k` adds :math:`k\gamma\hat\mu`) or
            ``"update"`` (the increment per update, a read at step :math:`k` adds
            :math:`\frac{k}{k+1}\gamma\hat\mu`). (default: ``"event"``)
    """

    def __init__(self, num_nodes: int, memory_dim: int, gamma: float = 1.0,
                 components: int = 1, mode: str = "paper",
                 learnable_gamma: bool = False, increment: str = "event") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if increment not in INCREMENTS:
            raise ValueError(f"increment must be one of {INCREMENTS}, got {increment!r}")
        if increment != "event" and mode != "paper":
            raise ValueError(f"increment={increment!r} applies to mode='paper' only")
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
        if learnable_gamma and not 0.0 < float(gamma) < 1.0:
            raise ValueError("a learnable gamma must start strictly inside (0, 1)")
        self.mode, self.learnable_gamma = mode, bool(learnable_gamma)
        self.increment = increment
        self.stats = IncrementStatistics(num_nodes, memory_dim, components)
        self._gamma_init = float(gamma)
        init = torch.tensor(self._gamma_init)
        if self.learnable_gamma:
            self.gamma_logit = torch.nn.Parameter(torch.logit(init))
        else:
            self.register_buffer("gamma_value", init)
        # (s_new, s_prev) of the rows the last read updated, kept where they carry gradient
        self.coherence_rows: tuple[Tensor, Tensor] | None = None
        self._detached_coherence: Tensor | None = None  # "repo": the official code's value

    def reset_parameters(self) -> None:
        """Restore :math:`\\gamma` to its initial value (when learnable) and reset the state."""
        if self.learnable_gamma:
            with torch.no_grad():
                self.gamma_logit.fill_(torch.logit(torch.tensor(self._gamma_init)).item())
        self.reset_state()

    @property
    def gamma(self) -> Tensor:
        return torch.sigmoid(self.gamma_logit) if self.learnable_gamma else self.gamma_value

    def reset_state(self) -> None:
        self.stats.reset_state()
        self.coherence_rows = self._detached_coherence = None

    def __getstate__(self) -> dict:
        # The rows of the last training read carry that batch's autograd graph, which
        # deepcopy and pickle refuse (non-leaf tensors); a copy starts without them.
        return {**super().__getstate__(), "coherence_rows": None}

    @property
    def last_coherence(self) -> Tensor | None:
        """The coherence term of the last read: with gradient in training (``"paper"``,
        ``"node"``; computed on request, as training needs only its gradient, which
        :class:`PRES` injects in closed form), detached in ``"repo"`` mode, ``None`` where
        the read carried no gradient."""
        if self.coherence_rows is not None:
            return coherence_loss(*self.coherence_rows)
        return self._detached_coherence

    @property
    def per_event(self) -> bool:
        """Whether the fused memory differs between a node's events in a batch."""
        return self.mode == "paper"

    def correct_events(self, nodes: Tensor, inv: Tensor, step: Tensor, s_prev: Tensor,
                       s_new: Tensor, has: Tensor, update: Update | None = None) -> Tensor:
        r"""Memory read by each event: row ``r`` is node ``nodes[inv[r]]`` preceded by
        ``step[r]`` of its events in the batch, :math:`s + \gamma\,k\,\hat\mu` (``"paper"``;
        the per-node fusion of the other modes ignores ``step``). Records the updated rows for
        the coherence term (``update``: those rows as :meth:`TemporalMemory.compute` built
        them; without it they are taken from ``has``)."""
        if not self.per_event:
            return self.correct(nodes, s_prev, s_new, has, update).index_select(0, inv)
        self._record_coherence(s_new, s_prev, has, update)
        return shifted_reads(s_new, self.step_increment(nodes, s_new), inv,
                             self.read_weights(step))

    def read_weights(self, step: Tensor) -> Tensor:
        r"""How many :meth:`step_increment` a read preceded by ``step`` events of its node
        in the batch adds: :math:`k`, or :math:`k / (k + 1)` with ``increment="update"``."""
        return step / (step + 1.0) if self.increment == "update" else step

    def step_increment(self, nodes: Tensor, like: Tensor) -> Tensor:
        r""":math:`\gamma\,\hat\mu` of ``nodes`` (``"paper"``): what each earlier event of
        the node in the batch adds to the memory a read sees (dtype and device of ``like``)."""
        mu = self.stats.expected(nodes.to(self.stats.mean.device)).to(like)
        return self.gamma.to(like) * mu

    def correct(self, n_id: Tensor, s_prev: Tensor, s_new: Tensor, has: Tensor,
                update: Update | None = None) -> Tensor:
        """Fused memory of the distinct ``n_id`` read once each (in ``"paper"`` mode: by
        their first event of the batch, i.e. ``s_new``); records the updated rows for the
        coherence term (see :meth:`correct_events`)."""
        if self.mode == "paper":
            self._record_coherence(s_new, s_prev, has, update)
            return s_new
        gamma = self.gamma.to(s_new)
        idx = n_id.to(self.stats.mean.device)
        if self.mode == "node":
            pred = s_prev + self.stats.expected(idx).to(s_new)
            fused = torch.where(has.unsqueeze(-1), gamma * pred + (1 - gamma) * s_new, s_new)
            self._record_coherence(s_new, s_prev, has, update)
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
        self.coherence_rows = None
        self._detached_coherence = coherence_loss(s_new, s_prev).detach()
        return fused

    def _record_coherence(self, s_new: Tensor, s_prev: Tensor, has: Tensor,
                          update: Update | None) -> None:
        """Keep the updated rows ``(s_new, s_prev)`` for the coherence term, only where they
        can carry gradient (not in evaluation or under ``no_grad``: the term's value is never
        used, only its gradient)."""
        if not (self.training and s_new.requires_grad):
            self.coherence_rows = None
        elif update is not None:
            self.coherence_rows = (update.s_new, update.s_prev)
        else:
            rows = has.nonzero().view(-1)
            self.coherence_rows = (s_new.index_select(0, rows), s_prev.index_select(0, rows))

    @torch.no_grad()
    def observe_update(self, nodes: Tensor, s_prev: Tensor, s_new: Tensor,
                       events: Tensor | None = None) -> None:
        """:meth:`observe` of the increments ``s_new - s_prev``; in ``"paper"`` mode with one
        component and float32 CPU tensors one Numba call does it, with the same results."""
        st = self.stats
        if events is not None and self.increment == "update":
            events = torch.ones_like(events)  # the increment of the update itself
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
        increment per event, ``delta / events`` (with ``increment="update"``: per update),
        ``"node"`` the increment per update."""
        if self.mode == "repo":
            return
        if self.mode == "paper" and events is not None and self.increment == "event":
            delta = delta / events.to(delta).unsqueeze(-1)
        self.stats.observe(nodes.to(self.stats.mean.device), delta, check=False)


class _CoherenceGradient(torch.autograd.Function):
    """Identity on ``x`` whose backward also sends ``s_new`` the gradient of
    ``weight * coherence_loss(s_new, s_prev)`` (:func:`coherence_gradient`), so the loss
    optimised is ``BCE + weight * coherence`` without the term being computed forward."""

    @staticmethod
    def forward(ctx, x: Tensor, s_new: Tensor, s_prev: Tensor, weight: float  # noqa: ANN001
                ) -> Tensor:
        ctx.save_for_backward(s_new, s_prev)
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        s_new, s_prev = ctx.saved_tensors
        return grad, coherence_gradient(s_new, s_prev, ctx.weight), None, None


class PRES(torch.nn.Module):
    r"""Wrap a memory-based model (with a ``memory`` :class:`TemporalMemory`) in PRES, from
    `"PRES: Toward Scalable Memory-Based Dynamic Graph Neural Networks"
    <https://arxiv.org/abs/2402.04284>`_ (Su, Zou and Wu, ICLR 2024): prediction-correction
    of the memory reads inside a batch (:class:`PredictionCorrection`) and the
    memory-coherence term

    .. math::
        \mathcal{L} = \mathcal{L}_{\mathrm{BCE}} + \beta\,\frac{1}{|V_B|}\sum_{i \in V_B}
        \big(1 - \cos(\mathbf{s}_i^{\mathrm{new}}, \mathbf{s}_i^{\mathrm{prev}})\big).

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
        increment (str): ``"event"`` or ``"update"`` (see :class:`PredictionCorrection`).
            (default: ``"event"``)
    """

    def __init__(self, model: torch.nn.Module, gamma: float = 1.0,
                 coherence_weight: float = 0.1, components: int = 1, mode: str = "paper",
                 learnable_gamma: bool = False, increment: str = "event") -> None:
        super().__init__()
        memory = getattr(model, "memory", None)
        if not isinstance(memory, TemporalMemory):
            raise ValueError("PRES needs a model whose `memory` is a TemporalMemory, got "
                             f"{type(memory).__name__}")
        if not float(coherence_weight) >= 0:  # NaN too
            raise ValueError(f"coherence_weight must be non-negative, got {coherence_weight}")
        self.model, self.coherence_weight = model, float(coherence_weight)
        memory.corrector = PredictionCorrection(memory.num_nodes, memory.memory_dim, gamma,
                                                components, mode, learnable_gamma,
                                                increment).to(memory.device)

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
        rows = self.corrector.coherence_rows
        if self.training and self.coherence_weight > 0 and rows is not None and \
                rows[0].requires_grad and rows[0].size(0) > 0:
            pos = _CoherenceGradient.apply(pos, rows[0], rows[1].detach(),
                                           self.coherence_weight)
        return pos, neg

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        self.model.update_state(src, dst, t, msg)

    def __repr__(self) -> str:
        c = self.corrector
        inc = f", increment={c.increment!r}" if c.increment != "event" else ""
        return (f"{self.__class__.__name__}({self.model}, mode={c.mode!r}{inc}, "
                f"coherence_weight={self.coherence_weight})")
