"""``cached=True`` layers and models: one fixed graph, checked on every call.

Before, a cached layer called with another graph reused the first graph's normalisation
without a word (APPNPAIR and GCNAIR, cached by default, did so in a DataLoader loop), or failed
with an unrelated PyG index error; after ``.double()`` some kept float32 coefficients.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from graphkit.nn._cache import CachedGraph, check_cached_graph
from graphkit.nn.conv import DAGNNProp, DegreePowerGCNConv
from graphkit.nn.models import APPNPAIR, DAGNN, GCN, GCNAIR, GCNLinkPredictor
from graphkit.nn.quant import QGCNConv
from graphkit.nn.quant.quantizer import FULL
from graphkit.robust import DegreePowerGCN

N, F_IN = 7, 4


def _ring(n: int, chord: tuple[int, int]) -> Tensor:
    ring = torch.arange(n)
    return torch.cat([torch.stack([ring, (ring + 1) % n]), torch.stack([(ring + 1) % n, ring]),
                      torch.tensor([[chord[0], chord[1]], [chord[1], chord[0]]])], dim=1)


GRAPH_A, GRAPH_B = _ring(N, (0, 3)), _ring(N, (1, 5))  # the same size, other edges


# name -> (build a cached model, its reset call, whether it takes edge_weight)
CACHED: dict[str, tuple[Callable[[], torch.nn.Module], str, bool]] = {
    "DegreePowerGCNConv": (lambda: DegreePowerGCNConv(F_IN, 3, alpha=0.3, cached=True),
                           "reset_parameters()", True),
    "DAGNNProp": (lambda: DAGNNProp(F_IN, K=3, cached=True), "reset_parameters()", True),
    "DAGNN": (lambda: DAGNN(F_IN, 8, 3, K=3, cached=True), "reset_parameters()", True),
    "QGCNConv": (lambda: QGCNConv(F_IN, 3, coef_format=FULL, cached=True),
                 "reset_parameters()", False),
    "GCN": (lambda: GCN(F_IN, 8, 3, cached=True), "reset_parameters()", True),
    "APPNPAIR": (lambda: APPNPAIR(F_IN, 8, 3, K=3, cached=True), "reset_parameters()", False),
    "GCNAIR": (lambda: GCNAIR(F_IN, 8, 3, num_layers=3, cached=True), "reset_parameters()",
               False),
    "GCNLinkPredictor": (lambda: GCNLinkPredictor(F_IN, 8), "reset_parameters()", False),
    "DegreePowerGCN": (lambda: DegreePowerGCN(F_IN, 8, 3), "reset_parameters()", False),
}


INNER = {"DAGNN": "DAGNNProp", "DegreePowerGCN": "DegreePowerGCNConv"}


def _build(name: str, cached: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    model = CACHED[name][0]()
    if not cached:  # the same weights without a cache
        for m in model.modules():
            if hasattr(m, "cached"):
                m.cached = False
    return model.eval()


def _run(model: torch.nn.Module, x: Tensor, edge_index: Tensor, *args) -> Tensor:
    if isinstance(model, GCNLinkPredictor):
        return model.encode(x, edge_index)
    return model(x, edge_index, *args)


def _x(n: int = N, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(n, F_IN, generator=torch.Generator().manual_seed(n)).to(dtype)


@pytest.mark.parametrize("name", sorted(CACHED))
def test_another_graph_of_the_same_size_is_refused(name):
    model, x = _build(name), _x()
    with torch.no_grad():
        _run(model, x, GRAPH_A)
        with pytest.raises(ValueError) as err:
            _run(model, x, GRAPH_B)
    message = str(err.value)
    layer = INNER.get(name, name)  # the cached layer inside the model
    assert message.startswith(f"{layer} was built with cached=True"), message
    for words in ("cache holds another graph", "edge_index differs", "cached=False",
                  CACHED[name][1]):
        assert words in message, message


@pytest.mark.parametrize("name", sorted(CACHED))
def test_another_node_count_is_refused(name):
    """Before, a larger graph gave wrong rows (bias only beyond the first graph) or, for the
    PyG-based models, an IndexError on a smaller one."""
    model = _build(name)
    with torch.no_grad():
        _run(model, _x(), GRAPH_A)
        for n in (N - 2, N + 2):
            with pytest.raises(ValueError, match=f"cached for a graph of {N} nodes but got {n}"):
                _run(model, _x(n), _ring(n, (0, 3)))


@pytest.mark.parametrize("name", sorted(CACHED))
def test_the_same_graph_in_another_tensor_reuses_the_cache_and_reset_accepts_a_new_one(name):
    model, uncached, x = _build(name), _build(name, cached=False), _x()
    with torch.no_grad():
        out = _run(model, x, GRAPH_A)
        torch.testing.assert_close(out, _run(uncached, x, GRAPH_A))
        assert torch.equal(_run(model, x, GRAPH_A.clone()), out)
        assert torch.equal(_run(model, x, GRAPH_A.int()), out)  # int32 ids of the same graph
        getattr(model, CACHED[name][1][:-2])()
        uncached.load_state_dict(model.state_dict())  # the reset drew new weights
        torch.testing.assert_close(_run(model, x, GRAPH_B), _run(uncached, x, GRAPH_B))


@pytest.mark.parametrize("name", [n for n in sorted(CACHED) if CACHED[n][2]])
def test_other_edge_weights_are_refused(name):
    model, x = _build(name), _x()
    weight = torch.rand(GRAPH_A.size(1), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = _run(model, x, GRAPH_A, weight)
        assert torch.equal(_run(model, x, GRAPH_A, weight.clone()), out)
        for other in (None, weight + 1):
            with pytest.raises(ValueError, match="edge_weight differs"):
                _run(model, x, GRAPH_A, other)


@pytest.mark.parametrize("name", sorted(CACHED))
def test_double_after_a_float_pass_rebuilds_the_cache_exactly(name):
    """``.double()`` rebuilds the cache in float64 instead of raising or keeping float32
    coefficients (QGCNConv and the PyG-GCNConv models kept them: errors of about 5e-8)."""
    warm = _build(name)
    with torch.no_grad():
        _run(warm, _x(), GRAPH_A)
        out = _run(warm.double(), _x(dtype=torch.float64), GRAPH_A)
        expected = _run(_build(name).double(), _x(dtype=torch.float64), GRAPH_A)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", sorted(CACHED))
def test_deepcopy_of_a_cached_model_checks_the_graph_too(name):
    model, x = _build(name), _x()
    with torch.no_grad():
        out = _run(model, x, GRAPH_A)
        clone = copy.deepcopy(model)
        assert torch.equal(_run(clone, x, GRAPH_A), out)
        with pytest.raises(ValueError, match="cache holds another graph"):
            _run(clone, x, GRAPH_B)


def test_the_same_tensor_object_costs_no_comparison(monkeypatch):
    """The full-batch loop passes one tensor every call: an identity test, no content
    comparison (a device sync on an accelerator)."""
    calls = []
    equal = torch.equal
    monkeypatch.setattr(torch, "equal", lambda a, b: calls.append(1) or equal(a, b))
    weight = torch.rand(GRAPH_A.size(1))
    key = check_cached_graph("Layer", None, N, {"edge_index": GRAPH_A, "edge_weight": weight})
    for _ in range(3):
        key = check_cached_graph("Layer", key, N, {"edge_index": GRAPH_A, "edge_weight": weight})
    assert not calls
    key = check_cached_graph("Layer", key, N, {"edge_index": GRAPH_A.clone(),
                                              "edge_weight": weight})
    assert len(calls) == 1
    check_cached_graph("Layer", key, N, {"edge_index": key.tensors["edge_index"],
                                         "edge_weight": weight})
    assert len(calls) == 1  # the key now refers to the tensor of the last call


def test_a_key_holds_no_autograd_graph():
    weight = torch.rand(GRAPH_A.size(1), requires_grad=True) * 2
    key = CachedGraph(N, {"edge_index": GRAPH_A, "edge_weight": weight})
    assert key.tensors["edge_index"] is GRAPH_A and not key.tensors["edge_weight"].requires_grad
    copy.deepcopy(key)


def test_sparse_adjacencies_are_compared_by_their_edges():
    from torch_geometric.utils import to_torch_coo_tensor, to_torch_csr_tensor

    model, x = _build("DegreePowerGCNConv"), _x()
    adj = to_torch_csr_tensor(GRAPH_A.flip(0), size=(N, N))
    with torch.no_grad():
        out = model(x, adj)
        assert torch.equal(model(x, to_torch_coo_tensor(GRAPH_A.flip(0), size=(N, N))), out)
        with pytest.raises(ValueError, match="edge_index differs"):
            model(x, to_torch_csr_tensor(GRAPH_B.flip(0), size=(N, N)))
        with pytest.raises(ValueError, match="edge_index is now an edge index tensor"):
            model(x, GRAPH_A)  # an edge_index where the cache holds a sparse adjacency


@pytest.mark.parametrize("model", [lambda: APPNPAIR(F_IN, 8, 3, K=3),
                                   lambda: GCNAIR(F_IN, 8, 3, num_layers=3)])
def test_air_models_are_uncached_by_default(model):
    """PyG's convention: a model dropped into a DataLoader loop gets every graph right (before,
    APPNPAIR and GCNAIR defaulted to cached=True and reused the first graph)."""
    torch.manual_seed(0)
    m = model().eval()
    with torch.no_grad():
        m(_x(), GRAPH_A)
        second = m(_x(), GRAPH_B)
        fresh = copy.deepcopy(m)
        if isinstance(m, APPNPAIR):
            fresh.adj.reset_parameters()
        else:
            for conv in fresh.convs:
                conv._cached_edge_index = None
        torch.testing.assert_close(second, fresh(_x(), GRAPH_B))


@pytest.mark.parametrize("name", ["DAGNN", "GCN", "APPNPAIR", "GCNAIR", "DegreePowerGCNConv"])
def test_the_same_graph_in_another_format_is_named_so(name):
    # the message spoke of another graph, and the user had passed the same one as adj_t
    model, x = _build(name), _x()
    adj_t = torch.sparse_coo_tensor(GRAPH_A.flip(0), torch.ones(GRAPH_A.size(1)),
                                    (N, N)).coalesce()
    with torch.no_grad():
        _run(model, x, GRAPH_A)
        with pytest.raises(ValueError, match=r"holds a graph given in another format "
                                             r"\(edge_index is now a sparse adjacency, but the "
                                             r"cache was built from an edge index tensor\)"):
            _run(model, x, adj_t)
