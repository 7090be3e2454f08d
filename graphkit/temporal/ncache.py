r"""The N-cache of NAT: fixed-size hash tables holding each node's down-sampled neighbourhood.

From `"Neighborhood-aware Scalable Temporal Network Representation Learning"
<https://arxiv.org/abs/2209.01084>`_ (Luo and Li, LoG 2022), Section 4.1.

For every hop :math:`h` the cache keeps :math:`M_h` slots per node. Slot ``u * M_h + j`` of
hop :math:`h` holds one entry of node ``u``'s hop-:math:`h` dictionary: the neighbour id (the
*key*, ``-1`` when empty), the id and timestamp of the event that put it there, and a short
learned vector (the *value*, ``rep_dim`` wide). A key :math:`x` may only live in slot

.. math::
    \mathrm{hash}_h(x) = (x s + x^2 (s + 1)) \bmod M_h, \quad s = 2\,(\mathrm{seed} \bmod 50) + 1,

so an owner never holds the same key twice, and there is no probing: a candidate ``(u, x)``
whose slot holds a different key replaces it with probability ``replace_prob`` (:math:`\alpha`
in the paper), otherwise it is dropped. The cache is therefore a lossy, randomly down-sampled
neighbour set of fixed size.

**Hash seed.** The official code uses :math:`s = \mathrm{seed} \bmod 100` with a random
seed, and an even :math:`s` reaches only a few slots of a power-of-two table (7 of 32, 4 of
16: :math:`x s + x^2 (s+1)` then takes the values of the squares), so about half of its runs
keep at most 7 one-hop and 4 two-hop neighbours per node. graphkit uses odd :math:`s` only, for
which the hash is a permutation of the slots of any power-of-two table (``official_hash=True``
restores :math:`s = \mathrm{seed} \bmod 100`).

**Batch update.** :meth:`NCache.write` applies a batch of candidates in parallel against the
cache as it was *before* the batch: each candidate draws one uniform number (from the cache's
own CPU generator, in batch order, so CPU and CUDA caches evolve identically), is allowed to
write when its slot is empty, already holds its key, or the draw is below ``replace_prob``;
when several allowed candidates hit the same slot, **the last one in batch order wins** (the
official code leaves this to whichever GPU thread writes last). With a batch of one, or with no
two candidates on the same slot, this equals processing the candidates one at a time
(:class:`graphkit.temporal.ncache_reference.NCacheReference`, used by the tests). CPU tables
are updated by one Numba pass that applies exactly this rule; other devices use tensor
operations (the tests check that both give the same tables).

**Memory.** The tables take exactly :meth:`NCache.layout_bytes` bytes:
:math:`N \sum_h M_h (8 + 8 + 8 + 4\,d)` for int64 keys and event ids, float64 timestamps and
float32 values of width :math:`d` (the paper counts :math:`(N+1)(1+M_1+M_2)(3+d)` floats; here
there is no padding row because empty slots are marked by key ``-1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["NCache", "hash_multiplier", "last_occurrence"]


def apply_keeping_float64(module: torch.nn.Module, apply, fn, names: list[str]):
    """``apply(fn)`` (a module's ``nn.Module._apply``) with the float64 buffers ``names``
    moved to the new device only: ``.float()`` or ``.half()`` would round timestamps (float32
    holds epoch seconds to about 2 minutes) and leave them in a dtype the updates refuse."""
    saved = {name: module._buffers[name] for name in names}
    apply(fn)
    for name, old in saved.items():
        new = module._buffers[name]
        if old is not None and new is not None and new.dtype != torch.float64:
            module._buffers[name] = old.to(new.device)
    return module


def last_occurrence(index: Tensor) -> Tensor:
    """Positions (ascending) of the last occurrence of every distinct value of ``index``.

    The deterministic "last writer wins" rule for scatters with repeated indices.
    """
    if index.numel() == 0:
        return index.new_empty(0)
    uniq, inverse = torch.unique(index, return_inverse=True)
    pos = torch.arange(index.numel(), device=index.device)
    last = torch.full((uniq.numel(),), -1, dtype=torch.long, device=index.device)
    last.scatter_reduce_(0, inverse, pos, reduce="amax")
    return last.sort().values


def hash_multiplier(seed: int, official: bool = False) -> int:
    """The :math:`s` of the N-cache hash for ``seed``: ``2 * (seed % 50) + 1`` (odd: every
    slot of a power-of-two table reachable), or the official code's ``seed % 100``."""
    return int(seed) % 100 if official else 2 * (int(seed) % 50) + 1


class NCache(torch.nn.Module):
    r"""Per-hop slot tables for all nodes: the N-caches of `"Neighborhood-aware Scalable
    Temporal Network Representation Learning" <https://arxiv.org/abs/2209.01084>`_ (Luo and Li,
    LoG 2022). Key :math:`x` of owner :math:`u` may only live in slot

    .. math::
        u M_h + \mathrm{hash}_h(x), \qquad
        \mathrm{hash}_h(x) = (x s + x^2 (s + 1)) \bmod M_h, \quad
        s = 2\,(\mathrm{seed} \bmod 50) + 1,

    and a different key there is replaced with probability ``replace_prob``. It holds buffers
    only (no parameters).

    Args:
        num_nodes (int): number of owners; node ids lie in ``[0, num_nodes)``.
        sizes (sequence of int): slots per node for each hop, e.g. ``(1, 32, 16)`` for hops 0, 1
            and 2 (``0`` disables a hop). (default: ``(1, 32, 16)``)
        rep_dim (int): width of the learned value stored with each entry. (default: ``4``)
        replace_prob (float): probability :math:`\alpha` that a candidate evicts a different
            key from its slot. (default: ``0.9``)
        seed (int): hash seed; ``s = 2 * (seed % 50) + 1`` enters the hash, and the
            replacement draws come from a generator seeded with ``seed``. Both are part of the
            state dict, so a restored cache keeps finding its keys. (default: ``0``)
        official_hash (bool): use the official code's ``s = seed % 100``, whose even values
            leave most slots of a power-of-two table unreachable (see the module docstring).
            (default: ``False``)
        device (torch.device, optional): where the tables live.

    Buffers per hop ``h``: ``key_h`` ``[N * M_h]`` (int64, ``-1`` = empty), ``eid_h`` (int64),
    ``time_h`` (float64), ``rep_h`` ``[N * M_h, rep_dim]`` (float32).
    """

    def __init__(self, num_nodes: int, sizes: tuple[int, ...] | list[int] = (1, 32, 16),
                 rep_dim: int = 4, replace_prob: float = 0.9, seed: int = 0,
                 device: torch.device | str | None = None, official_hash: bool = False) -> None:
        super().__init__()
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        sizes = tuple(int(m) for m in sizes)
        if not sizes or any(m < 0 for m in sizes):
            raise ValueError(f"sizes must be a non-empty list of non-negative slot counts, "
                             f"got {sizes}")
        if int(rep_dim) < 0:
            raise ValueError(f"rep_dim must be non-negative, got {rep_dim}")
        if not 0.0 <= float(replace_prob) <= 1.0:
            raise ValueError(f"replace_prob must lie in [0, 1], got {replace_prob}")
        if int(seed) < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.num_nodes = int(num_nodes)
        self.sizes = sizes
        self.rep_dim = int(rep_dim)
        self.replace_prob = float(replace_prob)
        self.seed = int(seed)
        self.official_hash = bool(official_hash)
        self.generator = torch.Generator().manual_seed(self.seed)
        for h, m in enumerate(sizes):
            n = self.num_nodes * m
            self.register_buffer(f"key_{h}", torch.full((n,), -1, dtype=torch.long,
                                                        device=device))
            self.register_buffer(f"eid_{h}", torch.full((n,), -1, dtype=torch.long,
                                                        device=device))
            self.register_buffer(f"time_{h}", torch.zeros(n, dtype=torch.float64,
                                                          device=device))
            self.register_buffer(f"rep_{h}", torch.zeros(n, self.rep_dim, device=device))

    def _apply(self, fn, recurse=True):
        return apply_keeping_float64(self, lambda f: super(NCache, self)._apply(f, recurse), fn,
                                     [f"time_{h}" for h in range(self.num_hops)])

    @property
    def num_hops(self) -> int:
        return len(self.sizes)

    @property
    def hash_seed(self) -> int:
        """The ``s`` of the hash (:func:`hash_multiplier`)."""
        return hash_multiplier(self.seed, self.official_hash)

    def table(self, hop: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The flat ``(key, eid, time, rep)`` buffers of ``hop``."""
        self._check_hop(hop)
        return (getattr(self, f"key_{hop}"), getattr(self, f"eid_{hop}"),
                getattr(self, f"time_{hop}"), getattr(self, f"rep_{hop}"))

    def reset(self, seed: int | None = None) -> None:
        """Empty every slot; re-seed the generator (with ``seed`` when given, else the seed)."""
        if seed is not None:
            if int(seed) < 0:
                raise ValueError(f"seed must be non-negative, got {seed}")
            self.seed = int(seed)
        self.generator.manual_seed(self.seed)
        for h in range(self.num_hops):
            key, eid, time, rep = self.table(h)
            key.fill_(-1)
            eid.fill_(-1)
            time.zero_()
            rep.zero_()

    # ------------------------------------------------------------------ addressing
    def slot(self, hop: int, key: Tensor) -> Tensor:
        """``hash_hop(key)``: the slot of ``key`` in any owner's hop-``hop`` dictionary."""
        self._check_hop(hop)
        m = self.sizes[hop]
        if m == 0:
            raise ValueError(f"hop {hop} has no slots")
        s = self.hash_seed
        x = key.long()
        return (x * s + x * x * (s + 1)) % m

    def read(self, hop: int, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All slots of ``nodes``' hop-``hop`` dictionaries.

        Returns:
            ``(key [B, M], eid [B, M], time [B, M], rep [B, M, rep_dim])``; empty slots have
            key ``-1``.
        """
        key, eid, time, rep = self.table(hop)
        nodes = self._check_nodes(nodes, "nodes")
        m = self.sizes[hop]
        idx = (nodes.unsqueeze(1) * m + torch.arange(m, device=key.device)).view(-1)
        b = nodes.numel()
        return (key.index_select(0, idx).view(b, m), eid.index_select(0, idx).view(b, m),
                time.index_select(0, idx).view(b, m),
                rep.index_select(0, idx).view(b, m, self.rep_dim))

    # ------------------------------------------------------------------ update
    def write(self, hop: int, owner: Tensor, key: Tensor, eid: Tensor, time: Tensor,
              rep: Tensor) -> Tensor:
        """Apply a batch of candidate entries ``(owner, key, eid, time, rep)`` to ``hop``.

        Candidates with ``key < 0`` are ignored (but still consume their random draw, so the
        draw stream depends only on the batch sizes). See the module docstring for the rule.

        Returns:
            ``[C]`` bool, whether each candidate is stored after the batch.
        """
        t_key, t_eid, t_time, t_rep = self.table(hop)
        owner = self._check_nodes(owner, "owner")
        c = owner.numel()
        if key.is_floating_point() or key.dtype == torch.bool:
            raise ValueError(f"key must hold integer node ids, got dtype {key.dtype}")
        key = key.to(t_key.device, torch.long).reshape(-1)
        if key.numel() != c or eid.numel() != c or time.numel() != c:
            raise ValueError(f"owner, key, eid and time must have the same length, got "
                             f"{c}, {key.numel()}, {eid.numel()} and {time.numel()}")
        if rep.shape != (c, self.rep_dim):
            raise ValueError(f"rep must have shape [{c}, {self.rep_dim}], got {list(rep.shape)}")
        if c and int(key.max()) >= self.num_nodes:
            raise ValueError(f"key {int(key.max())} out of range for num_nodes={self.num_nodes}")
        u = torch.rand(c, generator=self.generator, dtype=torch.float64).to(t_key.device)
        if c == 0 or self.sizes[hop] == 0:
            return torch.zeros(c, dtype=torch.bool, device=t_key.device)
        idx = owner * self.sizes[hop] + self.slot(hop, key.clamp(min=0))
        eid = eid.detach().to(t_eid.device, torch.long).reshape(-1)
        time = time.detach().to(t_time.device, torch.float64).reshape(-1)
        rep = rep.detach().to(t_rep.device, t_rep.dtype)
        if t_key.device.type == "cpu":  # one Numba pass instead of a dozen tensor operations
            from graphkit.temporal._nat_numba import apply_writes

            # the pass writes as it goes, so a candidate read from the tables themselves (a view
            # of a buffer) is copied first, as the tensor rule's gathers do
            tables = {x.untyped_storage().data_ptr() for x in (t_key, t_eid, t_time, t_rep)}

            def source(x: Tensor) -> np.ndarray:
                own = x.untyped_storage().data_ptr() in tables
                return (x.clone() if own else x.contiguous()).numpy()

            stored = torch.empty(c, dtype=torch.bool)
            apply_writes(t_key.numpy(), t_eid.numpy(), t_time.numpy(), t_rep.numpy(),
                         idx.contiguous().numpy(), source(key), source(eid), source(time),
                         source(rep), u.numpy(), self.replace_prob, stored.numpy())
            return stored
        return self._write_tensors(t_key, t_eid, t_time, t_rep, idx, key, eid, time, rep, u)

    def _write_tensors(self, t_key: Tensor, t_eid: Tensor, t_time: Tensor, t_rep: Tensor,
                       idx: Tensor, key: Tensor, eid: Tensor, time: Tensor, rep: Tensor,
                       u: Tensor) -> Tensor:
        """The write rule in tensor operations (any device)."""
        current = t_key.index_select(0, idx)
        other = (current >= 0) & (current != key)
        allowed = (key >= 0) & (~other | (u < self.replace_prob))
        pos = allowed.nonzero().view(-1)
        pos = pos.index_select(0, last_occurrence(idx.index_select(0, pos)))
        slots = idx.index_select(0, pos)
        t_key.index_copy_(0, slots, key.index_select(0, pos))
        t_eid.index_copy_(0, slots, eid.index_select(0, pos))
        t_time.index_copy_(0, slots, time.index_select(0, pos))
        t_rep.index_copy_(0, slots, rep.index_select(0, pos))
        stored = torch.zeros(key.numel(), dtype=torch.bool, device=t_key.device)
        stored[pos] = True
        return stored

    # ------------------------------------------------------------------ memory, state
    @staticmethod
    def layout_bytes(num_nodes: int, sizes: tuple[int, ...] | list[int], rep_dim: int) -> int:
        r""":math:`N \sum_h M_h (8 + 8 + 8 + 4 d)` bytes: the size of the tables."""
        return int(num_nodes) * sum(int(m) for m in sizes) * (24 + 4 * int(rep_dim))

    def memory_bytes(self) -> int:
        """Bytes held by the tables' storage (measured, to compare with the layout)."""
        return sum(b.untyped_storage().nbytes() for b in self.buffers())

    def get_extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed, "generator": self.generator.get_state(),
                "official_hash": self.official_hash}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        # a byte tensor on the CPU, even where a checkpoint was mapped onto a GPU
        self.generator.set_state(state["generator"].cpu())
        # the hash the stored keys were placed with (a state saved before the option existed
        # used the official seed % 100)
        self.official_hash = bool(state.get("official_hash", True))

    # ------------------------------------------------------------------ checks
    def _check_hop(self, hop: int) -> None:
        if not 0 <= int(hop) < self.num_hops:
            raise ValueError(f"hop must lie in [0, {self.num_hops}), got {hop}")

    def _check_nodes(self, nodes: Tensor, name: str) -> Tensor:
        if not isinstance(nodes, Tensor) or nodes.dim() != 1 or nodes.is_floating_point():
            raise ValueError(f"{name} must be a one-dimensional tensor of node ids")
        nodes = nodes.to(self.key_0.device, torch.long)
        if nodes.numel():
            lo, hi = torch.aminmax(nodes)
            if int(lo) < 0 or int(hi) >= self.num_nodes:
                raise ValueError(f"{name} ids must lie in [0, {self.num_nodes}), got "
                                 f"{int(lo) if int(lo) < 0 else int(hi)}")
        return nodes

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, sizes={self.sizes}, "
                f"rep_dim={self.rep_dim}, replace_prob={self.replace_prob}, seed={self.seed})")
