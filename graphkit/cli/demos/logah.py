"""``graphkit demo`` section for LoGAH: a graph hypernetwork predicts every parameter of a ViT.

Two ViTs are traced into their computational graphs: a small one (width 32, one block, 2 heads)
and a ViT-S-sized one (width 512, 8 blocks, 8 heads, MLP ratio 4; its ``fc1`` is 2048 x 512).
A LoGAH (node width 32, 2 Graphormer layers, rank-16 low-rank decoder for widths up to 2048)
predicts all parameters of each; rows give the graph's node count, the decoder's parameter count
over the predicted model's (LoGAH's point: far below 1 for a large model, above 1 for a tiny
one) and whether every predicted tensor has its parameter's shape (1.0 = all).

Then the LoGAH is meta-trained for 150 steps on the small ViT (AdamW, lr 3e-3, batch 64) on a
synthetic task, ``blobs_classification`` (10 classes of 16 x 16 RGB images of one Gaussian blob,
pixel noise 0.15), and the test accuracy of the predicted parameters, with no fine-tuning, is
compared with timm's random ViT initialisation (chance: 0.1); the LoGAH row's seconds include
the meta-training. The architecture is the one meta-trained on: ``benchmarks/logah.py``
evaluates held-out ViTs, fine-tuned, after longer meta-training.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from graphkit.benchmarking import synchronize
from graphkit.extras import count_params
from graphkit.extras._core.synthetic import blobs_classification
from graphkit.extras.hyper import ViTConfig, apply_predicted, logah, meta_train, trace_architecture
from graphkit.train import seed_everything

__all__ = ["run"]

SMALL, LARGE = ViTConfig(32, 1, 2, 2.0), ViTConfig(512, 8, 8, 4.0)
TASK = "blobs16 (noise 0.15)"
META_STEPS = 150


def _names(cfg: ViTConfig) -> tuple[str, str]:
    return f"LoGAH -> ViT-d{cfg.dim}-l{cfg.depth}", f"ViT d{cfg.dim} x{cfg.depth}"


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


def run(device: str = "cpu", seed: int = 0) -> list[dict]:
    """Predict two ViTs' parameters, then meta-train briefly and score the prediction."""
    rows: list[dict] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest and spares a busy machine
    try:
        seed_everything(seed)
        ghn = logah(hid=32, layers=2, heads=4, rank=16, max_shape=2048).to(device)
        decoder_params = count_params(ghn.decoder)
        for cfg in (SMALL, LARGE):
            synchronize(device)  # on CUDA: time the kernels, not their launch
            t0 = time.perf_counter()
            model = cfg.build().to(device)
            graph = trace_architecture(model, model.example_input())
            with torch.no_grad():
                predicted = ghn.eval()(graph)
            shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
            right = sum(n in predicted and tuple(predicted[n].shape) == s
                        for n, s in shapes.items())
            synchronize(device)
            seconds = time.perf_counter() - t0
            method, dataset = _names(cfg)
            rows += [
                {"method": method, "dataset": dataset, "metric": "graph_nodes",
                 "value": float(graph.num_nodes), "seconds": seconds},
                {"method": method, "dataset": dataset, "metric": "decoder_share",
                 "value": decoder_params / count_params(model), "seconds": seconds},
                {"method": method, "dataset": dataset, "metric": "shapes_right",
                 "value": right / len(shapes), "seconds": seconds},
            ]
            del model, predicted

        t0 = time.perf_counter()
        train = blobs_classification(2000, classes=10, size=16, noise=0.15, seed=0)
        test = blobs_classification(500, classes=10, size=16, noise=0.15, seed=2)
        train = tuple(t.to(device) for t in train)
        test = tuple(t.to(device) for t in test)
        target = SMALL.build().to(device)
        graph = trace_architecture(target, target.example_input())
        meta_train(ghn, [target], [graph], *train, steps=META_STEPS, batch_size=64, lr=3e-3,
                   warmup=10, seed=seed)
        meta_seconds = time.perf_counter() - t0
        method, _ = _names(SMALL)
        for init in ("random", "LoGAH"):
            t1 = time.perf_counter()
            torch.manual_seed(seed)
            model = SMALL.build().to(device)
            if init == "LoGAH":
                apply_predicted(model, ghn, graph)
            acc = _accuracy(model, *test)
            extra = meta_seconds if init == "LoGAH" else 0.0
            rows.append({"method": f"{init} init (no tuning)", "dataset": TASK,
                         "metric": "test_acc", "value": acc,
                         "seconds": time.perf_counter() - t1 + extra})
    finally:
        torch.set_num_threads(threads)
    return rows
