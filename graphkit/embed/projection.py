"""Random projection matrices for FastRP.

The very sparse random projection of `Li, Hastie and Church (KDD 2006)
<https://dl.acm.org/doi/10.1145/1150402.1150436>`_ draws an ``n x d`` matrix whose entries are

.. math::
    R_{ij} = \\sqrt{\\frac{s}{d}} \\cdot
    \\begin{cases} +1 & \\text{with probability } 1/(2s) \\\\
                   0 & \\text{with probability } 1 - 1/s \\\\
                   -1 & \\text{with probability } 1/(2s) \\end{cases}

with ``s = sqrt(n)`` by default (density ``1/sqrt(n)``), exactly the distribution of
scikit-learn's ``SparseRandomProjection(density='auto')`` that the official FastRP code uses.
``density=1/3`` gives Achlioptas' projection, the one Neo4j GDS uses.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

__all__ = ["sparse_random_projection", "gaussian_random_projection"]


def _check_shape(num_nodes: int, dim: int, dtype: np.dtype | type = np.float64) -> None:
    if np.dtype(dtype).kind != "f":  # an integer type rounds the +-sqrt(s/d) entries to 0
        raise ValueError(f"dtype must be a floating-point type, got {np.dtype(dtype)}")
    if int(num_nodes) < 0:
        raise ValueError(f"num_nodes must be non-negative, got {num_nodes}")
    if int(dim) <= 0:
        raise ValueError(f"dim must be positive, got {dim}")


def sparse_random_projection(
    num_nodes: int,
    dim: int,
    density: float | None = None,
    seed: int | np.random.Generator | None = 42,
    dtype: np.dtype | type = np.float64,
) -> sp.csc_matrix:
    r"""Draw a very sparse random projection matrix of shape ``[num_nodes, dim]``, from
    `"Very Sparse Random Projections" <https://dl.acm.org/doi/10.1145/1150402.1150436>`_
    (Li, Hastie, Church; KDD 2006); ``density=1/3`` is the projection of "Database-friendly
    random projections: Johnson-Lindenstrauss with binary coins" (Achlioptas, JCSS 2003).
    With :math:`s = 1 / \text{density}` the entries are, independently,

    .. math::
        R_{ij} = \sqrt{s / d} \cdot \{+1, 0, -1\} \text{ with probabilities }
        \tfrac{1}{2s},\ 1 - \tfrac{1}{s},\ \tfrac{1}{2s}

    (variance :math:`1/d`, so :math:`\mathbb{E}\,\lVert x R \rVert^2 = \lVert x \rVert^2`):
    each column gets ``Binomial(num_nodes, density)`` non-zeros at distinct random rows, each
    ``+-sqrt(s / dim)`` with equal probability.

    Args:
        num_nodes (int): Number of rows ``n`` (nodes).
        dim (int): Number of columns ``d`` (embedding dimension).
        density (float, optional): Probability ``1/s`` that an entry is non-zero, in
            ``(0, 1]``. (default: ``1 / sqrt(num_nodes)``)
        seed (int or numpy.random.Generator, optional): Random seed. (default: ``42``)
        dtype (numpy.dtype): Value type. (default: ``float64``)

    Returns:
        scipy.sparse.csc_matrix: The projection matrix with sorted indices.
    """
    _check_shape(num_nodes, dim, dtype)
    n, d = int(num_nodes), int(dim)
    if density is None:
        density = 1.0 / math.sqrt(n) if n > 0 else 1.0
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    rng = np.random.default_rng(seed)
    counts = rng.binomial(n, density, size=d)
    indptr = np.zeros(d + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    for j in range(d):
        rows = rng.choice(n, size=int(counts[j]), replace=False)
        rows.sort()
        indices[indptr[j]:indptr[j + 1]] = rows
    scale = math.sqrt(1.0 / density) / math.sqrt(d)
    signs = rng.integers(0, 2, size=indices.size) * 2 - 1
    data = (signs * scale).astype(dtype)
    return sp.csc_matrix((data, indices, indptr), shape=(n, d))


def gaussian_random_projection(
    num_nodes: int,
    dim: int,
    seed: int | np.random.Generator | None = 42,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray:
    r"""Draw a dense Gaussian projection matrix with i.i.d. ``N(0, 1/dim)`` entries, the
    classic Johnson-Lindenstrauss projection ("Extensions of Lipschitz mappings into a Hilbert
    space", Johnson and Lindenstrauss, 1984):
    :math:`R_{ij} \sim \mathcal{N}(0, 1/d)`, so that
    :math:`\mathbb{E}\,\lVert x R \rVert^2 = \lVert x \rVert^2`."""
    _check_shape(num_nodes, dim, dtype)
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(num_nodes), int(dim))) / math.sqrt(dim)).astype(dtype)
