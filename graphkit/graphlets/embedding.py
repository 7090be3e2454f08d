"""PMI + SVD node embeddings from an orbit adjacency (the GRADCO paper's downstream pipeline).

For a co-occurrence matrix ``M`` (an orbit adjacency, or a random-walk co-occurrence matrix) the
positive pointwise mutual information, NetMF-style (Qiu et al., WSDM 2018), is

.. math::
    \\mathrm{PPMI}[u, v] = \\max\\Big(0, \\log \\frac{M_{uv} \\, \\mathrm{vol}(M)}
    {b \\, (M\\mathbf{1})_u \\, (\\mathbf{1}^\\top M)_v}\\Big),

kept sparse (only non-zero ``M_uv`` can be positive). The embedding is the truncated SVD
``U_d \\Sigma_d^{1/2}`` of the PPMI matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

__all__ = ["pmi_matrix", "svd_embedding"]


def pmi_matrix(matrix, negative: float = 1.0) -> sp.csr_array:
    """Sparse positive PMI of a non-negative co-occurrence matrix (``negative`` is ``b``)."""
    if not negative > 0:  # NaN too: it dropped every entry
        raise ValueError(f"negative must be positive, got {negative}")
    m = _matrix(matrix, "co-occurrence matrix")
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"co-occurrence matrix must be square, got shape {m.shape}")
    if m.nnz and m.data.min() < 0:
        raise ValueError("co-occurrence matrix has negative entries")
    m.eliminate_zeros()
    vol = m.sum()
    if vol == 0:
        return sp.csr_array(m.shape, dtype=np.float64)
    rows = np.asarray(m.sum(axis=1)).ravel()
    cols = np.asarray(m.sum(axis=0)).ravel()
    coo = m.tocoo()
    val = np.log(coo.data * vol / (negative * rows[coo.row] * cols[coo.col]))
    keep = val > 0
    return sp.csr_array((val[keep], (coo.row[keep], coo.col[keep])), shape=m.shape)


def svd_embedding(matrix, dim: int = 128, seed: int = 0) -> np.ndarray:
    """``n x dim`` embedding ``U_d sqrt(S_d)`` from the top ``dim`` singular triplets."""
    m = _matrix(matrix, "matrix")
    n = m.shape[0]
    if min(m.shape) < 2:
        raise ValueError(f"matrix has shape {m.shape}: an embedding needs at least 2 rows and "
                         "2 columns")
    if not isinstance(dim, (int, np.integer)) or not 0 < dim < min(m.shape):
        raise ValueError(f"dim must be in 1..{min(m.shape) - 1}, got {dim}")
    if m.nnz == 0:
        return np.zeros((n, dim))
    v0 = np.random.default_rng(seed).standard_normal(min(m.shape))
    u, s, _ = svds(m, k=dim, v0=v0)
    order = np.argsort(-s)
    return u[:, order] * np.sqrt(s[order])


def _matrix(matrix, name: str) -> sp.csr_array:
    """``matrix`` as a float64 CSR array, rejecting other ranks and NaN or infinite entries
    (NaN entries of a co-occurrence matrix were dropped from the PMI silently; in the SVD
    they failed inside ARPACK)."""
    m = sp.csr_array(matrix, dtype=np.float64)
    if len(m.shape) != 2:
        raise ValueError(f"{name} must be two-dimensional, got shape {m.shape}")
    if m.nnz and not np.isfinite(m.data).all():
        raise ValueError(f"{name} holds NaN or infinite entries")
    return m
