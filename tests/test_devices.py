"""Every method on every available device.

Each model runs in float32 on the device under test and is compared with a float64 copy of the
same weights on the CPU, so the check is a real one on a CPU-only machine too (single against
double precision) and, where CUDA is present, also covers the CUDA kernels and device
placement. Training entry points run a few steps on the device and must keep every tensor
there and return finite results.
"""

import copy
import math

import pytest
import torch
from torch_geometric.data import Data

from graphkit.data import load

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(scope="module")
def cora_like() -> Data:
    """A 3-class contextual SBM: small, connected enough, with informative features."""
    return load("csbm", num_nodes=120, num_features=16, seed=0)


def _assert_matches_float64(model: torch.nn.Module, args: tuple, device: torch.device,
                            atol: float = 1e-4) -> torch.Tensor:
    """Evaluate ``model`` in float32 on ``device`` and in float64 on the CPU; compare."""
    model = model.eval()
    ref_model = copy.deepcopy(model).double()
    ref_args = tuple(a.double() if a.is_floating_point() else a for a in args)
    with torch.no_grad():
        ref = ref_model(*ref_args)
        out = model.to(device)(*(a.to(device) for a in args))
    assert out.device.type == device.type
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.cpu().double(), ref, atol=atol, rtol=1e-4)
    return out


def test_dagnn(cora_like, device):
    from graphkit.nn import DAGNN

    torch.manual_seed(0)
    model = DAGNN(16, 32, 3, K=10, dropout=0.5)
    _assert_matches_float64(model, (cora_like.x, cora_like.edge_index), device)


def test_sgc_and_appnp_air(cora_like, device):
    from graphkit.nn import APPNPAIR, SGCAIR
    from graphkit.nn.hop_features import normalized_adjacency, propagate_hops

    adj = normalized_adjacency(cora_like.edge_index.to(device), cora_like.num_nodes)
    ref_adj = normalized_adjacency(cora_like.edge_index, cora_like.num_nodes, dtype=torch.float64)
    hops = propagate_hops(cora_like.x.to(device), adj, 6)
    ref_hops = propagate_hops(cora_like.x.double(), ref_adj, 6)
    torch.testing.assert_close(hops.cpu().double(), ref_hops, atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    _assert_matches_float64(SGCAIR(16, 3, hidden_channels=32, num_layers=2), (ref_hops.float(),),
                            device)
    _assert_matches_float64(APPNPAIR(16, 32, 3, K=6), (cora_like.x, cora_like.edge_index), device)


def test_gcn_air(cora_like, device):
    from graphkit.nn import GCNAIR

    torch.manual_seed(0)
    model = GCNAIR(16, 32, 3, num_layers=4)
    _assert_matches_float64(model, (cora_like.x, cora_like.edge_index), device)


def test_node_classifier_loop_trains_on_device(cora_like, device):
    from graphkit.nn import DAGNN
    from graphkit.train import train_node_classifier

    data = cora_like.clone()
    data.train_mask = torch.arange(data.num_nodes) % 3 == 0
    data.val_mask = torch.arange(data.num_nodes) % 3 == 1
    data.test_mask = torch.arange(data.num_nodes) % 3 == 2
    torch.manual_seed(0)
    model = DAGNN(16, 32, 3, K=5)
    res = train_node_classifier(model, data, epochs=5, selection="val_loss", device=device)
    assert 0.0 <= res.test_acc <= 1.0
    assert all(p.device.type == device.type for p in model.parameters())


def test_lighthgnn_plus_distillation_on_device(device):
    from graphkit.nn import HGNN, LightHGNN
    from graphkit.nn.models.lighthgnn import (
        distill,
        hyperedge_reliability,
        perturb_features,
        split_per_class,
    )
    from graphkit.train import train_node_classifier

    data = load("hsbm", num_nodes=90, num_hyperedges=40, seed=0)
    train, val, test = split_per_class(data.y, 5, 10, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    teacher = HGNN(data.num_features, 16, 3, cached=True)  # trained through the CSR products
    data.train_mask, data.val_mask, data.test_mask = train, val, test
    train_node_classifier(teacher, data, epochs=3, device=device,
                          forward=lambda m, d: m(d.x, d.hyperedge_index))
    teacher.eval()
    x, hyperedges = data.x.to(device), data.hyperedge_index.to(device)
    with torch.no_grad():
        clean = teacher(x, hyperedges)
        # a CPU generator with device features: drawn on the CPU, moved (as for the splits)
        noisy = teacher(perturb_features(x, generator=torch.Generator().manual_seed(1)),
                        hyperedges)
    reliability = hyperedge_reliability(clean, noisy, hyperedges)
    assert reliability.device.type == device.type
    student = LightHGNN(data.num_features, 16, 3)
    res = distill(student, data.x, data.y, clean, train, val, test, hyperedge_index=hyperedges,
                  reliability=reliability, epochs=5, device=device,
                  generator=torch.Generator().manual_seed(2))
    assert 0.0 <= res.test_acc <= 1.0
    assert all(p.device.type == device.type for p in student.parameters())


def test_hypergraph_teacher_and_student(device):
    from graphkit.nn import HGNN, HGNNP, LightHGNN

    data = load("hsbm", num_nodes=90, num_hyperedges=40, seed=0)
    torch.manual_seed(0)
    for cls in (HGNN, HGNNP):
        for cached in (False, True):  # cached: the stages as sparse CSR products
            _assert_matches_float64(cls(data.num_features, 16, 3, cached=cached),
                                    (data.x, data.hyperedge_index), device)
    _assert_matches_float64(LightHGNN(data.num_features, 16, 3), (data.x,), device)


def test_degree_power_gcn(cora_like, device):
    from graphkit.nn import DegreePowerGCNConv

    torch.manual_seed(0)
    conv = DegreePowerGCNConv(16, 8, alpha=-0.3)
    _assert_matches_float64(conv, (cora_like.x, cora_like.edge_index), device)


def test_quantised_gnn(cora_like, device):
    from graphkit.nn.quant import QuantGNN, uniform_specs

    torch.manual_seed(0)
    # 32-bit formats: the fake-quantised path itself, compared across precisions
    model = QuantGNN(16, uniform_specs("gcn", 16, 3, weight_bits=32, act_bits=32))
    _assert_matches_float64(model, (cora_like.x, cora_like.edge_index), device)
    q = QuantGNN(16, uniform_specs("sage", 16, 3, weight_bits=4, act_bits=8)).eval()
    with torch.no_grad():
        out = q.to(device)(cora_like.x.to(device), cora_like.edge_index.to(device))
        ref = q.cpu()(cora_like.x, cora_like.edge_index)
    # codes are exact integers on every device: only the float accumulation order differs
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("conv", ["gcn", "sage"])
def test_integer_inference_on_device(cora_like, device, conv):
    # CUDA has no int64 matrix product: the integer path must still give the CPU's codes
    from graphkit.nn.quant import QuantGNN, export_integer, integer_forward, uniform_specs

    torch.manual_seed(0)
    q = QuantGNN(16, uniform_specs(conv, 16, 3, weight_bits=8, act_bits=8)).eval()
    exported = export_integer(q)
    ref, frac = integer_forward(exported, cora_like.x, cora_like.edge_index)
    exported = export_integer(q.to(device))
    acc, frac_dev = integer_forward(exported, cora_like.x.to(device),
                                    cora_like.edge_index.to(device))
    assert frac_dev == frac and acc.device.type == torch.device(device).type
    assert torch.equal(acc.cpu(), ref)


def test_lpgnas_search_runs_on_device(cora_like, device):
    from graphkit.nn.quant import SearchSpace, search

    res = search(cora_like, gamma=0.1, space=SearchSpace(hidden=(4, 8), act_bits=(4, 8)),
                 epochs=3, device=device)
    assert len(res.specs) == 2 and len(res.history) == 3
    assert all(abs(sum(p) - 1.0) < 1e-5 for p in res.probs.values())


@pytest.mark.parametrize("scheme", ["sf", "bp"])
def test_forward_learning_trains_on_device(cora_like, device, scheme):
    from graphkit.train.forward import LayerwiseTrainer, node_model

    data = cora_like.to(device)
    n = data.num_nodes
    part = torch.arange(n, device=device) % 4
    train, val, test = part <= 1, part == 2, part == 3
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 16, 16, 3, num_layers=2).to(device)
    net.fit(data, train, val, LayerwiseTrainer(epochs=4, patience=2, val_every=1))
    scores = net.predict(test)
    assert scores.device.type == device.type and torch.isfinite(scores).all()
    assert all(p.device.type == device.type for p in net.parameters())


@pytest.mark.parametrize("scheme", ["sf", "bp", "ff-la", "sf-top2loss", "sf-top2input"])
def test_forward_link_prediction_on_device(cora_like, device, scheme):
    """Every link scheme trains and scores on the device (the top-down ones propagate over a
    sparse adjacency; sf-top2input's first layer takes sparse bag-of-words rows on the CPU)."""
    from graphkit.train.forward import LayerwiseTrainer, link_model, link_split

    data = cora_like.clone()
    # 200 bag-of-words columns (3% set) against hidden 8: [x | h2] is mostly zero
    g = torch.Generator().manual_seed(0)
    data.x = (torch.rand(data.num_nodes, 200, generator=g) < 0.03).float()
    train, val, test = (d.to(device) for d in link_split(data, 0))
    torch.manual_seed(0)
    net = link_model(scheme, "gcn", 200, 8, num_layers=2).to(device)
    if scheme == "sf-top2input" and device.type == "cpu":
        assert net._input(train.x, torch.ones(train.num_nodes, 8, device=device),
                          first=True).layout == torch.sparse_csr
    net.fit(train, val, LayerwiseTrainer(epochs=4, patience=2, val_every=2))
    scores = net.predict(test)
    assert scores.device.type == device.type and torch.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


def bag_of_words_split(graph: Data, device: torch.device):
    """``graph`` on ``device`` with one-hot (bag-of-words-like) features and a 2:1:1 node split."""
    data = graph.clone()
    data.x = torch.nn.functional.one_hot(torch.arange(data.num_nodes) % 16, 16).float()
    data = data.to(device)
    part = torch.arange(data.num_nodes, device=device) % 4
    return data, (part <= 1, part == 2, part == 3)


def test_forward_learning_sparse_input_on_device(cora_like, device):
    """``sf`` keeps a bag-of-words input as sparse CSR: the same scores as a dense input."""
    from graphkit.train.forward import LayerwiseTrainer, node_model

    data, (train, val, test) = bag_of_words_split(cora_like, device)
    scores = []
    for sparse in (True, False):
        torch.manual_seed(0)
        net = node_model("sf", "gcn", 16, 16, 3, num_layers=2, sparse_input=sparse).to(device)
        net.fit(data, train, val, LayerwiseTrainer(epochs=4, patience=2, val_every=1))
        assert net.graph.x.is_sparse_csr == sparse
        scores.append(net.predict(test))
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("scheme, option", [("sf", {"cache_propagation": True}),
                                            ("sf", {"adjacency": "sparse"}),
                                            ("sf", {"row_split": False}),
                                            ("sf-top2loss", {"row_split": False}),
                                            ("sf-top2input", {"row_split": False}),
                                            ("bp", {"adjacency": "sparse"})])
def test_forward_learning_memory_options_on_device(cora_like, device, scheme, option):
    """The propagation cache (sparse for a bag-of-words first layer), the sparse adjacency and
    the whole-graph propagation (``sf`` and the top-down schemes split it by rows by default)
    train the same model as the default edge-list run, on every device."""
    from graphkit.train.forward import LayerwiseTrainer, node_model

    data, (train, val, test) = bag_of_words_split(cora_like, device)
    scores = []
    for kwargs in ({}, option):
        torch.manual_seed(0)
        net = node_model(scheme, "gcn", 16, 64, 3, num_layers=2, **kwargs).to(device)
        net.fit(data, train, val, LayerwiseTrainer(epochs=4, patience=2, val_every=1))
        scores.append(net.predict(test))
    assert scores[1].device.type == device.type
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["nat", "tgn", "tgn-memory+pres", "jodie+pres", "apan+pres"])
def test_temporal_models_train_on_device(device, name):
    from graphkit.data.temporal import chronological_split
    from graphkit.temporal import APAN, JODIE, NAT, PRES, TGN, MemoryTGN, fit

    data = load("temporal-sbm", num_nodes=40, num_events=500, seed=3)
    split = chronological_split(data, seed=0)
    torch.manual_seed(0)
    d = data.msg.size(-1)
    model = {
        "nat": lambda: NAT(data.num_nodes, msg_dim=d),
        "tgn": lambda: TGN(data.num_nodes, d, memory_dim=8, time_dim=4, embedding_dim=8),
        "tgn-memory+pres": lambda: PRES(MemoryTGN(data.num_nodes, d, memory_dim=8, time_dim=4,
                                                  embedding_dim=8, num_neighbors=3)),
        "jodie+pres": lambda: PRES(JODIE(data.num_nodes, d, memory_dim=8, time_dim=4)),
        "apan+pres": lambda: PRES(APAN(data.num_nodes, d, memory_dim=8, time_dim=4,
                                       mailbox_size=3)),
    }[name]().to(device)
    out = fit(model, data, split, epochs=1, batch_size=100, lr=1e-3, patience=None, seed=0)
    assert 0.0 <= out.test.ap <= 1.0 and torch.isfinite(out.test_pos).all()
    assert all(t.device.type == device.type for t in model.parameters())


def test_stable_defence_on_device(device):
    from graphkit.robust import STABLE, STABLEConfig

    data = load("csbm", num_nodes=80, num_features=12, seed=1)
    cfg = STABLEConfig(max_embedding_epochs=5, epochs=5, k=2)
    model = STABLE(cfg, device=device).fit(data)
    logits = model.predict_logits()
    assert logits.shape == (80, int(data.y.max()) + 1) and torch.isfinite(logits).all()
    # the data itself on the device (its pruning and kNN stages run on CPU copies)
    on_device = STABLE(cfg, device=device).fit(data.to(device))
    assert torch.isfinite(on_device.predict_logits()).all()


def test_seeded_contrastive_stage_leaves_the_global_random_state(device):
    from graphkit.robust.contrastive import contrastive_embeddings

    data = load("csbm", num_nodes=40, num_features=8, seed=1)
    state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    contrastive_embeddings(data.x, data.edge_index, data.edge_index[:, :0], data.num_nodes,
                           hidden_channels=8, max_epochs=2,
                           generator=torch.Generator().manual_seed(0), device=device)
    after = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
    assert torch.equal(state, after)


def test_atc_with_a_cpu_generator_and_edges_on_any_device(device):
    """ATC draws its random vectors where the generator lives and accepts the query edges on
    another device than the training edges, as exact TC does: the same scores everywhere."""
    from graphkit.extras.graph.topological_concentration import (
        approximate_topological_concentration,
        topological_concentration,
    )

    def atc(train: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return approximate_topological_concentration(
            train, query, 60, num_hops=2, generator=torch.Generator().manual_seed(1))

    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 60, (2, 240), generator=g)
    query = torch.randint(0, 60, (2, 60), generator=g)
    ref = atc(train, query)
    for t, q in ((train.to(device), query.to(device)), (train.to(device), query),
                 (train, query.to(device))):
        out = atc(t, q)
        assert out.device.type == t.device.type
        torch.testing.assert_close(out.cpu(), ref, atol=1e-5, rtol=1e-5)
        assert topological_concentration(t, q, 60).device.type == t.device.type


def test_pamc_fits_on_device(cora_like, device):
    from graphkit.extras.graph.pamc import PamC, fit_pamc

    model = PamC(16, 3, hidden_channels=(8,), out_channels=4).to(device)
    fit = fit_pamc(model, cora_like.x, cora_like.edge_index, epochs=3, pretrain_epochs=1,
                   kmeans_init=1, keep_epoch_labels=True)
    assert fit.labels.shape == (cora_like.num_nodes,) and len(fit.epoch_labels) == 3
    assert all(math.isfinite(v) for v in fit.losses + [fit.pretrain_loss])
    assert all(p.device.type == device.type for p in model.parameters())
    # the dense InfoNCE peer and float64 (pretraining built a float32 decoder)
    model = PamC(16, 3, hidden_channels=(8,), out_channels=4).double().to(device)
    fit = fit_pamc(model, cora_like.x.double(), cora_like.edge_index, loss="infonce", epochs=2,
                   pretrain_epochs=1, kmeans_init=1)
    assert all(math.isfinite(v) for v in fit.losses)


def test_autognn_search_with_sparse_features_on_device(cora_like, device):
    """Auto-GNN's children on the device, fed sparse CSR features, skip projections on."""
    from graphkit.extras.nas import ChildTrainer, ConservativeSearch, autognn_space

    data = cora_like.clone()
    data.x = data.x.to_sparse_csr()
    space = autognn_space(hidden=(8,), heads=(1, 2), skip=(True,))
    trainer = ChildTrainer(data, epochs=3, share_epochs=2, pool_dim=8, device=device)
    history = ConservativeSearch(space, seed=0).run(trainer, 3)
    assert len(history) == 3 and all(0.0 <= t.score <= 1.0 for t in history)
    assert all(p.device.type == device.type for p in trainer.best_model.parameters())
    assert data.x.device.type == "cpu"  # the caller's data stays where it was


def test_logah_predicts_and_meta_trains_on_device(device):
    from graphkit.extras.hyper import (
        ViTConfig,
        apply_predicted,
        logah,
        meta_train,
        trace_architecture,
    )

    torch.manual_seed(0)
    ghn = logah(hid=32, layers=1, heads=4, rank=4, max_shape=256).to(device)
    cpu_model = ViTConfig(32, 1, 2).build()
    apply_predicted(cpu_model, ghn)  # a CPU target filled by a GHN on the device
    assert all(p.device.type == "cpu" and torch.isfinite(p).all()
               for p in cpu_model.parameters())
    target = ViTConfig(32, 1, 2).build().to(device)
    graph = trace_architecture(target, target.example_input())
    images = torch.randn(32, 3, 16, 16, device=device)
    labels = torch.randint(0, 10, (32,), device=device)
    losses = meta_train(ghn, [target], [graph], images, labels, steps=3, batch_size=8, warmup=1)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert all(p.device.type == device.type for p in ghn.parameters())


def test_synchronize_waits_on_cuda_devices_only(device, monkeypatch):
    from graphkit.benchmarking import synchronize

    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", waited.append)
    for d in (device, str(device), None):
        synchronize(d)
    assert waited == ([device, str(device)] if device.type == "cuda" else [])
    synchronize("cuda:1")  # parsed, not looked up: no CUDA needed to say it is CUDA
    assert waited[-1] == "cuda:1"


def test_temporal_checkpoint_resumes_on_device(device, tmp_path):
    """The checkpoint is mapped onto the model's device; its random states stay CPU tensors."""
    from graphkit.data.temporal import chronological_split
    from graphkit.temporal import NAT, fit

    data = load("temporal-sbm", num_nodes=40, num_events=500, seed=3)
    split = chronological_split(data, seed=0)
    kw = {"batch_size": 100, "lr": 1e-3, "patience": None, "seed": 0}

    def make() -> NAT:
        torch.manual_seed(0)
        return NAT(data.num_nodes, msg_dim=data.msg.size(-1)).to(device)

    full = fit(make(), data, split, epochs=2, **kw)
    ckpt = tmp_path / "ckpt.pt"
    fit(make(), data, split, epochs=1, checkpoint=ckpt, **kw)
    model = make()
    resumed = fit(model, data, split, epochs=2, checkpoint=ckpt, resume=True, **kw)
    assert len(resumed.history) == 2
    assert all(p.device.type == device.type for p in model.parameters())
    torch.testing.assert_close(resumed.test_pos, full.test_pos, atol=1e-3, rtol=1e-3)


def test_arch_graph_with_edges_on_device(device):
    """A hand-built graph may keep its edges on the device: distances go through NumPy."""
    import dataclasses

    from graphkit.extras.hyper import ViTConfig, logah, trace_architecture

    model = ViTConfig(32, 1, 2).build()
    graph = trace_architecture(model, model.example_input())
    moved = dataclasses.replace(graph, edge_index=graph.edge_index.to(device))
    moved.validate()
    assert torch.equal(moved.distances(), graph.distances())
    torch.manual_seed(0)
    ghn = logah(hid=32, layers=1, heads=4, rank=4, max_shape=256).to(device)
    with torch.no_grad():
        assert set(ghn.eval()(moved)) == {n for n, _ in model.named_parameters()}
