r"""NAT: dictionary-type neighbourhood representations and joint structural features.

`"Neighborhood-aware Scalable Temporal Network Representation Learning"
<https://arxiv.org/abs/2209.01084>`_ (Luo and Li, LoG 2022), following the official code
(``Graph-COM/Neighborhood-Aware-Temporal-Network``, ``module.py`` and ``GAT.py``).

State (rewritten every batch, never learned): a short *self representation*
:math:`s_u \in \mathbb{R}^{d_s}` per node, the last interaction of every node
(``prev_opp``, ``prev_eid``, ``prev_t``), and the :class:`~graphkit.temporal.NCache` whose
hop-:math:`h` dictionary of node :math:`u` maps down-sampled :math:`h`-hop neighbours
:math:`x` to vectors :math:`r_{u,h}(x) \in \mathbb{R}^{d}` (:math:`d` = ``ngh_dim``, tiny).

Scoring a query ``(u, w, t)``:

1. **Self representation**, advanced lazily with the node's previous interaction
   :math:`(o, e, \tau)`:
   :math:`\tilde s_u = \mathrm{GRU}_s(W_s [s_o \,\|\, m_e \,\|\, \cos(\omega\tau + \phi)], s_u)`.
2. **Dictionary refresh** of every slot :math:`(x, e, \tau, r)` of the queried nodes:
   :math:`r' = \mathrm{GRU}_n(W_n [s_x \,\|\, m_e \,\|\, \cos(\omega\tau + \phi)], r)`
   (zero for empty slots). The time encoding takes the *absolute* timestamp, as the official
   code does.
3. **Joint structural features**: the entries of :math:`u`'s and :math:`w`'s dictionaries are
   grouped by key; each key :math:`x` gets the 6-bit code
   :math:`c(x) = \sum_h 2^h [x \in D_h(u)] + 2^{h+3} [x \in D_h(w)]` and the feature
   :math:`z_x = [\sum f_x \,\|\, \sum r' \,\|\, \mathrm{Emb}(c(x))]` (node features, refreshed
   values, a learned code embedding).
4. **Encoder** (the official "GAT", which is attention-free): dropout, a bias-free linear map to
   ``heads`` :math:`\times` ``out_channels``, dropout, a *sum* over the pair's keys, a mean over
   heads, plus a bias: :math:`g_{uw} = \frac{1}{H}\sum_k \sum_x W_k z_x + b`. Here the sum is
   taken before the linear map (equal, and one row per pair instead of per key), so the second
   dropout acts on the pooled vector rather than on each key's projection (a deviation).
5. **Decoder**: :math:`\mathrm{MLP}([g_{uw} \,\|\, \tilde s_u \,\|\, \tilde s_w])` gives the logit.

After the batch (:meth:`NAT.update_state`, no gradient): :math:`s_u \leftarrow \tilde s_u`; hop 0
of :math:`u` stores :math:`u` with its refreshed value; hop 1 of :math:`u` stores :math:`w` with
the refreshed value :math:`w` had there (zeros if new); every current hop-1 entry of :math:`u`
is copied into :math:`w`'s hop 2 (and symmetrically).

**On the CPU** three steps use kernels of their own, none of which changes the model: the
encoder's dropout masks come from :func:`graphkit.ops.dropout` (the same distribution, a faster
random stream), the join groups entries in linear time (:func:`joint_codes` with
``sorted=False``) and the cache writes run in one Numba pass (:meth:`NCache.write`). On other
devices the same steps are tensor operations.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import GRUCell, Linear

from graphkit.data.validation import check_features
from graphkit.ops.dropout import dropout, dropout_index_add
from graphkit.temporal._checks import check_batch
from graphkit.temporal.ncache import NCache, apply_keeping_float64, last_occurrence

__all__ = ["NAT", "CosineTimeEncoding", "joint_codes"]


class CosineTimeEncoding(torch.nn.Module):
    r"""TGAT's functional time encoding (`Xu et al., ICLR 2020
    <https://arxiv.org/abs/2002.07962>`_), as NAT uses it:

    .. math::
        \phi(\tau) = \cos(\tau \boldsymbol{\omega} + \boldsymbol{\phi}), \qquad
        \omega_i = 10^{-9 i / (d - 1)}, \ \phi_i = 0 \text{ at initialisation (both learnt)}.

    Args:
        dim (int): encoding width :math:`d`.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if int(dim) < 0:
            raise ValueError(f"dim must be non-negative, got {dim}")
        self.dim = int(dim)
        self.freq = torch.nn.Parameter(torch.empty(self.dim))
        self.phase = torch.nn.Parameter(torch.empty(self.dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.freq.copy_(1.0 / 10 ** torch.linspace(0, 9, self.dim))
            self.phase.zero_()

    def forward(self, t: Tensor) -> Tensor:
        return torch.cos(t.to(self.freq.dtype).unsqueeze(-1) * self.freq + self.phase)


def joint_codes(pair: Tensor, key: Tensor, code: Tensor, num_nodes: int,
                sorted: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Group dictionary entries by ``(pair, key)`` and OR their hop bits.

    Args:
        pair, key, code: one row per (non-empty) dictionary entry; ``code`` is ``1 << hop`` for
            the first endpoint and ``8 << hop`` for the second. Keys lie in ``[0, num_nodes)``.
        num_nodes: key range.
        sorted: groups in ascending ``(pair, key)`` order; ``False`` leaves the order within a
            pair unspecified, which on the CPU groups in linear time (a Numba kernel, no sort)
            unless ``num_nodes`` is much larger than the number of entries.

    Returns:
        ``(group_pair, group_key, group_code, inverse)``: one row per distinct ``(pair, key)``
        and, per entry, the index of its group. Keys are unique per (owner, hop), so the sum of
        codes in a group is their bitwise OR.
    """
    if pair.numel():
        lo, hi = (int(v) for v in torch.aminmax(key))
        if lo < 0 or hi >= num_nodes:
            raise ValueError(f"keys must lie in [0, {num_nodes}), got {lo if lo < 0 else hi}")
        if int(pair.min()) < 0:
            raise ValueError(f"pair ids must be non-negative, got {int(pair.min())}")
    return _group_entries(pair, key, code, num_nodes, sorted)


def _group_entries(pair: Tensor, key: Tensor, code: Tensor, num_nodes: int, sorted: bool
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`joint_codes` without its range checks, for entries read from a cache (whose keys
    the cache checked when it stored them): no device synchronisation for them."""
    # the kernel allocates two arrays of num_nodes entries: worth it while they are not much
    # larger than the entries themselves (else a sort of the entries costs less)
    if (not sorted and pair.device.type == "cpu" and pair.numel()
            and num_nodes <= 16 * pair.numel()):
        from graphkit.temporal._nat_numba import group_pairs

        arrays = (x.to(torch.long).contiguous().numpy() for x in (pair, key, code))
        out = group_pairs(*arrays, int(pair.max()) + 1, int(num_nodes))
        return tuple(torch.from_numpy(x) for x in out)  # type: ignore[return-value]
    group, inverse = torch.unique(pair * num_nodes + key, return_inverse=True)
    summed = torch.zeros(group.numel(), dtype=torch.long, device=code.device)
    summed.scatter_add_(0, inverse, code)
    return group // num_nodes, group % num_nodes, summed, inverse


def _same(a: Tensor, b: Tensor) -> bool:
    return a is b or torch.equal(a, b)


class NAT(torch.nn.Module):
    r"""NAT from `"Neighborhood-aware Scalable Temporal Network Representation Learning"
    <https://arxiv.org/abs/2209.01084>`_ (Luo and Li, LoG 2022). A query :math:`(u, w, t)` is
    scored from the nodes' self representations and the joint features of their N-cache
    dictionaries (the module docstring has every step):

    .. math::
        g_{uw} = \frac{1}{H}\sum_{k=1}^{H} \mathbf{W}_k \sum_{x \in D(u) \cup D(w)}
        \big[\mathbf{f}_x \,\|\, \mathbf{r}'_x \,\|\, \mathrm{Emb}(c(x))\big] + \mathbf{b},
        \qquad
        \hat{y}_{uw} = \mathrm{MLP}\big([g_{uw} \,\|\, \tilde{\mathbf{s}}_u \,\|\,
        \tilde{\mathbf{s}}_w]\big),

    with :math:`c(x)` the 6-bit hop code of key :math:`x` in both dictionaries.

    Implements the :class:`~graphkit.temporal.link_training.TemporalLinkModel` protocol.

    Args:
        num_nodes (int): number of nodes.
        msg_dim (int): width of the event features; ``0`` uses none (a stream's features are
            then ignored, with one warning). (default: ``0``)
        node_features (Tensor, optional): ``[num_nodes, F]`` node features summed into the joint
            features (default: none, ``F = 0``).
        sizes (tuple of int): slots per hop :math:`(M_0, M_1, M_2)`; ``(0, 0, 0)`` disables the
            caches (self representations only). (default: ``(1, 32, 16)``)
        ngh_dim (int): width of a dictionary value. (default: ``4``)
        self_dim (int): width of the self representation. (default: ``72``)
        pos_dim (int): width of the 6-bit code embedding. (default: ``16``)
        time_dim (int): width of the time encoding. (default: ``1``)
        out_channels (int): width of the pooled pair representation (the official code uses the
            node-feature width, 172 for the TGN-format files). (default: ``172``)
        heads (int): heads of the sum-pooling encoder. (default: ``2``)
        dropout (float): dropout of the encoder. (default: ``0.1``)
        replace_prob (float): the cache's replacement probability :math:`\alpha`.
            (default: ``0.9``)
        seed (int): the cache's hash seed and replacement stream. (default: ``0``)
        official_hash (bool): the official code's hash seed ``seed % 100`` (see
            :class:`~graphkit.temporal.ncache.NCache`). (default: ``False``)

    Shapes:
        ``score``: ``src, dst, neg_dst, t [B]``, ``msg [B, msg_dim]`` -> two ``[B]`` logits.
    """

    def __init__(self, num_nodes: int, msg_dim: int = 0, node_features: Tensor | None = None,
                 sizes: tuple[int, ...] = (1, 32, 16), ngh_dim: int = 4, self_dim: int = 72,
                 pos_dim: int = 16, time_dim: int = 1, out_channels: int = 172, heads: int = 2,
                 dropout: float = 0.1, replace_prob: float = 0.9, seed: int = 0,
                 official_hash: bool = False) -> None:
        super().__init__()
        if len(sizes) != 3:
            raise ValueError(f"sizes must give the slots of hops 0, 1 and 2, got {sizes}")
        if min(ngh_dim, self_dim, pos_dim, time_dim, out_channels, heads) <= 0:
            raise ValueError("ngh_dim, self_dim, pos_dim, time_dim, out_channels and heads "
                             "must be positive")
        if int(msg_dim) < 0:
            raise ValueError(f"msg_dim must be non-negative, got {msg_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.num_nodes = int(num_nodes)
        self.msg_dim = int(msg_dim)
        self._warned_unused_msg = False
        self.sizes = tuple(int(m) for m in sizes)
        self.ngh_dim, self.self_dim, self.pos_dim = int(ngh_dim), int(self_dim), int(pos_dim)
        self.out_channels, self.heads, self.dropout = int(out_channels), int(heads), dropout
        self.cache = NCache(num_nodes, self.sizes, rep_dim=ngh_dim, replace_prob=replace_prob,
                            seed=seed, official_hash=official_hash)
        if node_features is None:
            node_features = torch.zeros(self.num_nodes, 0)
        if node_features.dim() != 2 or node_features.size(0) != self.num_nodes:
            raise ValueError(f"node_features must have shape [{self.num_nodes}, F], got "
                             f"{list(node_features.shape)}")
        check_features(node_features, name="node_features")  # NaN would reach every score
        self.register_buffer("node_features", node_features.float())
        self.feat_dim = node_features.size(1)

        self.time_enc = CosineTimeEncoding(time_dim)
        in_dim = self_dim + self.msg_dim + time_dim
        self.self_in = Linear(in_dim, self_dim, bias=False)
        self.self_gru = GRUCell(self_dim, self_dim)
        self.ngh_in = Linear(in_dim, ngh_dim, bias=False)
        self.ngh_gru = GRUCell(ngh_dim, ngh_dim)
        self.pos_emb = torch.nn.Embedding(64, pos_dim)
        self.pool = Linear(self.feat_dim + ngh_dim + pos_dim, heads * out_channels, bias=False)
        self.pool_bias = torch.nn.Parameter(torch.empty(out_channels))
        self.dec1 = Linear(out_channels + 2 * self_dim, out_channels)
        self.dec2 = Linear(out_channels, 1)

        # the hop of each slot of refreshed_dictionaries' side-by-side layout
        self.register_buffer("slot_hop", torch.repeat_interleave(
            torch.arange(3), torch.tensor(self.sizes)), persistent=False)
        self.register_buffer("self_rep", torch.zeros(self.num_nodes, self_dim))
        self.register_buffer("prev_opp", torch.full((self.num_nodes,), -1, dtype=torch.long))
        self.register_buffer("prev_eid", torch.full((self.num_nodes,), -1, dtype=torch.long))
        self.register_buffer("prev_t", torch.zeros(self.num_nodes, dtype=torch.float64))
        self._msgs = torch.zeros(0, self.msg_dim)
        self._pending: dict[str, Any] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.time_enc, self.self_in, self.self_gru, self.ngh_in, self.ngh_gru,
                  self.pos_emb, self.pool, self.dec1, self.dec2):
            m.reset_parameters()
        torch.nn.init.zeros_(self.pool_bias)
        self.reset_state()

    # ------------------------------------------------------------------ state
    def reset_state(self) -> None:
        """Empty the caches, zero the self representations, forget previous interactions."""
        self.cache.reset()
        self.self_rep.zero_()
        self.prev_opp.fill_(-1)
        self.prev_eid.fill_(-1)
        self.prev_t.zero_()
        self._msgs = self.self_rep.new_zeros(0, self.msg_dim)
        self._pending = None

    def _apply(self, fn, recurse=True):
        apply_keeping_float64(self, lambda f: super(NAT, self)._apply(f, recurse), fn,
                              ["prev_t"])
        # the event features are no buffer: follow self_rep
        self._msgs = self._msgs.to(self.self_rep.device, self.self_rep.dtype)
        return self

    def get_extra_state(self) -> dict[str, Any]:
        return {"msgs": self._msgs.cpu()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._msgs = state["msgs"].to(self.self_rep.device)
        self._pending = None

    def _edge_msg(self, eid: Tensor) -> Tensor:
        if self.msg_dim == 0 or self._msgs.size(0) == 0:
            return self.self_rep.new_zeros(eid.numel(), self.msg_dim)
        return self._msgs[eid.clamp(min=0)] * (eid >= 0).unsqueeze(-1)

    # ------------------------------------------------------------------ representations
    def self_representation(self, nodes: Tensor) -> Tensor:
        """:math:`\\tilde s`: self representations advanced by each node's last interaction."""
        prev = self.prev_opp[nodes]
        has = (prev >= 0).unsqueeze(-1)
        inp = torch.cat([self.self_rep[prev.clamp(min=0)], self._edge_msg(self.prev_eid[nodes]),
                         self.time_enc(self.prev_t[nodes])], dim=-1)
        h = self.self_rep[nodes]
        return torch.where(has, self.self_gru(self.self_in(inp), h), h)

    def refreshed_dictionary(self, hop: int, nodes: Tensor
                             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Slots of ``nodes``' hop dictionary with values refreshed by the GRU.

        Returns ``(key [B, M], eid, time, rep' [B, M, ngh_dim])``; empty slots have key ``-1``
        and value zero.
        """
        key, eid, time, rep = self.cache.read(hop, nodes)
        return key, eid, time, self._refresh(key, eid, time, rep)

    def refreshed_dictionaries(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All hops of ``nodes``' dictionaries side by side, values refreshed by the GRU.

        Returns ``(key [B, S], eid, time, rep' [B, S, ngh_dim])`` with ``S = M_0 + M_1 + M_2``:
        slots ``[0, M_0)`` are hop 0, the next ``M_1`` hop 1, the last ``M_2`` hop 2 (the hop
        of each slot is ``slot_hop``). One GRU call refreshes every hop (the same cell).
        """
        key, eid, time, rep = self._read_all(nodes)
        return key, eid, time, self._refresh(key, eid, time, rep)

    def _read_all(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The cache's slots of ``nodes`` for every hop side by side (values not refreshed)."""
        reads = [self.cache.read(hop, nodes) for hop in range(len(self.sizes))]
        return tuple(torch.cat(x, dim=1) for x in zip(*reads))  # type: ignore[return-value]

    def _refresh(self, key: Tensor, eid: Tensor, time: Tensor, rep: Tensor) -> Tensor:
        """:math:`r'` of every slot (``[..., ngh_dim]``, zero where the key is ``-1``)."""
        flat = key.reshape(-1)
        full = (flat >= 0).nonzero().view(-1)
        out = rep.new_zeros(flat.numel(), self.ngh_dim)
        if full.numel() == 0:
            return out.view(*key.shape, self.ngh_dim)
        # W [s_x || m_e || cos(.)] = (W_s s)[x] + W_r [m_e || cos(.)]: project every self
        # representation once instead of gathering d_s-wide rows per slot.
        w_self, w_rest = self.ngh_in.weight.split([self.self_dim, self.ngh_in.in_features
                                                   - self.self_dim], dim=1)
        proj = F.linear(self.self_rep, w_self)
        rest = torch.cat([self._edge_msg(eid.reshape(-1)[full]),
                          self.time_enc(time.reshape(-1)[full])], dim=-1)
        x = proj.index_select(0, flat[full]) + F.linear(rest, w_rest)
        new = self.ngh_gru(x, rep.reshape(-1, self.ngh_dim).index_select(0, full))
        return out.index_put((full,), new).view(*key.shape, self.ngh_dim)

    def pair_entries(self, key: Tensor, rep: Tensor, a: Tensor, b: Tensor
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Non-empty entries of the pairs (row ``a[p]``, row ``b[p]``) of dictionaries laid out
        as :meth:`refreshed_dictionaries` returns them (``key [B, S]``, ``rep [B, S, d]``).

        Returns ``(pair, key, rep, code)``, one row per entry, pair by pair, ``code = 1 << hop``
        for the first endpoint and ``8 << hop`` for the second (empty slots are never
        returned).
        """
        width = key.size(1)
        joined = torch.cat([key.index_select(0, a), key.index_select(0, b)], dim=1)  # [P, 2S]
        pos = (joined.view(-1) >= 0).nonzero().view(-1)
        pair, col = pos // (2 * width), pos % (2 * width)
        second = col >= width
        slot = col - second * width
        code = self.slot_hop.index_select(0, slot)
        code = (1 << code) << (3 * second)
        row = torch.where(second, b.index_select(0, pair), a.index_select(0, pair))
        reps = rep.reshape(-1, rep.size(-1)).index_select(0, row * width + slot)
        return pair, joined.view(-1).index_select(0, pos), reps, code

    def structural_codes(self, u: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The 6-bit code of every key in the joined dictionaries of pairs ``(u[p], w[p])``.

        Returns ``(pair, key, code)``, one row per distinct ``(pair, key)``.
        """
        nodes = torch.cat([u, w]).long()
        key, _, _, rep = self._read_all(nodes)
        ar = torch.arange(u.numel(), device=nodes.device)
        pair, key, _, code = self.pair_entries(key, rep, ar, ar + u.numel())
        g_pair, g_key, g_code, _ = _group_entries(pair, key, code, self.num_nodes, True)
        return g_pair, g_key, g_code

    def pair_encoding(self, key: Tensor, rep: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """Pool the joint structural features of pairs (row ``a[p]``, row ``b[p]``) of the
        dictionaries ``key [B, S]``, ``rep [B, S, d]`` (:meth:`refreshed_dictionaries`):
        ``[P, out_channels]``."""
        num_pairs = a.numel()
        pair, key, rep, code = self.pair_entries(key, rep, a, b)
        out = self.pool_bias.expand(num_pairs, -1)
        if pair.numel() == 0:
            return out
        # groups are summed per pair, so their order does not matter
        g_pair, g_key, g_code, inverse = _group_entries(pair, key, code, self.num_nodes,
                                                        sorted=False)
        rep_sum = rep.new_zeros(g_key.numel(), self.ngh_dim).index_add_(0, inverse, rep)
        count = torch.bincount(inverse, minlength=g_key.numel()).unsqueeze(-1)
        # index_select rather than the embedding call: its backward is an index_add over 64
        # rows, not the embedding's sort-based accumulation (a sixth of this backward pass)
        code_emb = self.pos_emb.weight.index_select(0, g_code)
        feat = torch.cat([self.node_features[g_key] * count, rep_sum, code_emb], dim=-1)
        # The projection is linear, so it is applied after the sum (P rows, not one per key);
        # dropout and the sum in one pass on the CPU (no mask or dropped copy is built)
        summed = dropout_index_add(feat, g_pair, num_pairs, self.dropout, self.training)
        h = dropout(self.pool(summed), self.dropout, self.training)
        return h.view(num_pairs, self.heads, self.out_channels).mean(1) + out

    # ------------------------------------------------------------------ protocol
    def score(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, neg_dst: Tensor
              ) -> tuple[Tensor, Tensor]:
        """Logits of ``(src, dst)`` and ``(src, neg_dst)`` from the state before the batch."""
        b = src.numel()
        check_batch(self.num_nodes, src, dst, t, neg_dst=neg_dst)
        nodes, row = torch.unique(torch.cat([src, dst, neg_dst]).long(), return_inverse=True)
        h_self = self.self_representation(nodes)
        dicts = self.refreshed_dictionaries(nodes)
        a, other = torch.cat([row[:b], row[:b]]), row[b:]
        g = self.pair_encoding(dicts[0], dicts[3], a, other)
        z = torch.cat([g, h_self[a], h_self[other]], dim=-1)
        logits = self.dec2(F.relu(self.dec1(z))).view(-1)
        own = row[: 2 * b]
        self._pending = {"src": src, "dst": dst, "h_self": h_self[own].detach(),
                         "dicts": tuple(x[own].detach() for x in dicts)}
        return logits[:b], logits[b:]

    @torch.no_grad()
    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        """Write the batch's events into the self representations and the N-cache."""
        # checked before anything is written; msg_dim=0 ignores the stream's features, and
        # says so once rather than training on less than the user gave it without a word
        # and in time order: sorted, and none before the last interaction held
        check_batch(self.num_nodes, src, dst, t, msg if self.msg_dim else None, self.msg_dim,
                    ordered_time=True, last_t=self.prev_t.max())
        if (not self.msg_dim and msg is not None and msg.dim() == 2 and msg.size(-1) > 0
                and not self._warned_unused_msg):
            self._warned_unused_msg = True
            warnings.warn(f"NAT was built with msg_dim=0, so the stream's {msg.size(-1)}-wide "
                          f"event features are not used; pass msg_dim={msg.size(-1)} to use them",
                          UserWarning, stacklevel=2)
        b = src.numel()
        if b == 0:
            return
        pending = self._pending
        self._pending = None
        # the batch just scored (equal ids, not only the same tensor objects): write the
        # representations computed while scoring, as the official model does; the identity
        # test first spares the training loop's batches a device sync per batch
        if pending is None or not _same(pending["src"], src) or not _same(pending["dst"], dst):
            nodes = torch.cat([src, dst]).long()
            pending = {"h_self": self.self_representation(nodes),
                       "dicts": self.refreshed_dictionaries(nodes)}
        u = torch.cat([src, dst]).long()
        v = torch.cat([dst, src]).long()
        eid = torch.arange(b, device=u.device) + self._msgs.size(0)
        eid2, t2 = eid.repeat(2), t.repeat(2)
        if self.msg_dim:
            self._msgs = torch.cat([self._msgs, msg.to(self._msgs)])
        else:
            self._msgs = self._msgs.new_zeros(self._msgs.size(0) + b, 0)

        # the official code writes the sources' rows, then the destinations' (last writer
        # wins): a node that is a destination early in the batch and a source later keeps
        # its earlier event, a quirk kept so that results follow the official model
        last = last_occurrence(u)
        nodes = u[last]
        self.self_rep[nodes] = pending["h_self"][last]
        self.prev_opp[nodes] = v[last]
        self.prev_eid[nodes] = eid2[last]
        self.prev_t[nodes] = t2[last].to(torch.float64)

        m0, m1 = self.sizes[0], self.sizes[1]
        key, eid_all, time_all, rep_all = pending["dicts"]
        r0 = rep_all[:, :m0]
        k1, e1, tm1, r1 = (x[:, m0:m0 + m1] for x in (key, eid_all, time_all, rep_all))
        if self.sizes[0]:
            self.cache.write(0, u, u, eid2, t2, r0[:, 0])
        if self.sizes[1]:
            slot = self.cache.slot(1, v).unsqueeze(1)
            held = k1.gather(1, slot).squeeze(1) == v
            rep = r1.gather(1, slot.unsqueeze(-1).expand(-1, -1, self.ngh_dim)).squeeze(1)
            self.cache.write(1, u, v, eid2, t2, rep * held.unsqueeze(-1))
            if self.sizes[2]:
                m = self.sizes[1]
                self.cache.write(2, v.repeat_interleave(m), k1.reshape(-1), e1.reshape(-1),
                                 tm1.reshape(-1), r1.reshape(-1, self.ngh_dim))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, sizes={self.sizes}, "
                f"ngh_dim={self.ngh_dim}, self_dim={self.self_dim}, pos_dim={self.pos_dim}, "
                f"out_channels={self.out_channels}, heads={self.heads})")
