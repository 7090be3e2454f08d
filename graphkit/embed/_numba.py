"""Numba kernels for one FastRP propagation step (imported only when the Numba backend runs).

One pass over the rows of a CSR matrix ``M`` computes ``Y = M @ X`` row by row, the squared
row norms of ``Y``, optionally L2-normalises ``Y`` in place and adds ``c_i * Y[i]`` to ``U[i]``;
rows are split over threads with ``prange``. Fusing these steps reads each row of ``Y`` once.
``X`` is dense (:func:`propagate`) or a CSR matrix (:func:`propagate_sparse`, for the very
sparse first product ``M (L R)``, which then costs ``O(nnz(M) * nnz(R) / n)`` instead of
``O(nnz(M) * d)``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["propagate", "propagate_sparse"]

# how the accumulated coefficient c_i is formed
SKIP, PLAIN, L2, COEF = 0, 1, 2, 3


@numba.njit(inline="always")
def _finish_row(yi, ui, i, alpha, how, coef, renormalize, sqnorm):
    d = yi.shape[0]
    sq = 0.0
    for k in range(d):
        sq += np.float64(yi[k]) * yi[k]
    sqnorm[i] = sq
    inv = 1.0 / math.sqrt(sq) if sq > 0.0 else 0.0
    if renormalize:
        for k in range(d):
            yi[k] *= inv
        inv = 1.0 if sq > 0.0 else 0.0
    if how == SKIP:
        return
    if how == PLAIN:
        c = alpha
    elif how == L2:
        c = alpha * inv
    else:
        c = alpha * coef[i]
    for k in range(d):
        ui[k] += c * yi[k]


@numba.njit(parallel=True, cache=True, nogil=True)
def propagate(indptr, indices, data, x, y, u, alpha, how, coef, renormalize, sqnorm):
    """``Y = M X`` (``X`` dense); ``sqnorm[i] = ||Y_i||^2``; ``U_i += c_i Y_i``.

    ``how``: 0 no update, 1 ``c_i = alpha``, 2 ``c_i = alpha / ||Y_i||`` (0 for a zero row),
    3 ``c_i = alpha * coef[i]``. With ``renormalize``, ``Y_i`` is divided by its norm first
    (zero rows stay zero), and ``how`` 2 then reduces to ``c_i = alpha``.
    """
    n, d = y.shape
    for i in numba.prange(n):
        yi = y[i]
        for k in range(d):
            yi[k] = 0
        for p in range(indptr[i], indptr[i + 1]):
            w = data[p]
            xj = x[indices[p]]
            for k in range(d):
                yi[k] += w * xj[k]
        _finish_row(yi, u[i], i, alpha, how, coef, renormalize, sqnorm)


@numba.njit(parallel=True, cache=True, nogil=True)
def propagate_sparse(indptr, indices, data, xptr, xind, xval, y, u, alpha, how, coef,
                     renormalize, sqnorm):
    """As :func:`propagate` with ``X`` given in CSR form ``(xptr, xind, xval)``."""
    n, d = y.shape
    for i in numba.prange(n):
        yi = y[i]
        for k in range(d):
            yi[k] = 0
        for p in range(indptr[i], indptr[i + 1]):
            w = data[p]
            j = indices[p]
            for q in range(xptr[j], xptr[j + 1]):
                yi[xind[q]] += w * xval[q]
        _finish_row(yi, u[i], i, alpha, how, coef, renormalize, sqnorm)
