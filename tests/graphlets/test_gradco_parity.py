"""Parity with the reference ``gradco`` package (0.1.8) and ORCA (``orbit-count``).

``gradco`` needs numpy < 2, so it lives in its own interpreter: ``$GRAPHLETS_PEER_PYTHON``
(default ``/tmp/gradco-venv/bin/python``; ``make test-all`` creates it), created with
``python3 -m venv /tmp/gradco-venv && /tmp/gradco-venv/bin/pip install "numpy<2" scipy gradco
orbit-count``. The benchmark's worker runs the peers there.
"""

import os
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.graphlets import gdv, load_orbit_adjacency, orbit_adjacency

WORKER = Path(__file__).resolve().parents[2] / "benchmarks" / "graphlets_worker.py"
PEER = os.environ.get("GRAPHLETS_PEER_PYTHON", "/tmp/gradco-venv/bin/python")


def run_peer(system: str, adj: Path, out: Path) -> None:
    if not Path(PEER).exists():
        raise FileNotFoundError(f"no gradco interpreter at {PEER}: see this module's docstring")
    proc = subprocess.run([PEER, str(WORKER), system, str(adj), str(out)], capture_output=True,
                          text=True, env={**os.environ, "GRAPHLETS_CHECK": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_matrices_and_gdvs_equal_gradco_and_orca(tmp_path, seed):
    g = nx.barabasi_albert_graph(300, 5, seed=seed)
    a = sp.csr_array(nx.to_scipy_sparse_array(g, nodelist=range(300), dtype=np.int32))
    adj = tmp_path / "adj.npz"
    sp.save_npz(adj, sp.csr_matrix(a))
    run_peer("gradco-orbit", adj, tmp_path / "gradco.npz")
    run_peer("orca-gdv", adj, tmp_path / "orca.npy")
    ref = load_orbit_adjacency(tmp_path / "gradco.npz")
    ours = orbit_adjacency(a)
    assert set(ref) == set(ours)
    for key in ours:
        assert (ours[key] != ref[key]).nnz == 0, key
    counts = gdv(a)
    np.testing.assert_array_equal(counts, np.load(tmp_path / "gradco.npz.gdv.npy"))
    np.testing.assert_array_equal(counts, np.load(tmp_path / "orca.npy"))
