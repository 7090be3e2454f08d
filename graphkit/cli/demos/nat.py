"""NAT demo: temporal link prediction on a synthetic stream with communities and recurrence.

``temporal-sbm`` (200 nodes, 3000 events, half of them repeat an earlier pair), chronological
70/15/15 split with 10% held-out new nodes. NAT with its N-caches and NAT without them (self
representations only) are trained for 2 epochs in graphkit's temporal link-prediction harness;
rows report the test AP (per batch, as the reference) on all test events and on the inductive
ones.
"""

from __future__ import annotations

import time

from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.temporal import NAT, fit
from graphkit.train import seed_everything

__all__ = ["run"]


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """Train NAT with and without caches; one transductive and one inductive row each."""
    rows = []
    data = load("temporal-sbm", num_nodes=200, num_events=3000, seed=seed)
    split = chronological_split(data, seed=seed)
    label = f"temporal-sbm ({data.num_events} events)"
    for name, sizes in (("NAT", (1, 16, 8)), ("NAT (no caches)", (0, 0, 0))):
        t0 = time.perf_counter()
        seed_everything(seed)
        model = NAT(data.num_nodes, sizes=sizes, out_channels=64, seed=seed).to(device)
        out = fit(model, data, split, epochs=2, batch_size=100, lr=1e-3, seed=seed)
        seconds = time.perf_counter() - t0
        rows.append({"method": name, "dataset": label, "metric": "test_ap",
                     "value": out.test.ap, "seconds": seconds})
        if out.test_inductive is not None:
            rows.append({"method": name, "dataset": label, "metric": "test_ap_inductive",
                         "value": out.test_inductive.ap, "seconds": seconds})
    return rows
