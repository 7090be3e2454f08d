"""LoGAH: the model-to-graph tracer, the low-rank and tiled decoders, the GHN-3 normalisation,
writing predictions into a model, gradients into the GHN, and bad inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from graphkit.extras._core.counting import count_params
from graphkit.extras._core.registry import get_entry
from graphkit.extras.hyper.arch_graph import ArchGraph, trace_architecture
from graphkit.extras.hyper.logah import (
    GraphHyperNetwork,
    GraphormerLayer,
    LowRankDecoder,
    ShapeEncoder,
    TiledDecoder,
    TinyViT,
    ViTConfig,
    apply_predicted,
    ghn3_tiled,
    logah,
    meta_train,
    normalize_predicted,
    vit_family,
)

VIT_OPS = [
    "input", "param", "param", "conv", "cat", "add",  # image, pos, cls, patches, tokens
    "layernorm", "linear", "linear", "mul", "matmul", "softmax", "matmul", "linear", "add",
    "layernorm", "linear", "gelu", "linear", "add",  # one block
    "layernorm", "linear",  # final norm, head
]


def _vit(depth: int = 1, dim: int = 32, pool: str = "mean") -> TinyViT:
    torch.manual_seed(0)
    return TinyViT(dim=dim, depth=depth, heads=2, pool=pool)


def _small(kind: str = "logah") -> GraphHyperNetwork:
    torch.manual_seed(0)
    if kind == "logah":
        return logah(hid=16, layers=1, heads=2, rank=4, max_shape=256)
    return ghn3_tiled(hid=16, layers=1, heads=2, tile=8)


def test_trace_tiny_vit_nodes_shapes_and_edges():
    vit = _vit(pool="cls")  # the class-token variant: two free tensors and a concatenation
    g = trace_architecture(vit, vit.example_input())
    assert g.ops == VIT_OPS and g.num_nodes == 22 and g.edge_index.shape == (2, 25)
    named = {n: tuple(p.shape) for n, p in vit.named_parameters()}
    assert g.param_shapes == named  # every parameter, once
    shapes = {g.names[v]: g.shapes[v] for v in g.param_nodes}
    assert shapes == {
        "pos_embed": (1, 17, 32), "cls_token": (1, 1, 32), "patch_embed": (32, 3, 4, 4),
        "blocks.0.norm1": (32,), "blocks.0.attn.kv": (64, 32), "blocks.0.attn.q": (32, 32),
        "blocks.0.attn.proj": (32, 32), "blocks.0.norm2": (32,), "blocks.0.mlp.fc1": (64, 32),
        "blocks.0.mlp.fc2": (32, 64), "norm": (32,), "head": (10, 32),
    }
    assert g.params[g.names.index("blocks.0.attn.q")] == {
        "weight": "blocks.0.attn.q.weight", "bias": "blocks.0.attn.q.bias"}
    src, dst = g.edge_index
    assert bool((src < dst).all())  # topological order
    # the residual of the first block: tokens (add 5) feed norm1 and the block's add (14)
    assert {(5, 6), (5, 14), (7, 10), (7, 12)} <= set(zip(src.tolist(), dst.tolist()))
    # distance from the input: conv 1, cat 2, add 3, norm1 4, ..., head 7
    assert g.distances()[0, [3, 4, 5, 6, 21]].tolist() == [1, 2, 3, 4, 7]
    assert g.distances()[0, [1, 2]].tolist() == [0, 0]  # free tensors: no path from the input


def test_trace_counts_grow_with_depth_and_mlp_is_a_chain():
    for depth in (1, 2, 3):  # mean pooling: no class token, no concatenation, one pool op
        vit = _vit(depth)
        g = trace_architecture(vit, vit.example_input())
        assert g.num_nodes == 7 + 14 * depth
        assert g.ops[-3:] == ["layernorm", "pool", "linear"] and g.ops[:4] == [
            "input", "param", "conv", "add"]
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    g = trace_architecture(mlp, torch.zeros(1, 4))
    assert g.ops == ["input", "linear", "relu", "linear"]
    assert g.edge_index.tolist() == [[0, 1, 2], [1, 2, 3]]
    assert g.distances()[0].tolist() == [0, 1, 2, 3]
    assert mlp.training  # the mode is restored


def test_low_rank_decoder_shapes_rank_and_factors():
    torch.manual_seed(0)
    dec = LowRankDecoder(hid=8, rank=4, max_shape=64)
    h = torch.randn(3, 8)
    w = dec.matrix(h, 50, 40)
    assert w.shape == (3, 50, 40)
    assert all(int(torch.linalg.matrix_rank(w[i])) <= 4 for i in range(3))
    a, b = dec.factors(h)
    assert a.shape == (3, 64, 4) and b.shape == (3, 4, 64)
    torch.testing.assert_close(w, a[:, :50] @ b[:, :, :40])
    assert dec.vector(h, 30).shape == (3, 2, 30)
    # the decoder's size: the official MLP (hid, 4 hid, 8 hid, 2 r^2) plus r -> max_shape
    expected = (8 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + (4 * 64 + 64)
    assert count_params(dec) == expected


def test_tiled_decoder_repeats_one_block():
    torch.manual_seed(0)
    dec = TiledDecoder(hid=8, tile=4)
    w = dec.matrix(torch.randn(1, 8), 10, 9)
    assert w.shape == (1, 10, 9)
    torch.testing.assert_close(w[:, 4:8, 0:4], w[:, 0:4, 0:4])
    torch.testing.assert_close(w[:, 8:10, 4:8], w[:, 0:2, 0:4])
    v = dec.vector(torch.randn(1, 8), 10)
    torch.testing.assert_close(v[:, :, 4:8], v[:, :, 0:4])


def test_normalisation_follows_ghn3():
    w = torch.randn(6, 5)
    torch.testing.assert_close(normalize_predicted(w, "weight", "linear"), w * math.sqrt(2 / 5))
    k = torch.randn(4, 3, 2, 2)
    torch.testing.assert_close(normalize_predicted(k, "weight", "conv"), k * math.sqrt(2 / 12))
    p = torch.linspace(-8, 8, 11)  # in float32 the bounds are reached beyond about +-30
    scale = normalize_predicted(p, "weight", "layernorm")
    bias = normalize_predicted(p, "bias", "linear")
    assert bool((scale > 0).all() and (scale < 2).all() and (bias.abs() < 1).all())
    assert float(normalize_predicted(torch.zeros(1), "weight", "layernorm")) == 1.0
    assert normalize_predicted(w, "pos_embed", "param") is w  # free tensors as predicted


@pytest.mark.parametrize("kind", ["logah", "tiled"])
def test_predicted_weights_load_into_the_model_and_it_runs(kind):
    vit, ghn = _vit(2), _small(kind)
    g = trace_architecture(vit, vit.example_input())
    names = apply_predicted(vit, ghn, g)
    assert sorted(names) == sorted(n for n, _ in vit.named_parameters())
    with torch.no_grad():
        pred = ghn.eval()(g)
    for n, p in vit.named_parameters():
        assert torch.equal(p, pred[n]), n
    out = vit(torch.rand(5, 3, 16, 16))
    assert out.shape == (5, 10) and bool(torch.isfinite(out).all())
    if kind == "logah":  # every predicted matrix has rank <= r
        w = vit.get_parameter("blocks.0.mlp.fc1.weight")
        assert int(torch.linalg.matrix_rank(w)) <= 4


def test_gradient_of_the_target_loss_reaches_the_ghn():
    vit, ghn = _vit(), _small()
    g = trace_architecture(vit, vit.example_input())
    x, y = torch.rand(8, 3, 16, 16), torch.arange(8) % 10
    loss = F.cross_entropy(functional_call(vit, ghn(g), (x,)), y)
    loss.backward()
    for name in ("decoder.l2.weight", "decoder.mlp.0.weight", "layers.0.qkv.weight",
                 "op_embed.weight", "shape_enc.embed_channel.weight", "edge_proj.0.weight",
                 "centrality_in.weight", "input_dist.weight"):
        grad = ghn.get_parameter(name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    assert all(p.grad is None for p in vit.parameters())  # the target's own weights unused


def test_meta_train_steps_and_changes_the_ghn():
    vit, ghn = _vit(), _small()
    g = trace_architecture(vit, vit.example_input())
    before = ghn.decoder.l2.weight.detach().clone()
    x, y = torch.rand(16, 3, 16, 16), torch.arange(16) % 10
    losses = meta_train(ghn, [vit], [g], x, y, steps=3, batch_size=4, warmup=1)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert not torch.equal(before, ghn.decoder.l2.weight)


def test_vit_family_and_registry():
    held = ViTConfig(32, 1, 2, 2.0)
    fam = vit_family(dims=(32, 48), depths=(1,), heads=(2, 3), mlp_ratios=(2.0,),
                     exclude=[held])
    # 48 takes 2 and 3 heads, 32 only 2 (held out)
    assert fam == [ViTConfig(48, 1, 2, 2.0), ViTConfig(48, 1, 3, 2.0)]
    entry = get_entry("logah")
    assert entry.family == "hypernetwork" and entry.builder is logah
    assert isinstance(logah().decoder, LowRankDecoder)
    assert GraphHyperNetwork.spec.architecture.value == "attention"


def test_bad_inputs_raise_clear_errors():
    vit = _vit()
    with pytest.raises(ValueError, match="NaN"):
        trace_architecture(vit, torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="no parameters"):
        trace_architecture(nn.ReLU(), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="empty"):
        trace_architecture(vit, torch.zeros(0, 3, 16, 16))
    with pytest.raises(ValueError, match="images"):
        vit(torch.zeros(1, 3, 8, 8))
    dec = LowRankDecoder(hid=8, rank=2, max_shape=16)
    with pytest.raises(ValueError, match="max_shape=16"):
        dec.matrix(torch.zeros(1, 8), 17, 4)
    wide = TinyViT(dim=256, depth=1, heads=2)  # kv has 512 rows > max_shape 256
    with pytest.raises(ValueError, match="max_shape=256"):
        _small()(trace_architecture(wide, wide.example_input()))
    other = trace_architecture(nn.Sequential(nn.Linear(3, 2)), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="lacks"):
        apply_predicted(vit, _small(), other)
    with pytest.raises(ValueError, match="ArchGraph"):
        _small()(vit)
    empty = ArchGraph(["input"], ["input:0"], [{}], [None], torch.zeros(2, 0, dtype=torch.long),
                      {})
    with pytest.raises(ValueError, match="no parameters to predict"):
        _small()(empty)
    with pytest.raises(ValueError, match="one graph per model"):
        meta_train(_small(), [vit], [], torch.rand(4, 3, 16, 16), torch.zeros(4).long())
    with pytest.raises(ValueError, match="NaN"):
        meta_train(_small(), [vit], [trace_architecture(vit, vit.example_input())],
                   torch.full((4, 3, 16, 16), float("nan")), torch.zeros(4).long())
    with pytest.raises(ValueError, match="must divide"):
        GraphormerLayer(10, heads=3)
    with pytest.raises(ValueError, match="empty"):
        vit_family(dims=(30,), heads=(4,))
    with pytest.raises(ValueError, match="patch"):
        TinyViT(img_size=15, patch=4)
    with pytest.raises(ValueError, match="pool"):
        TinyViT(pool="max")


def test_a_hand_built_graph_is_validated():
    graph = trace_architecture(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
                               torch.zeros(1, 3))
    fields = dict(ops=graph.ops, names=graph.names, params=graph.params, shapes=graph.shapes,
                  edge_index=graph.edge_index, param_shapes=graph.param_shapes)
    cases = [  # scipy's "index exceeds matrix dimension", silent use, KeyError, tuple.index
        (dict(edge_index=graph.edge_index + 10), "graph.edge_index holds node id 13"),
        (dict(edge_index=graph.edge_index.float()), "graph.edge_index must hold integers"),
        (dict(params=graph.params[:-1]), "4 ops but 3 params"),
        (dict(param_shapes={}), "param_shapes has no shape for"),
        (dict(ops=[*graph.ops[:-1], "weird"]), r"unknown op types \['weird'\]"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            _small()(ArchGraph(**(fields | change)))


def test_bad_sizes_widths_and_training_arguments_are_named():
    nan = float("nan")
    with pytest.raises(ValueError, match="mlp_ratio must be positive, got nan"):
        TinyViT(mlp_ratio=nan)  # was "cannot convert float NaN to integer"
    with pytest.raises(ValueError, match="mlp_ratio must be positive, got nan"):
        GraphormerLayer(8, 2, mlp_ratio=nan)
    with pytest.raises(ValueError, match=r"dims\[0\] must be a positive integer, got 0"):
        vit_family(dims=(0,))  # was a family of configurations that cannot be built
    with pytest.raises(ValueError, match="mlp_ratios must be positive"):
        vit_family(mlp_ratios=(-1.0,))
    with pytest.raises(ValueError, match="hid must be a positive integer, got 0"):
        ShapeEncoder(0)
    with pytest.raises(ValueError, match="max_channels must be a positive integer"):
        ShapeEncoder(8, max_channels=0)
    with pytest.raises(ValueError, match=r"shape \(0, 3\): a size is 0"):
        ShapeEncoder(8)([(0, 3)])
    layer = GraphormerLayer(8, 2)
    with pytest.raises(ValueError, match=r"x must be \(num_nodes, 8\), got \(5, 6\)"):
        layer(torch.randn(5, 6), torch.zeros(2, 5, 5))
    with pytest.raises(ValueError, match=r"bias must be \(heads, num_nodes, num_nodes\)"):
        layer(torch.randn(5, 8), torch.zeros(3, 5, 5))
    for dec in (LowRankDecoder(8, 2, 16), TiledDecoder(8, 4)):
        with pytest.raises(ValueError, match=r"node embeddings \(P, 8\), got \(1, 6\)"):
            dec.matrix(torch.randn(1, 6), 4, 2)
    with pytest.raises(ValueError, match=r"hidden\[0\] must be a positive integer, got 0"):
        LowRankDecoder(8, 2, 16, hidden=(0,))
    with pytest.raises(ValueError, match="decoder reads node embeddings of width 16, but hid=8"):
        GraphHyperNetwork(LowRankDecoder(16, 2, 64), hid=8, layers=1, heads=2)
    vit = _vit()
    graph = trace_architecture(vit, vit.example_input())
    images, labels = torch.rand(4, 3, 16, 16), torch.zeros(4).long()
    cases = [
        (dict(labels=labels.float()), "labels must be a 1-D tensor of class ids"),
        (dict(labels=labels.view(4, 1)), "labels must be a 1-D tensor of class ids"),
        (dict(labels=labels - 1), r"labels hold a negative class id \(-1\)"),
        (dict(warmup=-3), "warmup must be an integer >= 0"),
        (dict(grad_clip=nan), "grad_clip must be a positive number"),
        (dict(grad_clip=-1.0), "grad_clip must be a positive number"),
        (dict(graphs=[trace_architecture(nn.Linear(3, 2), torch.zeros(1, 3))]),
         r"graphs\[0\] does not match models\[0\]"),  # trained nothing, silently
    ]
    for change, message in cases:
        kwargs = dict(ghn=_small(), models=[vit], graphs=[graph], images=images, labels=labels,
                      steps=1, batch_size=2) | change
        with pytest.raises(ValueError, match=message):
            meta_train(**kwargs)


@pytest.mark.slow
def test_meta_training_on_the_vit_family_lowers_the_loss():
    """300 steps over the 36-ViT family (mean-pooled heads): both decoders leave the chance
    level (ln 10 = 2.303) and end at least 0.15 below it on the last 50 steps."""
    from graphkit.extras._core.synthetic import blobs_classification

    x, y = blobs_classification(2000, classes=10, size=16, noise=0.15, seed=0)
    family = vit_family()
    models = [c.build() for c in family]
    graphs = [trace_architecture(m, m.example_input()) for m in models]
    for build in (logah, ghn3_tiled):
        torch.manual_seed(0)
        losses = meta_train(build(), models, graphs, x, y, steps=300, lr=1e-3)
        tail = sum(losses[-50:]) / 50
        assert tail < math.log(10) - 0.15, (build.__name__, tail)
