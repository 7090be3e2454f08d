import math

import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.embed import gaussian_random_projection, sparse_random_projection


def test_density_and_values_match_the_very_sparse_distribution():
    n, d = 10_000, 256
    r = sparse_random_projection(n, d, seed=0)
    assert r.shape == (n, d) and sp.issparse(r)
    p = 1 / math.sqrt(n)  # density "auto" = 1/sqrt(n)
    mean, sd = n * d * p, math.sqrt(n * d * p * (1 - p))
    assert abs(r.nnz - mean) < 3 * sd
    value = math.sqrt(1 / p) / math.sqrt(d)  # +-sqrt(s/d), s = 1/p
    np.testing.assert_allclose(np.abs(r.data), value)
    plus = int((r.data > 0).sum())
    assert abs(plus - r.nnz / 2) < 3 * math.sqrt(r.nnz / 4)
    # distinct rows within a column, and column norms close to 1 (E ||R_j||^2 = n p s/d... = 1)
    for j in range(0, d, 37):
        col = r.indices[r.indptr[j]:r.indptr[j + 1]]
        assert len(np.unique(col)) == len(col)
    norms2 = np.asarray(r.multiply(r).sum(axis=0)).ravel() * d / n
    assert abs(norms2.mean() - 1) < 0.05


def test_values_equal_scikit_learn_sparse_random_projection():
    from sklearn.random_projection import SparseRandomProjection

    n, d = 900, 64
    t = SparseRandomProjection(n_components=d, random_state=42).fit(sp.eye(n, format="csr"))
    ours = sparse_random_projection(n, d, seed=42)
    np.testing.assert_allclose(np.unique(np.abs(ours.data)),
                               np.unique(np.abs(t.components_.data)))
    assert t.density_ == pytest.approx(1 / math.sqrt(n))


def test_explicit_density_and_seed_reproducibility():
    a = sparse_random_projection(300, 30, density=1 / 3, seed=5)
    b = sparse_random_projection(300, 30, density=1 / 3, seed=5)
    c = sparse_random_projection(300, 30, density=1 / 3, seed=6)
    assert (a != b).nnz == 0 and (a != c).nnz > 0
    np.testing.assert_allclose(np.abs(a.data), math.sqrt(3 / 30))
    assert a.dtype == np.float64
    assert sparse_random_projection(10, 4, dtype=np.float32).dtype == np.float32


def test_gaussian_projection_moments():
    g = gaussian_random_projection(4000, 50, seed=1)
    assert g.shape == (4000, 50)
    assert abs(g.mean()) < 0.01 and g.var() * 50 == pytest.approx(1, abs=0.02)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_nodes=10, dim=0), "dim must be positive"),
    (dict(num_nodes=-1, dim=4), "num_nodes must be non-negative"),
    (dict(num_nodes=10, dim=4, density=0.0), "density"),
    (dict(num_nodes=10, dim=4, density=1.5), "density"),
    # an integer dtype rounded every +-sqrt(s/d) entry to 0 or +-1 without an error
    (dict(num_nodes=10, dim=4, dtype=np.int32), "dtype must be a floating-point type"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sparse_random_projection(**kwargs)


def test_gaussian_rejects_an_integer_dtype():
    with pytest.raises(ValueError, match="dtype must be a floating-point type"):
        gaussian_random_projection(10, 4, dtype=np.int64)
