import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.embed import fastrp, sparse_random_projection
from graphkit.embed.backends import BACKENDS

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
WEIGHTS = (0.0, 0.0, 1.0, 6.67)


def plain_fastrp(a, r, weights, beta, normalization=True, standardize=True):
    """The official formula written out with dense NumPy (the test oracle)."""
    a = sp.csr_matrix(a).toarray()
    deg = a.sum(axis=1)
    safe = np.where(deg > 0, deg, 1.0)
    m = np.where(deg[:, None] > 0, a / safe[:, None], 0.0)
    x = (safe ** beta)[:, None] * (r.toarray() if sp.issparse(r) else r)
    u = np.zeros_like(x)
    for w in weights:
        x = m @ x
        if normalization:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            u += w * np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
        else:
            u += w * x
    if standardize:
        std = u.std(axis=0)
        u = (u - u.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return u


def _np(e):
    return e.cpu().numpy() if isinstance(e, torch.Tensor) else e


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block_size", [None, 7])
def test_equals_plain_implementation_in_float64(small_graph, backend, block_size):
    r = sparse_random_projection(small_graph.shape[0], 32, seed=3)
    ref = plain_fastrp(small_graph, r, WEIGHTS, -0.64)
    out = fastrp(small_graph, dim=32, projection=r, dtype="float64", backend=backend,
                 block_size=block_size)
    assert _np(out).dtype == np.float64
    np.testing.assert_allclose(_np(out), ref, atol=1e-5, rtol=0)
    assert np.abs(_np(out) - ref).max() < 1e-10


@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_on_each_device(small_graph, device):
    r = sparse_random_projection(small_graph.shape[0], 16, seed=1)
    ref = plain_fastrp(small_graph, r, WEIGHTS, -0.64)
    out = fastrp(small_graph, dim=16, projection=r, backend="torch", device=device)
    assert isinstance(out, torch.Tensor) and out.device.type == device
    assert out.dtype == torch.float32
    np.testing.assert_allclose(_np(out), ref, atol=1e-3)


@pytest.mark.parametrize("normalization", [True, False])
def test_unnormalised_sum_is_linear_in_matrix_powers(small_graph, normalization):
    """Without standardisation the output is sum_i alpha_i normalize(M^i L R)."""
    r = np.random.default_rng(2).standard_normal((small_graph.shape[0], 8))
    w = (0.5, 1.0, -2.0)
    out = fastrp(small_graph, dim=8, iteration_weights=w, beta=0.3, projection=r,
                 normalization=normalization, standardize=False, dtype="float64")
    np.testing.assert_allclose(out, plain_fastrp(small_graph, r, w, 0.3, normalization,
                                                 standardize=False), atol=1e-12)


def test_official_code_path_with_scikit_learn_projection(small_graph):
    """Same R as the official code (sklearn SparseRandomProjection, random_state=42)."""
    from sklearn.preprocessing import normalize, scale
    from sklearn.random_projection import SparseRandomProjection

    a = small_graph[:118, :118].tocsr()  # the official code divides by zero on isolated nodes
    n = a.shape[0]
    deg = np.asarray(a.sum(axis=1)).ravel()
    m = sp.diags(1 / deg) @ a
    t = SparseRandomProjection(n_components=24, random_state=42).fit(m)
    comp = t.components_ @ sp.diags(deg ** -0.64)
    cur = m @ comp.T
    u = np.zeros((n, 24))
    for w in WEIGHTS:
        u += w * normalize(cur.toarray())
        cur = m @ cur
    ref = scale(u)
    out = fastrp(a, dim=24, projection=t.components_.T, dtype="float64")
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_defaults_float32_standardised_and_seeded(small_graph):
    e = fastrp(small_graph, dim=64)
    assert e.shape == (120, 64) and e.dtype == np.float32
    assert np.isfinite(e).all()
    np.testing.assert_allclose(e.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(e.std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(e, fastrp(small_graph, dim=64))
    assert not np.allclose(e, fastrp(small_graph, dim=64, seed=7))
    # isolated nodes (118, 119) all get the same row: the column means
    np.testing.assert_allclose(e[118], e[119])


def test_input_types_agree(small_graph):
    coo = small_graph.tocoo()
    edge_index = torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    g = nx.Graph()
    g.add_nodes_from(range(120))
    g.add_edges_from(zip(coo.row.tolist(), coo.col.tolist()))
    ref = fastrp(small_graph, dim=16)
    np.testing.assert_allclose(fastrp(edge_index, dim=16, num_nodes=120), ref)
    np.testing.assert_allclose(fastrp(g, dim=16), ref)


def test_out_array_and_streaming_agree(small_graph, tmp_path):
    ref = fastrp(small_graph, dim=40, dtype="float64")
    mm = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float64,
                                   shape=(120, 40))
    res = fastrp(small_graph, dim=40, dtype="float64", block_size=16, out=mm)
    assert res is mm
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), ref, atol=1e-10)


def test_gaussian_projection_and_adjacency_input(small_graph):
    e = fastrp(small_graph, dim=16, projection="gaussian", input_matrix="adj", beta=0.0)
    assert e.shape == (120, 16) and np.isfinite(e).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0), "dim must be positive"),
    (dict(dim=2.5), "dim must be a positive integer, got 2.5"),  # was truncated to 2
    (dict(out=[[0.0] * 16] * 120, block_size=8), "out must be a NumPy array"),
    (dict(iteration_weights=()), "iteration_weights is empty"),
    (dict(iteration_weights=(1.0, float("nan"))), "iteration_weights must be finite"),
    (dict(beta=float("inf")), "beta must be finite"),
    (dict(dtype="int64"), "dtype must be float32 or float64"),
    (dict(backend="magic"), "unknown backend"),
    (dict(backend="scipy", device="cuda"), "runs on the CPU only"),
    (dict(input_matrix="laplacian"), "input_matrix"),
    (dict(projection="uniform"), "projection must be"),
    (dict(projection=np.ones((5, 16))), "projection matrix has shape"),
    # a sparse projection's NaN used to pass unchecked and fill the embedding with NaN
    (dict(projection=sp.csc_matrix(np.full((120, 16), np.nan))), "projection matrix holds NaN"),
    (dict(projection=np.full((120, 16), "a")), "projection matrix must hold real numbers"),
    (dict(block_size=0), "block_size must be positive"),
    (dict(out=np.zeros((3, 16), dtype=np.float32)), "out has shape"),
    (dict(out=np.zeros((120, 16), dtype=np.float64)), "out has dtype"),
])
def test_bad_arguments(small_graph, kwargs, match):
    kwargs = {"dim": 16, **kwargs}
    with pytest.raises(ValueError, match=match):
        fastrp(small_graph, **kwargs)


def test_bad_graphs():
    with pytest.raises(ValueError, match="negative node id"):
        fastrp(torch.tensor([[0, -1], [1, 0]]), dim=4)
    with pytest.raises(ValueError, match="must be square"):
        fastrp(sp.csr_matrix(np.ones((2, 3))), dim=4)
    with pytest.raises(ValueError, match="non-negative"):
        fastrp(sp.csr_matrix(np.array([[0.0, -1.0], [-1.0, 0.0]])), dim=4, weighted=True)
    with pytest.raises(ValueError, match="empty"):
        fastrp(sp.csr_matrix((0, 0)), dim=4)


def test_backend_env_variable(monkeypatch):
    from graphkit.embed.backends import resolve_backend

    monkeypatch.setenv("GRAPHKIT_BACKEND", "python")
    assert resolve_backend("auto") == "scipy"
    assert resolve_backend("numba") == "numba"  # an explicit choice wins
    monkeypatch.setenv("GRAPHKIT_BACKEND", "numba")
    assert resolve_backend("auto") == "numba"
    assert resolve_backend("auto", device="cuda:0") == "torch"


def test_numba_backend_leaves_torch_thread_count_alone(small_graph):
    # Numba's OpenMP layer used to reset the process-wide OpenMP count that torch reads
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        fastrp(small_graph, dim=16, backend="numba")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
