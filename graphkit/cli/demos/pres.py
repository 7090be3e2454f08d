"""PRES demo: TGN on graphkit's vectorised memory at a small and a 4x larger temporal batch.

``temporal-sbm`` (200 nodes, 3000 events), chronological 70/15/15 split. TGN (graphkit's
:class:`~graphkit.temporal.TemporalMemory`) is trained for 1 epoch at batch 50 and at batch
200, and wrapped in :class:`~graphkit.temporal.PRES` at batch 200; rows report the test AP
(per evaluation batch of 50) and the training time.
"""

from __future__ import annotations

import time

from graphkit.cli.demos._temporal import temporal_sbm_demo_data
from graphkit.temporal import PRES, MemoryTGN, fit
from graphkit.train import seed_everything

__all__ = ["run"]


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """TGN at batch 50 and 200, TGN+PRES at batch 200; one test-AP row each."""
    rows = []
    data, split, label = temporal_sbm_demo_data(seed)
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
    return rows
