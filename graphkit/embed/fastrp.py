"""FastRP node embeddings (Chen et al., CIKM 2019), faithful to the official code.

`Fast and Accurate Network Embeddings via Very Sparse Random Projection
<https://arxiv.org/abs/1908.11512>`_: with ``A`` the adjacency matrix, ``D`` its diagonal of row
sums, ``M = D^{-1} A`` the random-walk transition matrix, ``R`` a very sparse random projection
(:func:`~graphkit.embed.projection.sparse_random_projection`) and ``L = D^{beta}``,

.. math::
    N_1 = M (L R), \\qquad N_i = M N_{i-1} \\;(i = 2..k), \\qquad
    U = \\sum_{i=1}^{k} \\alpha_i \\, \\mathrm{normalize}(N_i), \\qquad
    E = \\mathrm{standardize}(U),

where ``normalize`` divides each row by its L2 norm and ``standardize`` scales each column of
``U`` to zero mean and unit variance over the nodes (scikit-learn's ``scale``). ``M^i`` is never
formed: the cost is ``k`` sparse-dense products, ``O(k m d)``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphkit.data.convert import GraphLike, to_csr
from graphkit.device import check_device
from graphkit.embed.backends import make_backend, resolve_backend
from graphkit.embed.projection import gaussian_random_projection, sparse_random_projection

__all__ = [
    "fastrp",
    "propagation_matrix",
    "degree_scaling",
    "resolve_dtype",
    "make_projection",
    "standardize_columns",
]

DEFAULT_WEIGHTS = (0.0, 0.0, 1.0, 6.67)


def resolve_dtype(dtype: Any) -> np.dtype:
    """Map ``"float32"``, ``numpy.float64``, ``torch.float32`` ... to a NumPy float dtype."""
    if isinstance(dtype, str) or type(dtype).__module__ == "torch":
        name = str(dtype).replace("torch.", "")
        dtype = {"float": "float32", "single": "float32", "double": "float64"}.get(name, name)
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype}") from exc
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dt


def propagation_matrix(
    adj: sp.csr_matrix, input_matrix: str = "trans", dtype: Any = np.float64
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Return ``(M, deg)``: ``M = D^{-1} A`` (``"trans"``) or ``A`` (``"adj"``), and row sums.

    Rows of nodes without out-edges stay zero in ``M`` (no division by zero).
    """
    if input_matrix not in ("trans", "adj"):
        raise ValueError(f"input_matrix must be 'trans' or 'adj', got '{input_matrix}'")
    adj = sp.csr_matrix(adj)
    deg = np.asarray(adj.sum(axis=1), dtype=np.float64).ravel()
    data = adj.data.astype(np.float64)
    if input_matrix == "trans":
        inv = np.zeros_like(deg)
        np.divide(1.0, deg, out=inv, where=deg > 0)
        data *= np.repeat(inv, np.diff(adj.indptr))
    # share the index arrays with ``adj``: only the values are new
    m = sp.csr_matrix((data.astype(resolve_dtype(dtype), copy=False), adj.indices, adj.indptr),
                      shape=adj.shape)
    return m, deg


def degree_scaling(deg: np.ndarray, beta: float) -> np.ndarray:
    """``deg ** beta`` per node, with degree-0 nodes treated as degree 1 (no infinities)."""
    deg = np.asarray(deg, dtype=np.float64)
    if beta == 0:
        return np.ones_like(deg)
    return np.where(deg > 0, deg, 1.0) ** beta


def make_projection(
    projection: str | np.ndarray | sp.spmatrix | Any, num_nodes: int, dim: int, seed: Any
) -> sp.csc_matrix | np.ndarray:
    """Draw (``"sparse"``, ``"gaussian"``) or check (an ``[n, dim]`` matrix) the projection."""
    if isinstance(projection, str):
        if projection == "sparse":
            return sparse_random_projection(num_nodes, dim, seed=seed)
        if projection == "gaussian":
            return gaussian_random_projection(num_nodes, dim, seed=seed)
        raise ValueError(f"projection must be 'sparse', 'gaussian' or a matrix, got "
                         f"'{projection}'")
    if hasattr(projection, "detach"):
        projection = projection.detach().cpu().numpy()
    r = sp.csc_matrix(projection) if sp.issparse(projection) else np.asarray(projection)
    if r.dtype.kind not in "biuf":
        raise ValueError(f"projection matrix must hold real numbers, got dtype {r.dtype}")
    if r.shape != (num_nodes, dim):
        raise ValueError(f"projection matrix has shape {tuple(r.shape)}, expected "
                         f"({num_nodes}, {dim}) = (num_nodes, dim)")
    if not np.isfinite(r.data if sp.issparse(r) else r).all():  # a sparse one: stored values
        raise ValueError("projection matrix holds NaN or infinite values")
    return r


def _scaled_columns(
    r: sp.csc_matrix | np.ndarray, start: int, stop: int, scale: np.ndarray
) -> sp.csr_matrix | np.ndarray:
    """``diag(scale) @ r[:, start:stop]``: CSR when ``r`` is sparse, else a dense array."""
    block = r[:, start:stop]
    if sp.issparse(block):
        return sp.csr_matrix(sp.diags(scale) @ block)
    return np.asarray(block, dtype=np.float64) * scale[:, None]


def standardize_columns(u: Any, start: int = 0, stop: int | None = None, chunk: int = 64) -> None:
    """In place, scale columns ``start:stop`` of ``u`` to zero mean and unit variance.

    Population variance (``ddof=0``) accumulated in float64; a constant column is only centred,
    as in scikit-learn's ``preprocessing.scale``. Works on NumPy arrays (including memory maps)
    and tensors, ``chunk`` columns at a time so that the float64 temporaries stay small.
    """
    stop = u.shape[1] if stop is None else stop
    for c0 in range(start, stop, chunk):
        block = u[:, c0:min(c0 + chunk, stop)]
        if hasattr(block, "detach"):  # torch
            import torch

            mean = block.mean(dim=0, dtype=torch.float64)
            std = (block.to(torch.float64) - mean).square().mean(dim=0).sqrt()
            std = torch.where(std > 0, std, torch.ones_like(std))
            block.sub_(mean.to(block.dtype)).div_(std.to(block.dtype))
            continue
        mean = block.mean(axis=0, dtype=np.float64)
        std = block.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        block -= mean.astype(block.dtype)
        block /= std.astype(block.dtype)


def _check_dim(dim: Any) -> int:
    """``dim`` as an int; a fractional one (2.5) used to be truncated silently."""
    if isinstance(dim, bool) or not isinstance(dim, (int, float, np.integer, np.floating)) \
            or not math.isfinite(dim) or int(dim) != dim:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    return int(dim)


def _check_weights(iteration_weights: Sequence[float]) -> list[float]:
    weights = [float(w) for w in iteration_weights]
    if not weights:
        raise ValueError("iteration_weights is empty: give one weight per power of M")
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"iteration_weights must be finite, got {weights}")
    return weights


def fastrp(
    graph: GraphLike,
    dim: int = 512,
    iteration_weights: Sequence[float] = DEFAULT_WEIGHTS,
    beta: float = -0.64,
    normalization: bool = True,
    standardize: bool = True,
    input_matrix: str = "trans",
    projection: str | np.ndarray | sp.spmatrix = "sparse",
    seed: int | None = 42,
    dtype: Any = "float32",
    backend: str = "auto",
    device: Any = None,
    block_size: int | None = None,
    out: np.ndarray | None = None,
    num_nodes: int | None = None,
    weighted: bool = False,
    progress: bool = False,
) -> np.ndarray | Any:
    r"""Embed the nodes of ``graph`` with FastRP, from `"Fast and Accurate Network Embeddings
    via Very Sparse Random Projection" <https://arxiv.org/abs/1908.11512>`_ (Chen, Sultan,
    Tian, Chen, Skiena; CIKM 2019):

    .. math::
        E = \mathrm{standardize}\Big(\sum_{i=1}^{k} \alpha_i\,
        \mathrm{normalize}(N_i)\Big), \qquad N_i = M^i L R,

    with :math:`M = D^{-1} A`, :math:`L = D^{\beta}`, :math:`R` the random projection and
    ``normalize`` the row-wise L2 normalisation (the defaults; ``normalization``,
    ``standardize`` and ``input_matrix="adj"`` drop or change the parts).

    The defaults are the official tuned BlogCatalog settings (dimension 512, weights
    ``0, 0, 1, 6.67``, ``beta = -0.64``, per-power L2 normalisation, final standardisation).

    Args:
        graph: An ``edge_index``, a SciPy sparse adjacency matrix, a networkx graph or a PyG
            ``Data``. Give both directions of an undirected edge.
        dim (int): Embedding dimension ``d``. (default: ``512``)
        iteration_weights (sequence of float): ``alpha_1..alpha_k``; ``k`` is its length.
            (default: ``(0, 0, 1, 6.67)``)
        beta (float): Degree exponent of ``L = D^beta`` (``alpha`` in the official code).
            (default: ``-0.64``)
        normalization (bool): L2-normalise the rows of each power before the weighted sum.
            (default: ``True``)
        standardize (bool): Standardise each output column over all ``n`` nodes, isolated
            ones included, as the official code's ``scale(U)`` (their zero rows then move to
            ``-mean / std``; ``graphkit embed fastrp`` instead leaves ids that no edge names
            out and keeps them zero). (default: ``True``)
        input_matrix (str): ``"trans"`` for ``M = D^{-1} A``, ``"adj"`` for ``M = A``.
            (default: ``"trans"``)
        projection: ``"sparse"`` (very sparse, density ``1/sqrt(n)``), ``"gaussian"`` or an
            explicit ``[n, dim]`` matrix (dense or sparse). (default: ``"sparse"``)
        seed (int, optional): Seed of the projection. (default: ``42``)
        dtype: ``"float32"`` or ``"float64"`` (NumPy or torch dtypes work too).
            (default: ``"float32"``)
        backend (str): ``"auto"``, ``"numba"``, ``"scipy"`` or ``"torch"``; ``"auto"`` takes
            ``"torch"`` on a non-CPU ``device``, else Numba when installed. (default: ``"auto"``)
        device: Torch device of the ``"torch"`` backend, e.g. ``"cuda"``. (default: CPU)
        block_size (int, optional): Compute this many output columns at a time, so that the
            working memory is ``O(n * block_size)`` beside the output (with per-power
            normalisation the propagation then runs twice: once for the row norms).
            (default: all ``dim`` columns at once)
        out (numpy.ndarray, optional): An ``[n, dim]`` array to write into, e.g. a
            ``numpy.memmap`` for embeddings larger than memory (NumPy backends only).
        num_nodes (int, optional): Number of nodes, when not implied by ``graph``.
        weighted (bool): Use edge weights (summing duplicates) instead of a 0/1 adjacency.
            (default: ``False``)
        progress (bool): Show a progress bar on stderr. (default: ``False``)

    Returns:
        The ``[n, dim]`` embedding: a NumPy array for the NumPy backends, a tensor on
        ``device`` for ``"torch"``.
    """
    dim = _check_dim(dim)
    if not math.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta}")
    weights = _check_weights(iteration_weights)
    dt = resolve_dtype(dtype)
    name = resolve_backend(backend, device)  # a CPU-only backend with a GPU: said first
    check_device(device, flag="device")  # before any work, in one line
    if out is not None and name == "torch":
        raise ValueError("out= is for the NumPy backends; the torch backend returns a tensor")
    if out is not None and not isinstance(out, np.ndarray):  # was an AttributeError
        raise ValueError(f"out must be a NumPy array (e.g. a numpy.memmap), got "
                         f"{type(out).__name__}")

    adj = to_csr(graph, num_nodes=num_nodes, weighted=weighted, dtype=np.float64)
    if weighted and adj.nnz and adj.data.min() < 0:
        raise ValueError("edge weights must be non-negative for FastRP")
    n = adj.shape[0]
    if n == 0:
        raise ValueError("the graph is empty (num_nodes=0)")
    m, deg = propagation_matrix(adj, input_matrix, dt)
    del adj  # only M is needed from here on
    scale = degree_scaling(deg, beta)
    r = make_projection(projection, n, dim, seed)
    be = make_backend(name, m, dt, device)

    if out is not None:
        if tuple(out.shape) != (n, dim):
            raise ValueError(f"out has shape {tuple(out.shape)}, expected ({n}, {dim})")
        if out.dtype != dt:
            raise ValueError(f"out has dtype {out.dtype}, expected {dt}")
    b = dim if block_size is None else int(block_size)
    if b <= 0:
        raise ValueError(f"block_size must be positive, got {block_size}")
    b = min(b, dim)
    blocks = [(s, min(s + b, dim)) for s in range(0, dim, b)]
    streaming = len(blocks) > 1
    two_pass = streaming and normalization and any(w != 0 for w in weights)

    from tqdm import tqdm

    total = len(blocks) * len(weights) * (2 if two_pass else 1)
    bar = tqdm(total=total, desc="fastrp", unit="product", file=sys.stderr,
               disable=not progress, leave=False)

    def run_block(start: int, stop: int, u: Any, how: str, coef: Any) -> list[np.ndarray]:
        x0 = _scaled_columns(r, start, stop, scale)
        x, y = None, be.empty(n, stop - start)
        sqs = []
        for w, c in zip(weights, coef):
            step_how = "skip" if (w == 0 or u is None) else how
            if x is None and sp.issparse(x0):  # the very sparse first product M (L R)
                sqs.append(be.step_sparse(x0, y, u, w, step_how, c))
                x = be.empty(n, stop - start)
            else:
                x = be.asarray(x0) if x is None else x
                sqs.append(be.step(x, y, u, w, step_how, c))
            x, y = y, x
            bar.update(1)
        return sqs

    sq_total = None
    if two_pass:  # pass 1: squared row norms of every power, summed over column blocks
        sq_total = [np.zeros(n) for _ in weights]
        for start, stop in blocks:
            sqs = run_block(start, stop, None, "skip", [None] * len(weights))
            for acc, sq in zip(sq_total, sqs):
                acc += be.to_numpy(sq) if hasattr(sq, "detach") else sq
        inv = []
        for sq in sq_total:
            v = np.zeros_like(sq)
            np.divide(1.0, np.sqrt(sq), out=v, where=sq > 0)
            inv.append(v)
        how, coefs = "coef", inv
    else:
        how = "l2" if normalization else "plain"
        coefs = [None] * len(weights)

    if out is None and not streaming:
        u = be.zeros(n, dim)
        run_block(0, dim, u, how, coefs)
        if standardize:
            standardize_columns(u)
        bar.close()
        return u
    if out is None:
        out = be.zeros(n, dim) if name == "torch" else np.zeros((n, dim), dtype=dt)
    for start, stop in blocks:
        ub = be.zeros(n, stop - start)
        run_block(start, stop, ub, how, coefs)
        if standardize:
            standardize_columns(ub)
        out[:, start:stop] = ub
        del ub
    bar.close()
    return out
