import numpy as np
import pytest
import scipy.sparse as sp


@pytest.fixture(scope="module")
def small_graph() -> sp.csr_matrix:
    """A symmetric 0/1 random graph on 120 nodes with two isolated nodes (118, 119)."""
    rng = np.random.default_rng(0)
    n = 120
    a = sp.random(n - 2, n - 2, density=0.06, random_state=rng, format="csr")
    a = ((a + a.T) > 0).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    return sp.block_diag([a, sp.csr_matrix((2, 2))], format="csr")
