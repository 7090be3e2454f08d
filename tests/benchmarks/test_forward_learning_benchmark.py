"""benchmarks/forward_learning.py end to end: every scheme the issue names runs on both tasks."""

import json
import sys

import pytest
import torch
from torch_geometric.data import Data

from graphkit.train.forward import SCHEMES


def test_every_scheme_runs_on_the_link_task(import_script, tmp_path, monkeypatch):
    bench = import_script("forward_learning")
    out = tmp_path / "link.json"
    monkeypatch.setattr(sys, "argv", [
        "forward_learning.py", "--quick", "--task", "link", "--scheme", *SCHEMES,
        "--dataset", "csbm:num_nodes=200", "--hidden", "16", "--layers", "2",
        "--json", str(out)])
    bench.main()
    rows = json.loads(out.read_text())["rows"]
    assert [r["system"] for r in rows] == [f"{s} (gcn)" for s in SCHEMES]
    assert {r["metric"] for r in rows} == {"roc_auc"}
    assert all(0.0 <= r["mean"] <= 1.0 for r in rows)
    # the layer-wise schemes report one score per layer (averaged over layers 1..l)
    assert all(len(r["per_layer_mean"]) == (1 if r["system"].startswith("bp") else 2)
               for r in rows)


def test_any_graphkit_data_name_runs_or_is_refused_up_front(import_script, monkeypatch):
    bench = import_script("forward_learning")
    # refused when the arguments are parsed, naming why (was a traceback mid-run)
    assert "event stream" in bench.dataset_problem("temporal-sbm", "link")
    assert "no single class per node" in bench.dataset_problem("ppi", "node")
    assert bench.dataset_problem("ppi", "link") is None
    assert bench.dataset_problem("hsbm", "node") is None
    # a hypergraph runs on its clique expansion
    data = bench.load_dataset("hsbm", None)
    assert data.edge_index.size(1) > 0 and data.x is not None
    # a graph without node features gets one-hot node ids
    featureless = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=3,
                       y=torch.tensor([0, 1, 0]))
    monkeypatch.setattr(bench, "load", lambda name, root=None, **kw: featureless)
    assert torch.equal(bench.load_dataset("airports-usa", None).x, torch.eye(3))


def test_identity_features_are_refused_for_a_large_featureless_graph(import_script,
                                                                      monkeypatch):
    bench = import_script("forward_learning")
    big = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=30_000)
    monkeypatch.setattr(bench, "load", lambda name, root=None, **kw: big)
    with pytest.raises(SystemExit, match="too many for identity features"):
        bench.load_dataset("airports-usa", None)


def test_the_link_task_leaves_self_loops_and_repeats_out(capsys):
    # link_split refuses them; PPI (894 self-loops) and airports-europe (2) are link datasets
    from graphkit.benchmarking import links_only

    ring = torch.tensor([[0, 1, 1, 2, 2, 0, 1, 1], [1, 0, 2, 1, 0, 2, 1, 2]])  # a loop, a repeat
    data = Data(x=torch.eye(3), edge_index=ring, num_nodes=3)
    out = links_only(data, "toy")
    assert out.edge_index.size(1) == 6 and not bool((out.edge_index[0] == out.edge_index[1]).any())
    assert "toy: 2 self-loop or repeated edge entries left out" in capsys.readouterr().out
    clean = Data(x=torch.eye(3), edge_index=out.edge_index, num_nodes=3)
    assert links_only(clean, "toy") is clean
