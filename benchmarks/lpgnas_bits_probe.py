"""LPGNAS at gamma = 0: which weight bit-widths the search picks, and why.

For each search variant and search seed, one LPGNAS search with no size penalty (the settings
of ``benchmarks/lpgnas.py``: 100 epochs, 30 of weight-only warm-up, arch lr 0.1). Reported per
search: the derived weight bit-widths (the row's value is the number of layers with >= 8-bit
weights) and a probe of the supernet at the end of the warm-up and at the end of the search:
for each layer and each candidate width ``b``, that layer's weight-bit choice is forced to
``b`` (the other choices keep their probabilities) and the supernet is evaluated without
dropout: validation cross-entropy (as is, and at the best of a grid of logit temperatures),
validation accuracy and training cross-entropy. These are the quantities the bit-width logits
are trained on (their gradient is the first-order change of the loss in these directions).

Variants (``--variants``): ``val`` (the default search: softmax mixtures, logits on the
validation loss), ``gumbel`` (Gumbel-softmax samples, tau 1), ``train`` (the logits' step on
the training loss: single-level).

    python benchmarks/lpgnas_bits_probe.py --dataset Cora \\
        --json benchmarks/results/lpgnas_cora_gamma0_probe.json
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    measure,
    print_table,
    real,
    run_main,
    summarize,
    write_report,
)
from graphkit.data import load
from graphkit.nn.quant import search

VARIANTS = {"val": {}, "gumbel": {"gumbel": True}, "train": {"arch_loss": "train"}}
TEMPERATURES = [0.2 + 0.05 * i for i in range(57)]  # 0.2 .. 3.0


def parse_args():
    # a run is one search: seeds --seed .. --seed + --runs - 1 unless --search-seeds names them
    p = benchmark_parser(__doc__.splitlines()[0], runs=5)
    p.add_argument("--dataset", default="Cora", choices=["Cora", "CiteSeer"])
    p.add_argument("--search-seeds", type=count(0), nargs="+", default=None,
                   help="the searches' seeds (default: from --seed and --runs)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--search-epochs", type=count(1), default=100)
    p.add_argument("--warmup", type=count(0), default=30)
    p.add_argument("--arch-lr", type=real(0, open_low=True), default=0.1)
    p.add_argument("--threads", type=count(1), default=1)
    args = p.parse_args()
    if args.search_seeds is None:
        args.search_seeds = list(range(args.seed, args.seed + args.runs))
    return args


@torch.no_grad()
def forced_bits(net, data) -> dict:
    """``{layer: {bits: {val_ce, val_ce_best_t, val_acc, train_ce}}}`` with that layer's
    weight-bit choice forced to one candidate, in eval mode without sampling."""
    was_training, was_gumbel = net.training, net.gumbel
    net.eval()
    net.gumbel = False
    out = {}
    yv, yt = data.y[data.val_mask], data.y[data.train_mask]
    for lay in range(net.num_layers):
        logits = net.arch[f"{lay}_wbits"]
        saved = logits.detach().clone()
        rows = {}
        for i, b in enumerate(net.space.weight_bits):
            logits.fill_(-1e4)
            logits[i] = 0.0
            o = net(data.x, data.edge_index)
            ov = o[data.val_mask]
            rows[b] = {
                "val_ce": float(F.cross_entropy(ov, yv)),
                "val_ce_best_t": min(float(F.cross_entropy(ov * t, yv)) for t in TEMPERATURES),
                "val_acc": float((ov.argmax(1) == yv).float().mean()),
                "train_ce": float(F.cross_entropy(o[data.train_mask], yt))}
        logits.copy_(saved)
        out[lay] = rows
    net.train(was_training)
    net.gumbel = was_gumbel
    return out


def main() -> None:
    args = parse_args()
    if args.quick:
        args.search_epochs, args.warmup, args.search_seeds = 6, 3, args.search_seeds[:1]
    args.runs, args.seed = len(args.search_seeds), args.search_seeds[0]  # what ran
    torch.set_num_threads(args.threads)
    print(vars(args))
    data = load(args.dataset, root=args.root)
    data.x = data.x.to_sparse()
    rows = []
    for variant in args.variants:
        counts, searches = [], []
        with measure(args.device) as m:
            for s in args.search_seeds:
                probes, trajectory = {}, []

                def callback(epoch, net, probes=probes, trajectory=trajectory):
                    if epoch in (args.warmup, args.search_epochs):
                        probes["warmup_end" if epoch == args.warmup else "search_end"] = \
                            forced_bits(net, data)
                    if epoch % 10 == 0:
                        trajectory.append({"epoch": epoch, **{
                            f"{lay}_wbits": F.softmax(net.arch[f"{lay}_wbits"].detach(),
                                                      0).tolist()
                            for lay in range(net.num_layers)}})
                torch.manual_seed(s)
                found = search(data, 0.0, epochs=args.search_epochs, warmup=args.warmup,
                               arch_lr=args.arch_lr, callback=callback, device=args.device,
                               **VARIANTS[variant])
                bits = [x.weight_bits for x in found.specs]
                counts.append(sum(b >= 8 for b in bits))
                searches.append({"search_seed": s, "weight_bits": bits,
                                 "specs": [vars(x) for x in found.specs],
                                 "probs": found.probs, "probe": probes,
                                 "wbits_trajectory": trajectory})
                print(variant, s, bits, flush=True)
        rows.append(summarize(variant, args.dataset, "layers_ge8bit", counts, m.seconds,
                              m.peak_rss_mb, num_layers=2, searches=searches,
                              searches_all_ge8=sum(c == 2 for c in counts)))
        print_table(rows)
        write_report(args.json, "benchmarks/lpgnas_bits_probe.py", vars(args), rows, [])


if __name__ == "__main__":
    run_main(main)
