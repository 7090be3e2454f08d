"""LightHGNN+: what the hyperedge (topology-aware) term adds to the vertex distillation term.

For each dataset and seed, the teacher and split of ``benchmarks/hypergraph.py`` (same seed,
same order of random draws) and a LightHGNN+ student at the official point (lambda 0, tau 1,
beta 1, every hyperedge sampled, rho 1) trained with the ``paper`` and with the ``repo`` loss.
At every epoch, on the training forward pass and the epoch's hyperedge sample, the gradients
of the vertex term (KD) and of the hyperedge term (HKD) with respect to the student's
parameters are taken separately (``torch.autograd.grad``; training itself is unchanged) and
recorded, averaged over the 200 epochs:

* ``grad_cosine``: cosine between the two gradients (1: HKD pushes the same way as KD);
* ``grad_ratio``: |grad HKD| / |grad KD|;
* ``grad_new``: the part of grad HKD orthogonal to grad KD, relative to |grad KD|
  (``grad_ratio * sqrt(1 - grad_cosine^2)``): what the term adds beyond more of KD;
* ``kd_loss`` / ``hkd_loss``: the two terms' values.

``accuracy`` is the student's test accuracy at its best validation epoch; with the same seed
it equals the ``lighthgnn+ [..., beta=1, singletons=include, rho=1, ...]`` row of
``benchmarks/hypergraph.py --select-on-val`` with the same loss and student normalisation.

    python benchmarks/hypergraph_kd_terms.py --runs 5 --json out.json
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from hypergraph import (  # the protocol of benchmarks/hypergraph.py, defined once there
    DATASETS,
    features,
    hypergraph_forward,
    prepare,
    train_teacher,
)
from torch import Tensor
from torch_geometric.data import Data

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    dataset_of,
    measure,
    print_table,
    run_main,
    summarize,
    write_report,
)
from graphkit.nn import LightHGNN
from graphkit.nn.models.lighthgnn import (
    distillation_loss,
    hyperedge_distillation_loss,
    hyperedge_reliability,
    perturb_features,
    split_per_class,
)
from graphkit.train import seed_everything, train_node_classifier

METRICS = ("grad_cosine", "grad_ratio", "grad_new", "kd_loss", "hkd_loss")


def parse_args():
    p = benchmark_parser(__doc__.split("\n")[0], runs=5)
    p.add_argument("--dataset", type=dataset_of("hypergraph"), nargs="+", default=DATASETS)
    p.add_argument("--loss", nargs="+", default=["paper", "repo"], choices=["paper", "repo"])
    p.add_argument("--student-norm", default="batch", choices=["batch", "none"])
    p.add_argument("--epochs", type=count(1), default=200)
    p.add_argument("--hidden", type=count(1), default=128)
    p.add_argument("--teacher", default="hgnn", choices=["hgnn", "hgnnp"])
    p.add_argument("--teacher-hidden", type=count(1), default=32)
    p.add_argument("--num-train", type=count(1), default=20)
    p.add_argument("--num-val", type=count(1), default=100)
    p.add_argument("--dense", action="store_true")
    p.add_argument("--keep-duplicates", action="store_true")
    p.add_argument("--threads", type=count(1), default=1)
    args = p.parse_args()
    if args.quick:
        args.epochs, args.runs = min(args.epochs, 20), 1
    return args


class TermProbe:
    """LightHGNN+'s objective (lambda 0, beta 1) as a ``train_loss_fn`` that also records the
    two terms' parameter gradients. It draws the hyperedge sample exactly as
    :class:`~graphkit.nn.models.lighthgnn.LightHGNNLoss` (after the vertex term), so training
    follows the same trajectory."""

    def __init__(self, params: list[Tensor], teacher_logits: Tensor, hyperedge_index: Tensor,
                 num_hyperedges: int, reliability: Tensor, mode: str) -> None:
        self.params, self.t, self.mode = params, teacher_logits, mode
        self.index, self.m, self.rel = hyperedge_index, num_hyperedges, reliability
        self.records: list[dict[str, float]] = []

    def __call__(self, scores: Tensor, data: Data) -> Tensor:
        kd = distillation_loss(scores, self.t, 1.0, self.mode)
        mask = torch.bernoulli(self.rel).bool()
        hkd = hyperedge_distillation_loss(scores, self.t, self.index, self.m, mask, 1.0,
                                          self.mode)
        self.records.append(gradient_stats(kd, hkd, self.params))
        return kd + hkd


def gradient_stats(kd: Tensor, hkd: Tensor, params: list[Tensor]) -> dict[str, float]:
    """Cosine, norm ratio and orthogonal part of grad ``hkd`` against grad ``kd``."""
    g1 = torch.autograd.grad(kd, params, retain_graph=True, allow_unused=True)
    g2 = torch.autograd.grad(hkd, params, retain_graph=True, allow_unused=True)
    a = torch.cat([g.reshape(-1) for g in g1 if g is not None])
    b = torch.cat([g.reshape(-1) for g in g2 if g is not None])
    na, nb = float(a.norm()), float(b.norm())
    cos = float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0
    ratio = nb / na if na > 0 else 0.0
    return {"grad_cosine": cos, "grad_ratio": ratio,
            "grad_new": ratio * math.sqrt(max(0.0, 1.0 - cos * cos)),
            "kd_loss": float(kd.detach()), "hkd_loss": float(hkd.detach())}


def probe_student(teacher: torch.nn.Module, data: Data, mode: str, seed: int,
                  args) -> dict[str, float]:
    """One LightHGNN+ student (official point) with the gradient probe; the draws follow
    ``benchmarks/hypergraph.py``'s ``distill_student`` after ``seed_everything(seed)``."""
    seed_everything(seed)
    with torch.no_grad():
        z = hypergraph_forward(teacher, data)
        noisy = data.clone()
        noisy.x = features(perturb_features(data.x.to_dense(), 1.0), args)
        rel = hyperedge_reliability(z, hypergraph_forward(teacher, noisy),
                                    data.hyperedge_index, data.num_hyperedges)
    student = LightHGNN(data.num_features, args.hidden, z.size(1),
                        batch_norm=args.student_norm == "batch")
    probe = TermProbe([p for p in student.parameters() if p.requires_grad], z,
                      data.hyperedge_index, data.num_hyperedges, rel, mode)
    d = Data(x=data.x, y=data.y, train_mask=data.train_mask, val_mask=data.val_mask,
             test_mask=data.test_mask, num_nodes=data.num_nodes)
    res = train_node_classifier(student, d, lr=0.01, weight_decay=5e-4, epochs=args.epochs,
                                selection="val_acc", device=args.device,
                                forward=lambda model, x: model(x.x), train_loss_fn=probe)
    out = {k: statistics.fmean(r[k] for r in probe.records) for k in METRICS}
    return {**out, "accuracy": res.test_acc, "val_accuracy": res.val_acc}


def main() -> None:
    args = parse_args()
    print(args)
    torch.set_num_threads(args.threads)
    rows: list = []
    for name in args.dataset:
        base = prepare(name, args)
        per: dict[str, list[dict[str, float]]] = {mode: [] for mode in args.loss}
        t_start = time.perf_counter()
        with measure(args.device) as m:
            for r in range(args.runs):
                seed = args.seed + r
                seed_everything(seed)
                data = base.clone()
                g = torch.Generator().manual_seed(seed)
                data.train_mask, data.val_mask, data.test_mask = split_per_class(
                    data.y, args.num_train, args.num_val, generator=g)
                data.x = features(data.x, args)
                data = data.to(args.device)
                teacher, _ = train_teacher(args.teacher, data, args)
                for mode in args.loss:
                    per[mode].append(probe_student(teacher, data, mode, seed, args))
                    print(f"{name} seed {seed} {mode}: " + ", ".join(
                        f"{k} {v:.4f}" for k, v in per[mode][-1].items()), flush=True)
        seconds = time.perf_counter() - t_start
        for mode, runs in per.items():
            for metric in runs[0]:
                values = [v[metric] for v in runs]
                rows.append(summarize(f"lighthgnn+ ({mode} loss)", name, metric, values,
                                      seconds, m.peak_rss_mb, loss=mode,
                                      student_norm=args.student_norm, per_run=values))
        write_report(args.json, "benchmarks/hypergraph_kd_terms.py", args, rows)
    print_table(rows)
    write_report(args.json, "benchmarks/hypergraph_kd_terms.py", args, rows)


if __name__ == "__main__":
    run_main(main)
