"""benchmarks/topological_concentration.py end to end with --quick: the Spearman rows on Cora
(a graph with features), the exact-vs-loop row, and the TC/ATC rows alone on PPI
(featureless)."""

import json

import pytest

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}
TIMING = {("ATC vs TC (train-test)", "pearson"), ("TC exact (vectorised)", "seconds"),
          ("ATC", "seconds")}


def run(module, tmp_path, *flags):
    out = tmp_path / "tc.json"
    module.main([*flags, "--quick", "--runs", "1", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["script"] == "benchmarks/topological_concentration.py"
    assert report["rows"] and all(ROW_KEYS <= set(r) for r in report["rows"])
    assert report["config"]["epochs"] == 4 and report["config"]["hidden"] == 32
    return {(r["system"], r["metric"]): r for r in report["rows"]}


def check_timing(rows):
    assert TIMING <= set(rows)
    assert -1 <= rows[("ATC vs TC (train-test)", "pearson")]["mean"] <= 1
    atc = rows[("ATC", "seconds")]
    assert atc["mean"] > 0 and atc["speedup_vs_tc"] > 0 and len(atc["speedup_per_run"]) == 1


def test_quick_cora_rows(import_script, tmp_path):
    rows = run(import_script("topological_concentration"), tmp_path, "--dataset", "Cora",
               "--reference", "--atc-limit")
    check_timing(rows)
    spearman = {s for s, m in rows if m == "spearman_hits@10"}
    assert spearman == {"TC (train-test)", "ATC (train-test)", "training degree (peer)"}
    assert all(-1 <= rows[(s, "spearman_hits@10")]["mean"] <= 1 for s in spearman)
    hits = rows[("GCN + MLP predictor", "per_node_hits@10")]["mean"]
    assert 0 <= hits <= 1
    err = rows[("TC vectorised vs loop", "max_abs_error")]
    assert err["mean"] < 1e-9 and err["reference_seconds"] > 0
    # on Cora ATC's exact limit tracks TC closely (0.86 on split 0), ATC at 64 dims less so
    limit = rows[("ATC limit (d -> inf) vs TC", "pearson")]["mean"]
    assert limit > 0.7 and limit > rows[("ATC vs TC (train-test)", "pearson")]["mean"]
    assert 0 < rows[("ATC vs ATC limit", "pearson")]["mean"] <= 1


def test_quick_featureless_graph_gives_tc_rows_only(import_script, tmp_path):
    rows = run(import_script("topological_concentration"), tmp_path, "--dataset", "ppi",
               "--num-hops", "2", "--atc-sweep", "8", "256")
    check_timing(rows)
    sweep = {("ATC d=8 vs TC (train-test)", "pearson"), ("ATC d=256 vs TC (train-test)", "pearson")}
    assert set(rows) == TIMING | sweep
    assert all(-1 <= rows[key]["mean"] <= 1 and rows[key]["atc_dim"] in (8, 256) for key in sweep)


def test_rejects_unknown_dataset(usage_error):
    assert "invalid choice" in usage_error("topological_concentration", ["--dataset", "PubMed"])


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--k", "0"],
     "argument --k: must be >= 1, got 0"),
    (["--lr", "nan"],
     "argument --lr: must be a finite number, got nan"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("topological_concentration", flags)


def test_k_beyond_the_candidates_fails_before_training(import_script, monkeypatch):
    script = import_script("topological_concentration")
    monkeypatch.setattr(script, "run_repeated", lambda *a: pytest.fail("training started"))
    with pytest.raises(ValueError, match="--k 100000 exceeds the 2708 candidate nodes of Cora"):
        script.main(["--k", "100000", "--runs", "1"])
