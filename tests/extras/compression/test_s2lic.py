"""S2LIC (#1): shapes, exact checkerboard/slice causality, SwinV2 blocks, ACGC context, R-D."""

import pytest
import torch
import torch.nn.functional as F

from graphkit.extras import create_model, get_entry
from graphkit.extras._core.counting import count_params
from graphkit.extras.compression.entropy import ste_round
from graphkit.extras.compression.s2lic import (
    S2LIC,
    ACGCContext,
    ChannelContext,
    ContinuousPositionBias,
    GlobalInterContext,
    RateDistortionLoss,
    SwinV2Block,
    bpp,
    checkerboard_mask,
)

TINY = dict(
    N=16, M=24, num_slices=3, window=4, depths=(1, 2, 1), num_heads=(2, 2, 2), enhance_hidden=8
)


def test_registered_and_shapes():
    assert get_entry("s2lic").family == "compression"
    torch.manual_seed(0)
    net = create_model("s2lic", **TINY)
    x = torch.rand(2, 3, 64, 128)
    out = net(x)
    assert out["x_hat"].shape == x.shape
    assert out["y_hat"].shape == out["likelihoods"]["y"].shape == (2, 24, 4, 8)
    assert out["likelihoods"]["z"].shape == (2, 16, 1, 2)
    p = out["likelihoods"]["y"]
    assert ((p > 0) & (p <= 1)).all()


def test_default_configuration_builds():
    """The official configuration (N=192, M=320, 10 slices, window 8, depths 1-2-3, heads
    4-8-16). 56,656,349 parameters is graphkit's count of its own blocks, not a published
    figure: the official layer library is unpublished (see the module docstring)."""
    net = S2LIC()
    assert net.context.num_slices == 10 and net.context.slice_ch == 32
    assert count_params(net) == 56_656_349


def test_checkerboard_mask():
    m = checkerboard_mask(3, 4)
    want = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(m, want)


def test_causality_jacobian_is_exactly_zero():
    """On a 1x3x64x64 image: the Gaussian parameters (means and scales) at the anchors of
    slice i have zero gradient w.r.t. the non-anchor latents of slice i, all of slice i itself
    and every later slice; those at non-anchors have zero gradient w.r.t. the non-anchors of
    slice i and later slices, but do depend on the anchors of slice i and on earlier slices
    (so the check is not vacuous). The hyperprior is side information, sent first: held
    fixed."""
    torch.manual_seed(0)
    net = S2LIC(**TINY).eval()
    x = torch.rand(1, 3, 64, 64)
    y = net.g_a(net.enhance_in(x)).detach()
    hyper = net.h_s(ste_round(net.h_a(y))).detach()
    y.requires_grad_(True)
    out = net.context(y, hyper)
    anchor = checkerboard_mask(*y.shape[-2:])
    s = net.context.slice_ch
    for i in range(net.context.num_slices):
        own = slice(i * s, (i + 1) * s)
        params = torch.cat([out["means"][:, own], out["scales"][:, own]], 1)
        for positions in (anchor, ~anchor):
            weights = torch.randn_like(params) * positions
            (g,) = torch.autograd.grad((params * weights).sum(), y, retain_graph=True)
            assert torch.count_nonzero(g[:, (i + 1) * s :]) == 0
            assert torch.count_nonzero(g[:, own][..., ~anchor]) == 0
            if positions is anchor:
                assert torch.count_nonzero(g[:, own]) == 0
            else:
                assert g[:, own][..., anchor].abs().sum() > 0
            if i:
                assert g[:, : i * s].abs().sum() > 0


def test_swinv2_cosine_attention_ignores_query_and_key_scale():
    """Scaled-cosine attention normalises q and k, so scaling their projections changes
    nothing (the SwinV2 point of cosine attention)."""
    torch.manual_seed(0)
    block = SwinV2Block(8, 2, window=4, shift=True).eval()
    x = torch.randn(2, 8, 8, 8)
    before = block(x)
    with torch.no_grad():
        block.attn.q.weight.mul_(7.0)
        block.attn.q.bias.mul_(7.0)
        kv = block.attn.kv
        kv.weight[:8].mul_(0.2)
        kv.bias[:8].mul_(0.2)
    torch.testing.assert_close(block(x), before, atol=1e-5, rtol=1e-5)


def test_swinv2_shift_and_window_rules():
    torch.manual_seed(0)
    plain = SwinV2Block(8, 2, window=8, shift=False).eval()
    shifted = SwinV2Block(8, 2, window=8, shift=True).eval()
    shifted.load_state_dict(plain.state_dict())
    x = torch.randn(1, 8, 8, 8)
    # the window covers the map: no shift, so the two blocks agree exactly
    assert torch.equal(plain(x), shifted(x))
    # on a larger map the shift changes the result, and the region mask is block-diagonal
    big = torch.randn(1, 8, 16, 16)
    assert not torch.allclose(plain(big), shifted(big))
    mask = SwinV2Block._shift_mask(16, 16, 8, 4, big.device)
    assert mask.shape == (4, 64, 64) and (mask[0] == 0).all() and (mask[-1] != 0).any()
    bias = ContinuousPositionBias(3)(4, 5)
    assert bias.shape == (3, 20, 20) and bias.min() > 0 and bias.max() < 16


def test_float64_and_bfloat16_follow_the_module_dtype():
    # the position-bias table was float32 whatever the MLP's dtype: a dtype mismatch
    torch.manual_seed(0)
    net = S2LIC(
        N=16, M=32, num_slices=2, window=4, depths=(1, 1, 1), num_heads=(2, 2, 2),
        enhance_hidden=8,
    ).double()
    out = net(torch.randn(1, 3, 64, 64, dtype=torch.float64))
    assert out["x_hat"].dtype == out["likelihoods"]["y"].dtype == torch.float64
    block = SwinV2Block(8, 2, window=4, shift=True).eval()
    x = torch.randn(1, 8, 8, 8)
    want = block(x)
    torch.testing.assert_close(block.double()(x.double()), want.double(), atol=1e-5, rtol=1e-5)
    # the shifted-window mask follows too (float32 it made bfloat16 logits float32)
    assert block.bfloat16()(x.bfloat16()).dtype == torch.bfloat16


def test_global_inter_context_starts_as_plain_global_attention():
    """Offsets start at zero, so sampling the regular grid returns the map itself and the
    module equals single-group global attention on it."""
    torch.manual_seed(0)
    gc = GlobalInterContext(8, 4, num_heads=1)
    x = torch.randn(2, 8, 5, 6)
    q = gc.q(x).flatten(2).transpose(1, 2)
    k, v = (t.flatten(2).transpose(1, 2) for t in gc.kv(x).chunk(2, 1))
    att = ((q @ k.transpose(1, 2)) / 8**0.5).softmax(-1) @ v
    want = gc.out(att.transpose(1, 2).reshape(2, 8, 5, 6))
    torch.testing.assert_close(gc(x), want, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        gc.offset[2].bias.fill_(1.0)
    assert not torch.allclose(gc(x), want, atol=1e-3)


def test_channel_context_shapes_and_heads():
    cc = ChannelContext(64, 10)
    assert cc.num_heads == 2
    assert cc(torch.randn(1, 64, 3, 5)).shape == (1, 10, 3, 5)
    assert ChannelContext(24, 6).num_heads == 1


def test_rate_distortion_loss():
    x = torch.rand(1, 3, 8, 8)
    out = {"x_hat": x + 0.1, "likelihoods": {"y": torch.full((1, 2, 2, 2), 0.5)}}
    terms = RateDistortionLoss(0.01)(out, x)
    assert terms["bpp"].item() == pytest.approx(8 / 64)
    assert terms["loss"].item() == pytest.approx(0.01 * 255**2 * 0.01 + 8 / 64, rel=1e-5)
    assert bpp({"a": torch.full((4,), 0.25)}, 2).item() == pytest.approx(4.0)


def test_rd_loss_falls_quickly():
    """A smaller smoke version of the acceptance check (the full one is the slow test below):
    10 Adam steps (lr 1e-3) of the TINY configuration on one 64x64 smooth synthetic image
    lower the R-D loss (lambda 0.013) by at least 30% (measured: 437.6 -> about 90; the
    start is dominated by the untrained reconstruction error)."""
    torch.manual_seed(0)
    net = S2LIC(**TINY)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = RateDistortionLoss()
    x = _smooth(1, 0)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = loss_fn(net(x), x)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 <= 0.7 * losses[0]


def _smooth(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return F.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.slow
def test_rd_training_reduces_the_loss():
    """The acceptance check: 200 Adam steps (lr 1e-3, batch 2) of the TINY configuration on
    fresh 64x64 smooth synthetic images cut the R-D loss (lambda 0.013) by >= 30% (mean of
    the last 10 steps against the first; measured 452.78 -> 60.50).

    The spec's second training check, estimated bpp of noise images above that of smooth
    images, is not asserted: it needs a codec that has learnt to reconstruct, and these CPU
    runs have not (MSE stays near the images' variance). Measured after training on smooth
    images, smooth vs noise bpp: 0.0136 vs 0.0136 (200 steps, lambda 0.013, latents
    collapsed), 0.276 vs 0.091 (600 steps, lambda 0.013), 0.363 vs 0.094 (600 steps,
    lambda 0.05)."""
    torch.manual_seed(0)
    net = S2LIC(**TINY)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = RateDistortionLoss()
    losses = []
    for step in range(200):
        x = _smooth(2, step)
        opt.zero_grad()
        loss = loss_fn(net(x), x)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"R-D loss {losses[0]:.2f} -> {sum(losses[-10:]) / 10:.2f}")
    assert sum(losses[-10:]) / 10 <= 0.7 * losses[0]


def test_bad_inputs():
    net = S2LIC(**TINY)
    with pytest.raises(ValueError, match="multiples of 64"):
        net(torch.rand(1, 3, 48, 64))
    with pytest.raises(ValueError, match="input channels"):
        net(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="NaN"):
        net(torch.full((1, 3, 64, 64), float("nan")))
    with pytest.raises(ValueError, match="must divide M"):
        ACGCContext(30, 4)
    with pytest.raises(ValueError, match="window"):
        SwinV2Block(8, 2, window=4)(torch.randn(1, 8, 6, 8))
    with pytest.raises(ValueError, match="three"):
        S2LIC(depths=(1, 2))
    with pytest.raises(ValueError, match="differ in size"):
        ACGCContext(24, 3)(torch.randn(1, 24, 4, 4), torch.randn(1, 48, 2, 2))


def test_bpp_loss_and_context_arguments_are_checked():
    from graphkit.extras.compression.s2lic import DenseEnhance

    # num_pixels=0 gave inf, a negative count a negative rate, no likelihoods a rate of 0
    with pytest.raises(ValueError, match="num_pixels must be a positive integer"):
        bpp({"y": torch.rand(3)}, 0)
    with pytest.raises(ValueError, match="bpp got no likelihoods"):
        bpp({}, 10)
    with pytest.raises(ValueError, match="lmbda must be positive, got nan"):
        RateDistortionLoss(float("nan"))
    with pytest.raises(ValueError, match="offset_range must be a positive finite"):
        GlobalInterContext(8, 4, offset_range=float("nan"))
    with pytest.raises(ValueError, match="DenseEnhance expects 3 input channels, got 4"):
        DenseEnhance(hidden=4, layers=1)(torch.rand(1, 4, 8, 8))


def test_context_modules_and_loss_name_wrong_shapes():
    # each ended in conv2d's channel error, arange's bound error or a broadcast error
    with pytest.raises(ValueError, match="ChannelContext expects 8 input channels, got 6"):
        ChannelContext(8, 4)(torch.rand(1, 6, 4, 4))
    with pytest.raises(ValueError, match="GlobalInterContext expects 8 input channels, got 6"):
        GlobalInterContext(8, 4)(torch.rand(1, 6, 4, 4))
    with pytest.raises(ValueError, match="wh must be a positive integer, got 0"):
        ContinuousPositionBias(2, hidden=8)(0, 4)
    out = {"x_hat": torch.rand(1, 3, 8, 8), "likelihoods": {"y": torch.rand(4)}}
    with pytest.raises(ValueError, match="x_hat and target must be one"):
        RateDistortionLoss()(out, torch.rand(1, 3, 9, 8))
