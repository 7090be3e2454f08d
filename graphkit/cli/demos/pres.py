"""PRES demo: TGN on graphkit's vectorised memory at temporal batch 200 and 800, with PRES at 800.

Real UCI messages (59,835 events), the TGN protocol's chronological 70/15/15 split, the
settings of ``benchmarks/pres_batch_sweep.py`` (Adam lr 1e-3, evaluation in batches of 200) but
2 epochs instead of 3 (the section was a third of the whole demo's minute; the order of the
three test APs is the same after 2 epochs), seed 0. A 4x larger batch makes an epoch faster
but hides the batch's own events from the memory, so plain TGN loses test AP; PRES's
prediction-correction recovers part of it.
TGN learns nothing on the embedded ``temporal-sbm`` stream (its nodes have neither features nor
time patterns that tell them apart), so this section needs the UCI file and is skipped without it.
"""

from __future__ import annotations

import time

from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.temporal import PRES, MemoryTGN, fit
from graphkit.train import seed_everything

__all__ = ["run"]

EPOCHS = 2
DATASET = "uci"
CONFIGS = (("TGN (batch 200)", 200, False), ("TGN (batch 800)", 800, False),
           ("TGN+PRES (batch 800)", 800, True))


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """Test AP and training seconds per epoch of TGN at 200 and 800 and TGN+PRES at 800."""
    data = load(DATASET)
    split = chronological_split(data, seed=seed)
    rows = []
    for name, batch, pres in CONFIGS:
        t0 = time.perf_counter()
        seed_everything(seed)
        model = MemoryTGN(data.num_nodes, data.msg.size(-1))
        if pres:
            model = PRES(model)
        out = fit(model.to(device), data, split, epochs=EPOCHS, batch_size=batch, lr=1e-3,
                  patience=None, seed=seed, eval_batch_size=200)
        seconds = time.perf_counter() - t0
        epoch = sum(out.epoch_seconds) / len(out.epoch_seconds)
        rows.append({"method": name, "dataset": DATASET, "metric": "test_ap",
                     "value": out.test.ap, "seconds": seconds})
        rows.append({"method": name, "dataset": DATASET, "metric": "s/epoch",
                     "value": epoch, "seconds": seconds})
    return rows
