"""benchmarks/fastrp.py end to end on PPI (the smaller real dataset) and a random graph:
graphkit's FastRP against the plain SciPy FastRP in one run, its F1 rows, and the node2vec
peers recording why they did not run."""

import json
import sys

import pytest

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}
SPEED_SYSTEMS = {"plain-scipy-fastrp (float64)", "graphkit-fastrp", "graphkit-fastrp (float64)",
                 "graphkit-fastrp (torch cpu)", "graphkit-fastrp (scipy backend)"}


def run(module, monkeypatch, tmp_path, *flags):
    out = tmp_path / "fastrp.json"
    monkeypatch.setattr(sys, "argv", ["fastrp.py", *flags, "--json", str(out)])
    module.main()
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["script"] == "benchmarks/fastrp.py"
    assert report["rows"] and all(ROW_KEYS <= set(r) for r in report["rows"])
    return report


def check_graphkit_rows(rows, ratio):
    speed = {r["system"]: r for r in rows if r["metric"] == "embed_seconds"}
    assert SPEED_SYSTEMS <= set(speed)
    for r in (speed[s] for s in SPEED_SYSTEMS):
        assert r["dataset"] == "ppi" and r["runs"] == 1
        assert r["mean"] > 0 and r["seconds"] > 0 and r["peak_rss_mb"] > 0
        assert r["speedup_vs_plain"] > 0
    # same projection matrix: graphkit's float64 FastRP is the plain formula
    (diff,) = [r for r in rows if r["metric"] == "max_abs_diff_same_R"]
    assert diff["mean"] < 1e-8
    f1 = {r["metric"]: r for r in rows if r["system"] == "graphkit-fastrp" and "f1" in r["metric"]}
    assert set(f1) == {f"micro_f1@{ratio}", f"macro_f1@{ratio}"}  # --ratios holds under --quick
    assert all(0.05 < r["mean"] <= 1.0 and r["C"] == 0.1 for r in f1.values())


def test_quick_ppi_compares_graphkit_with_plain_scipy(import_script, monkeypatch, tmp_path):
    fastrp = import_script("fastrp")
    report = run(fastrp, monkeypatch, tmp_path, "--quick", "--dataset", "ppi", "--runs", "1",
                 "--ratios", "0.1", "--skip-node2vec")
    assert report["config"]["ratios"] == [0.1] and report["config"]["shuffles"] == 1
    check_graphkit_rows(report["rows"], 0.1)
    assert not [r for r in report["rows"] if "node2vec" in r["system"]]


def test_node2vec_peers_that_cannot_run_record_why(import_script, monkeypatch, tmp_path):
    fastrp = import_script("fastrp")

    def no_pecanpy():  # as on a machine without PecanPy (it is not a graphkit extra)
        raise ModuleNotFoundError("No module named 'pecanpy'")

    monkeypatch.setattr(fastrp, "_pecanpy", no_pecanpy)
    report = run(fastrp, monkeypatch, tmp_path, "--quick", "--dataset", "ppi", "--runs", "1",
                 "--ratios", "0.1")
    rows = report["rows"]
    check_graphkit_rows(rows, 0.1)
    (pecanpy,) = [r for r in rows if r["system"] == "pecanpy-node2vec"]
    assert pecanpy["metric"] == "skipped" and "pecanpy" in pecanpy["reason"]
    pyg = [r for r in rows if r["system"] == "pyg-node2vec"]
    assert pyg, "PyG Node2Vec has neither a result nor a skipped row"
    for r in pyg:  # it runs with pyg-lib or torch-cluster, else says which is missing
        if r["metric"] == "skipped":
            assert "ImportError" in r["reason"] and ("pyg-lib" in r["reason"]
                                                     or "torch-cluster" in r["reason"])
        else:
            assert r["metric"] == "embed_seconds" or 0.0 <= r["mean"] <= 1.0


def test_quick_synthetic_graph_times_both_modes(import_script, monkeypatch, tmp_path):
    fastrp = import_script("fastrp")
    report = run(fastrp, monkeypatch, tmp_path, "--quick", "--dataset", "synthetic",
                 "--nodes", "2000", "--edges", "20000", "--block-size", "64")
    rows = report["rows"]
    assert [r["system"] for r in rows] == ["graphkit-fastrp", "graphkit-fastrp (block 64)"]
    for r in rows:
        assert r["metric"] == "embed_seconds" and r["mean"] > 0 and r["peak_rss_mb"] > 0
        assert r["nodes"] == 2000 and 19_000 < r["undirected_edges"] <= 22_000
        assert r["embedding_mb"] == pytest.approx(2000 * 512 * 4 / 2**20)


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "cora"], "invalid choice: 'cora'"),
    (["--dataset", "ppi", "--runs", "1", "--skip-node2vec", "--ratios", "0.5", "1.5"],
     "--ratios must be fractions in (0, 1)"),
])
def test_bad_flags_are_argparse_errors(usage_error, flags, message):
    assert message in usage_error("fastrp", ["--quick", *flags])


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--shuffles", "0"],
     "argument --shuffles: must be >= 1, got 0"),
    (["--block-size", "-8"],
     "argument --block-size: must be >= 1, got -8"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("fastrp", flags)
