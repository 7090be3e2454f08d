"""Every public ``torch.nn.Module`` of graphkit in the loop a PyG user writes around it.

One registry, :data:`CASES`, builds each exported module on a small random graph (or stream)
and says how to run it. The tests over it check that ``reset_parameters`` re-initialises
every parameter, that a training step, ``.double()``, ``eval()`` and a ``state_dict``
round-trip behave, and that malformed graphs fail with an error naming the problem.
``test_every_exported_module_has_a_case`` keeps the registry complete.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.nn.conv import (
    DAGNNProp,
    DegreePowerGCNConv,
    GraphNASConv,
    HGNNConv,
    HGNNPConv,
    HopAttention,
)
from graphkit.nn.hop_features import normalized_adjacency, propagate_hops
from graphkit.nn.models import (
    APPNPAIR,
    DAGNN,
    GCN,
    GCNAIR,
    HGNN,
    HGNNP,
    SGCAIR,
    GCNLinkPredictor,
    InitialResidualMLP,
    LightHGNN,
)
from graphkit.nn.quant import (
    QGATConv,
    QGCNConv,
    QLinear,
    QSAGEConv,
    QuantGNN,
    Supernet,
    uniform_specs,
)
from graphkit.robust import DegreePowerGCN, DGIEncoder, RecoverDGI
from graphkit.robust.contrastive import normalized_adjacency as dgi_adjacency
from graphkit.temporal import (
    APAN,
    JODIE,
    NAT,
    PRES,
    TGN,
    CosineTimeEncoding,
    LinkPredictor,
    MemoryTGN,
)

N, F_IN, MSG = 7, 5, 3
PUBLIC_PACKAGES = ("graphkit", "graphkit.nn", "graphkit.nn.conv", "graphkit.nn.models",
                   "graphkit.nn.quant", "graphkit.temporal", "graphkit.robust", "graphkit.embed",
                   "graphkit.transforms")


def _graph() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, F_IN, generator=g)
    ring = torch.arange(N)
    edge_index = torch.cat([torch.stack([ring, (ring + 1) % N]),
                            torch.stack([(ring + 1) % N, ring]),
                            torch.tensor([[0, 3], [3, 0]])], dim=1)
    hyperedge_index = torch.tensor([[0, 1, 2, 2, 3, 4, 5, 6, 0],
                                    [0, 0, 0, 1, 1, 2, 2, 2, 3]])
    return x, edge_index, hyperedge_index


def _stream(num_batches: int = 3, batch: int = 6) -> list[tuple[Tensor, ...]]:
    """Chronological batches ``(src, dst, t, msg, neg_dst)`` over ``N`` nodes."""
    g = torch.Generator().manual_seed(1)
    out = []
    for b in range(num_batches):
        src = torch.randint(N, (batch,), generator=g)
        dst = (src + torch.randint(1, N, (batch,), generator=g)) % N
        t = torch.arange(batch) + 10 * b + 1
        msg = torch.randn(batch, MSG, generator=g)
        out.append((src, dst, t, msg, torch.randint(N, (batch,), generator=g)))
    return out


@dataclass
class Case:
    """How to build a module and run it as a user would."""

    build: Callable[[], torch.nn.Module]
    kind: str  # "graph" (x, edge_index), "link" (x, edge_index, query pairs), "hyper",
    #            "features", "hops", "dgi", "time", "pair", "stream" (a temporal link model),
    #            or "component" (reset test only)
    double: bool = True  # the module also runs after .double()
    shared: tuple[str, ...] = ()  # parameters owned (and reset) by another module


def _pres() -> PRES:
    return PRES(MemoryTGN(N, MSG, memory_dim=8, time_dim=4, embedding_dim=8, num_neighbors=3),
                gamma=0.5, learnable_gamma=True)


CASES: dict[str, Case] = {
    # graphkit.nn.conv
    "DAGNNProp": Case(lambda: DAGNNProp(F_IN, K=3), "graph"),
    "DegreePowerGCNConv": Case(lambda: DegreePowerGCNConv(F_IN, 4, alpha=0.5), "graph"),
    "GraphNASConv": Case(lambda: GraphNASConv(F_IN, 4, heads=2, attention="generalized_linear",
                                              aggregation="max", dropout=0.2), "graph"),
    "HGNNConv": Case(lambda: HGNNConv(F_IN, 4), "hyper"),
    "HGNNPConv": Case(lambda: HGNNPConv(F_IN, 4), "hyper"),
    "HopAttention": Case(lambda: HopAttention(F_IN, att_dropout=0.2), "hops"),
    # graphkit.nn.models
    "GCN": Case(lambda: GCN(F_IN, 8, 3, cached=True), "graph"),
    "GCNLinkPredictor": Case(lambda: GCNLinkPredictor(F_IN, 8, num_layers=2), "link"),
    "DAGNN": Case(lambda: DAGNN(F_IN, 8, 3, K=3, batch_norm=True, cached=True), "graph"),
    "SGCAIR": Case(lambda: SGCAIR(F_IN, 3, hidden_channels=8, num_layers=3, num_hops=3,
                                  pre_process=True), "hops"),
    "APPNPAIR": Case(lambda: APPNPAIR(F_IN, 8, 3, K=3), "graph"),
    "GCNAIR": Case(lambda: GCNAIR(F_IN, 8, 3, num_layers=3), "graph"),
    "InitialResidualMLP": Case(lambda: InitialResidualMLP(F_IN, 8, 3, num_layers=3),
                               "features"),
    "HGNN": Case(lambda: HGNN(F_IN, 8, 3, cached=True), "hyper"),
    "HGNNP": Case(lambda: HGNNP(F_IN, 8, 3), "hyper"),
    "LightHGNN": Case(lambda: LightHGNN(F_IN, 8, 3), "features"),
    # graphkit.nn.quant
    "QLinear": Case(lambda: QLinear(F_IN, 4), "features"),
    "QGCNConv": Case(lambda: QGCNConv(F_IN, 4, cached=True), "graph"),
    "QSAGEConv": Case(lambda: QSAGEConv(F_IN, 4), "graph"),
    "QGATConv": Case(lambda: QGATConv(F_IN, 4, heads=2, dropout=0.1), "graph"),
    "QuantGNN": Case(lambda: QuantGNN(F_IN, uniform_specs("sage", 8, 3, 8, 8)), "graph"),
    "Supernet": Case(lambda: Supernet(F_IN, 3), "graph"),
    # graphkit.robust
    "DegreePowerGCN": Case(lambda: DegreePowerGCN(F_IN, 8, 3, alpha=0.5), "graph"),
    "DGIEncoder": Case(lambda: DGIEncoder(F_IN, 8), "dgi"),
    "RecoverDGI": Case(lambda: RecoverDGI(F_IN, 8), "dgi"),
    # graphkit.temporal
    "CosineTimeEncoding": Case(lambda: CosineTimeEncoding(4), "time"),
    "LinkPredictor": Case(lambda: LinkPredictor(6), "pair"),
    "NAT": Case(lambda: NAT(N, MSG, sizes=(1, 4, 2), self_dim=8, out_channels=8), "stream"),
    "TGN": Case(lambda: TGN(N, MSG, memory_dim=8, time_dim=4, embedding_dim=8,
                            num_neighbors=3), "stream"),
    "MemoryTGN": Case(lambda: MemoryTGN(N, MSG, memory_dim=8, time_dim=4, embedding_dim=8,
                                        num_neighbors=3), "stream"),
    "JODIE": Case(lambda: JODIE(N, MSG, memory_dim=8, time_dim=4), "stream"),
    "APAN": Case(lambda: APAN(N, MSG, memory_dim=8, time_dim=4, mailbox_size=3), "stream"),
    "PRES": Case(_pres, "stream"),
}


def _component(name: str) -> Callable[[], torch.nn.Module]:
    """Building blocks that only make sense inside a model: built for the reset test."""
    from torch_geometric.nn.models.tgn import TimeEncoder

    from graphkit.nn.quant import FixedPointQuantizer, QFormat
    from graphkit.temporal import (
        GraphAttentionEmbedding,
        IncrementStatistics,
        NCache,
        PredictionCorrection,
        TemporalMemory,
    )

    return {
        "FixedPointQuantizer": lambda: FixedPointQuantizer(QFormat(2, 6)),
        "GraphAttentionEmbedding": lambda: GraphAttentionEmbedding(8, 8, MSG, TimeEncoder(4)),
        "TemporalMemory": lambda: TemporalMemory(N, MSG, 8, 4),
        "NCache": lambda: NCache(N, (1, 2)),
        "IncrementStatistics": lambda: IncrementStatistics(N, 4),
        "PredictionCorrection": lambda: PredictionCorrection(N, 8, gamma=0.3,
                                                             learnable_gamma=True),
    }[name]


for _name in ("FixedPointQuantizer", "GraphAttentionEmbedding", "TemporalMemory", "NCache",
              "IncrementStatistics", "PredictionCorrection"):
    CASES[_name] = Case(_component(_name), "component")
# the time encoder is the memory's, passed in and reset by it
CASES["GraphAttentionEmbedding"].shared = ("time_enc.",)

RUNNABLE = [name for name, case in CASES.items() if case.kind != "component"]


def _inputs(kind: str, dtype: torch.dtype = torch.float32) -> tuple:
    x, edge_index, hyperedge_index = _graph()
    x = x.to(dtype)
    if kind == "graph":
        return x, edge_index
    if kind == "link":
        return x, edge_index, torch.tensor([[0, 1, 2, 6], [3, 5, 2, 4]])
    if kind == "hyper":
        return x, hyperedge_index
    if kind == "features":
        return (x,)
    if kind == "hops":
        adj = normalized_adjacency(edge_index, N, dtype=dtype)
        return (propagate_hops(x, adj, 3),)
    if kind == "dgi":
        return x, dgi_adjacency(edge_index, N, 1.0, "cpu").to(dtype)
    if kind == "time":
        return (torch.tensor([0.0, 1.0, 1e3, 1e6], dtype=dtype),)
    if kind == "pair":
        g = torch.Generator().manual_seed(2)
        return torch.randn(4, 6, generator=g).to(dtype), torch.randn(4, 6, generator=g).to(dtype)
    raise AssertionError(kind)


def _run(name: str, model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> Tensor:
    """One forward pass as a user writes it; a temporal model streams every batch (from a
    fresh state) and returns the logits of the last one."""
    kind = CASES[name].kind
    if kind == "stream":
        model.reset_state()
        batches = _stream()
        for src, dst, t, msg, neg in batches[:-1]:
            model.score(src, dst, t, msg.to(dtype), neg)
            model.update_state(src, dst, t, msg.to(dtype))
        src, dst, t, msg, neg = batches[-1]
        return torch.cat(model.score(src, dst, t, msg.to(dtype), neg))
    args = _inputs(kind, dtype)
    if name == "RecoverDGI":
        x, adj = args
        return model(x, adj, [adj, adj], torch.randperm(N, generator=torch.Generator()
                                                         .manual_seed(3)))
    return model(*args)


def _build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return CASES[name].build()


# --------------------------------------------------------------------------- registry
def _exported_module_classes() -> dict[str, type]:
    found = {}
    for package in PUBLIC_PACKAGES:
        mod = importlib.import_module(package)
        for attr in getattr(mod, "__all__", []):
            if package == "graphkit":
                continue  # sub-packages, imported lazily; their classes are listed below
            obj = getattr(mod, attr)
            if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and \
                    not inspect.isabstract(obj):
                found[attr] = obj
    return found


def test_every_exported_module_has_a_case():
    missing = sorted(set(_exported_module_classes()) - set(CASES))
    assert not missing, f"add these exported modules to CASES: {missing}"


def test_public_packages_import_and_export_what_they_list():
    for package in PUBLIC_PACKAGES[1:]:
        mod = importlib.import_module(package)
        assert mod.__all__, f"{package} has no __all__"
        for attr in mod.__all__:
            assert hasattr(mod, attr), f"{package}.__all__ lists {attr!r}, which is missing"
    assert set(importlib.import_module("graphkit.nn").__all__) >= {"DAGNN", "HGNNConv", "GCN"}


# --------------------------------------------------------------------------- reset
@pytest.mark.parametrize("name", sorted(CASES))
def test_reset_parameters_reinitialises_every_parameter(name):
    model = _build(name)
    params = dict(model.named_parameters())
    if not params:
        assert not list(model.parameters())
        return
    assert hasattr(model, "reset_parameters"), f"{name} has parameters but no reset_parameters"
    reference = _build(name)
    torch.manual_seed(123)
    reference.reset_parameters()
    with torch.no_grad():
        for p in params.values():
            p.add_(torch.rand_like(p) + 1.0)  # every entry moves by at least 1
    torch.manual_seed(123)
    model.reset_parameters()
    expected = dict(reference.named_parameters())
    for key, p in model.named_parameters():
        if key.startswith(CASES[name].shared):
            continue
        assert torch.equal(p, expected[key]), f"{name}.reset_parameters() left {key} perturbed"


# --------------------------------------------------------------------------- user loop
# Parameters that by design get no gradient from one step (documented where they live).
INERT = {
    "GCNAIR": {"gates.0.weight", "gates.0.bias"},  # mixes x(1) with itself (its docstring)
}


def _without_gradient(name: str, model: torch.nn.Module) -> set[str]:
    """Trainable parameters that got no gradient, or only zeros, from the last backward."""
    return {k for k, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not p.grad.any())}


@pytest.mark.parametrize("name", sorted(INERT))
def test_inert_parameters_are_exactly_those_listed(name):
    """An entry of :data:`INERT` that starts to learn must leave the list."""
    model = _build(name)
    model.train()
    torch.manual_seed(0)
    _run(name, model).pow(2).sum().backward()
    assert _without_gradient(name, model) == INERT[name]


@pytest.mark.parametrize("name", RUNNABLE)
def test_training_step_changes_the_output(name):
    model = _build(name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    torch.manual_seed(0)
    out = _run(name, model)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    target = torch.zeros_like(out)
    F.mse_loss(out, target + 1.0).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, f"{name}: no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert not _without_gradient(name, model) - INERT.get(name, set()), \
        f"{name}: these parameters got no gradient"
    before = copy.deepcopy(model.state_dict())
    opt.step()
    model.eval()
    after = _run(name, model)
    model.load_state_dict(before)
    assert not torch.equal(after, _run(name, model)), f"{name}: the step changed nothing"


@pytest.mark.parametrize("name", RUNNABLE)
def test_eval_is_deterministic_and_state_dict_round_trips(name):
    model = _build(name, seed=0)
    model.eval()
    with torch.no_grad():
        out = _run(name, model)
        assert torch.equal(out, _run(name, model)), f"{name}: eval output is not deterministic"
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    other = _build(name, seed=1)
    other.load_state_dict(torch.load(buffer, weights_only=False))
    other.eval()
    with torch.no_grad():
        assert torch.equal(_run(name, other), out), f"{name}: state_dict round trip differs"


@pytest.mark.parametrize("name", RUNNABLE)
def test_deepcopy_after_a_forward_pass(name):
    """``copy.deepcopy(model)`` (keeping the best model) works once caches are filled."""
    model = _build(name)
    model.eval()
    with torch.no_grad():
        out = _run(name, model)
        clone = copy.deepcopy(model)
        assert torch.equal(_run(name, clone), out)


@pytest.mark.parametrize("name", RUNNABLE)
def test_deepcopy_after_a_training_step(name):
    """The usual ``best = copy.deepcopy(model)`` after an optimiser step, gradients on (PRES
    kept the batch's autograd graph, which deepcopy refuses)."""
    model = _build(name)
    model.train()
    torch.manual_seed(0)
    out = _run(name, model)
    out.pow(2).sum().backward()
    torch.optim.SGD(model.parameters(), lr=0.01).step()
    clone = copy.deepcopy(model)
    model.eval()
    clone.eval()
    with torch.no_grad():
        assert torch.equal(_run(name, clone), _run(name, model))


@pytest.mark.parametrize("name", [n for n in RUNNABLE if CASES[n].double])
def test_double_after_float_forward_equals_a_float64_model(name):
    """``.double()`` after a float32 pass equals the model converted before any pass: caches
    are rebuilt in float64 (QGCNConv and the PyG-GCNConv models kept float32 coefficients,
    5e-8 off, which the tolerance of the test below cannot see)."""
    warm, fresh = _build(name), _build(name)
    warm.eval()
    fresh.eval()
    with torch.no_grad():
        _run(name, warm)
        out = _run(name, warm.double(), torch.float64)
        torch.testing.assert_close(out, _run(name, fresh.double(), torch.float64),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in RUNNABLE if CASES[n].double])
def test_double_precision_after_float_forward(name):
    """``.double()`` after a float32 pass (caches filled) runs in float64 and agrees."""
    model = _build(name)
    model.eval()
    with torch.no_grad():
        out = _run(name, model)
        out64 = _run(name, model.double(), torch.float64)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, atol=1e-4, rtol=1e-3)


# --------------------------------------------------------------------------- bad input
GRAPH_MODULES = [n for n in RUNNABLE if CASES[n].kind in ("graph", "link")]


def _with_edges(name: str, edge_index: Tensor) -> tuple:
    """The module's inputs with ``edge_index`` replaced (a link model keeps its query pairs)."""
    x, _, *rest = _inputs(CASES[name].kind)
    return (x, edge_index, *rest)


@pytest.mark.parametrize("name", GRAPH_MODULES)
@pytest.mark.parametrize("bad", ["three rows", "float"])
def test_malformed_edge_index_is_named(name, bad):
    """A cheap shape/dtype check at forward entry names the problem (before, e.g. GCN
    failed with "Sizes of tensors must match" inside PyG's self-loop code, and
    GCNLinkPredictor still did)."""
    x, edge_index, _ = _graph()
    edge = torch.cat([edge_index, edge_index[:1]]) if bad == "three rows" else edge_index.float()
    word = r"shape \[2, num_edges\]" if bad == "three rows" else "integer"
    with pytest.raises(ValueError, match=f"edge_index must .*{word}"):
        _build(name)(*_with_edges(name, edge))


@pytest.mark.parametrize("name", GRAPH_MODULES)
@pytest.mark.parametrize("end", ["source", "target"])
def test_out_of_range_node_id_raises(name, end):
    """An id >= num_nodes never yields output: graphkit's check names it where the layer
    already synchronises, elsewhere torch's index error names the id."""
    x, edge_index, _ = _graph()
    extra = torch.tensor([[N], [0]]) if end == "source" else torch.tensor([[0], [N]])
    with pytest.raises((ValueError, IndexError, RuntimeError), match=f"(?i)index.* {N}|id {N}"):
        _build(name)(*_with_edges(name, torch.cat([edge_index, extra], 1)))


STREAM_MODELS = [n for n in RUNNABLE if CASES[n].kind == "stream"]


def _same(a: object, b: object) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _after_one_batch(name, **kwargs):
    """A stream model in eval mode that has scored and stored the first batch, and the next."""
    model = _build(name, **kwargs)
    model.eval()
    (src, dst, t, msg, neg), following = _stream()[:2]
    model.reset_state()
    with torch.no_grad():
        model.score(src, dst, t, msg, neg)
    model.update_state(src, dst, t, msg)
    return model, following


@pytest.mark.parametrize("name", STREAM_MODELS)
@pytest.mark.parametrize("bad", ["node id", "length", "msg width"])
def test_malformed_batch_is_named_before_the_state_changes(name, bad):
    """A bad batch fails at ``score`` / ``update_state`` entry with a ValueError naming the
    problem (before: "index out of range in self" in JODIE/APAN, a size mismatch in torch.cat
    for NAT, and NAT had extended its stored messages when it failed)."""
    model, (src2, dst2, t2, msg2, neg2) = _after_one_batch(name)
    before = copy.deepcopy(model.state_dict())
    if bad == "node id":
        dst2 = torch.cat([dst2[:-1], torch.tensor([N])])
        match = f"node id {N}|node ids must lie in \\[0, {N}\\)"
    elif bad == "length":
        dst2 = dst2[:-1]
        match = "same length|same number of events"
    else:
        msg2 = torch.randn(msg2.size(0), MSG + 1)
        match = f"msg must have {MSG} columns"
    if bad != "msg width":
        with pytest.raises(ValueError, match=match), torch.no_grad():
            model.score(src2, dst2, t2, msg2, neg2)
    with pytest.raises(ValueError, match=match):
        model.update_state(src2, dst2, t2, msg2)
    assert _same(model.state_dict(), before), f"{name}: a rejected batch changed the state"


@pytest.mark.parametrize("name", [n for n in STREAM_MODELS if n != "NAT"])
def test_memory_models_name_float_timestamps(name):
    """Memory-based models keep int64 last-update times; float timestamps (which the loaders
    give for fractional times) are named instead of failing in a later scatter."""
    model = _build(name)
    src, dst, t, msg, _ = _stream()[0]
    model.reset_state()
    with pytest.raises(ValueError, match="integer timestamps"):
        model.update_state(src, dst, t.double(), msg)


@pytest.mark.parametrize("name", STREAM_MODELS)
def test_state_dict_restores_the_stream_state_mid_stream(name):
    """A checkpoint taken mid-stream (memory, caches, stored events as extra state) lets a
    fresh model score the next batch exactly as the original does."""
    model, (src2, dst2, t2, msg2, neg2) = _after_one_batch(name, seed=0)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    other = _build(name, seed=1)
    other.eval()
    other.load_state_dict(torch.load(buffer, weights_only=False))
    with torch.no_grad():
        expected = torch.cat(model.score(src2, dst2, t2, msg2, neg2))
        assert torch.equal(torch.cat(other.score(src2, dst2, t2, msg2, neg2)), expected)
