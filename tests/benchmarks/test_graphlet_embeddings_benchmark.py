"""benchmarks/graphlet_embeddings.py end to end on airports-europe (--quick): one micro- and one
macro-F1 row per orbit adjacency and per random-walk window, in the shared report format."""

import json
import sys

import pytest

from graphkit.graphlets import KEYS

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def test_quick_run_scores_orbit_and_random_walk_embeddings(import_script, monkeypatch, tmp_path):
    script = import_script("graphlet_embeddings")
    out = tmp_path / "ge.json"
    monkeypatch.setattr(sys, "argv", ["graphlet_embeddings.py", "--quick",
                                      "--runs", "1", "--dim", "16", "--windows", "1", "2",
                                      "--json", str(out)])
    script.main()
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["script"] == "benchmarks/graphlet_embeddings.py"
    # the default dataset, and the config says so
    assert report["config"]["dataset"] == "airports-europe" and report["config"]["runs"] == 1
    rows = report["rows"]
    assert all(ROW_KEYS <= set(r) for r in rows)
    # GRADCO's 20 orbit adjacencies: the 28 matrices with each non-symmetric pair merged
    orbit = {f"GOPMI A{h}_{i}_{j}" for h, i, j in KEYS if i <= j}
    assert len(orbit) == 20
    skipped = report["config"]["skipped"]
    assert set(skipped) <= orbit and all(v == "empty matrix" for v in skipped.values())
    systems = orbit - set(skipped) | {"RWPMI T=1", "RWPMI T=2"}
    assert {(r["system"], r["metric"]) for r in rows} == {
        (s, m) for s in systems for m in ("micro_f1", "macro_f1")}
    assert len(rows) == 2 * len(systems)
    for r in rows:
        assert r["dataset"] == "airports-europe" and r["runs"] == 1 and r["dim"] == 16
        assert 0.0 <= r["mean"] <= 1.0 and r["seconds"] > 0 and r["nnz"] > 0
    # four balanced classes: every embedding should beat chance by a margin
    assert max(r["mean"] for r in rows if r["metric"] == "micro_f1") > 0.35


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "cora"], "invalid choice: 'cora'"),
    (["--train-ratio", "1"], "--train-ratio must be in (0, 1)"),
    (["--windows", "0", "2"], "--windows must be >= 1"),
])
def test_bad_flags_are_argparse_errors(usage_error, flags, message):
    assert message in usage_error("graphlet_embeddings", ["--quick", *flags])


def test_a_graph_without_graphlets_reports_every_orbit_matrix_skipped(
        import_script, monkeypatch, tmp_path, capsys):
    import scipy.sparse as sp

    script = import_script("graphlet_embeddings")
    empty = lambda a: {k: sp.csr_array(a.shape, dtype=a.dtype) for k in KEYS}
    monkeypatch.setattr(script, "orbit_adjacency", empty)
    out = tmp_path / "ge.json"
    monkeypatch.setattr(sys, "argv", ["graphlet_embeddings.py", "--quick", "--runs", "1",
                                      "--dim", "8", "--windows", "1", "--json", str(out)])
    script.main()
    report = json.loads(out.read_text())
    assert len(report["config"]["skipped"]) == 20
    assert {r["system"] for r in report["rows"]} == {"RWPMI T=1"}
    assert "best orbit adjacency: none" in capsys.readouterr().out


def test_quick_keeps_an_explicit_dataset(import_script, monkeypatch):
    # --quick used to replace --dataset ppi by airports-europe: the run measured another graph
    script = import_script("graphlet_embeddings")
    monkeypatch.setattr(sys, "argv", ["graphlet_embeddings.py", "--quick", "--dataset", "ppi"])
    args = script.parse_args()
    assert args.dataset == "ppi" and args.runs == 2
    monkeypatch.setattr(sys, "argv", ["graphlet_embeddings.py", "--quick"])
    assert script.parse_args().dataset == "airports-europe"
