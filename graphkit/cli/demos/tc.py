"""Topological concentration demo: exact TC, its loop oracle and ATC on real Cora.

The benchmark's random 70/10/20 link split of Cora (``link_split``, split 0), then, at
K = 1 (the official setting) and K = 2 hops, the train-test TC of every node three ways:
vectorised sparse products, the plain-Python oracle written as the official ``cal_tc`` (on
all 2,708 nodes: Cora is small enough), and ATC, the random-projection approximation
(d = 64). Rows: the vectorised-vs-oracle max-abs difference (the two must agree to float
round-off), Pearson(ATC, TC) over the nodes with test edges, the mean TC of those nodes, and
each computation's seconds. The GCN link predictor whose per-node Hits@10 TC explains is
trained by ``benchmarks/topological_concentration.py`` and ``notebooks/tc.ipynb``, not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphkit.benchmarking import synchronize
from graphkit.data import load
from graphkit.extras.graph.topological_concentration import (
    approximate_topological_concentration,
    topological_concentration,
    topological_concentration_loop,
)
from graphkit.train.forward import link_split

__all__ = ["run"]

DATASET = "Cora"
HOPS = (1, 2)
ATC_DIM = 64


def _timed(device: str, fn: Callable[..., Tensor], *args: Any,
           **kwargs: Any) -> tuple[Tensor, float]:
    synchronize(device)  # on CUDA: time the kernels, not their launch
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    synchronize(device)
    return out, time.perf_counter() - t0


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """Exact TC, its oracle and ATC on Cora's train-test split at K = 1 and 2; rows per K."""
    data = load(DATASET)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # sparse products on a small graph: one thread spares a busy machine
    try:
        return _rows(data, device, seed)
    finally:
        torch.set_num_threads(threads)


def _rows(data: Data, device: str, seed: int) -> list[dict]:
    train_g, _, test_g = link_split(data, split=seed, seed_step=1, num_val=0.1, num_test=0.2)
    train = train_g.edge_label_index[:, train_g.edge_label == 1].to(device)
    test = test_g.edge_label_index[:, test_g.edge_label == 1].to(device)
    n = data.num_nodes
    test_nodes = torch.unique(test).cpu()
    rows = []
    for k in HOPS:
        tc, tc_s = _timed(device, topological_concentration, train, test, n, k)
        ref, ref_s = _timed(device, topological_concentration_loop, train, test, n, k)
        gen = torch.Generator(device=device).manual_seed(seed)
        atc, atc_s = _timed(device, approximate_topological_concentration, train, test, n, k,
                            dim=ATC_DIM, generator=gen)
        tc, ref, atc = tc.cpu(), ref.cpu(), atc.cpu()
        pearson = float(np.corrcoef(atc[test_nodes].double().numpy(),
                                    tc[test_nodes].numpy())[0, 1])
        rows += [
            {"method": f"TC exact K={k}", "dataset": DATASET, "metric": "mean_tc_test_nodes",
             "value": float(tc[test_nodes].mean()), "seconds": tc_s},
            {"method": f"TC vs loop oracle K={k}", "dataset": DATASET,
             "metric": "max_abs_error", "value": float((tc - ref).abs().max()),
             "seconds": ref_s},
            {"method": f"ATC d={ATC_DIM} vs TC K={k}", "dataset": DATASET,
             "metric": "pearson", "value": pearson, "seconds": atc_s},
        ]
    return rows
