import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.graphlets import pmi_matrix, svd_embedding


def test_pmi_and_svd_on_a_small_matrix():
    m = sp.csr_array(np.ones((4, 4)) + np.eye(4))
    assert pmi_matrix(m).shape == (4, 4)
    assert svd_embedding(m, dim=2).shape == (4, 2)


def test_pmi_rejects_non_finite_entries_and_a_nan_negative():
    # NaN entries were dropped from the PMI silently (log(nan) > 0 is false)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="co-occurrence matrix holds NaN or infinite"):
            pmi_matrix(np.array([[0.0, bad], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="negative must be positive, got nan"):
        pmi_matrix(np.eye(2), negative=float("nan"))  # dropped every entry
    with pytest.raises(ValueError, match="must be two-dimensional"):
        pmi_matrix(np.ones(3))  # was an IndexError


def test_svd_rejects_non_finite_entries_fractional_dim_and_empty_matrices():
    m = np.ones((4, 4))
    m[0, 1] = np.nan
    with pytest.raises(ValueError, match="matrix holds NaN or infinite"):  # was ArpackError
        svd_embedding(m, dim=1)
    with pytest.raises(ValueError, match="dim must be in 1..3, got 1.5"):
        svd_embedding(np.eye(4), dim=1.5)
    with pytest.raises(ValueError, match="at least 2 rows and 2 columns"):
        svd_embedding(np.zeros((0, 0)), dim=1)
