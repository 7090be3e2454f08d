"""Plain-Python reference of :class:`graphkit.temporal.NCache`, for tests.

One dictionary per (hop, owner) mapping slot -> ``(key, eid, time, rep)``, updated one candidate
at a time with the same hash and the same random draws (one ``torch.rand`` vector per
:meth:`NCacheReference.write` call from a generator seeded like the cache's). Processing
candidates sequentially is the definition the vectorised cache must equal whenever no two
candidates of a batch fall on the same slot.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphkit.temporal.ncache import hash_multiplier

__all__ = ["NCacheReference"]

Entry = tuple[int, int, float, tuple[float, ...]]


class NCacheReference:
    """Sequential N-cache: ``slots[hop][owner][slot] = (key, eid, time, rep)``."""

    def __init__(self, num_nodes: int, sizes: tuple[int, ...] = (1, 32, 16),
                 replace_prob: float = 0.9, seed: int = 0, official_hash: bool = False) -> None:
        self.num_nodes = int(num_nodes)
        self.sizes = tuple(int(m) for m in sizes)
        self.replace_prob = float(replace_prob)
        self.seed = int(seed)
        self.official_hash = bool(official_hash)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.slots: list[dict[int, dict[int, Entry]]] = [{} for _ in self.sizes]

    def slot(self, hop: int, key: int) -> int:
        s = hash_multiplier(self.seed, self.official_hash)
        return (key * s + key * key * (s + 1)) % self.sizes[hop]

    def write(self, hop: int, owner: Tensor, key: Tensor, eid: Tensor, time: Tensor,
              rep: Tensor) -> None:
        draws = torch.rand(owner.numel(), generator=self.generator, dtype=torch.float64)
        if self.sizes[hop] == 0:
            return
        for i in range(owner.numel()):
            x = int(key[i])
            if x < 0:
                continue
            table = self.slots[hop].setdefault(int(owner[i]), {})
            j = self.slot(hop, x)
            held = table.get(j)
            if held is not None and held[0] != x and not float(draws[i]) < self.replace_prob:
                continue
            table[j] = (x, int(eid[i]), float(time[i]),
                        tuple(float(v) for v in rep[i].tolist()))

    def entries(self, hop: int) -> dict[tuple[int, int], Entry]:
        """``{(owner, slot): entry}`` of every occupied slot of ``hop``."""
        return {(u, j): e for u, table in self.slots[hop].items() for j, e in table.items()}
