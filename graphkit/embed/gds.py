"""The Neo4j Graph Data Science variant of FastRP (``gds.fastRP``).

As documented for `gds.fastRP <https://neo4j.com/docs/graph-data-science/current/machine-learning/
node-embeddings/fastrp/>`_: initial vectors ``r_n`` (a sparse random part scaled by
``deg(n)^normalizationStrength``, optionally followed by a random projection of node properties),
then repeated neighbourhood averaging with an L2 normalisation after every iteration,

.. math::
    e^0_n = r_n, \\qquad
    e^i_n = \\mathrm{normalize}\\Big(\\frac{1}{\\deg n} \\sum_{m \\in N(n)} e^{i-1}_m\\Big), \\qquad
    x_n = w_0 \\, \\mathrm{normalize}(r_n) + \\sum_{i=1}^{k} w_i \\, e^i_n,

with ``w_0 = nodeSelfInfluence`` and ``w_1..w_k = iterationWeights``; no final standardisation.
Differences from :func:`~graphkit.embed.fastrp`: normalised vectors are propagated, there is
a self-influence term and no column scaling, and the random part has density 1/3
(Achlioptas) instead of ``1/sqrt(n)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphkit.data.convert import GraphLike, to_csr
from graphkit.device import check_device
from graphkit.embed.backends import make_backend, resolve_backend
from graphkit.embed.fastrp import (
    _check_dim,
    _check_weights,
    degree_scaling,
    propagation_matrix,
    resolve_dtype,
)
from graphkit.embed.projection import sparse_random_projection

__all__ = ["fastrp_gds", "gds_initial_vectors"]

ACHLIOPTAS_DENSITY = 1.0 / 3.0


def gds_initial_vectors(
    deg: np.ndarray,
    dim: int,
    normalization_strength: float = 0.0,
    features: np.ndarray | None = None,
    property_ratio: float = 0.0,
    seed: int | None = 42,
) -> np.ndarray:
    """The ``[n, dim]`` initial vectors of GDS FastRP (float64).

    The first ``dim - p`` columns are an Achlioptas projection (entries ``+-sqrt(3 / (dim - p))``
    with probability 1/6 each) scaled per node by ``deg ** normalization_strength``; the last
    ``p = int(property_ratio * dim)`` columns are ``features @ P`` with ``P`` another such
    projection of the ``[n, f]`` node properties.
    """
    if not 0.0 <= property_ratio <= 1.0:
        raise ValueError(f"property_ratio must lie in [0, 1], got {property_ratio}")
    n = len(deg)
    p = int(property_ratio * dim)
    if p > 0 and features is None:
        raise ValueError(f"property_ratio={property_ratio} needs node features (features=...)")
    rng = np.random.default_rng(seed)
    h0 = np.zeros((n, dim), dtype=np.float64)
    base = dim - p
    if base > 0:
        r = sparse_random_projection(n, base, density=ACHLIOPTAS_DENSITY, seed=rng)
        h0[:, :base] = r.toarray() * degree_scaling(deg, normalization_strength)[:, None]
    if p > 0:
        x = features.detach().cpu().numpy() if hasattr(features, "detach") else features
        x = sp.csr_matrix(x) if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != n:
            raise ValueError(f"features must have shape [num_nodes={n}, num_features], got "
                             f"{list(x.shape)}")
        if not np.isfinite(x.data if sp.issparse(x) else x).all():
            raise ValueError("features hold NaN or infinite values")
        proj = sparse_random_projection(x.shape[1], p, density=ACHLIOPTAS_DENSITY, seed=rng)
        h0[:, base:] = np.asarray((x @ proj).toarray() if sp.issparse(x) else x @ proj.toarray())
    return h0


def fastrp_gds(
    graph: GraphLike,
    dim: int = 128,
    iteration_weights: Sequence[float] = (0.0, 1.0, 1.0),
    normalization_strength: float = 0.0,
    node_self_influence: float = 0.0,
    features: np.ndarray | None = None,
    property_ratio: float = 0.0,
    initial: np.ndarray | None = None,
    seed: int | None = 42,
    dtype: Any = "float32",
    backend: str = "auto",
    device: Any = None,
    num_nodes: int | None = None,
    weighted: bool = False,
) -> np.ndarray | Any:
    r"""Embed the nodes of ``graph`` with the Neo4j GDS variant of FastRP (`Chen et al.,
    CIKM 2019 <https://arxiv.org/abs/1908.11512>`_, as ``gds.fastRP`` implements it; initial
    vectors from the density-1/3 projection of Achlioptas, JCSS 2003):

    .. math::
        x_n = w_0\,\mathrm{normalize}(r_n) + \sum_{i=1}^{k} w_i\, e^i_n, \qquad
        e^i = \mathrm{normalize}(D^{-1} A\, e^{i-1}),\ e^0 = r

    (see the module docstring).

    Args:
        graph: An ``edge_index``, SciPy sparse matrix, networkx graph or PyG ``Data``.
        dim (int): ``embeddingDimension``. (default: ``128``)
        iteration_weights (sequence of float): ``iterationWeights``. (default: ``(0, 1, 1)``)
        normalization_strength (float): ``normalizationStrength``. (default: ``0``)
        node_self_influence (float): ``nodeSelfInfluence``. (default: ``0``)
        features (array, optional): ``[n, f]`` node properties (``featureProperties``).
        property_ratio (float): ``propertyRatio``: share of dimensions from the properties.
            (default: ``0``)
        initial (array, optional): Explicit ``[n, dim]`` initial vectors ``r_n``, replacing
            :func:`gds_initial_vectors`.
        seed (int, optional): ``randomSeed``. (default: ``42``)
        dtype, backend, device, num_nodes, weighted: As in :func:`~graphkit.embed.fastrp`.

    Returns:
        The ``[n, dim]`` embedding (NumPy array, or a tensor for the ``"torch"`` backend).
    """
    dim = _check_dim(dim)
    weights = _check_weights(iteration_weights)
    for label, v in (("normalization_strength", normalization_strength),
                     ("node_self_influence", node_self_influence)):
        if not math.isfinite(v):
            raise ValueError(f"{label} must be finite, got {v}")
    dt = resolve_dtype(dtype)
    name = resolve_backend(backend, device)
    check_device(device, flag="device")  # before any work, in one line, as fastrp does
    adj = to_csr(graph, num_nodes=num_nodes, weighted=weighted, dtype=np.float64)
    if weighted and adj.nnz and adj.data.min() < 0:
        raise ValueError("edge weights must be non-negative for FastRP")
    n = adj.shape[0]
    if n == 0:
        raise ValueError("the graph is empty (num_nodes=0)")
    m, deg = propagation_matrix(adj, "trans", dt)
    if initial is None:
        h0 = gds_initial_vectors(deg, dim, normalization_strength, features, property_ratio, seed)
    else:
        h0 = initial.detach().cpu().numpy() if hasattr(initial, "detach") else initial
        h0 = np.array(h0, dtype=np.float64)  # a copy: the propagation reuses its buffer
        if h0.shape != (n, dim):
            raise ValueError(f"initial vectors have shape {h0.shape}, expected ({n}, {dim})")
        if not np.isfinite(h0).all():
            raise ValueError("initial vectors hold NaN or infinite values")
    be = make_backend(name, m, dt, device)
    x = be.asarray(h0)
    u = be.zeros(n, dim)
    if node_self_influence != 0:
        sq = be.row_sqnorm(x)
        sq = be.to_numpy(sq) if hasattr(sq, "detach") else sq
        inv = np.zeros_like(sq)
        np.divide(1.0, np.sqrt(sq), out=inv, where=sq > 0)
        be.add_rows(u, x, node_self_influence * inv)
    y = be.empty(n, dim)
    for w in weights:
        be.step(x, y, u, w, "skip" if w == 0 else "plain", None, renormalize=True)
        x, y = y, x
    return u
