"""benchmarks/forward_learning.py end to end: every scheme the issue names runs on both tasks."""

import json
import sys

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
