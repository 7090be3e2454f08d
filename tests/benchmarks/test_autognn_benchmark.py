"""benchmarks/autognn.py end to end with --quick (a 120-node synthetic graph): three searches of
the same budget, retrained bests and the GCN / GAT points in one JSON report."""

import json
import sys

import pytest

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}
SEARCHES = {"autognn", "autognn-noshare", "random-search"}


def test_quick_run_writes_the_report(import_script, monkeypatch, tmp_path):
    module = import_script("autognn")
    out = tmp_path / "autognn.json"
    monkeypatch.setattr(sys, "argv", ["autognn.py", "--quick", "--budget", "3",
                                      "--json", str(out)])
    module.main()
    report = json.loads(out.read_text())
    assert report["script"] == "benchmarks/autognn.py"
    assert report["config"]["budget"] == 3 and report["config"]["runs"] == 2
    rows = report["rows"]
    assert all(ROW_KEYS <= set(r) for r in rows)
    acc = {r["system"]: r for r in rows if r["metric"] == "test_acc"}
    assert set(acc) == SEARCHES | {"gcn", "gat"}
    for r in acc.values():
        assert r["dataset"] == "csbm" and r["runs"] == 2 and len(r["per_run"]) == 2
        assert 0.0 <= r["mean"] <= 1.0 and len(r["val_acc"]) == 2
    search = {r["system"]: r for r in rows if r["metric"] == "search_seconds"}
    assert set(search) == SEARCHES
    for r in search.values():
        assert r["budget"] == 3 and len(r["trajectory"]) == 3 and r["mean"] > 0
        assert r["best_val"] == max(v for _, v in r["trajectory"])
    assert search["autognn-noshare"]["inherited_children"] == 0
    # the default target is reached by every search: the lowest of their best accuracies
    reach = {r["system"]: r for r in rows if r["metric"] == "seconds_to_val"}
    assert set(reach) == SEARCHES
    target = min(r["best_val"] for r in search.values())
    assert all(r["target_val"] == target for r in reach.values())


def test_bad_flags(usage_error):
    assert "--budget" in usage_error("autognn", ["--budget", "0"])
    assert "invalid choice" in usage_error("autognn", ["--dataset", "PubMed"])


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"],
     "argument --epochs: must be >= 1, got 0"),
    (["--target-val", "nan"],
     "argument --target-val: must be a finite number"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("autognn", flags)
