"""Entropy models (S2LIC #1): likelihoods integrate to one, quantisation modes, rates."""

import math

import pytest
import torch

from graphkit.extras.compression.entropy import (
    EntropyBottleneck,
    GaussianConditional,
    bits,
    quantize,
    ste_round,
)


def test_gaussian_likelihood_sums_to_one_over_the_lattice():
    """Summed over mu + k for all integers k the box-convolved Gaussian telescopes to one;
    +-200 covers every scale used here (largest sigma 20: the tails beyond are < 1e-20)."""
    gc = GaussianConditional()
    k = torch.arange(-200, 201, dtype=torch.float64)[:, None]
    means = torch.tensor([[0.3, -2.7, 10.0, 0.0]], dtype=torch.float64)
    scales = torch.tensor([[0.05, 1.3, 20.0, 0.11]], dtype=torch.float64)
    total = gc.likelihood(k + means, scales, means).sum(0)
    torch.testing.assert_close(total, torch.ones(4, dtype=torch.float64), atol=1e-12, rtol=0)


def test_gaussian_likelihood_matches_the_cdf_difference():
    gc = GaussianConditional()
    y = torch.tensor([0.0, 1.0, -3.0, 2.0], dtype=torch.float64)
    mu = torch.tensor([0.2, 0.0, -1.0, 2.5], dtype=torch.float64)
    s = torch.tensor([1.0, 0.5, 2.0, 3.0], dtype=torch.float64)
    normal = torch.distributions.Normal(mu, s)
    want = normal.cdf(y + 0.5) - normal.cdf(y - 0.5)
    torch.testing.assert_close(gc.likelihood(y, s, mu), want, atol=1e-12, rtol=1e-9)
    # scales below the bound are raised to it
    tiny, bound = torch.full_like(s, 1e-3), torch.full_like(s, 0.11)
    torch.testing.assert_close(gc.likelihood(y, tiny, mu), gc.likelihood(y, bound, mu))


def test_entropy_bottleneck_is_a_distribution_per_channel():
    torch.manual_seed(0)
    eb = EntropyBottleneck(5).double()
    with torch.no_grad():  # a non-trivial density, not the initial one
        for p in eb.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z = torch.arange(-400, 401, dtype=torch.float64).reshape(1, 1, -1).expand(1, 5, -1)
    total = eb.likelihood(z).sum(-1)
    torch.testing.assert_close(total, torch.ones(1, 5, dtype=torch.float64), atol=1e-9, rtol=0)
    grid = torch.linspace(-30, 30, 601, dtype=torch.float64).reshape(1, 1, -1).expand(1, 5, -1)
    assert (eb.cdf(grid).diff(dim=-1) >= 0).all()


def test_quantisation_modes():
    torch.manual_seed(0)
    x = torch.randn(1000) * 4
    mu = torch.randn(1000)
    r = quantize(x, "round", mu)
    torch.testing.assert_close(r - mu, torch.round(x - mu), atol=1e-5, rtol=0)
    assert torch.equal(quantize(x, "round"), torch.round(x))
    n = quantize(x, "noise")
    assert (n - x).abs().max() <= 0.5 and (n - x).std() > 0.2
    x.requires_grad_(True)
    (ste_round(x) * 3).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 3.0))
    gc = GaussianConditional().eval()
    y_hat, p = gc(x.detach(), torch.ones(1000), mu)
    assert torch.equal(y_hat, r)
    assert bits(p).item() == pytest.approx(-torch.log(p).sum().item() / math.log(2), rel=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="mode"):
        quantize(torch.zeros(2), "floor")
    with pytest.raises(ValueError, match="NaN"):
        GaussianConditional()(torch.zeros(2), torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="scale_bound"):
        GaussianConditional(scale_bound=0.0)
    with pytest.raises(ValueError, match=r"\(B, 3"):
        EntropyBottleneck(3)(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        EntropyBottleneck(1)(torch.full((1, 1, 2), float("nan")))
    with pytest.raises(ValueError, match="filters"):
        EntropyBottleneck(2, filters=(3, 0))


def test_nan_bounds_and_mismatched_scales_are_errors():
    # NaN passed the "<= 0" checks and was kept as a bound
    with pytest.raises(ValueError, match="likelihood_bound must be >= 0, got nan"):
        EntropyBottleneck(4, likelihood_bound=float("nan"))
    with pytest.raises(ValueError, match="init_scale must be positive"):
        EntropyBottleneck(4, init_scale=float("nan"))
    with pytest.raises(ValueError, match="need scale_bound > 0"):
        GaussianConditional(scale_bound=float("nan"))
    gc = GaussianConditional()
    y = torch.rand(1, 3, 4, 4)
    # these ended in torch's broadcast error
    with pytest.raises(ValueError, match=r"scales must have \(or broadcast to\) y's shape"):
        gc(y, torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match=r"means must have \(or broadcast to\) y's shape"):
        gc(y, torch.rand(1, 3, 4, 4), torch.rand(1, 2, 4, 4))
    assert gc(y, torch.tensor(0.5))[1].shape == y.shape  # a broadcast scale still works


def test_quantize_names_an_offset_of_another_shape():
    # was torch's broadcast error
    with pytest.raises(ValueError, match=r"offset of shape \(4,\) does not broadcast to x \(3,\)"):
        quantize(torch.rand(3), "round", offset=torch.rand(4))
    assert quantize(torch.rand(2, 3), "round", offset=torch.zeros(3)).shape == (2, 3)
