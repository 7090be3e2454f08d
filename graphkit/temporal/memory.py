r"""A vectorised node memory for memory-based dynamic GNNs (TGN, JODIE, APAN).

`"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
<https://arxiv.org/abs/2006.10637>`_ (Rossi et al., 2020). Every node :math:`i` keeps a memory
:math:`s_i` and the time :math:`t_i` of its last update. An event :math:`(u, v, t, e)` leaves a
*pending* message for both endpoints; the message of node :math:`i` with partner :math:`j` is
the identity message

.. math::
    m_i = [\, s_i \,\|\, s_j \,\|\, e \,\|\, \cos(w (t - t_i) + b) \,],

messages pending at a node are aggregated (``"last"``: the latest one; ``"mean"``: their mean)
and the memory is updated by a recurrent cell, :math:`s_i \leftarrow \mathrm{GRU}(\bar m_i, s_i)`
(TGN, APAN) or :math:`\mathrm{RNN}(\bar m_i, s_i)` (JODIE). The time encoding starts, as in
TGN's code, at the frequencies :math:`w_k = 10^{-9k/(d-1)}` and phase :math:`b = 0`, so
:math:`\cos(w \Delta t)` resolves time gaps from seconds to decades (PyG's default uniform
initialisation of :math:`w` turns gaps of :math:`10^5` seconds into noise); both stay
learnable.

As in TGN, a node's pending messages are those of the last batch it took part in; they are
applied (with gradient, so the updater learns from the link loss) whenever the node's memory
is read, and written to the stored memory (without gradient) when the node appears again.

Unlike PyG's ``TGNMemory`` the message store is a handful of flat tensors (node, partner,
time, features of each pending message), not a per-node Python dictionary, so storing and
applying a batch is a few vectorised tensor operations. The stored memory may live on another
device than the parameters (``storage_device="cpu"`` with a model on a GPU: only the rows a
batch touches are moved), and :meth:`TemporalMemory.flush` applies pending messages in chunks
of ``chunk_size`` nodes to bound peak memory in evaluation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.nn import GRUCell, RNNCell
from torch_geometric.nn.models.tgn import TimeEncoder

from graphkit.temporal._checks import check_batch

__all__ = ["TemporalMemory", "Update", "last_per_group"]

AGGREGATORS = ("last", "mean")
UPDATERS = ("gru", "rnn")


class Update(NamedTuple):
    """The rows of a read whose pending messages were applied: their positions ``rows`` in
    the read, memories before (``s_prev``) and after (``s_new``), and (when counted) the
    number of pending messages each update followed (``events``)."""

    rows: Tensor
    s_prev: Tensor
    s_new: Tensor
    events: Tensor | None


def last_per_group(group: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Index of the latest entry of every group (ties: the later entry wins).

    Args:
        group: group id of each entry, ``[P]``.
        t: time of each entry, ``[P]``.

    Returns:
        ``(groups, index)``: the sorted distinct groups and, for each, the position of its
        latest entry.
    """
    perm = torch.argsort(t, stable=True)
    perm = perm[torch.argsort(group[perm], stable=True)]
    g = group[perm]
    is_last = torch.ones_like(g, dtype=torch.bool)
    if g.numel() > 1:
        is_last[:-1] = g[1:] != g[:-1]
    return g[is_last], perm[is_last]


def _check_ids(n_id: Tensor) -> None:
    """Metadata only (no device sync): ``n_id`` is a vector of integer node ids."""
    if not isinstance(n_id, Tensor) or n_id.dim() != 1 or n_id.is_floating_point() or \
            n_id.dtype == torch.bool:
        raise ValueError("n_id must be a one-dimensional tensor of integer node ids, got "
                         + (f"dtype {n_id.dtype} and shape {list(n_id.shape)}"
                            if isinstance(n_id, Tensor) else type(n_id).__name__))


class TemporalMemory(torch.nn.Module):
    r"""Node memory of `"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
    <https://arxiv.org/abs/2006.10637>`_ (Rossi et al., 2020) with a tensor message store:

    .. math::
        \mathbf{m}_i = [\mathbf{s}_i \,\|\, \mathbf{s}_j \,\|\, \mathbf{e} \,\|\,
        \cos(\mathbf{w}(t - t_i) + \mathbf{b})], \qquad
        \mathbf{s}_i \leftarrow \mathrm{GRU}(\mathrm{agg}_i(\mathbf{m}), \mathbf{s}_i)
        \ \text{(or an RNN cell)}

    (the module docstring has the store's semantics).

    Args:
        num_nodes (int): number of nodes.
        raw_msg_dim (int): event-feature width :math:`|e|` (``0`` allowed).
        memory_dim (int): memory width :math:`|s|`.
        time_dim (int): time-encoding width.
        aggregator (str): ``"last"`` or ``"mean"``. (default: ``"last"``)
        updater (str): ``"gru"`` or ``"rnn"``. (default: ``"gru"``)
        storage_device (torch.device, optional): where the memory and the message store live
            (default: with the parameters).
        chunk_size (int): nodes per chunk in :meth:`flush`. (default: ``65536``)
    """

    def __init__(self, num_nodes: int, raw_msg_dim: int, memory_dim: int, time_dim: int,
                 aggregator: str = "last", updater: str = "gru",
                 storage_device: torch.device | str | None = None,
                 chunk_size: int = 65536) -> None:
        super().__init__()
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        if int(raw_msg_dim) < 0:
            raise ValueError(f"raw_msg_dim must be non-negative, got {raw_msg_dim}")
        if int(memory_dim) <= 0 or int(time_dim) <= 0:
            raise ValueError(f"memory_dim and time_dim must be positive, got {memory_dim} "
                             f"and {time_dim}")
        if aggregator not in AGGREGATORS:
            raise ValueError(f"aggregator must be one of {AGGREGATORS}, got {aggregator!r}")
        if updater not in UPDATERS:
            raise ValueError(f"updater must be one of {UPDATERS}, got {updater!r}")
        if int(chunk_size) <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.num_nodes, self.raw_msg_dim = int(num_nodes), int(raw_msg_dim)
        self.memory_dim, self.time_dim = int(memory_dim), int(time_dim)
        self.aggregator, self.chunk_size = aggregator, int(chunk_size)
        self.storage_device = None if storage_device is None else torch.device(storage_device)
        self.message_dim = 2 * self.memory_dim + self.raw_msg_dim + self.time_dim
        self.time_enc = TimeEncoder(self.time_dim)
        cell = GRUCell if updater == "gru" else RNNCell
        self.updater = cell(self.message_dim, self.memory_dim)
        self.corrector: Any = None  # set by graphkit.temporal.pres.PRES
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            freq = 10.0 ** -torch.linspace(0, 9, self.time_dim)
            self.time_enc.lin.weight.copy_(freq.view(-1, 1))
            self.time_enc.lin.bias.zero_()
        self.updater.reset_parameters()
        if self.corrector is not None:
            self.corrector.reset_parameters()
        self.reset_state()

    # ------------------------------------------------------------------ state
    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.time_enc.lin.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters, which the memory and the stored messages
        follow (after ``.double()``, :meth:`reset_state` builds a float64 memory)."""
        return self.time_enc.lin.weight.dtype

    def _storage(self) -> torch.device:
        return self.storage_device or self.device

    def reset_state(self) -> None:
        """Zero every memory and last-update time, empty the message store."""
        dev = self._storage()
        self.memory = torch.zeros(self.num_nodes, self.memory_dim, device=dev, dtype=self.dtype)
        self.last_update = torch.zeros(self.num_nodes, dtype=torch.long, device=dev)
        self.pend_node = torch.empty(0, dtype=torch.long, device=dev)
        self.pend_other = torch.empty(0, dtype=torch.long, device=dev)
        self.pend_t = torch.empty(0, dtype=torch.long, device=dev)
        self.pend_msg = torch.empty(0, self.raw_msg_dim, device=dev, dtype=self.dtype)
        if self.corrector is not None:
            self.corrector.reset_state()

    _STATE = ("memory", "last_update", "pend_node", "pend_other", "pend_t", "pend_msg")

    def _apply(self, fn, recurse=True):
        # The stream state is no buffer (it may live on storage_device): after .to(),
        # .double(), .cuda() it follows the parameters' dtype, and their device unless a
        # storage device is set, as PyG's TGNMemory buffers do.
        super()._apply(fn, recurse)
        dev = self._storage()
        for k in self._STATE:
            t = getattr(self, k, None)
            if t is not None:
                setattr(self, k, t.to(dev, self.dtype) if t.is_floating_point() else t.to(dev))
        return self

    def get_extra_state(self) -> dict[str, Tensor]:
        return {k: getattr(self, k).clone() for k in self._STATE}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        dev = self._storage()
        for k in self._STATE:
            setattr(self, k, state[k].to(dev))

    # ------------------------------------------------------------------ reading
    def pending_mask(self, n_id: Tensor) -> Tensor:
        """``[len(n_id)]`` booleans: whether the node has pending messages."""
        return torch.isin(n_id.to(self._storage()), self.pend_node).to(n_id.device)

    def stored(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        """Stored memory and last-update time of ``n_id`` (no pending messages applied)."""
        idx = n_id.to(self._storage())
        return (self.memory.index_select(0, idx).to(self.device),
                self.last_update.index_select(0, idx).to(self.device))

    def compute(self, n_id: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""Apply the pending messages of the distinct nodes ``n_id`` (differentiable).

        Returns:
            ``(s_prev, s_new, last_update, has_update)``: stored memory, memory after the
            pending messages (equal to ``s_prev`` where ``has_update`` is false), their new
            last-update times and the mask of nodes that had pending messages.
        """
        return self._apply_pending(n_id)[:4]

    def _apply_pending(self, n_id: Tensor, count: bool = False
                       ) -> tuple[Tensor, Tensor, Tensor, Tensor, Update | None]:
        """:meth:`compute`, and the :class:`Update` of the rows that had pending messages
        (``None`` if none had; ``events`` only with ``count``)."""
        dev = self.device
        s_prev, last = self.stored(n_id)
        sel = torch.isin(self.pend_node, n_id.to(self._storage())).nonzero().view(-1)
        has = torch.zeros(n_id.numel(), dtype=torch.bool, device=dev)
        if sel.numel() == 0:
            return s_prev, s_prev, last, has, None
        node, other = self.pend_node[sel].to(dev), self.pend_other[sel].to(dev)
        t, raw = self.pend_t[sel].to(dev), self.pend_msg[sel].to(dev)
        # position of every pending message's node inside n_id
        order = torch.argsort(n_id)
        pos = order[torch.searchsorted(n_id[order], node)]
        t_max = torch.full((n_id.numel(),), torch.iinfo(torch.long).min, device=dev)
        t_max = t_max.scatter_reduce(0, pos, t, reduce="amax")
        if self.aggregator == "last":  # keep one message per node *before* building them
            targets, idx = last_per_group(pos, t)
            agg = self._messages(s_prev, last, pos[idx], other[idx], t[idx], raw[idx])
        else:
            targets, inv = torch.unique(pos, return_inverse=True)
            msg = self._messages(s_prev, last, pos, other, t, raw)
            agg = msg.new_zeros(targets.numel(), msg.size(1)).index_add_(0, inv, msg)
            agg = agg / torch.bincount(inv, minlength=targets.numel()).unsqueeze(1).to(agg)
        old_rows = s_prev.index_select(0, targets)
        new_rows = self.updater(agg, old_rows)
        s_new = s_prev.index_copy(0, targets, new_rows)
        has[targets] = True
        last_new = torch.where(has, t_max, last)
        events = torch.bincount(pos, minlength=n_id.numel()).index_select(0, targets) \
            if count else None
        return s_prev, s_new, last_new, has, Update(targets, old_rows, new_rows, events)

    def _messages(self, s_prev: Tensor, last: Tensor, pos: Tensor, other: Tensor, t: Tensor,
                  raw: Tensor) -> Tensor:
        """Identity messages :math:`[s_i \\| s_j \\| e \\| \\cos(w(t - t_i) + b)]` of the pending
        messages whose node sits at ``pos`` in the batch."""
        rel_t = (t - last.index_select(0, pos)).to(s_prev.dtype)
        partner = self.memory.index_select(0, other.to(self._storage())).to(s_prev.device)
        return torch.cat([s_prev.index_select(0, pos), partner, raw, self.time_enc(rel_t)],
                         dim=-1)

    def forward(self, n_id: Tensor, step: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Memory of the nodes ``n_id`` with pending messages applied, and their last-update
        times; a PRES corrector (if attached) fuses it with its prediction.

        Without ``step`` every row of a repeated node is the same. With ``step`` each row is a
        read of node
        ``n_id[r]`` by an event preceded by ``step[r]`` events of the same node in the current
        batch (rows may repeat a node); without a corrector every read of a node is the same.
        """
        _check_ids(n_id)
        if step is None:
            # pending messages are applied to distinct nodes (a repeated id would get them
            # only in its first row)
            nodes, inv = torch.unique(n_id, return_inverse=True)
            s_prev, s_new, last, has, update = self._apply_pending(nodes)
            if self.corrector is not None:
                s_new = self.corrector.correct(nodes, s_prev, s_new, has, update)
            return s_new.index_select(0, inv), last.index_select(0, inv)
        if step.shape != n_id.shape:
            raise ValueError(f"step must have one entry per node, got {tuple(step.shape)} for "
                             f"{tuple(n_id.shape)}")
        nodes, inv = torch.unique(n_id, return_inverse=True)
        s_prev, s_new, last, has, update = self._apply_pending(nodes)
        last = last.index_select(0, inv)
        if self.corrector is None:
            return s_new.index_select(0, inv), last
        return self.corrector.correct_events(nodes, inv, step, s_prev, s_new, has, update), \
            last

    def step_increment(self, n_id: Tensor) -> Tensor:
        """What each earlier event of a node in the current batch adds to the memory its
        later reads see: the per-event corrector's increment, ``0`` without one. A read of
        ``n_id[i]`` at step ``k`` is ``memory(n_id)[0][i] + k * step_increment(n_id)[i]``."""
        if self.corrector is None or not self.corrector.per_event:
            return torch.zeros(n_id.numel(), self.memory_dim, device=self.device)
        return self.corrector.step_increment(n_id, self.time_enc.lin.weight)

    def read_weights(self, step: Tensor) -> Tensor:
        """How many :meth:`step_increment` a read preceded by ``step`` of its node's events
        in the batch adds (``step`` itself, unless the corrector says otherwise)."""
        if self.corrector is None or not self.corrector.per_event:
            return step
        return self.corrector.read_weights(step)

    # ------------------------------------------------------------------ writing
    @torch.no_grad()
    def flush(self, n_id: Tensor) -> None:
        """Write the pending messages of ``n_id`` into the stored memory (chunk by chunk) and
        drop them from the store; the corrector (if any) observes the increments."""
        _check_ids(n_id)
        n_id = torch.unique(n_id.long())  # index_copy_ takes int64 rows only (int32 ids too)
        store = self._storage()
        counted = self.corrector is not None
        results = []  # every chunk reads the memory before the flush, as one pass would
        for start in range(0, n_id.numel(), self.chunk_size):
            chunk = n_id[start:start + self.chunk_size].to(self.device)
            _, _, last, _, update = self._apply_pending(chunk, count=counted)
            if update is not None:
                results.append((chunk.index_select(0, update.rows), last.index_select(
                    0, update.rows), update))
        for nodes, last, update in results:
            if counted:
                self.corrector.observe_update(nodes, update.s_prev, update.s_new, update.events)
            idx = nodes.to(store)
            self.memory.index_copy_(0, idx, update.s_new.to(store))
            self.last_update.index_copy_(0, idx, last.to(store))
        keep = (~torch.isin(self.pend_node, n_id.to(store))).nonzero().view(-1)
        for k in ("pend_node", "pend_other", "pend_t", "pend_msg"):
            setattr(self, k, getattr(self, k).index_select(0, keep))

    @torch.no_grad()
    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        """Apply the pending messages of the batch's nodes, then store the batch's messages
        (one for each endpoint of every event)."""
        # last-update times are int64: a float t would fail later, inside a scatter
        # the previous batch's messages are all pending still: none may come after this batch
        check_batch(self.num_nodes, src, dst, t, msg, self.raw_msg_dim, integer_time=True,
                    ordered_time=True, last_t=self.pend_t.max() if self.pend_t.numel() else None)
        if src.numel() == 0:
            return
        self.flush(torch.cat([src, dst]))
        # A node's messages as a source are stored before those as a destination, as in
        # TGN's code: at equal times the "last" aggregator keeps the destination message.
        store = self._storage()
        self.pend_node = torch.cat([self.pend_node, src.to(store), dst.to(store)])
        self.pend_other = torch.cat([self.pend_other, dst.to(store), src.to(store)])
        self.pend_t = torch.cat([self.pend_t, t.to(store), t.to(store)])
        m = msg.to(store, self.pend_msg.dtype)
        self.pend_msg = torch.cat([self.pend_msg, m, m])

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"memory_dim={self.memory_dim}, aggregator={self.aggregator!r}, "
                f"updater={self.updater.__class__.__name__})")
