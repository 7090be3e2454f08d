"""``graphkit demo`` section for LightHGNN: HGNN teacher, plain MLP and distilled MLP.

One seed on co-citation Cora (20 training / 100 validation vertices per class, 100 epochs,
sparse features):
the LightHGNN student sees no hypergraph yet should come close to the teacher and far above
the MLP trained on labels alone. A few seconds on 2 cores.
"""

from __future__ import annotations

import time

import torch
from torch_geometric.transforms import NormalizeFeatures

from graphkit.data import load
from graphkit.data.hypergraph import add_singleton_hyperedges, unique_hyperedges
from graphkit.metrics import accuracy
from graphkit.nn import HGNN, LightHGNN
from graphkit.nn.models.lighthgnn import distill, split_per_class
from graphkit.train import seed_everything, train_node_classifier

DATASET = "cocitation-cora"
EPOCHS = 100


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    seed_everything(seed)
    data = NormalizeFeatures()(load(DATASET))
    # As DHG's Hypergraph + fix_iso_v: repeated hyperedges merged, isolated vertices a singleton.
    index, m = unique_hyperedges(data.hyperedge_index, data.num_hyperedges)
    data.hyperedge_index, data.num_hyperedges = add_singleton_hyperedges(index, data.num_nodes, m)
    data.train_mask, data.val_mask, data.test_mask = split_per_class(
        data.y, 20, 100, generator=torch.Generator().manual_seed(seed))
    data.x = data.x.to_sparse_csr()  # bag-of-words features: sparse products are faster
    data = data.to(device)
    c = int(data.y.max()) + 1
    test = data.test_mask
    rows = []

    def row(method: str, pred: torch.Tensor, t0: float) -> None:
        rows.append({"method": method, "dataset": DATASET, "metric": "accuracy",
                     "value": accuracy(pred[test], data.y[test]),
                     "seconds": time.perf_counter() - t0})

    t0 = time.perf_counter()
    teacher = HGNN(data.num_features, 32, c, cached=True)
    train_node_classifier(teacher, data, epochs=EPOCHS, device=device,
                          forward=lambda m, d: m(d.x, d.hyperedge_index,
                                                 num_hyperedges=d.num_hyperedges))
    teacher.eval()
    with torch.no_grad():
        z = teacher(data.x, data.hyperedge_index, num_hyperedges=data.num_hyperedges)
    row("lighthgnn: HGNN teacher", z, t0)

    t0 = time.perf_counter()
    mlp = LightHGNN(data.num_features, 128, c)
    train_node_classifier(mlp, data, epochs=EPOCHS, device=device, forward=lambda m, d: m(d.x))
    with torch.no_grad():
        row("lighthgnn: plain MLP", mlp.eval()(data.x), t0)

    t0 = time.perf_counter()
    student = LightHGNN(data.num_features, 128, c)
    distill(student, data.x, data.y, z, data.train_mask, data.val_mask, test, epochs=EPOCHS,
            device=device)
    with torch.no_grad():
        row("lighthgnn: student MLP", student.eval()(data.x), t0)
    return rows
