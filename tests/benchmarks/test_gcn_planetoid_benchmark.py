"""benchmarks/gcn_planetoid.py end to end on real Cora: graphkit's GCN (with and without input
dropout) and PyG's GCN peer in one run, a missing dataset recorded as skipped, a corrupt one an
error, and an argparse error for a bad flag."""

import json
import shutil
import sys

import pytest

FIELDS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}
SYSTEMS = ["GCN (graphkit)", "GCN (graphkit, input_dropout=0)", "GCN (PyG peer)"]


def _main(script, monkeypatch, *flags):
    monkeypatch.setattr(sys, "argv", ["gcn_planetoid.py", *flags])
    script.main()


def test_quick_run_trains_graphkit_and_the_pyg_peer(import_script, tmp_path, monkeypatch):
    out = tmp_path / "gcn.json"
    # --quick is Cora only; 20 epochs keep the paper's dense input dropout within seconds
    _main(import_script("gcn_planetoid"), monkeypatch, "--quick", "--runs", "1",
          "--epochs", "20", "--json", str(out))
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["config"]["datasets"] == ["Cora"] and report["config"]["skipped"] == {}
    assert {(p["dataset"], p["value"]) for p in report["paper"]} >= {("Cora", 0.815)}
    rows = report["rows"]
    assert [r["system"] for r in rows] == SYSTEMS
    for r in rows:
        assert FIELDS <= r.keys()
        assert (r["dataset"], r["metric"], r["runs"]) == ("Cora", "test_acc", 1)
        assert 0.0 <= r["mean"] <= 1.0 and 0.0 <= r["val_acc"] <= 1.0
        # 20 epochs of a 2-layer GCN on Cora are well above chance (1/7)
        assert r["mean"] > 0.4
        assert 1 <= r["epochs_run"] <= 20
        assert r["seconds"] > 0 and r["median_epoch_ms"] > 0 and r["peak_rss_mb"] > 0


def test_missing_dataset_is_skipped_with_the_reason(import_script, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    out = tmp_path / "gcn.json"
    # nothing loaded: the report says why, and the run fails (it exited 0 with no row)
    with pytest.raises(SystemExit, match="no dataset could be loaded: .*ind.citeseer."):
        _main(import_script("gcn_planetoid"), monkeypatch, "--datasets", "CiteSeer", "--runs",
              "1", "--root", str(tmp_path / "empty"), "--json", str(out))
    report = json.loads(out.read_text())
    assert report["rows"] == []
    reason = report["config"]["skipped"]["CiteSeer"]
    assert "ind.citeseer." in reason and "missing" in reason


def test_corrupt_dataset_is_an_error_not_a_skip(import_script, tmp_path, monkeypatch,
                                               data_root):
    raw = tmp_path / "root" / "Planetoid" / "Cora" / "raw"
    shutil.copytree(f"{data_root}/Planetoid/Cora/raw", raw)
    (raw / "ind.cora.y").write_bytes(b"not a pickle")
    out = tmp_path / "gcn.json"
    with pytest.raises(ValueError, match="checksum mismatch for .*ind.cora.y"):
        _main(import_script("gcn_planetoid"), monkeypatch, "--quick", "--runs", "1",
              "--root", str(tmp_path / "root"), "--json", str(out))
    assert not out.exists()


def test_bad_flag_is_an_argparse_error(usage_error, tmp_path):
    err = usage_error("gcn_planetoid", ["--datasets", "cora", "--json", str(tmp_path / "x.json")])
    assert "invalid choice: 'cora'" in err
    assert not (tmp_path / "x.json").exists()


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"],
     "argument --epochs: must be >= 1, got 0"),
    (["--threads", "0"],
     "argument --threads: must be >= 1, got 0"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("gcn_planetoid", flags)
