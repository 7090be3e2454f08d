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
from graphkit.nn.quant.formats import act_format, coef_format, weight_format


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


def test_gradients_reach_weights_through_ste():
    x, ei = _graph()
    layer = QGATConv(6, 3, heads=2, weight_format=weight_format(8), act_format=act_format(8))
    layer(x, ei).pow(2).sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.att_src.grad.abs().sum() > 0


def test_size_bits_exact_independent_count():
    specs = [LayerSpec("gat", 5, "elu", True, 4, 8, heads=3),
             LayerSpec("sage", 4, "identity", False, 8, 4)]
    model = QuantGNN(10, specs)
    # layer 1: W 15x10 + att 2x15 at 4 bits, skip 15x10 at 4 bits, bias 15 at 32
    # layer 2: W_l, W_r 4x15 at 8 bits, bias 4 at 32
    expected = (150 + 30 + 150) * 4 + 15 * 32 + 2 * 60 * 8 + 4 * 32
    assert model.size_bits() == expected
    assert model.size_bytes() == expected / 8


@pytest.mark.parametrize("conv", ["gcn", "sage"])
def test_integer_inference_reproduces_fake_quantised(conv):
    x, ei = _graph(n=30, f=8, seed=1)
    torch.manual_seed(0)
    specs = [LayerSpec(conv, 6, "relu", True, 4, 8), LayerSpec(conv, 3, "identity", False, 8, 4)]
    model = QuantGNN(8, specs, dropout=0.0).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        fake = model(x.double(), ei)
    acc, frac = integer_forward(export_integer(model), x.double(), ei)
    assert acc.dtype == torch.int64
    assert torch.equal(acc.double() * 2.0 ** -frac, fake)
    assert torch.equal(acc.argmax(1), fake.argmax(1))
    assert export_integer(model).size_bits() == model.size_bits()


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
