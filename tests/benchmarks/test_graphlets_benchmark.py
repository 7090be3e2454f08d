"""benchmarks/graphlets.py and its worker: graphkit's backends timed in fresh processes on
airports-europe (--quick), with the gradco / ORCA peers' missing interpreter recorded (they
need their own numpy < 2 environment, absent on a fresh machine)."""

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.graphlets import KEYS, gdv, load_orbit_adjacency, orbit_adjacency
from graphkit.ops.graphlets import available_backends

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def test_quick_run_times_every_graphkit_mode_and_records_missing_peers(
        import_script, monkeypatch, tmp_path):
    graphlets = import_script("graphlets")
    out, peer = tmp_path / "graphlets.json", tmp_path / "no-venv" / "bin" / "python"
    # --quick alone means one run (the default --runs is 3) on airports-europe
    monkeypatch.setattr(sys, "argv", ["graphlets.py", "--quick",
                                      "--peer-python", str(peer), "--json", str(out)])
    graphlets.main()
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["script"] == "benchmarks/graphlets.py"
    rows = report["rows"]
    assert all(ROW_KEYS <= set(r) for r in rows)
    backends = [b for b in ("cpp", "numba") if b in available_backends()]
    assert backends, "neither the compiled nor the Numba backend is available"
    assert [r["system"] for r in rows] == [f"graphkit-{b}-{mode}" for b in backends
                                          for mode in ("memory", "stream", "gdv")]
    for r in rows:
        assert r["dataset"] == "airports-europe" and r["metric"] == "seconds"
        assert r["runs"] == 1 and r["mean"] > 0 and r["peak_rss_mb"] > 0
        assert r["cpu_seconds"] > 0 and r["nodes"] == 399 and r["edges"] > 0
    assert report["config"]["failures"] == {}
    assert report["config"]["runs"] == 1 and report["config"]["dataset"] == "airports-europe"
    skipped = report["config"]["skipped"]
    assert set(skipped) == {"gradco-orbit", "orca-gdv"}
    assert all(str(peer) in why and "not found" in why for why in skipped.values())


def test_worker_writes_what_graphkit_computes(import_script, tmp_path):
    graphlets = import_script("graphlets")
    a = sp.csr_array(nx.to_scipy_sparse_array(nx.karate_club_graph(), weight=None,
                                              dtype=np.int64))
    adj = tmp_path / "adj.npz"
    sp.save_npz(adj, sp.csr_matrix(a))
    backend = available_backends()[0]
    expected = orbit_adjacency(a, backend="python")
    for mode in ("memory", "stream"):
        path = tmp_path / f"{mode}.npz"
        res = graphlets.run_worker(sys.executable, f"graphkit-{backend}-{mode}", adj, path)
        assert res["seconds"] > 0 and res["peak_rss_mb"] >= res["base_rss_mb"] > 0
        got = load_orbit_adjacency(path)
        assert set(got) == set(KEYS)
        assert all((got[k] != expected[k]).nnz == 0 for k in KEYS)
    assert res["system"] == f"graphkit-{backend}-stream"
    gdv_path = tmp_path / "gdv.npy"
    graphlets.run_worker(sys.executable, f"graphkit-{backend}-gdv", adj, gdv_path)
    np.testing.assert_array_equal(np.load(gdv_path), gdv(a, backend="python"))
    with pytest.raises(RuntimeError, match="unknown system .nosuch."):
        graphlets.run_worker(sys.executable, "nosuch", adj, tmp_path / "x.npz")


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "cora"], "invalid choice: 'cora'"),
    (["--backends", "numba", "fortran"], "--backends fortran: not available here"),
    # 0 was taken for "default --runs" silently, a negative count gave no gradco run
    (["--peer-runs", "0"], "argument --peer-runs: must be >= 1, got 0"),
    # the workers have no python systems: each failed, leaving an empty report and exit 0
    (["--backends", "python"], "--backends python: the pure-Python reference backend is too slow"),
])
def test_bad_flags_are_argparse_errors(usage_error, flags, message):
    assert message in usage_error("graphlets", ["--quick", *flags])


def test_worker_names_its_usage_and_unknown_systems(tmp_path):
    worker = Path(__file__).resolve().parents[2] / "benchmarks" / "graphlets_worker.py"
    run = lambda *a: subprocess.run([sys.executable, str(worker), *a], capture_output=True,
                                    text=True)
    proc = run()
    assert proc.returncode != 0 and "usage: graphlets_worker.py SYSTEM" in proc.stderr
    proc = run("graphkit-foo-gdv", str(tmp_path / "adj.npz"), str(tmp_path / "out.npy"))
    assert proc.returncode != 0 and "unknown system 'graphkit-foo-gdv'" in proc.stderr
    assert "Traceback" not in proc.stderr


class Loaded(Exception):
    """Stops ``main`` at the dataset load, carrying the name it asked for."""


@pytest.mark.parametrize("flags, dataset", [
    (["--quick", "--dataset", "ppi"], "ppi"),  # was replaced by airports-europe
    (["--quick"], "airports-europe"),
    ([], "ppi"),
])
def test_quick_keeps_an_explicit_dataset(import_script, monkeypatch, flags, dataset):
    graphlets = import_script("graphlets")

    def load(name, root=None):
        raise Loaded(name)

    monkeypatch.setattr(graphlets, "load", load)
    monkeypatch.setattr(sys, "argv", ["graphlets.py", *flags])
    with pytest.raises(Loaded) as loaded:
        graphlets.main()
    assert loaded.value.args[0] == dataset


def test_failed_workers_are_recorded_and_an_empty_report_exits_nonzero(
        import_script, monkeypatch, tmp_path):
    graphlets = import_script("graphlets")

    def fail(python, system, *args, **kwargs):
        raise RuntimeError(f"{system} failed:\nkilled")

    monkeypatch.setattr(graphlets, "run_worker", fail)
    out = tmp_path / "graphlets.json"
    monkeypatch.setattr(sys, "argv", ["graphlets.py", "--quick", "--peer-python", "",
                                      "--json", str(out)])
    with pytest.raises(SystemExit) as exc:
        graphlets.main()
    assert exc.value.code not in (0, None) and "no system produced a row" in str(exc.value.code)
    report = json.loads(out.read_text())
    assert report["rows"] == []
    systems = {f"graphkit-{b}-{m}" for b in available_backends() if b != "python"
               for m in ("memory", "stream", "gdv")}
    assert systems <= set(report["config"]["skipped"]) and systems == set(
        report["config"]["failures"])


def test_a_later_failed_run_leaves_a_row_of_fewer_runs(import_script, monkeypatch, tmp_path):
    # run 0 measured, run 1 failed: the row reports one run and the system is not "skipped"
    graphlets = import_script("graphlets")
    real, calls = graphlets.run_worker, {}

    def second_fails(python, system, *args, **kwargs):
        calls[system] = calls.get(system, 0) + 1
        if calls[system] > 1:
            raise RuntimeError(f"{system} failed:\nkilled")
        return real(python, system, *args, **kwargs)

    monkeypatch.setattr(graphlets, "run_worker", second_fails)
    out = tmp_path / "graphlets.json"
    monkeypatch.setattr(sys, "argv", ["graphlets.py", "--dataset", "airports-europe", "--runs",
                                      "2", "--only", "gdv", "--backends", "numba",
                                      "--peer-python", "", "--check", "no", "--json", str(out)])
    graphlets.main()
    report = json.loads(out.read_text())
    rows = [r for r in report["rows"] if r["system"] == "graphkit-numba-gdv"]
    assert rows and all(r["runs"] == 1 for r in rows)
    assert "graphkit-numba-gdv" in report["config"]["failures"]
    assert "graphkit-numba-gdv" not in report["config"]["skipped"]
