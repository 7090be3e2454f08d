"""``graphkit demo`` section for Auto-GNN: a tiny conservative architecture search on Cora.

Auto-GNN's reinforced conservative controller proposes 4 children (the first drawn uniformly,
each later one the best so far with 2 actions changed) in a sub-space of the AGNN space sized
for a CPU demo: every attention function and aggregator, hidden 8 or 16, 1 or 2 heads, four
activations (ReLU, ELU, leaky ReLU, identity), skip or not. A child trained from scratch takes
30 epochs, one that inherits a homogeneous layer from the best network so far (constrained
parameter sharing) 10. Cora's features stay binary: row-normalised ones (as in
``benchmarks/autognn.py``) need more epochs than a 10-second section allows. Rows: the best
child's validation and test accuracy (the weights of its lowest-validation-loss epoch), how
many children inherited weights, and the search's seconds in every row.
"""

from __future__ import annotations

import time
import warnings

import torch

from graphkit.data import load
from graphkit.extras.nas import ChildTrainer, ConservativeSearch, autognn_space
from graphkit.train import seed_everything

__all__ = ["run"]

DATASET = "Cora"
BUDGET = 4
SPACE = {"hidden": (8, 16), "heads": (1, 2),
         "activation": ("relu", "elu", "leaky_relu", "identity")}


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """Run a 4-child Auto-GNN search on Cora; one row per reported figure."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small graph: one thread is fastest and spares a busy machine
    try:
        data = load(DATASET)
        with warnings.catch_warnings():  # torch flags sparse CSR as beta
            warnings.simplefilter("ignore", UserWarning)
            data.x = data.x.to_sparse_csr()  # bag-of-words: sparse products are far cheaper
        t0 = time.perf_counter()
        searcher = ConservativeSearch(autognn_space(**SPACE), max_changes=2, seed=seed)
        trainer = ChildTrainer(data, share=True, epochs=30, share_epochs=10, lr=0.01,
                               pool_dim=16, device=device)
        seed_everything(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            searcher.run(trainer, BUDGET)
            best = trainer.best_model.eval()
            with torch.no_grad():
                pred = best(data.x.to(device), data.edge_index.to(device)).argmax(1).cpu()
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    # CPU copies: the trainer may have moved `data` to the device in place (PyG's Data.to)
    y = data.y.cpu()
    accuracy = {name: float((pred[mask.cpu()] == y[mask.cpu()]).float().mean())
                for name, mask in (("val", data.val_mask), ("test", data.test_mask))}
    inherited = sum(any(r.inherited) for r in trainer.records)
    method = f"Auto-GNN ({BUDGET} children)"
    return [
        {"method": method, "dataset": DATASET, "metric": "best_val_acc",
         "value": accuracy["val"], "seconds": seconds},
        {"method": method, "dataset": DATASET, "metric": "best_test_acc",
         "value": accuracy["test"], "seconds": seconds},
        {"method": method, "dataset": DATASET, "metric": "inherited_children",
         "value": float(inherited), "seconds": seconds},
    ]
