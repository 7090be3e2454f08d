"""Monotone DBM (#43): monotone couplings, a unique mean-field fixed point, implicit gradients,
clamped inference and image completion."""

import pytest
import torch
import torch.nn.functional as F

from graphkit.extras import create_model, get_entry
from graphkit.extras.generative.monotone_dbm import (
    ConvCouplings,
    MonotoneDBM,
    mean_field_fixed_point,
)

LAYERS = [10, (6, 3), 5, (4, 2)]  # Bernoulli, categorical (groups of 3), Bernoulli, (groups of 2)


def _net(skew: bool = False, m: float = 0.1, scale: float = 1.0, seed: int = 0) -> MonotoneDBM:
    torch.manual_seed(seed)
    net = MonotoneDBM(LAYERS, conv=False, m=m, skew=skew, init_scale=scale, tol=1e-12).double()
    with torch.no_grad():
        net.bias.normal_()
    return net


def _assert_directional_fd(net, values, observed, c):
    """The implicit gradient of sum(c * q) along a random direction of all parameters equals
    the central finite difference (step 1e-6, relative 1e-4)."""
    params = list(net.parameters())

    def loss():
        return (net(values, observed) * c).sum()

    grads = torch.autograd.grad(loss(), params)
    dirs = [torch.randn_like(p) for p in params]
    eps = 1e-6
    with torch.no_grad():
        for p, d in zip(params, dirs, strict=True):
            p.add_(eps * d)
        up = loss()
        for p, d in zip(params, dirs, strict=True):
            p.sub_(2 * eps * d)
        down = loss()
        for p, d in zip(params, dirs, strict=True):
            p.add_(eps * d)
    fd = (up - down) / (2 * eps)
    implicit = sum((g * d).sum() for g, d in zip(grads, dirs, strict=True))
    assert abs(fd - implicit) < 1e-4 * abs(implicit)


@pytest.mark.parametrize("skew", [False, True])
@pytest.mark.parametrize("m, scale", [(0.1, 1.0), (0.1, 3.0), (0.5, 2.0)])
def test_monotonicity(skew, m, scale):
    """Smallest eigenvalue of sym(I - W) >= m - 1e-6 for random A (and B)."""
    W = _net(skew, m, scale).weight()
    sym = torch.eye(W.shape[0], dtype=W.dtype) - (W + W.T) / 2
    assert torch.linalg.eigvalsh(sym).min() >= m - 1e-6
    if not skew:
        assert torch.equal(W, W.T)


def test_coupling_pattern_is_block_tridiagonal():
    """W couples each layer only to itself and its neighbours."""
    net = _net(skew=True)
    W = net.weight() - (1 - net.m) * torch.eye(net.size, dtype=torch.float64)
    starts = [0, 10, 16, 21, 25]
    for i in range(4):
        for j in range(4):
            block = W[starts[i] : starts[i + 1], starts[j] : starts[j + 1]]
            assert (block.abs().sum() > 0) == (abs(i - j) <= 1)


@pytest.mark.parametrize("skew", [False, True])
def test_unique_fixed_point_from_any_start(skew):
    net = _net(skew, scale=2.0)
    starts = [torch.randn(4, net.size, dtype=torch.float64) * s for s in (0.0, 3.0, 10.0)]
    qs = [net(init=u) for u in starts]
    for q in qs[1:]:
        assert (q - qs[0]).abs().max() < 1e-5
    q = qs[-1]
    # it is a mean-field fixed point, and a point of the product of simplices
    residual = q - net.act(q @ net.weight().T + net.bias)
    assert residual.abs().max() < 1e-9
    sums = net.split(q)[1].reshape(4, 2, 3).sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-12)


def test_fixed_point_minimises_the_free_energy():
    """With symmetric W the free energy is strongly convex: every other feasible point of the
    product of simplices has a higher free energy than q*."""
    net = _net(scale=2.0)
    q = net(batch_size=1)
    far = net.act(torch.randn(200, net.size, dtype=torch.float64))
    logits = torch.logit(q.clamp(1e-9, 1 - 1e-9))
    near = net.act(logits + 0.01 * torch.randn(200, net.size, dtype=torch.float64))
    others = torch.cat([far, near])
    assert (net.free_energy(others) > net.free_energy(q)).all()


@pytest.mark.parametrize("skew", [False, True])
def test_implicit_gradients_equal_finite_differences(skew):
    """Directional derivative of a loss of the clamped marginals along a random direction of
    all parameters: implicit gradient vs central difference (fp64, eps 1e-6), rel < 1e-4."""
    net = _net(skew, scale=1.5)
    n = net.size
    observed = torch.zeros(2, n, dtype=torch.bool)
    observed[0, :4] = True
    observed[1, 2:9] = True
    values = torch.rand(2, n, dtype=torch.float64)
    c = torch.randn(2, n, dtype=torch.float64)
    _assert_directional_fd(net, values, observed, c)


def test_gradcheck_bias_and_clamped_values():
    net = _net()
    W = net.weight().detach()
    observed = torch.zeros(net.size, dtype=torch.bool)
    observed[:5] = True
    bias = torch.randn(net.size, dtype=torch.float64, requires_grad=True)
    values = torch.rand(2, net.size, dtype=torch.float64, requires_grad=True)

    def f(b, v):
        return mean_field_fixed_point(W, b, LAYERS, v, observed, tol=1e-13)

    assert torch.autograd.gradcheck(f, (bias, values))


def test_clamped_units_and_conditional_fixed_point():
    net = _net(scale=2.0)
    n = net.size
    observed = torch.zeros(3, n, dtype=torch.bool)
    observed[:, :10] = True  # the first layer
    observed[1, 10:13] = True  # and one categorical group in sample 1
    values = torch.rand(3, n, dtype=torch.float64)
    values[1, 10:13] = torch.tensor([0.0, 1.0, 0.0])
    q = net(values, observed)
    assert torch.equal(q[observed], values[observed])
    free = ~observed
    residual = (q - net.act(q @ net.weight().T + net.bias))[free]
    assert residual.abs().max() < 1e-9


def _bar_images(n: int, g: torch.Generator) -> torch.Tensor:
    """14x14 binary images: 1-3 vertical bars (2 wide, full height) and one horizontal bar."""
    imgs = torch.zeros(n, 14, 14)
    for i in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        for c in torch.randperm(13, generator=g)[:k]:
            imgs[i, :, c : c + 2] = 1
        imgs[i, int(torch.randint(0, 14, (1,), generator=g))] = 1
    return imgs.reshape(n, 196)


def test_completion_beats_mean_imputation():
    """Bottom-half completion of synthetic 14x14 bar images (196 visible + 64 hidden units,
    top half clamped), 25 Adam steps on BCE of the hidden half: the completion MSE must be
    >= 20% below per-pixel mean imputation (spec). Measured here: 0.0593 vs 0.2177 (73% lower)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train, test = _bar_images(800, g), _bar_images(200, g)
    net = MonotoneDBM([196, 64], conv=False, m=0.1, tol=1e-4, max_iter=300)
    observed = torch.zeros(260, dtype=torch.bool)
    observed[:98] = True
    hidden = slice(98, 196)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def pad(x):
        return torch.cat([x, torch.zeros(x.shape[0], 64)], dim=1)

    for _ in range(25):
        x = train[torch.randint(0, 800, (32,), generator=g)]
        q = net(pad(x), observed)[:, hidden].clamp(1e-6, 1 - 1e-6)
        loss = F.binary_cross_entropy(q, x[:, hidden])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        q = net(pad(test), observed)[:, hidden]
    mse = (q - test[:, hidden]).pow(2).mean()
    baseline = (train.mean(0)[hidden] - test[:, hidden]).pow(2).mean()
    assert mse <= 0.8 * baseline


CONV_LAYERS = [(2, 6), (4, 3, 2), (3, 1, 3)]  # 2x6x6 Bernoulli, 4x3x3 in pairs, 3-way label


def _conv_net(seed: int = 0) -> MonotoneDBM:
    torch.manual_seed(seed)
    net = MonotoneDBM(CONV_LAYERS, m=0.1, init_scale=1.5, tol=1e-12).double()
    with torch.no_grad():
        net.bias.normal_()
    return net


def test_conv_adjoint_and_monotonicity():
    """The convolutional A^T is A's exact adjoint, W = (1 - m)I - A^T A is symmetric with
    sym(I - W) >= m, and layers couple only to neighbours (pixels to labels: none)."""
    net = _conv_net()
    cp = net.couplings
    eye = torch.eye(net.size, dtype=torch.float64)
    A = cp.A(eye).T
    assert (cp.At(eye).T - A.T).abs().max() < 1e-12
    W = net.weight()
    expected = (1 - net.m) * eye - A.T @ A
    assert (W - expected).abs().max() < 1e-12
    assert torch.linalg.eigvalsh(eye - W).min() >= net.m - 1e-6
    assert W[:72, 108:].abs().max() == 0 and W[:72, 72:108].abs().max() > 0


def test_conv_fixed_point_equals_dense_solver_and_is_unique():
    net = _conv_net()
    W, n = net.weight(), net.size
    want = mean_field_fixed_point(W, net.bias.expand(2, n), net.layers, tol=1e-13)
    for scale in (0.0, 5.0):
        q = net(init=torch.randn(2, n, dtype=torch.float64) * scale)
        assert (q - want).abs().max() < 1e-9
    observed = torch.zeros(2, n, dtype=torch.bool)
    observed[0, :20] = True
    observed[1, 72:90] = True  # whole categorical pairs of the hidden layer
    values = torch.rand(2, n, dtype=torch.float64)
    q = net(values, observed)
    want = mean_field_fixed_point(W, net.bias, net.layers, values, observed, tol=1e-13)
    assert (q - want).abs().max() < 1e-9
    assert torch.equal(q[observed], values[observed])


def test_conv_implicit_gradients_equal_finite_differences():
    """Conjugate-gradient implicit backward vs central differences (fp64), rel < 1e-4."""
    net = _conv_net(seed=1)
    n = net.size
    observed = torch.zeros(2, n, dtype=torch.bool)
    observed[0, :20] = True
    values = torch.rand(2, n, dtype=torch.float64)
    c = torch.randn(2, n, dtype=torch.float64)
    _assert_directional_fd(net, values, observed, c)


def test_registered():
    """Default: convolutional, 14x14 pixels, 16x7x7 hidden, a 10-way label layer."""
    assert get_entry("monotone_dbm").family == "generative"
    torch.manual_seed(0)
    net = create_model("monotone_dbm")
    assert net.conv and net.size == 196 + 16 * 49 + 10
    pixels, hidden, label = net.split(net(batch_size=2))
    assert pixels.shape == (2, 1, 14, 14) and hidden.shape == (2, 16, 7, 7)
    assert label.shape == (2, 10, 1, 1)
    assert torch.allclose(label.sum(1), torch.ones(2, 1, 1), atol=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="m must lie"):
        MonotoneDBM([4], conv=False, m=0.0)
    with pytest.raises(ValueError, match="must divide its 5 units"):
        MonotoneDBM([(5, 2)], conv=False)
    with pytest.raises(ValueError, match="at least one layer"):
        MonotoneDBM([])
    net = MonotoneDBM([4, (4, 2)], conv=False)
    W, b = net.weight().detach(), net.bias.detach()
    with pytest.raises(ValueError, match="W must be"):
        mean_field_fixed_point(W[:7, :7], b, net.layers)
    values = torch.rand(1, 8)
    part = torch.zeros(8, dtype=torch.bool)
    part[4] = True
    with pytest.raises(ValueError, match="whole or not at all"):
        net(values, part)
    with pytest.raises(ValueError, match="need their values"):
        mean_field_fixed_point(W, b, net.layers, observed=part)
    obs = torch.zeros(8, dtype=torch.bool)
    obs[0] = True
    values[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        net(values, obs)
    with pytest.raises(ValueError, match=r"\(channels, side\)"):
        MonotoneDBM([4, 4])
    with pytest.raises(ValueError, match="must divide the previous side"):
        MonotoneDBM([(1, 6), (2, 4)])
    with pytest.raises(ValueError, match="conv=False only"):
        MonotoneDBM([(1, 4)], skew=True)
    with pytest.warns(RuntimeWarning, match="stopped after 1 iterations"):
        MonotoneDBM([4, 4], conv=False, init_scale=2.0, max_iter=1, tol=1e-12)(batch_size=1)


def test_values_without_observed_and_bad_conv_margin_are_named():
    net = MonotoneDBM([4, 3], conv=False)
    with pytest.raises(ValueError, match="values were given without observed"):
        net(torch.rand(2, 7))  # the values were silently ignored
    with pytest.raises(ValueError, match="values were given without observed"):
        mean_field_fixed_point(net.weight(), net.bias, net.layers, values=torch.rand(2, 7))
    with pytest.raises(ValueError, match=r"m must lie in \(0, 1\], got -1"):
        ConvCouplings([(1, 4, 4)], m=-1)
