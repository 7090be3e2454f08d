"""Compute backends for FastRP's propagation step.

Every backend holds the propagation matrix ``M`` (CSR) and implements one fused step

.. math::
    Y = M X, \\qquad s_i = \\lVert Y_i \\rVert_2^2, \\qquad U_i \\mathrel{+}= c_i Y_i,

with ``c_i = alpha`` (``how="plain"``), ``alpha / ||Y_i||`` (``"l2"``; 0 for a zero row),
``alpha * coef_i`` (``"coef"``) or no update (``"skip"``); with ``renormalize`` the rows of ``Y``
are L2-normalised in place first (Neo4j GDS propagates normalised vectors).

* ``"numba"``: a parallel fused row kernel (:mod:`graphkit.embed._numba`), NumPy arrays.
* ``"scipy"``: SciPy's sparse-dense product, NumPy arrays (single-threaded reference path).
* ``"torch"``: ``torch.sparse`` CSR on any device (CPU or CUDA), tensors.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["BACKENDS", "make_backend", "resolve_backend"]

BACKENDS = ("numba", "scipy", "torch")
_HOW = {"skip": 0, "plain": 1, "l2": 2, "coef": 3}


def resolve_backend(backend: str, device: Any = None) -> str:
    """Pick ``"torch"`` for a non-CPU device, else Numba when installed, else SciPy.

    On the CPU, ``$GRAPHKIT_BACKEND=python`` makes ``"auto"`` pick SciPy (the plain path) and
    ``numba`` (or ``cpp``, there being no compiled FastRP kernel) the Numba kernel.
    """
    on_cpu = device is None or str(device).startswith("cpu")
    if backend == "auto":
        if not on_cpu:
            return "torch"
        from graphkit.typing import WITH_NUMBA

        forced = os.environ.get("GRAPHKIT_BACKEND", "").strip().lower()
        if forced == "python":
            return "scipy"
        if forced in ("numba", "cpp"):
            backend = "numba"
        else:
            return "numba" if WITH_NUMBA else "scipy"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}': choose one of {('auto',) + BACKENDS}")
    if backend != "torch" and not on_cpu:
        raise ValueError(f"backend '{backend}' runs on the CPU only, got device '{device}'")
    if backend == "numba":
        from graphkit.typing import WITH_NUMBA

        if not WITH_NUMBA:
            raise ImportError("the 'numba' backend needs the package 'numba' (pip install numba)")
    return backend


class _NumpyBackend:
    """Shared NumPy-side helpers of the SciPy and Numba backends."""

    def __init__(self, m: sp.csr_matrix, dtype: np.dtype) -> None:
        self.m = m
        self.dtype = np.dtype(dtype)

    def asarray(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=self.dtype)

    def empty(self, n: int, d: int) -> np.ndarray:
        return np.empty((n, d), dtype=self.dtype)

    def zeros(self, n: int, d: int) -> np.ndarray:
        return np.zeros((n, d), dtype=self.dtype)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return x

    def row_sqnorm(self, x: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", x, x, dtype=np.float64)

    def add_rows(self, u: np.ndarray, x: np.ndarray, coef: np.ndarray) -> None:
        """``U_i += coef_i X_i``."""
        u += x * coef.astype(self.dtype)[:, None]


class ScipyBackend(_NumpyBackend):
    name = "scipy"

    def step(self, x, y, u, alpha: float, how: str, coef=None, renormalize: bool = False):
        y[...] = self.m @ x
        return self._accumulate(y, u, alpha, how, coef, renormalize)

    def step_sparse(self, s, y, u, alpha: float, how: str, coef=None, renormalize=False):
        """As :meth:`step` for a sparse ``X`` (SciPy CSR), e.g. the first product ``M (L R)``."""
        y[...] = (self.m @ s).toarray()
        return self._accumulate(y, u, alpha, how, coef, renormalize)

    def _accumulate(self, y, u, alpha, how, coef, renormalize):
        sq = self.row_sqnorm(y)
        inv = np.zeros_like(sq)
        np.divide(1.0, np.sqrt(sq), out=inv, where=sq > 0)
        if renormalize:
            y *= inv.astype(self.dtype)[:, None]
            inv = (sq > 0).astype(np.float64)
        if how == "plain":
            u += self.dtype.type(alpha) * y
        elif how == "l2":
            self.add_rows(u, y, alpha * inv)
        elif how == "coef":
            self.add_rows(u, y, alpha * coef)
        return sq


def _run_parallel(kernel, *args) -> None:
    """Run a Numba ``parallel=True`` kernel without leaking its thread count into torch.

    Numba's OpenMP layer sets the process-wide OpenMP thread count, which torch (built with
    OpenMP) reads as its intra-op thread count: after one FastRP call, a process that had set
    ``torch.set_num_threads(1)`` ran its torch operations on every core, with other float
    round-off.
    """
    import torch

    threads = torch.get_num_threads()
    try:
        kernel(*args)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


class NumbaBackend(_NumpyBackend):
    name = "numba"

    def __init__(self, m: sp.csr_matrix, dtype: np.dtype) -> None:
        super().__init__(m, dtype)
        from graphkit.embed import _numba

        self._numba = _numba
        self._indptr = m.indptr  # int32 or int64 as SciPy chose: Numba compiles either
        self._indices = m.indices
        self._data = m.data.astype(self.dtype, copy=False)
        self._dummy = np.zeros(0, dtype=np.float64)

    def _args(self, y, u, alpha, how, coef, renormalize):
        sq = np.empty(y.shape[0], dtype=np.float64)
        coef = self._dummy if coef is None else np.asarray(coef, dtype=np.float64)
        return (y, u if u is not None else y, float(alpha), _HOW[how], coef, bool(renormalize),
                sq)

    def step(self, x, y, u, alpha: float, how: str, coef=None, renormalize: bool = False):
        args = self._args(y, u, alpha, how, coef, renormalize)
        _run_parallel(self._numba.propagate, self._indptr, self._indices, self._data, x, *args)
        return args[-1]

    def step_sparse(self, s, y, u, alpha: float, how: str, coef=None, renormalize=False):
        s = sp.csr_matrix(s, dtype=self.dtype)
        args = self._args(y, u, alpha, how, coef, renormalize)
        _run_parallel(self._numba.propagate_sparse, self._indptr, self._indices, self._data,
                      s.indptr, s.indices, s.data, *args)
        return args[-1]


class TorchBackend:
    name = "torch"

    def __init__(self, m: sp.csr_matrix, dtype: np.dtype, device: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device if device is not None else "cpu")
        self.dtype = getattr(torch, np.dtype(dtype).name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            self.m = torch.sparse_csr_tensor(
                torch.from_numpy(m.indptr.astype(np.int64)),
                torch.from_numpy(m.indices.astype(np.int64)),
                torch.from_numpy(m.data).to(self.dtype),
                size=m.shape,
                check_invariants=False,
            ).to(self.device)

    def asarray(self, x):
        t = x if isinstance(x, self.torch.Tensor) else self.torch.from_numpy(np.asarray(x))
        return t.to(device=self.device, dtype=self.dtype).contiguous()

    def empty(self, n: int, d: int):
        return self.torch.empty(n, d, dtype=self.dtype, device=self.device)

    def zeros(self, n: int, d: int):
        return self.torch.zeros(n, d, dtype=self.dtype, device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy()

    def row_sqnorm(self, x):
        return x.square().sum(dim=1, dtype=self.torch.float64)

    def add_rows(self, u, x, coef) -> None:
        coef = self.torch.as_tensor(coef, device=self.device)
        u.addcmul_(x, coef.to(self.dtype).unsqueeze(1))

    def step(self, x, y, u, alpha: float, how: str, coef=None, renormalize: bool = False):
        torch = self.torch
        y.copy_(torch.sparse.mm(self.m, x) if self.m.shape[0] else y)
        sq = self.row_sqnorm(y)
        inv = torch.where(sq > 0, sq.rsqrt(), torch.zeros_like(sq))
        if renormalize:
            y.mul_(inv.to(self.dtype).unsqueeze(1))
            inv = (sq > 0).to(torch.float64)
        if how == "plain":
            u.add_(y, alpha=alpha)
        elif how == "l2":
            self.add_rows(u, y, alpha * inv)
        elif how == "coef":
            self.add_rows(u, y, alpha * self.torch.as_tensor(coef, device=self.device))
        return sq

    def step_sparse(self, s, y, u, alpha: float, how: str, coef=None, renormalize=False):
        """As :meth:`step` for a SciPy sparse ``X`` (densified on the device)."""
        return self.step(self.asarray(s.toarray()), y, u, alpha, how, coef, renormalize)


def make_backend(name: str, m: sp.csr_matrix, dtype: np.dtype, device: Any = None):
    """Instantiate backend ``name`` (already resolved) around the propagation matrix ``m``."""
    if name == "torch":
        return TorchBackend(m, dtype, device)
    if name == "numba":
        return NumbaBackend(m, dtype)
    return ScipyBackend(m, dtype)
