"""benchmarks/fastrp.py end to end on PPI (the smaller real dataset) and a random graph:
graphkit's FastRP against the plain SciPy FastRP in one run, its F1 rows, PecanPy node2vec
through a peer interpreter (a stand-in PecanPy: the real one needs numpy < 2) and the node2vec
peers recording why they did not run."""

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

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


# PecanPy stand-in: the argument contract of pecanpy.FirstOrderUnweighted, an embedding the probe
# can score (neighbour sums of random vectors) and a log of the graph sizes it embedded
FAKE_PECANPY = """
import os
import sys

import numpy as np
import scipy.sparse as sp


class FirstOrderUnweighted:
    def __init__(self, p, q, workers, random_state):
        assert (p, q, workers) == (1, 1, 2)
        self.seed = random_state

    def set_node_ids(self, ids):
        self.ids = ids

    def embed(self, dim, num_walks, walk_length, window_size):
        assert (dim, num_walks, walk_length, window_size) == (128, 10, 80, 10)
        if os.environ.get("FAKE_PECANPY_PEER"):  # the worker must not need graphkit or torch
            assert "graphkit" not in sys.modules and "torch" not in sys.modules
        n = len(self.ids)
        with open(os.path.join(os.path.dirname(__file__), "calls.log"), "a") as f:
            f.write(f"{n}\\n")
        a = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(n, n))
        r = np.random.default_rng(self.seed).standard_normal((n, dim))
        return a @ r + r
"""


@pytest.fixture
def fake_peer(tmp_path):
    """``(interpreter, calls)``: a peer interpreter (this Python with a fake PecanPy on its path,
    as another virtual environment would be) and the sizes of the graphs it embedded."""
    pkg = tmp_path / "site" / "pecanpy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "pecanpy.py").write_text(FAKE_PECANPY)
    python = tmp_path / "peer-python"
    python.write_text(f"#!/bin/sh\nFAKE_PECANPY_PEER=1 PYTHONPATH={pkg.parent} "
                      f'exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return str(python), lambda: [int(x) for x in (pkg / "calls.log").read_text().split()]


def two_communities(n=60):
    """Two dense halves with a few links between them, and the half as a 2-column label."""
    rng = np.random.default_rng(0)
    half = np.arange(n) < n // 2
    p = np.where(half[:, None] == half[None, :], 0.3, 0.02)
    a = np.triu(rng.random((n, n)) < p, 1)
    adj = sp.csr_matrix((a | a.T).astype(np.float64))
    return adj, np.stack([half, ~half], axis=1).astype(np.int64)


def peer_args(peer_python):
    return argparse.Namespace(peer_python=peer_python, seed=0, shuffles=1, n_jobs=1)


def test_peer_python_runs_pecanpy_in_its_own_interpreter(import_script, monkeypatch, tmp_path,
                                                         fake_peer):
    fastrp = import_script("fastrp")
    python, calls = fake_peer
    report = run(fastrp, monkeypatch, tmp_path, "--quick", "--dataset", "ppi", "--runs", "1",
                 "--ratios", "0.1", "--peer-python", python)
    rows = report["rows"]
    check_graphkit_rows(rows, 0.1)
    assert report["config"]["peer_python"] == python
    (speed,) = [r for r in rows if r["system"] == "pecanpy-node2vec"
                and r["metric"] == "embed_seconds"]
    n = speed["nodes"]
    # the worker compiled on its 20-node ring, then timed one embedding of the whole graph
    assert calls() == [20, n] and n > 3000 and speed["stored_edges"] > n
    assert speed["peer_python"] == python and speed["in_process"] is False
    assert speed["mean"] > 0 and speed["cpu_seconds"] > 0 and speed["peak_rss_mb"] > 0
    assert speed["speedup_vs_graphkit"] > 0
    f1 = {r["metric"]: r for r in rows if r["system"] == "pecanpy-node2vec" and "f1" in r["metric"]}
    assert set(f1) == {"micro_f1@0.1", "macro_f1@0.1"}
    assert all(0.0 < r["mean"] <= 1.0 and r["C"] == 1.0 for r in f1.values())
    pyg = [r for r in rows if r["system"] == "pyg-node2vec"]
    assert pyg, "PyG Node2Vec has neither a result nor a skipped row"
    for r in pyg:  # it runs with pyg-lib or torch-cluster, else says which is missing
        if r["metric"] == "skipped":
            assert "ImportError" in r["reason"] and ("pyg-lib" in r["reason"]
                                                     or "torch-cluster" in r["reason"])
        else:
            assert r["metric"] == "embed_seconds" or 0.0 <= r["mean"] <= 1.0


@pytest.mark.parametrize("case", ["missing", "no-pecanpy", "crashes"])
def test_a_peer_that_cannot_run_is_a_skipped_row_saying_why(import_script, tmp_path, case):
    fastrp = import_script("fastrp")
    python = tmp_path / "peer-python"
    if case == "no-pecanpy":  # an interpreter without PecanPy, as graphkit's own one is
        python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    elif case == "crashes":
        python.write_text("#!/bin/sh\necho 'killed: out of memory' >&2\nexit 137\n")
    if python.exists():
        python.chmod(0o755)
    adj, y = two_communities()
    rows = fastrp.pecanpy_rows(peer_args(str(python)), "toy", adj, y, 1.0, (0.5,))
    assert [(r.system, r.metric) for r in rows] == [("pecanpy-node2vec", "skipped")]
    reason = rows[0].extra["reason"]
    assert rows[0].extra["peer_python"] == str(python)
    assert {"missing": f"{python} not found",
            "no-pecanpy": "ModuleNotFoundError: No module named 'pecanpy'",
            "crashes": "killed: out of memory"}[case] in reason


def test_this_interpreter_as_peer_runs_pecanpy_in_process(import_script, monkeypatch,
                                                          fake_peer):
    fastrp = import_script("fastrp")
    _, calls = fake_peer
    adj, y = two_communities()
    spec = importlib.util.spec_from_file_location(
        "fake_pecanpy", Path(fake_peer[0]).parent / "site" / "pecanpy" / "pecanpy.py")
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    monkeypatch.setattr(fastrp.peer_worker, "_pecanpy", lambda: fake)
    rows = fastrp.pecanpy_rows(peer_args(sys.executable), "toy", adj, y, 1.0, (0.5,))
    assert calls() == [20, 60]
    assert [r.metric for r in rows] == ["embed_seconds", "micro_f1@0.5", "macro_f1@0.5"]
    assert rows[0].extra["in_process"] is True and rows[0].mean > 0
    assert rows[1].mean > 0.9  # the two halves are easy to tell apart

    def no_pecanpy():  # graphkit's own interpreter, where PecanPy cannot be installed
        raise ModuleNotFoundError("No module named 'pecanpy'")

    monkeypatch.setattr(fastrp.peer_worker, "_pecanpy", no_pecanpy)
    (row,) = fastrp.pecanpy_rows(peer_args(sys.executable), "toy", adj, y, 1.0, (0.5,))
    assert row.metric == "skipped"
    assert row.extra["reason"] == "ModuleNotFoundError: No module named 'pecanpy'"


@pytest.mark.parametrize("exists", [True, False])
def test_the_default_peer_is_the_pecanpy_venv_when_it_exists(import_script, monkeypatch,
                                                             tmp_path, exists):
    fastrp = import_script("fastrp")
    venv_python = tmp_path / "pecanpy-venv" / "bin" / "python"
    if exists:
        venv_python.parent.mkdir(parents=True)
        venv_python.touch()
    monkeypatch.setattr(fastrp, "DEFAULT_PEER", str(venv_python))
    report = run(fastrp, monkeypatch, tmp_path, "--quick", "--dataset", "synthetic",
                 "--nodes", "300", "--edges", "1000")
    assert report["config"]["peer_python"] == (str(venv_python) if exists else sys.executable)


def test_the_worker_takes_four_positional_arguments():
    worker = Path(__file__).resolve().parents[2] / "benchmarks" / "fastrp_peer_worker.py"
    proc = subprocess.run([sys.executable, str(worker), "adj.npz"], capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert "usage: fastrp_peer_worker.py ADJ.npz OUT.npy SEED WORKERS" in proc.stderr


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
