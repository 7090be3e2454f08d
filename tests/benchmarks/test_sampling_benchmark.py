"""benchmarks/sampling.py end to end (--quick): graphkit's NeighborSampler against PyG's
NeighborLoader (a row saying why it could not run where pyg-lib and torch-sparse are missing)
and TemporalNeighborSampler against PyG's LastNeighborLoader, in the same run."""

import json
import sys

import pytest
import torch

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def test_quick_run_compares_with_pyg_in_the_same_run(import_script, monkeypatch, tmp_path):
    sampling = import_script("sampling")
    out = tmp_path / "sampling.json"
    monkeypatch.setattr(sys, "argv", ["sampling.py", "--quick", "--runs", "1", "--json", str(out)])
    threads = torch.get_num_threads()
    try:
        sampling.main()
    finally:  # the script sets its --threads for the whole process
        torch.set_num_threads(threads)
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["script"] == "benchmarks/sampling.py"
    rows = {r["system"]: r for r in report["rows"]}
    assert all(ROW_KEYS <= set(r) for r in rows.values())

    measured = {"graphkit-NeighborSampler[numba]": "seeds_per_s",
                "graphkit-NeighborSampler[torch]": "seeds_per_s",
                "graphkit-TemporalNeighborSampler[numba]": "events_per_s",
                "graphkit-TemporalNeighborSampler[torch]": "events_per_s",
                "pyg-LastNeighborLoader": "events_per_s"}
    assert set(measured) <= set(rows)
    for system, metric in measured.items():
        r = rows[system]
        assert r["metric"] == metric and r["runs"] == 1
        assert r["mean"] > 0 and r["seconds"] > 0 and r["peak_rss_mb"] > 0
    for system in measured:
        if "Temporal" in system or system.startswith("pyg"):
            r = rows[system]
            assert r["dataset"] == "stream-2k-0.1M" and r["k"] == 10 and r["batch"] == 200
            # PyG drops a few neighbours of nodes seen more than k times in one batch
            assert 0.95 <= r["same_neighbors_as_pyg"] <= 1.0
        else:
            assert rows[system]["dataset"] == "random-20k-0.2M"
            assert rows[system]["fanout"] == [15, 10]

    pyg = [r for s, r in rows.items() if s.startswith("pyg-NeighborLoader")]
    assert len(pyg) == 1, "PyG's NeighborLoader has neither a result nor a skipped row"
    (pyg,) = pyg
    assert pyg["metric"] == "seeds_per_s"
    if pyg["runs"] == 0:  # not measured: the reason, and no number that could be mistaken
        assert pyg["mean"] is None and pyg["std"] is None
        assert pyg["notes"].startswith("skipped: PyG's NeighborLoader cannot run here")
        assert "pyg-lib" in pyg["notes"] or "torch-sparse" in pyg["notes"]
    else:
        assert pyg["mean"] > 0


@pytest.mark.parametrize("flags, message", [
    (["--nodes", "3000", "--batch-size", "1024", "--batches", "4"],
     "--batch-size 1024 x --batches 4 exceeds --nodes 3000"),
    (["--k", "0"], "must be >= 1: --k 0"),
    # a zero or negative timeout made every peer build step time out after 1 s
    (["--build-timeout", "0"], "must be >= 1: --build-timeout 0"),
    (["--fanout", "ten"], "invalid int value: 'ten'"),
])
def test_bad_flags_are_argparse_errors(usage_error, flags, message):
    # a small run, so that a check that went missing fails fast instead of timing 1M events
    small = ["--runs", "1", "--edges", "1000", "--temporal-nodes", "100", "--events", "1000"]
    assert message in usage_error("sampling", [*small, *flags])


def test_pyg_neighbor_loader_gets_every_run_where_it_can_run(import_script, monkeypatch,
                                                             tmp_path):
    # pyg-lib is not installed here: stand in for the loader's subprocess (timed elsewhere by
    # PYG_PEER) to check what the script makes of its runs
    sampling = import_script("sampling")
    calls = []

    def fake_peer(py, args, seed):
        calls.append((py, seed))
        return 1000.0 + seed, 0.25

    monkeypatch.setattr(sampling, "pyg_neighbor_status", lambda: None)
    monkeypatch.setattr(sampling, "time_pyg_neighbor", fake_peer)
    out = tmp_path / "sampling.json"
    monkeypatch.setattr(sys, "argv", ["sampling.py", "--quick", "--runs", "2", "--seed", "5",
                                      "--json", str(out)])
    threads = torch.get_num_threads()
    try:
        sampling.main()
    finally:
        torch.set_num_threads(threads)
    assert calls == [(sys.executable, 5), (sys.executable, 6)]
    (row,) = [r for r in json.loads(out.read_text())["rows"]
              if r["system"].startswith("pyg-NeighborLoader")]
    assert row["system"] == "pyg-NeighborLoader" and row["runs"] == 2
    assert row["per_run"] == [1005.0, 1006.0] and row["seconds"] == 0.5
    assert row["peak_rss_measured"] is False
