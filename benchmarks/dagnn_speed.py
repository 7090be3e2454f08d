"""Training-epoch time of DAGNN against PyG's APPNP at the same propagation depth K.

Both models are the same two-layer MLP followed by K propagation steps (``DAGNNProp`` with its
retention gates, PyG ``APPNP`` with teleport 0.1), trained with Adam on the same inputs, in the
same process. The two are timed in alternating blocks so that load from other processes hits
both alike; the row ``dagnn/appnp ratio`` is the ratio of median epoch times.

    python benchmarks/dagnn_speed.py --K 10 --json benchmarks/results/dagnn_speed.json

Graphs: Cora (public split, sparse row-normalised features) and a synthetic random graph with
``--nodes`` nodes and ``--edges`` directed edges (symmetrised), 128 dense features, 10 classes.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphkit.benchmarking import (
    benchmark_parser,
    count,
    measure,
    print_table,
    rss_mb,
    run_main,
    summarize,
    synchronize,
    write_report,
)
from graphkit.data import load
from graphkit.nn.recipes import build_model, get_recipe, prepare_data
from graphkit.train import seed_everything


def parse_args():
    p = benchmark_parser(__doc__.splitlines()[0], runs=3, helps={
        "runs": "seeded blocks; each times --epochs training epochs of both models, in turn",
        "seed": "first seed; block r uses seed + r, and the synthetic graph uses seed"})
    p.add_argument("--K", type=count(0), default=10, help="propagation depth of both models")
    p.add_argument("--epochs", type=count(1), default=20, help="timed epochs per block and model")
    p.add_argument("--nodes", type=count(1), default=100_000)
    p.add_argument("--edges", type=count(1), default=600_000,
                   help="random pairs before symmetrising (about twice as many edges)")
    p.add_argument("--threads", type=count(1), default=1)
    return p.parse_args()


def synthetic_graph(num_nodes: int, num_pairs: int, seed: int) -> Data:
    """A uniform random undirected graph with Gaussian features and random labels."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_pairs), generator=gen)
    edge_index = to_undirected(edge_index[:, edge_index[0] != edge_index[1]], num_nodes=num_nodes)
    x = torch.randn(num_nodes, 128, generator=gen)
    y = torch.randint(0, 10, (num_nodes,), generator=gen)
    train_mask = torch.rand(num_nodes, generator=gen) < 0.1
    return Data(x=x, edge_index=edge_index, y=y, train_mask=train_mask)


def epoch_times(model: torch.nn.Module, data: Data, epochs: int) -> list[float]:
    """Seconds of each training step (forward, loss, backward, Adam step)."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    times = []
    for _ in range(epochs + 1):  # the first step builds the cached normalisation: not timed
        t0 = time.perf_counter()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        synchronize(data.x.device)  # CUDA runs kernels asynchronously: wait before the clock
        times.append(time.perf_counter() - t0)
    return times[1:]


def compare(name: str, data: Data, args) -> list:
    num_classes = int(data.y.max()) + 1
    times: dict[str, list[float]] = {"dagnn": [], "appnp": []}
    with measure(args.device) as m:
        for r in range(args.runs):
            for model_name in (("dagnn", "appnp") if r % 2 == 0 else ("appnp", "dagnn")):
                seed_everything(args.seed + r)
                recipe = get_recipe(model_name, "Cora").with_model_kwargs(K=args.K)
                model = build_model(recipe, data.num_features, num_classes).to(args.device)
                times[model_name] += epoch_times(model, data.to(args.device), args.epochs)
    rows = [summarize(f"{k} (K={args.K})", name, "epoch_seconds", v, m.seconds, m.peak_rss_mb,
                      median=statistics.median(v), num_edges=data.num_edges, timed_epochs=len(v))
            for k, v in times.items()]
    ratio = statistics.median(times["dagnn"]) / statistics.median(times["appnp"])
    rows.append(summarize("dagnn/appnp ratio", name, "time_ratio", [ratio], m.seconds,
                          rss_mb(), num_edges=data.num_edges))
    for row in rows:  # per_run holds every timed epoch; `runs` counts the seeded blocks
        row.runs = args.runs
    return rows


def main() -> None:
    args = parse_args()
    if args.quick:
        args.runs, args.epochs, args.nodes, args.edges = 2, 3, 5_000, 30_000
    print(vars(args))  # after --quick: the log shows the sizes that ran
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
    torch.set_num_threads(args.threads)
    cora = prepare_data(get_recipe("dagnn", "Cora"), load("Cora", args.root),
                        sparse_features=torch.device(args.device).type == "cpu")
    synthetic = synthetic_graph(args.nodes, args.edges, args.seed)
    rows = compare("Cora", cora, args)
    rows += compare(f"random-{synthetic.num_nodes // 1000}k-{synthetic.num_edges // 1000}k",
                    synthetic, args)
    print_table(rows)
    write_report(args.json, "benchmarks/dagnn_speed.py", args, rows)


if __name__ == "__main__":
    run_main(main)
