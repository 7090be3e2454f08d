import pytest
import torch

from graphkit.nn.quant import (
    LayerSpec,
    QGATConv,
    QGCNConv,
    QLinear,
    QSAGEConv,
    QuantGNN,
    export_integer,
    fixed_point_quantize,
    integer_forward,
    uniform_specs,
)
from graphkit.nn.quant.formats import act_format, coef_format, glorot_bound, weight_format


def _graph(n=12, f=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, f, generator=g) < 0.4).float()
    src = torch.randint(0, n, (30,), generator=g)
    dst = torch.randint(0, n, (30,), generator=g)
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    return x, ei[:, ei[0] != ei[1]]


def test_full_precision_gcn_matches_pyg():
    from torch_geometric.nn import GCNConv
    x, ei = _graph()
    q = QGCNConv(6, 4, coef_format=coef_format(32))
    ref = GCNConv(6, 4)
    with torch.no_grad():
        ref.lin.weight.copy_(q.weight)
        ref.bias.copy_(torch.randn(4))
        q.bias.copy_(ref.bias)
    assert torch.allclose(q(x, ei), ref(x, ei), atol=1e-6)


def test_full_precision_sage_matches_pyg():
    from torch_geometric.nn import SAGEConv
    x, ei = _graph()
    q = QSAGEConv(6, 4, coef_format=coef_format(32))
    ref = SAGEConv(6, 4)
    with torch.no_grad():
        ref.lin_l.weight.copy_(q.weight_l)
        ref.lin_r.weight.copy_(q.weight_r)
        q.bias.copy_(ref.lin_l.bias)
    assert torch.allclose(q(x, ei), ref(x, ei), atol=1e-5)


def test_quantised_weights_on_grid_and_sparse_input_equal():
    x, ei = _graph()
    fw, fa = weight_format(4), act_format(4)
    for layer in (QLinear(6, 3, fw, fa), QGCNConv(6, 3, fw, fa), QSAGEConv(6, 3, fw, fa),
                  QGATConv(6, 3, heads=2, weight_format=fw, act_format=fa)):
        args = (x,) if isinstance(layer, QLinear) else (x, ei)
        sp = (x.to_sparse(),) + args[1:]
        assert torch.allclose(layer(*args), layer(*sp), atol=1e-6)
        for name, w in layer.named_parameters():
            if "bias" in name:
                continue
            q = fixed_point_quantize(w.detach(), fw)  # what the layer multiplies with
            codes = q * 2.0 ** fw.frac_bits
            assert torch.equal(codes, codes.round()), name  # on the grid
            lo, hi = fw.range
            assert bool(((q >= lo) & (q <= hi)).all()), name


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat"])
def test_sparse_csr_features_equal_dense_ones(conv):
    """CSR features, which every non-quantised model takes, failed in the fake quantiser
    ("unsupported tensor layout: SparseCsr") and in dropout; COO worked."""
    x, ei = _graph()
    torch.manual_seed(0)
    specs = [LayerSpec(conv, 4, "relu", True, 4, 8), LayerSpec(conv, 3, "identity", False, 8, 4)]
    model = QuantGNN(6, specs).eval()
    torch.testing.assert_close(model(x.to_sparse_csr(), ei), model(x, ei))
    model.train()  # dropout drops the same stored values as from COO
    torch.manual_seed(1)
    out = model(x.to_sparse_csr(), ei)
    torch.manual_seed(1)
    torch.testing.assert_close(out, model(x.to_sparse(), ei))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("conv", [QGCNConv, QSAGEConv])
def test_a_sparse_adjacency_equals_its_edge_index(conv):
    x, ei = _graph()
    ei = torch.unique(ei, dim=1)  # a repeated edge would become a value of 2 in the matrix
    layer = conv(6, 3, weight_format(8), act_format(8))
    adj_t = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (12, 12)).coalesce()
    torch.testing.assert_close(layer(x, adj_t), layer(x, ei))
    weighted = torch.sparse_coo_tensor(ei.flip(0), torch.full((ei.size(1),), 2.0), (12, 12))
    with pytest.raises(ValueError, match="takes no edge weights"):
        layer(x, weighted.coalesce())


def test_wide_bias_formats_keep_their_range_and_codes():
    # bias_bits=32 at W16A16: the accumulator grid alone would leave +-2^-7 of range; the
    # bias keeps 8 integer bits, its float32 codes stay in the format, inference is exact
    x, ei = _graph(n=30, f=8, seed=1)
    torch.manual_seed(0)
    specs = [LayerSpec("gcn", 6, "relu", False, 16, 16),
             LayerSpec("gcn", 3, "identity", False, 16, 16)]
    model = QuantGNN(8, specs, dropout=0.0, bias_bits=32).eval()
    conv = model.convs[0]
    lo, hi = conv.stored_bias_format.range
    assert lo <= -128 and hi >= 127
    with torch.no_grad():
        conv.bias.fill_(0.1)
    out = conv(torch.zeros(5, 8), ei[:, ei.max(0).values < 5])
    assert abs(float(out[0, 0].detach()) - 0.1) < 1e-6
    out.sum().backward()
    assert bool((conv.bias.grad != 0).all())  # inside the range: the STE passes gradient
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        fake = model(x, ei)
    exported = export_integer(model)
    for lay in exported.layers:
        fb = lay.bias_format
        assert fb.qmin <= int(lay.bias.min()) and int(lay.bias.max()) <= fb.qmax
    acc, frac = integer_forward(exported, x, ei)
    assert torch.equal(acc.argmax(1), fake.argmax(1))
    torch.testing.assert_close(acc.double() * 2.0 ** -frac, fake.double(), rtol=0, atol=1e-5)
    sparse_acc, _ = integer_forward(exported, x.to_sparse(), ei)  # bag-of-words input too
    assert torch.equal(sparse_acc, acc)


def test_bit_widths_may_be_numpy_integers():
    import numpy as np

    spec = LayerSpec("gcn", 4, weight_bits=np.int64(8), act_bits=np.int32(4))
    assert spec.weight_bits == 8 and type(spec.weight_bits) is int
    assert weight_format(np.int64(8)) == weight_format(8)
    with pytest.raises(ValueError, match="bits must be an integer"):
        LayerSpec("gcn", 4, weight_bits=True)


def test_gradients_reach_weights_through_ste():
    x, ei = _graph()
    layer = QGATConv(6, 3, heads=2, weight_format=weight_format(8), act_format=act_format(8))
    layer(x, ei).pow(2).sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.att_src.grad.abs().sum() > 0


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_gat_attention_vectors_start_inside_their_format(bits):
    # in the weight matrix's format (6-13x narrower range) 31-91% of them started clipped,
    # with a zero straight-through gradient (2 bits clip values above half the range by
    # design, weights and vectors alike)
    torch.manual_seed(0)
    x, ei = _graph(f=300)
    fmt = weight_format(bits, glorot_bound(300, 2 * 8))
    layer = QGATConv(300, 8, heads=2, weight_format=fmt, act_format=act_format(8))
    assert layer.att_format == weight_format(bits, glorot_bound(1, 8))
    if bits == 4:  # the weight matrix's format clips them
        assert (fixed_point_quantize(layer.att_src, fmt) != layer.att_src).any()
    layer(x, ei).pow(2).sum().backward()
    assert (layer.att_src.grad != 0).all() and (layer.att_dst.grad != 0).all()
    with pytest.raises(ValueError, match="att_format must have the weight format's width"):
        QGATConv(300, 8, weight_format=fmt, att_format=weight_format(bits // 2))


def test_size_bits_exact_independent_count():
    # the spec: every parameter of a component, biases included, at the component's width
    specs = [LayerSpec("gat", 5, "elu", True, 4, 8, heads=3),
             LayerSpec("sage", 4, "identity", False, 8, 4)]
    model = QuantGNN(10, specs)
    # layer 1: W 15x10 + att 2x15 + bias 15 at 4 bits, skip 15x10 at 4 bits
    # layer 2: W_l, W_r 4x15 + bias 4 at 8 bits
    expected = (150 + 30 + 150 + 15) * 4 + (2 * 60 + 4) * 8
    assert model.size_bits() == expected
    assert model.size_bytes() == expected / 8
    # bias_bits=32: the earlier accounting, biases as 32-bit words
    old = QuantGNN(10, specs, bias_bits=32)
    assert old.size_bits() == (150 + 30 + 150) * 4 + 15 * 32 + 2 * 60 * 8 + 4 * 32
    with pytest.raises(ValueError, match="bias_bits"):
        QuantGNN(10, specs, bias_bits=8)


@pytest.mark.parametrize("bits", [2, 4, 8, 32])
def test_bias_quantised_with_the_weight_format(bits):
    # a zero input leaves only the bias: it must be the weight quantiser's output (grid, range)
    _, ei = _graph()
    fw, fa = weight_format(bits, 0.3), act_format(8)
    layers = (QLinear(6, 3, fw, fa), QGCNConv(6, 3, fw, fa), QSAGEConv(6, 3, fw, fa),
              QGATConv(6, 3, heads=2, concat=False, weight_format=fw, act_format=fa))
    for layer in layers:
        with torch.no_grad():
            layer.bias.copy_(torch.tensor([-9.0, 0.013, 9.0]))
        zero = torch.zeros(12, 6)
        out = layer(zero) if isinstance(layer, QLinear) else layer(zero, ei)
        expected = fixed_point_quantize(layer.bias, fw).detach()
        assert torch.equal(out.detach(), expected.expand_as(out)), type(layer).__name__
        if not fw.is_full:
            assert (float(expected.min()), float(expected.max())) == fw.range
            codes = expected * 2.0 ** fw.frac_bits
            assert torch.equal(codes, torch.round(codes))
        # every parameter, the bias included, at the layer's width
        assert layer.size_bits() == sum(p.numel() for p in layer.parameters()) * fw.bits


@pytest.mark.parametrize("bias_bits", [None, 32])
@pytest.mark.parametrize("conv", ["gcn", "sage"])
def test_integer_inference_reproduces_fake_quantised(conv, bias_bits):
    x, ei = _graph(n=30, f=8, seed=1)
    torch.manual_seed(0)
    specs = [LayerSpec(conv, 6, "relu", True, 4, 8), LayerSpec(conv, 3, "identity", False, 8, 4)]
    model = QuantGNN(8, specs, dropout=0.0, bias_bits=bias_bits).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        fake = model(x.double(), ei)
    exported = export_integer(model)
    acc, frac = integer_forward(exported, x.double(), ei)
    assert acc.dtype == torch.int64
    assert torch.equal(acc.double() * 2.0 ** -frac, fake)
    assert torch.equal(acc.argmax(1), fake.argmax(1))
    assert exported.size_bits() == model.size_bits()
    for lay in exported.layers:
        # stored bias codes lie in the stored format; the accumulator gets them by a shift
        fb = lay.weight_format if bias_bits is None else lay.bias_format
        assert lay.bias_format == fb
        assert fb.qmin <= int(lay.bias.min()) and int(lay.bias.max()) <= fb.qmax
        assert lay.bias_shift == lay.acc_frac_bits - fb.frac_bits
        assert lay.bias_shift == (lay.act_format.frac_bits + lay.coef_format.frac_bits
                                  if bias_bits is None else 0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="conv"):
        LayerSpec("gin", 4)
    with pytest.raises(ValueError, match="act"):
        LayerSpec("gcn", 4, act="swish")
    with pytest.raises(ValueError, match="bits"):
        LayerSpec("gcn", 4, weight_bits=3.5)
    with pytest.raises(ValueError, match="gcn and sage"):
        export_integer(QuantGNN(4, uniform_specs("gat", 4, 2, 8, 8)))
    with pytest.raises(ValueError, match="fixed-point"):
        export_integer(QuantGNN(4, uniform_specs("gcn", 4, 2, 32, 8)))
    with pytest.raises(ValueError, match="specs"):
        QuantGNN(4, [])
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        uniform_specs("gcn", 4, 2, 8, 8, num_layers=0)  # gave a 1-layer model silently
    with pytest.raises(ValueError, match="export_integer needs a QuantGNN, got Linear"):
        export_integer(torch.nn.Linear(2, 2))
    for width in (2.5, True):  # failed later in torch.empty, naming neither
        with pytest.raises(ValueError, match="out_channels must be an integer"):
            LayerSpec("gcn", width)
    x, ei = _graph()
    for conv in ("gcn", "gat"):  # a cast error inside gcn_norm; GAT ran on the integers
        with pytest.raises(ValueError, match="x must be floating point"):
            QuantGNN(6, uniform_specs(conv, 4, 2, 8, 8))(x.long(), ei)


@pytest.mark.parametrize("make", [lambda: QLinear(6, 4), lambda: QGCNConv(6, 4),
                                  lambda: QSAGEConv(6, 4), lambda: QGATConv(6, 4, heads=2),
                                  lambda: QuantGNN(6, uniform_specs("sage", 4, 2, 8, 8))])
def test_layers_name_the_feature_width(make):
    x, ei = _graph()
    layer = make()
    call = (lambda v: layer(v)) if isinstance(layer, QLinear) else (lambda v: layer(v, ei))
    with pytest.raises(ValueError, match="x has 7 features, but in_channels is 6"):
        call(torch.randn(12, 7))  # was "mat1 and mat2 shapes cannot be multiplied"
    with pytest.raises(ValueError, match=r"x must have shape \[num_nodes, 6\], got \[12\]"):
        call(torch.randn(12))


def test_integer_forward_checks_its_inputs():
    x, ei = _graph()
    torch.manual_seed(0)
    exported = export_integer(QuantGNN(6, uniform_specs("gcn", 4, 2, 8, 8)).eval())
    nan_x = x.clone()
    nan_x[3, 2] = float("nan")
    for args, match in [((nan_x, ei), r"x holds NaN values \(first in row 3\)"),
                        ((torch.randn(12, 7), ei), "x has 7 features, but in_channels is 6"),
                        ((x, ei - 1), "edge_index holds a negative node id"),
                        ((x, ei + 12), "edge_index holds node id .*, out of range"),
                        ((x, ei.float()), "edge_index must hold integers"),
                        ((x, ei[0]), r"edge_index must have shape \[2, num_edges\]")]:
        with pytest.raises(ValueError, match=match):  # NaN and negative ids ran silently
            integer_forward(exported, *args)
    with pytest.raises(ValueError, match="no layers"):
        integer_forward(type(exported)([]), x, ei)


def test_cached_gcn_coefficients_stay_quantised_after_full_precision_pass():
    # a full-precision warm-up step must not leave unquantised coefficients in the cache
    from graphkit.nn.quant.quantizer import full_precision
    torch.manual_seed(0)
    x = torch.randn(30, 5)
    ei = torch.randint(0, 30, (2, 90))
    fmts = (weight_format(4), act_format(8), coef_format(4))
    warm, fresh = QGCNConv(5, 3, *fmts, cached=True), QGCNConv(5, 3, *fmts, cached=True)
    fresh.load_state_dict(warm.state_dict())
    with full_precision():
        warm(x, ei)
    assert torch.equal(warm(x, ei), fresh(x, ei))
    ei_c, w = warm.coefficients(ei, 30)
    assert torch.equal(w, fixed_point_quantize(w, coef_format(4)))


def test_gat_refuses_a_weighted_sparse_adjacency():
    """QGATConv dropped the values of a weighted sparse adjacency without a word; like its
    siblings it now refuses them (an unweighted one still equals its edge_index)."""
    from torch_geometric.utils import to_torch_csr_tensor

    torch.manual_seed(0)
    x, ei = torch.randn(6, 5), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    conv = QGATConv(5, 3, heads=2).eval()
    ones = to_torch_csr_tensor(ei.flip(0), size=(6, 6))
    torch.testing.assert_close(conv(x, ones), conv(x, ei))
    weighted = to_torch_csr_tensor(ei.flip(0), torch.arange(1.0, 6.0), size=(6, 6))
    with pytest.raises(ValueError, match="QGATConv takes no edge weights"):
        conv(x, weighted)
