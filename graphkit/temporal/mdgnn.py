r"""Memory-based dynamic GNNs on graphkit's :class:`~graphkit.temporal.memory.TemporalMemory`.

* :class:`MemoryTGN`: TGN (`Rossi et al., 2020 <https://arxiv.org/abs/2006.10637>`_): GRU
  memory, last aggregator, one graph-attention layer over the ``num_neighbors`` most recent
  interactions (from :class:`~graphkit.sampling.TemporalNeighborSampler`).
* :class:`JODIE` (`Kumar et al., KDD 2019 <https://arxiv.org/abs/1908.01207>`_), as in the TGN
  code base: RNN memory updater and the time-projection embedding
  :math:`z_i = s_i \odot (1 + w\,\log(1 + \Delta t_i))` (:math:`\Delta t_i` the time since the
  node's last update; the logarithm replaces the TGN code's standardisation of
  :math:`\Delta t`).
* :class:`APAN` (`Wang et al., SIGMOD 2021 <https://arxiv.org/abs/2011.11545>`_): GRU memory
  with mean aggregation and a *mailbox* per node holding its ``mailbox_size`` latest mails
  :math:`[s_j \,\|\, e]` (partner memory at delivery and event features); the embedding is
  :math:`z_i = \mathrm{LN}(s_i + \mathrm{MHA}(s_i, [\,\mathrm{mail} \,\|\,
  \cos(w(t - t_{\mathrm{mail}}) + b)\,]))`.

All follow :class:`~graphkit.temporal.link_training.TemporalLinkModel`, score links with
:class:`~graphkit.temporal.tgn.LinkPredictor`, keep their whole state in ``state_dict`` and can
be wrapped in :class:`~graphkit.temporal.pres.PRES` unchanged. A batch is embedded once per
distinct read: JODIE and APAN read each endpoint at its own event's time (the time projection
and the mail times depend on it, and a later event of the batch must not move an earlier event's
score), TGN once per distinct node after the batch's last event (its time only bounds neighbour
lists that hold earlier events alone). Under a per-event PRES corrector a node's reads in one
batch see different memories, :math:`s + k\,\gamma\hat\mu` after :math:`k` of its events:
JODIE's embedding is linear in the memory, so every read is exact at the cost of one embedding
per distinct read; TGN and APAN attend from the memory before the batch (once per distinct node,
APAN once per distinct node and time) and add the shift through their self (skip) term and
residual (``event_attention=True`` attends again for every distinct read: TGN over its
neighbours, APAN over its mailbox).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.temporal._checks import check_batch
from graphkit.temporal.event_graph import EventGraph, earlier_events, repeat_targets
from graphkit.temporal.memory import TemporalMemory
from graphkit.temporal.pres import shifted_reads
from graphkit.temporal.tgn import GraphAttentionEmbedding, LinkPredictor
from graphkit.typing import WITH_NUMBA

__all__ = ["MemoryTGN", "JODIE", "APAN"]


def distinct_reads(ends: Tensor, times: Tensor, step: Tensor | None = None
                   ) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """The distinct ``(node, time[, step])`` reads among ``ends`` read at ``times`` (after
    ``step`` events of their node in the batch), ordered by node, then time, then step:
    ``(nodes, times, steps or None, inverse)`` with ``read r = distinct[inverse[r]]``."""
    node_u, node_inv = torch.unique(ends, return_inverse=True)
    time_u, time_inv = torch.unique(times, return_inverse=True)
    key = node_inv * time_u.numel() + time_inv
    b = int(step.max()) + 1 if step is not None and step.numel() else 1
    if step is not None:
        key = key * b + step
    pair, inv = torch.unique(key, return_inverse=True)
    return (node_u[pair // (b * time_u.numel())], time_u[(pair // b) % time_u.numel()],
            pair % b if step is not None else None, inv)


class _MemoryModel(torch.nn.Module, ABC):
    """Shared state handling: memory, stored event features, link scoring."""

    #: embed each endpoint read at its own event's time (JODIE's time projection and APAN's
    #: mail times depend on it); otherwise every read of a batch is embedded after the batch's
    #: last event (TGN: the time only bounds the neighbour lists, which at scoring time hold
    #: earlier events alone, so its embeddings are the same either way)
    reads_at_event_time = False

    def __init__(self, num_nodes: int, msg_dim: int, memory_dim: int, time_dim: int,
                 aggregator: str, updater: str,
                 storage_device: torch.device | str | None) -> None:
        super().__init__()
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        self.num_nodes, self.msg_dim = int(num_nodes), int(msg_dim)
        self._step_counter: np.ndarray | None = None  # scratch of _read_steps' kernel
        self.memory = TemporalMemory(num_nodes, msg_dim, memory_dim, time_dim, aggregator,
                                     updater, storage_device)

    def reset_state(self) -> None:
        self.memory.reset_state()

    @abstractmethod
    def embed(self, n_id: Tensor, t_query: Tensor, step: Tensor | None = None) -> Tensor:
        """Embeddings of the distinct reads ``(n_id[r], t_query[r])``; with ``step``, of the
        distinct ``(n_id[r], t_query[r], step[r])`` (see :meth:`TemporalMemory.forward`)."""

    def score(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, neg_dst: Tensor
              ) -> tuple[Tensor, Tensor]:
        """Logits of ``(src, dst)`` and ``(src, neg_dst)`` from the state before the batch."""
        check_batch(self.num_nodes, src, dst, t, neg_dst=neg_dst)
        if src.numel() == 0:  # nothing to score (t.max() below needs an event)
            empty = self.link_pred.lin_final.weight.new_zeros(0)
            return empty, empty.clone()
        ends = torch.cat([src, dst, neg_dst])
        # a read at its own event's time: a later event of the batch must not move it
        t_reads = (t.repeat(3) if self.reads_at_event_time
                   else (t.max() + 1).expand(ends.numel()))
        corrector = self.memory.corrector
        if corrector is None or not corrector.per_event:
            n_id, times, _, inv = distinct_reads(ends, t_reads)
            z = self.embed(n_id, times).index_select(0, inv)
        else:
            z = self.embed_events(ends, self._read_steps(src, dst, neg_dst, ends), t_reads)
        z_src, z_dst, z_neg = z.split(src.numel())
        return self.link_pred(z_src, z_dst), self.link_pred(z_src, z_neg)

    def _read_steps(self, src: Tensor, dst: Tensor, neg_dst: Tensor, ends: Tensor) -> Tensor:
        """For each read of ``ends`` (sources, destinations, negatives): how many events of
        the batch before its event touch its node (one Numba call on CPU, else
        :func:`~graphkit.temporal.event_graph.earlier_events`; the same integers)."""
        if WITH_NUMBA and src.device.type == "cpu" and dst.device.type == "cpu" and \
                neg_dst.device.type == "cpu":
            from graphkit.temporal import _pres_numba

            if self._step_counter is None:
                self._step_counter = np.zeros(self.num_nodes, dtype=np.int64)
            out = np.empty(3 * src.numel(), dtype=np.int64)
            if _pres_numba.read_steps(src.numpy(), dst.numpy(), neg_dst.numpy(),
                                      self._step_counter, out) == 0:
                return torch.from_numpy(out)
        event = torch.arange(src.numel(), device=src.device).repeat(3)
        return earlier_events(src, dst, ends, event)

    def embed_events(self, ends: Tensor, step: Tensor, t_reads: Tensor) -> Tensor:
        """Embeddings of the batch's endpoint reads ``ends`` (node ``ends[r]`` after
        ``step[r]`` of its events in the batch, at time ``t_reads[r]``): one :meth:`embed`
        row per distinct (node, time, step) read."""
        n_id, times, steps, inv = distinct_reads(ends, t_reads, step)
        return self.embed(n_id, times, steps).index_select(0, inv)

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        if msg.size(-1) != self.msg_dim:
            raise ValueError(f"msg must have {self.msg_dim} columns, got {msg.size(-1)}")
        self.memory.update_state(src, dst, t, msg)


class MemoryTGN(_MemoryModel):
    r"""TGN (`Rossi et al., 2020 <https://arxiv.org/abs/2006.10637>`_) on
    :class:`TemporalMemory`: GRU memory, last aggregator, graph attention,

    .. math::
        \mathbf{z}_i = \mathrm{Attn}\big(\mathbf{s}_i, \{(\mathbf{s}_j,
        [\phi(t^{\mathrm{last}}_j - t_{ij}) \| \mathbf{m}_{ij}])\}_{j \in \mathcal{N}_t(i)}\big),
        \qquad \hat{y}_{uv} = \mathrm{LinkPredictor}(\mathbf{z}_u, \mathbf{z}_v).

    Args:
        num_nodes (int): number of nodes.
        msg_dim (int): event feature width.
        memory_dim (int): memory width. (default: ``100``)
        time_dim (int): time-encoding width. (default: ``100``)
        embedding_dim (int): embedding width. (default: ``100``)
        num_neighbors (int): most recent interactions attended to. (default: ``10``)
        storage_device: where memory and message store live (default: with the model).
        event_attention (bool): under a per-event PRES corrector, attend over the neighbours
            again for every (node, step) read (``True``: the exact embedding of the predicted
            memory, about 3x the training cost at batch 800 on UCI), or let the predicted
            memory enter only through the layer's self (skip) term, which is linear in it:
            :math:`z + k\,W_{\mathrm{skip}}\gamma\hat\mu`, the attention keeping the
            node's first read (``False``: no extra attention). (default: ``False``)
    """

    def __init__(self, num_nodes: int, msg_dim: int, memory_dim: int = 100,
                 time_dim: int = 100, embedding_dim: int = 100, num_neighbors: int = 10,
                 storage_device: torch.device | str | None = None,
                 event_attention: bool = False) -> None:
        super().__init__(num_nodes, msg_dim, memory_dim, time_dim, "last", "gru",
                         storage_device)
        self.event_attention = bool(event_attention)
        self.edge_dim = max(self.msg_dim, 1)
        self.event_graph = EventGraph(num_nodes, self.edge_dim, num_neighbors)
        self.gnn = GraphAttentionEmbedding(memory_dim, embedding_dim, self.edge_dim,
                                           self.memory.time_enc)
        self.link_pred = LinkPredictor(embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.memory.reset_parameters()
        self.gnn.reset_parameters()
        self.link_pred.reset_parameters()
        self.reset_state()

    def reset_state(self) -> None:
        super().reset_state()
        self.event_graph.reset(self.memory.device, self.memory.dtype)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)  # the event features are no buffer: move them as well
        self.event_graph.to_(self.memory.device, self.memory.dtype)
        return self

    def get_extra_state(self) -> dict[str, Any]:
        return self.event_graph.state()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.event_graph.load_state(state)

    def embed_events(self, ends: Tensor, step: Tensor, t_reads: Tensor) -> Tensor:
        r"""With ``event_attention``, one attention per distinct (node, step) read; otherwise
        the node's embedding plus the self term of the read's memory shift,
        :math:`z + k\, W_{\mathrm{skip}}\, \gamma\hat\mu`."""
        if self.event_attention:
            return super().embed_events(ends, step, t_reads)
        n_id, times, _, inv = distinct_reads(ends, t_reads)
        z = self.embed(n_id, times)
        shift = F.linear(self.memory.step_increment(n_id), self.gnn.conv.lin_skip.weight)
        return shifted_reads(z, shift, inv, self.memory.read_weights(step))

    def embed(self, n_id: Tensor, t_query: Tensor, step: Tensor | None = None) -> Tensor:
        """Graph attention over each node's recent events. With ``step``, a pair with
        ``step > 0`` is an extra centre row with its node's attention edges and the memory
        read at that step (:func:`~graphkit.temporal.event_graph.repeat_targets`)."""
        if step is None:
            all_id, edge_index, e_t, e_msg = self.event_graph.subgraph(n_id, t_query)
            s, last = self.memory(all_id)
            z = self.gnn(s, last, edge_index, e_t, e_msg)
            return z.index_select(0, torch.searchsorted(all_id, n_id))
        nodes, inv = torch.unique(n_id, return_inverse=True)
        times = t_query.new_empty(nodes.numel()).scatter_(0, inv, t_query)
        all_id, edge_index, e_t, e_msg = self.event_graph.subgraph(nodes, times)
        later = (step > 0).nonzero().view(-1)
        centre = torch.searchsorted(all_id, n_id[later])
        rows = torch.cat([all_id, n_id[later]])
        s, last = self.memory(rows, torch.cat([torch.zeros_like(all_id), step[later]]))
        num = all_id.numel()
        extra, eid = repeat_targets(edge_index, num, centre, num)
        z = self.gnn(s, last, torch.cat([edge_index, extra], 1), torch.cat([e_t, e_t[eid]]),
                     torch.cat([e_msg, e_msg[eid]]))
        out = torch.searchsorted(all_id, n_id)
        out[later] = num + torch.arange(later.numel(), device=out.device)
        return z[out]

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        super().update_state(src, dst, t, msg)
        feats = msg if self.msg_dim else msg.new_zeros(msg.size(0), 1)
        self.event_graph.insert(src, dst, t, feats)


class JODIE(_MemoryModel):
    r"""JODIE (`Kumar et al., KDD 2019 <https://arxiv.org/abs/1908.01207>`_) on
    :class:`TemporalMemory`: RNN updater and time-projection embedding,

    .. math::
        \mathbf{z}_i(t) = \mathbf{s}_i \odot \big(1 + \mathbf{w} \log(1 + t - t_i)
        + \mathbf{b}\big).

    Args:
        num_nodes (int): number of nodes.
        msg_dim (int): event feature width.
        memory_dim (int): memory (and embedding) width. (default: ``100``)
        time_dim (int): time-encoding width of the messages. (default: ``100``)
        storage_device: where memory and message store live (default: with the model).
    """

    reads_at_event_time = True

    def __init__(self, num_nodes: int, msg_dim: int, memory_dim: int = 100,
                 time_dim: int = 100,
                 storage_device: torch.device | str | None = None) -> None:
        super().__init__(num_nodes, msg_dim, memory_dim, time_dim, "last", "rnn",
                         storage_device)
        self.projection = torch.nn.Linear(1, memory_dim)
        self.link_pred = LinkPredictor(memory_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.memory.reset_parameters()
        torch.nn.init.normal_(self.projection.weight, 0.0, 0.1)
        torch.nn.init.zeros_(self.projection.bias)
        self.link_pred.reset_parameters()

    def embed(self, n_id: Tensor, t_query: Tensor, step: Tensor | None = None) -> Tensor:
        s, last = self.memory(n_id, step)
        return s * self._scale(last, t_query)

    def _scale(self, last: Tensor, t_query: Tensor) -> Tensor:
        delta = torch.log1p((t_query - last).clamp(min=0).to(self.projection.weight.dtype))
        return 1 + self.projection(delta.unsqueeze(-1))

    def embed_events(self, ends: Tensor, step: Tensor, t_reads: Tensor) -> Tensor:
        r"""The embedding is linear in the memory: :math:`z + k\,\gamma\hat\mu \odot
        (1 + w \log(1 + \Delta t))` per read, from one memory read per distinct (node, time)
        read."""
        n_id, times, _, inv = distinct_reads(ends, t_reads)
        s, last = self.memory(n_id)
        scale = self._scale(last, times)
        shift = self.memory.step_increment(n_id) * scale
        return shifted_reads(s * scale, shift, inv, self.memory.read_weights(step))


class APAN(_MemoryModel):
    r"""APAN (`Wang et al., SIGMOD 2021 <https://arxiv.org/abs/2011.11545>`_) on
    :class:`TemporalMemory`: mailbox attention embedding,

    .. math::
        \mathbf{z}_i = \mathrm{LN}\Big(\mathbf{s}_i + \mathrm{MHA}\big(\mathbf{s}_i,\
        \mathbf{K}_i, \mathbf{K}_i\big)\Big), \qquad
        \mathbf{K}_i = \mathrm{Lin}\big([\mathbf{s}_j \,\|\, \mathbf{m} \,\|\,
        \phi(t - t_{\mathrm{mail}})]\big)_{\text{mails of } i}

    (zero attention for a node without mail).

    Args:
        num_nodes (int): number of nodes.
        msg_dim (int): event feature width.
        memory_dim (int): memory (and embedding) width. (default: ``100``)
        time_dim (int): time-encoding width. (default: ``100``)
        mailbox_size (int): mails kept per node. (default: ``10``)
        heads (int): attention heads. (default: ``2``)
        storage_device: where memory, message store and mailbox live (default: with the
            model).
        event_attention (bool): under a per-event PRES corrector, attend over the mailbox
            again for every (node, step) read with the read's memory as the query,
            :math:`\mathrm{LN}(s_k + \mathrm{MHA}(s_k, \ldots))` with
            :math:`s_k = s + k\,\gamma\hat\mu` (``True``: exact), or shift only the residual
            and keep the first read's attention (``False``). (default: ``False``)
    """

    reads_at_event_time = True

    def __init__(self, num_nodes: int, msg_dim: int, memory_dim: int = 100,
                 time_dim: int = 100, mailbox_size: int = 10, heads: int = 2,
                 storage_device: torch.device | str | None = None,
                 event_attention: bool = False) -> None:
        super().__init__(num_nodes, msg_dim, memory_dim, time_dim, "mean", "gru",
                         storage_device)
        if int(mailbox_size) <= 0:
            raise ValueError(f"mailbox_size must be positive, got {mailbox_size}")
        if int(heads) <= 0 or int(memory_dim) % int(heads):
            raise ValueError(f"heads must be positive and divide memory_dim={memory_dim}, got "
                             f"{heads}")
        self.mailbox_size = int(mailbox_size)
        self.event_attention = bool(event_attention)
        self.mail_dim = memory_dim + self.msg_dim
        self.key = torch.nn.Linear(self.mail_dim + time_dim, memory_dim)
        self.attn = torch.nn.MultiheadAttention(memory_dim, heads, batch_first=True)
        self.norm = torch.nn.LayerNorm(memory_dim)
        self.link_pred = LinkPredictor(memory_dim)
        self._reset(out_proj=False)

    def reset_parameters(self) -> None:
        self._reset(out_proj=True)

    def _reset(self, out_proj: bool) -> None:
        # MultiheadAttention._reset_parameters leaves out_proj.weight as constructed; a
        # re-initialisation draws it again, construction does not (seeded runs stay as
        # they were).
        self.memory.reset_parameters()
        self.key.reset_parameters()
        self.attn._reset_parameters()
        if out_proj:
            self.attn.out_proj.reset_parameters()
        self.norm.reset_parameters()
        self.link_pred.reset_parameters()
        self.reset_state()

    def _store(self) -> torch.device:
        return self.memory.storage_device or self.memory.device

    def reset_state(self) -> None:
        super().reset_state()
        dev, n, k = self._store(), self.num_nodes, self.mailbox_size
        self.mail = torch.zeros(n, k, self.mail_dim, device=dev, dtype=self.memory.dtype)
        self.mail_t = torch.zeros(n, k, dtype=torch.long, device=dev)
        self.mail_count = torch.zeros(n, dtype=torch.long, device=dev)  # mails ever received

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)  # the mailboxes are no buffers: move them as well
        if hasattr(self, "mail"):
            dev = self._store()
            self.mail = self.mail.to(dev, self.memory.dtype)
            self.mail_t, self.mail_count = self.mail_t.to(dev), self.mail_count.to(dev)
        return self

    def get_extra_state(self) -> dict[str, Tensor]:
        return {"mail": self.mail, "mail_t": self.mail_t, "mail_count": self.mail_count}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        dev = self._store()
        self.mail, self.mail_t = state["mail"].to(dev), state["mail_t"].to(dev)
        self.mail_count = state["mail_count"].to(dev)

    def embed(self, n_id: Tensor, t_query: Tensor, step: Tensor | None = None) -> Tensor:
        s, _ = self.memory(n_id, step)
        return self.norm(s + self._mail_attention(s, n_id, t_query))

    def embed_events(self, ends: Tensor, step: Tensor, t_reads: Tensor) -> Tensor:
        r"""With ``event_attention``, one mailbox attention per distinct (node, time, step)
        read; otherwise one per distinct (node, time) read, queried with the memory before the
        batch, and the read's memory shift enters through the residual:
        :math:`\mathrm{LN}(s + k\,\gamma\hat\mu + \mathrm{MHA}(s, \ldots))`."""
        if self.event_attention:
            return super().embed_events(ends, step, t_reads)
        n_id, times, _, inv = distinct_reads(ends, t_reads)
        s, _ = self.memory(n_id)
        u = s + self._mail_attention(s, n_id, times)
        return self.norm(shifted_reads(u, self.memory.step_increment(n_id), inv,
                                       self.memory.read_weights(step)))

    def _mail_attention(self, s: Tensor, n_id: Tensor, t_query: Tensor) -> Tensor:
        """Attention of the memories ``s`` of ``n_id`` over their mailboxes (``0`` without
        mail)."""
        idx = n_id.to(self._store())
        mail, mail_t = self.mail[idx].to(s.device), self.mail_t[idx].to(s.device)
        filled = self.mail_count[idx].to(s.device).clamp(max=self.mailbox_size)
        empty = torch.arange(self.mailbox_size, device=s.device) >= filled.unsqueeze(1)
        rel = (t_query.unsqueeze(1) - mail_t).to(s.dtype)
        keys = self.key(torch.cat([mail, self.memory.time_enc(rel.view(-1)).view(
            *rel.shape, -1)], dim=-1))
        none = filled == 0
        mask = empty & ~none.unsqueeze(1)  # rows without mail attend to a zero slot, then 0
        out, _ = self.attn(s.unsqueeze(1), keys, keys, key_padding_mask=mask,
                           need_weights=False)
        return out.squeeze(1).masked_fill(none.unsqueeze(1), 0.0)

    @torch.no_grad()
    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        """Update the memory, then deliver each event's mails to both endpoints' mailboxes
        (only the ``mailbox_size`` latest mails per node are kept)."""
        super().update_state(src, dst, t, msg)
        dev = self._store()
        # endpoints interleaved in event order (src_0, dst_0, src_1, ...): a node's mails
        # then sort by node in the order of its events, and the latest ones are kept
        node = torch.stack([src, dst], dim=1).view(-1).to(dev)
        other = torch.stack([dst, src], dim=1).view(-1).to(dev)
        when = t.repeat_interleave(2).to(dev, self.mail_t.dtype)  # int32 timestamps too
        feats = msg.repeat_interleave(2, dim=0).to(dev, self.mail.dtype)
        mails = torch.cat([self.memory.memory[other], feats], dim=-1)
        order = torch.argsort(node, stable=True)  # by node, then event order
        node_s = node[order]
        groups, counts = torch.unique_consecutive(node_s, return_counts=True)
        start = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        rank = torch.arange(node_s.numel(), device=dev) - start
        total = torch.repeat_interleave(counts, counts)
        keep = rank >= total - self.mailbox_size
        slot = (self.mail_count[node_s] + rank) % self.mailbox_size
        sel = order[keep]
        self.mail[node_s[keep], slot[keep]] = mails[sel]
        self.mail_t[node_s[keep], slot[keep]] = when[sel]
        self.mail_count[groups] += counts
