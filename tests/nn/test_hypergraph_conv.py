"""HGNNConv / HGNNPConv against the dense matrix formulas; the HGNN and HGNN+ models."""

import pytest
import torch
from torch_geometric.nn import HypergraphConv

from graphkit.data.hypergraph import (
    add_singleton_hyperedges,
    hyperedge_index_from_list,
    incidence_matrix,
)
from graphkit.nn import HGNN, HGNNP, HGNNConv, HGNNPConv

N = 6


@pytest.fixture
def hg():
    index, m = hyperedge_index_from_list([[0, 1, 2], [2, 3], [3, 4, 0], [1]], num_nodes=N)
    return index, m  # vertex 5 is isolated


def dense(index, m, w):
    H = incidence_matrix(index, N, m, layout="dense").double()
    dv = H @ w
    de = H.sum(0)
    return H, dv, de


def inv(t, p=1.0):
    out = t.pow(-p)
    out[torch.isinf(out)] = 0
    return out


def test_hgnn_conv_equals_dense_formula(hg):
    index, m = hg
    w = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    x = torch.randn(N, 4, dtype=torch.float64)
    conv = HGNNConv(4, 3).double()
    torch.nn.init.normal_(conv.bias)
    H, dv, de = dense(index, m, w)
    L = torch.diag(inv(dv, 0.5)) @ H @ torch.diag(w) @ torch.diag(inv(de)) @ H.T \
        @ torch.diag(inv(dv, 0.5))
    expected = L @ x @ conv.lin.weight.T + conv.bias
    torch.testing.assert_close(conv(x, index, w), expected)
    # The isolated vertex receives only the bias.
    torch.testing.assert_close(conv(x, index, w)[5], conv.bias)


def test_hgnnp_conv_equals_dense_formula(hg):
    index, m = hg
    index, m = add_singleton_hyperedges(index, N, m)
    w = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0], dtype=torch.float64)
    x = torch.randn(N, 4, dtype=torch.float64)
    conv = HGNNPConv(4, 3).double()
    H, dv, de = dense(index, m, w)
    L = torch.diag(1 / dv) @ H @ torch.diag(w) @ torch.diag(1 / de) @ H.T
    torch.testing.assert_close(conv(x, index, w), L @ x @ conv.lin.weight.T + conv.bias)


def test_hgnnp_conv_matches_pyg_hypergraph_conv_when_unweighted(hg):
    # PyG's HypergraphConv is D_v^{-1} H W D_e^{-1} H^T X Theta: HGNN+ with unit weights.
    index, m = hg
    x = torch.randn(N, 5)
    ours, pyg = HGNNPConv(5, 2), HypergraphConv(5, 2)
    pyg.lin.weight.data.copy_(ours.lin.weight)
    pyg.bias.data.copy_(ours.bias)
    torch.testing.assert_close(ours(x, index), pyg(x, index))


def test_cache_reuses_normalisation_and_detects_a_new_hypergraph(hg):
    index, m = hg
    x = torch.randn(N, 4)
    conv = HGNNConv(4, 2, cached=True)
    first = conv(x, index)
    assert conv._cache is not None
    torch.testing.assert_close(conv(x, index), first)
    smaller = index[:, :4]
    with pytest.raises(ValueError, match="reset_cache"):
        conv(x, smaller)
    conv.reset_cache()
    assert conv(x, smaller).shape == (N, 2)
    with pytest.raises(ValueError, match="hypergraph of 6 vertices but got 7"):
        conv(torch.randn(N + 1, 4), smaller)
    # the same incidence count with another member used to reuse the cache silently
    moved = smaller.clone()
    moved[0, 0] = 5
    with pytest.raises(ValueError, match="hyperedge_index differs"):
        conv(x, moved)
    with pytest.raises(ValueError, match="hyperedge_weight differs"):
        conv(x, smaller, torch.full((int(smaller[1].max()) + 1,), 2.0))


@pytest.mark.parametrize("cls", [HGNNConv, HGNNPConv])
def test_hyperedge_weight_gradient_uncached_and_constant_when_cached(cls, hg):
    index, m = hg
    w = torch.rand(m, dtype=torch.float64, requires_grad=True)
    conv = cls(4, 2).double()
    x = torch.randn(N, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: conv(x, index, w), (x, w))
    cached = cls(4, 2, cached=True).double()
    for _ in range(2):  # a cache holding the first call's graph would fail the second backward
        cached(x, index, w).sum().backward()
    assert w.grad is None


@pytest.mark.parametrize("cls", [HGNNConv, HGNNPConv])
def test_cached_sparse_products_equal_the_uncached_layer(cls, hg):
    """The cached layer applies its stages as CSR products; values and gradients (with
    respect to x and the weights) equal the uncached gather/scatter layer's, also with a
    repeated incidence, hyperedge weights, an empty hyperedge and after .double() / a copy."""
    import copy
    import pickle

    index, m = hg
    index = torch.cat([index, index[:, :1]], dim=1)  # vertex 0 twice in hyperedge 0
    w = torch.tensor([1.0, 0.5, 2.0, 1.0, 3.0])  # hyperedge 4 has no members
    torch.manual_seed(0)
    plain = cls(4, 3)
    cached = cls(4, 3, cached=True)
    cached.load_state_dict(plain.state_dict())
    for dtype in (torch.float32, torch.float64):
        plain, cached = plain.to(dtype), cached.to(dtype)
        outs, grads = [], []
        for conv in (plain, cached, cached):  # the second cached call reads the cache
            x = torch.randn(N, 4, dtype=dtype, generator=torch.Generator().manual_seed(1),
                            requires_grad=True)
            conv.zero_grad()
            out = conv(x, index, w.to(dtype), num_hyperedges=m + 1)
            (out * torch.arange(3, dtype=dtype)).sum().backward()
            outs.append(out.detach())
            grads.append((x.grad, conv.lin.weight.grad))
        assert cached._cache is not None and cached._cache[0].dtype == dtype
        for out, (gx, gw) in zip(outs[1:], grads[1:]):
            torch.testing.assert_close(out, outs[0])
            torch.testing.assert_close(gx, grads[0][0])
            torch.testing.assert_close(gw, grads[0][1])
    for clone in (copy.deepcopy(cached), pickle.loads(pickle.dumps(cached))):
        assert clone._cache is None
        torch.testing.assert_close(clone(x.detach(), index, w.double(), num_hyperedges=m + 1),
                                   outs[0])


def test_conv_rejects_bad_inputs(hg):
    index, m = hg
    conv = HGNNConv(4, 2)
    with pytest.raises(ValueError, match="vertex id"):
        conv(torch.randn(3, 4), index)
    with pytest.raises(ValueError, match="hyperedge_weight"):
        conv(torch.randn(N, 4), index, torch.ones(2))
    assert "HGNNConv(4, 2)" == repr(conv)


@pytest.mark.parametrize("make", [lambda: HGNNConv(4, 2), lambda: HGNNPConv(4, 2),
                                  lambda: HGNN(4, 3, 2), lambda: HGNNP(4, 3, 2)])
def test_negative_or_non_finite_hyperedge_weights_are_refused(make, hg):
    """They gave NaN outputs silently; zero weights stay allowed."""
    index, m = hg
    model, x = make(), torch.randn(N, 4)
    for bad, shown in ((-1.0, "-1.0"), (float("nan"), "nan"), (float("inf"), "inf")):
        w = torch.ones(m)
        w[2] = bad
        with pytest.raises(ValueError, match=f"hyperedge_weight must be finite and "
                                             f"non-negative, got {shown} for hyperedge 2"):
            model(x, index, w)
    w = torch.ones(m)
    w[1] = 0.0
    assert bool(torch.isfinite(model(x, index, w)).all())


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
@pytest.mark.parametrize("make", [lambda: HGNNConv(4, 2), lambda: HGNNPConv(4, 2),
                                  lambda: HGNN(4, 3, 2)])
def test_a_sparse_incidence_matrix_is_named(make, layout, hg):
    """A sparse H was reported as "hyperedge_index must hold integers, got dtype float32"."""
    index, m = hg
    H = incidence_matrix(index, N, m)
    H = H.to_sparse_csr() if layout == torch.sparse_csr else H
    with pytest.raises(ValueError, match=r"hyperedge_index must be a \[2, nnz\] integer index "
                                         r".*not a sparse matrix \(torch\.sparse_"):
        make()(torch.randn(N, 4), H)
    model, x = make().eval(), torch.randn(N, 4)
    torch.testing.assert_close(model(x, H.to_sparse_coo().coalesce().indices()), model(x, index))


@pytest.mark.parametrize("cls", [HGNN, HGNNP])
def test_models_fit_a_tiny_task_and_reset(cls, hg):
    torch.manual_seed(0)
    index, m = add_singleton_hyperedges(*hg[:1], N, hg[1])
    x = torch.eye(N)
    y = torch.tensor([0, 0, 1, 1, 1, 0])
    model = cls(N, 8, 2, dropout=0.0, cached=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, index, num_hyperedges=m), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.3
    assert model.embed(x, index).shape == (N, 8)
    before = model.conv1.lin.weight.clone()
    model.reset_parameters()
    assert not torch.equal(before, model.conv1.lin.weight)
    with pytest.raises(ValueError, match="dropout"):
        cls(4, 8, 2, dropout=1.0)
