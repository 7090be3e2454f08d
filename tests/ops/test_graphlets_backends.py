import itertools
import warnings

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

import graphkit.ops.graphlets as dispatch
from graphkit.graphlets import edge_gdv, gdv, orbit_adjacency
from graphkit.ops.graphlets import ALL_MASK, KEYS, available_backends, orbit_counter
from graphkit.ops.graphlets.python_ref import PythonOrbitCounter

FAST = [b for b in available_backends() if b != "python"]


def csr(g: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    a = nx.to_scipy_sparse_array(g, nodelist=range(g.number_of_nodes()), format="csr")
    a.sort_indices()
    return a.indptr.astype(np.int64), a.indices.astype(np.int32)


def assert_same(got, ref) -> None:
    for key, x, y in zip(KEYS, got, ref):
        for a, b in zip(x, y):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(key))


def test_fast_backends_are_available():
    assert "python" in available_backends()
    assert "numba" in FAST  # numba is a dependency of graphkit


@pytest.mark.parametrize("backend", FAST)
def test_backend_equals_oracle_on_every_five_node_graph(backend):
    pairs = list(itertools.combinations(range(5), 2))
    for bits in range(1 << len(pairs)):
        g = nx.empty_graph(5)
        g.add_edges_from(p for b, p in enumerate(pairs) if bits >> b & 1)
        indptr, indices = csr(g)
        ref = PythonOrbitCounter(indptr, indices)
        counter = orbit_counter(indptr, indices, backend)
        assert_same(counter.count_rows(0, 5, ALL_MASK, 1), ref.count_rows(0, 5, ALL_MASK))
        np.testing.assert_array_equal(counter.gdv(), ref.gdv())
        for a, b in zip(counter.edge_gdv(), ref.edge_gdv()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", FAST)
def test_backends_agree_in_row_blocks_and_both_hop3_modes(backend):
    g = nx.barabasi_albert_graph(150, 4, seed=0)
    indptr, indices = csr(g)
    ref = PythonOrbitCounter(indptr, indices).count_rows(40, 110, ALL_MASK)
    counter = orbit_counter(indptr, indices, backend)
    for mode in (0, 1, 2):
        assert_same(counter.count_rows(40, 110, ALL_MASK, mode), ref)


def test_all_backends_agree_on_public_api():
    g = nx.gnp_random_graph(35, 0.2, seed=5)
    g.add_nodes_from(range(35, 38))  # isolated nodes
    results = {b: orbit_adjacency(g, backend=b) for b in available_backends()}
    first = results["python"]
    for res in results.values():
        assert all((res[k] != first[k]).nnz == 0 for k in KEYS)
    gdvs = [gdv(g, backend=b) for b in available_backends()]
    assert all(np.array_equal(x, gdvs[0]) for x in gdvs)
    egdvs = [edge_gdv(g, backend=b)[1] for b in available_backends()]
    assert all(np.array_equal(x, egdvs[0]) for x in egdvs)


def test_empty_graphs_on_every_backend():
    for backend in available_backends():
        for n in (0, 1, 3):
            res = orbit_adjacency(sp.csr_array((n, n), dtype=np.int32), backend=backend)
            assert all(m.shape == (n, n) and m.nnz == 0 for m in res.values())
            assert gdv(sp.csr_array((n, n)), backend=backend).shape == (n, 15)
            assert edge_gdv(sp.csr_array((n, n)), backend=backend)[1].shape == (0, 12)


def test_environment_variable_selects_backend(monkeypatch):
    g = nx.cycle_graph(5)
    monkeypatch.setenv("GRAPHKIT_BACKEND", "python")
    assert dispatch.resolve_backend() == "python"
    assert isinstance(orbit_counter(*csr(g)), PythonOrbitCounter)
    monkeypatch.setenv("GRAPHKIT_BACKEND", "NUMBA")
    assert dispatch.resolve_backend() == "numba"
    monkeypatch.setenv("GRAPHKIT_BACKEND", "gpu")
    with pytest.raises(ValueError, match="unknown graphlet backend 'gpu'"):
        dispatch.resolve_backend()
    monkeypatch.delenv("GRAPHKIT_BACKEND")
    assert dispatch.resolve_backend() == available_backends()[0]


def test_missing_extension_falls_back_to_numba_and_says_so_once(monkeypatch):
    monkeypatch.delenv("GRAPHKIT_BACKEND", raising=False)
    monkeypatch.setattr(dispatch.gk_typing, "WITH_CPP", False)
    monkeypatch.setattr(dispatch, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="uses the numba backend"):
        assert dispatch.resolve_backend() == "numba"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dispatch.resolve_backend() == "numba"
    with pytest.raises(ImportError, match="'cpp' is not available"):
        dispatch.resolve_backend("cpp")


def test_counter_rejects_bad_arrays_and_ranges():
    indptr, indices = csr(nx.path_graph(4))
    for backend in FAST:
        with pytest.raises(ValueError, match="indptr"):
            orbit_counter(indptr, indices[:-1], backend)
        with pytest.raises((ValueError, IndexError), match="range|bounds"):
            orbit_counter(indptr, indices, backend).count_rows(0, 9, ALL_MASK)


@pytest.mark.parametrize("backend", available_backends())
def test_counter_rejects_csr_arrays_that_are_not_a_simple_undirected_graph(backend):
    # an out-of-range id crashed the compiled and Numba counters (segmentation fault); a
    # self-loop, duplicate or one-way edge gave negative or wrong counts without an error
    bad = {
        "out of range for num_nodes=2": ([0, 1, 2], [5, 0]),
        "node id -1": ([0, 1, 2], [-1, 0]),
        "indptr decreases at row 1": ([0, 2, 1, 2], [1, 2]),
        "indptr must run from 0": ([1, 1, 2], [1, 0]),
        "self-loop at node 0": ([0, 1, 2], [0, 1]),
        "row 0 of indices is not sorted": ([0, 2, 3, 4], [2, 1, 0, 0]),
        r"edge \(0, 1\) is stored but \(1, 0\) is not": ([0, 1, 1], [1]),
        "indptr must hold integers": (np.array([0.0, 1, 2]), [1, 0]),
        "at least one entry": (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)),
    }
    for message, (indptr, indices) in bad.items():
        with pytest.raises(ValueError, match=message):
            orbit_counter(np.asarray(indptr), np.asarray(indices), backend)
    indptr, indices = csr(nx.path_graph(4))
    assert orbit_counter(indptr, indices, backend).gdv().shape == (4, 15)


@pytest.mark.parametrize("backend", available_backends())
def test_count_rows_rejects_bad_mask_mode_and_rows(backend):
    # hop3_mode=9 was a segmentation fault in the compiled counter; the Python oracle read a
    # negative r0 from the end
    counter = orbit_counter(*csr(nx.path_graph(5)), backend)
    for args, message in (((0, 5, ALL_MASK, 9), "hop3_mode must be 0"),
                          ((0, 5, -1, 0), "mask must select keys"),
                          ((0, 5, ALL_MASK + 1, 0), "mask must select keys"),
                          ((-1, 2, ALL_MASK, 0), r"row range \[-1, 2\) out of bounds"),
                          ((0, 5, 1.5, 0), "count_rows takes integers")):
        with pytest.raises(ValueError, match=message):
            counter.count_rows(*args)
    assert len(counter.count_rows(0, 5, ALL_MASK, 0)) == len(KEYS)
