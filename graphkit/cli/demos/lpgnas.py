"""LPGNAS demo: uniformly quantised GCNs and a short LPGNAS search on embedded data.

A contextual stochastic block model (``csbm``: 1000 nodes, 2 classes, homophily 0.8). FP32 and
W4A8 GCNs (hidden 16) train with QAT; LPGNAS searches for 20 epochs (gamma 0.5) and its
derived model is retrained. Rows report test accuracy and exact model size (bytes); one row
checks that integer inference of the W4A8 GCN reproduces its fake-quantised predictions.
"""

from __future__ import annotations

import time

import torch

from graphkit.data import load
from graphkit.nn.quant import QuantGNN, export_integer, integer_forward, search, uniform_specs
from graphkit.train import seed_everything, train_node_classifier

__all__ = ["run"]


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """Train FP32 / W4A8 GCNs and an LPGNAS model; return result rows."""
    rows: list[dict] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load("csbm", num_nodes=1000, num_classes=2, homophily=0.8, seed=seed)
        label = "csbm (1000 nodes)"
        c = int(data.y.max()) + 1
        models = {}
        for name, specs in (("GCN W32A32", uniform_specs("gcn", 16, c, 32, 32)),
                            ("GCN W4A8", uniform_specs("gcn", 16, c, 4, 8)), ("LPGNAS", None)):
            t0 = time.perf_counter()
            seed_everything(seed)
            if specs is None:
                specs = search(data, 0.5, epochs=20, arch_lr=0.1, device=device).specs
            model = QuantGNN(data.num_features, specs, cached=True)
            res = train_node_classifier(model, data, epochs=50, device=device)
            seconds = time.perf_counter() - t0
            models[name] = model
            rows.append({"method": name, "dataset": label, "metric": "test_acc",
                         "value": res.test_acc, "seconds": seconds})
            rows.append({"method": name, "dataset": label, "metric": "size_bytes",
                         "value": model.size_bytes(), "seconds": seconds})
        t0 = time.perf_counter()
        # on the CPU (PyG's Data.to moved `data` to the training device in place)
        model = models["GCN W4A8"].cpu().eval()
        x, edge_index = data.x.cpu(), data.edge_index.cpu()
        with torch.no_grad():
            fake = model(x, edge_index).argmax(1)
        acc, _ = integer_forward(export_integer(model), x, edge_index)
        rows.append({"method": "GCN W4A8 integer", "dataset": label,
                     "metric": "pred_agreement",
                     "value": float((acc.argmax(1) == fake).float().mean()),
                     "seconds": time.perf_counter() - t0})
    finally:
        torch.set_num_threads(threads)
    return rows
