import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.embed import fastrp_gds
from graphkit.embed.backends import BACKENDS
from graphkit.embed.gds import gds_initial_vectors


def _normalize(x):
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def gds_oracle(a, h0, weights, self_influence):
    """The documented GDS formula in NumPy: average, normalise, weighted sum."""
    a = a.toarray()
    deg = a.sum(axis=1)
    m = np.where(deg[:, None] > 0, a / np.where(deg > 0, deg, 1)[:, None], 0.0)
    out = self_influence * _normalize(h0)
    e = h0
    for w in weights:
        e = _normalize(m @ e)
        out = out + w * e
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weights, self_influence", [((0.0, 1.0, 1.0), 0.0),
                                                     ((0.2, 1.0, 0.5, 2.0), 0.7)])
def test_equals_documented_formula_for_same_initial_vectors(small_graph, backend, weights,
                                                            self_influence):
    h0 = np.random.default_rng(0).standard_normal((120, 24))
    out = fastrp_gds(small_graph, dim=24, iteration_weights=weights,
                     node_self_influence=self_influence, initial=h0, dtype="float64",
                     backend=backend)
    out = out.numpy() if isinstance(out, torch.Tensor) else out
    np.testing.assert_allclose(out, gds_oracle(small_graph, h0, weights, self_influence),
                               atol=1e-10)


def test_default_rows_are_sums_of_unit_vectors(small_graph):
    e = fastrp_gds(small_graph, dim=32)  # weights (0, 1, 1): ||row|| <= 2, no standardisation
    assert e.shape == (120, 32) and e.dtype == np.float32
    norms = np.linalg.norm(e[:118], axis=1)
    assert (norms <= 2 + 1e-5).all() and (norms > 1).all()
    np.testing.assert_array_equal(e[118:], 0)  # isolated nodes have no neighbours


def test_initial_vectors_sparsity_degree_scaling_and_properties():
    deg = np.array([1.0, 4.0, 9.0, 0.0] * 250)
    h0 = gds_initial_vectors(deg, 60, normalization_strength=-0.5, seed=1)
    base = h0 / np.where(deg > 0, deg, 1.0)[:, None] ** -0.5
    nz = base[base != 0]
    np.testing.assert_allclose(np.abs(nz), math.sqrt(3 / 60))
    assert abs(nz.size / base.size - 1 / 3) < 0.02  # Achlioptas: density 1/3
    feats = np.random.default_rng(0).random((1000, 5))
    h1 = gds_initial_vectors(deg, 60, features=feats, property_ratio=0.25, seed=1)
    proj, *_ = np.linalg.lstsq(feats, h1[:, 45:], rcond=None)  # last 15 = features @ P
    np.testing.assert_allclose(feats @ proj, h1[:, 45:], atol=1e-10)


def test_bad_arguments(small_graph):
    with pytest.raises(ValueError, match="needs node features"):
        fastrp_gds(small_graph, dim=8, property_ratio=0.5)
    with pytest.raises(ValueError, match="property_ratio must lie"):
        fastrp_gds(small_graph, dim=8, property_ratio=1.5, features=np.ones((120, 2)))
    with pytest.raises(ValueError, match="features must have shape"):
        fastrp_gds(small_graph, dim=8, property_ratio=0.5, features=np.ones((3, 2)))
    with pytest.raises(ValueError, match="initial vectors have shape"):
        fastrp_gds(small_graph, dim=8, initial=np.ones((120, 3)))
    with pytest.raises(ValueError, match="dim must be a positive integer, got 2.5"):
        fastrp_gds(small_graph, dim=2.5)
    with pytest.raises(ValueError, match="node_self_influence must be finite"):
        fastrp_gds(small_graph, dim=8, node_self_influence=float("nan"))
    # NaN in sparse features or in explicit initial vectors used to give a NaN embedding
    with pytest.raises(ValueError, match="features hold NaN"):
        fastrp_gds(small_graph, dim=8, property_ratio=0.5,
                   features=sp.csr_matrix(np.full((120, 2), np.nan)))
    with pytest.raises(ValueError, match="initial vectors hold NaN"):
        fastrp_gds(small_graph, dim=8, initial=np.full((120, 8), np.nan))


def test_an_unavailable_device_is_named_in_one_line(small_graph, monkeypatch):
    # fastrp_gds never checked the device: torch's "not compiled with CUDA" traceback
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device cuda: CUDA is not available"):
        fastrp_gds(small_graph, dim=4, device="cuda")

