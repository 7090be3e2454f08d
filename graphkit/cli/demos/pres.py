"""PRES demo: TGN on graphkit's vectorised memory at a small and a 4x larger temporal batch.

``temporal-sbm`` (200 nodes, 3000 events), chronological 70/15/15 split. TGN (graphkit's
:class:`~graphkit.temporal.TemporalMemory`) is trained for 1 epoch at batch 50 and at batch
200, and wrapped in :class:`~graphkit.temporal.PRES` at batch 200; rows report the test AP
(per evaluation batch of 50) and the training time.
"""

from __future__ import annotations

import time

import torch

from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.temporal import PRES, MemoryTGN, fit
from graphkit.train import seed_everything

__all__ = ["run"]


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """TGN at batch 50 and 200, TGN+PRES at batch 200; one test-AP row each."""
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load("temporal-sbm", num_nodes=200, num_events=3000, seed=seed)
        split = chronological_split(data, seed=seed)
        label = f"temporal-sbm ({data.num_events} events)"
        for name, batch, pres in (("TGN (batch 50)", 50, False), ("TGN (batch 200)", 200, False),
                                  ("TGN+PRES (batch 200)", 200, True)):
            t0 = time.perf_counter()
            seed_everything(seed)
            model = MemoryTGN(data.num_nodes, data.msg.size(-1), memory_dim=32, time_dim=16,
                              embedding_dim=32)
            if pres:
                model = PRES(model)
            out = fit(model.to(device), data, split, epochs=1, batch_size=batch, lr=1e-3,
                      seed=seed, eval_batch_size=50)
            rows.append({"method": name, "dataset": label, "metric": "test_ap",
                         "value": out.test.ap, "seconds": time.perf_counter() - t0})
    finally:
        torch.set_num_threads(threads)
    return rows
