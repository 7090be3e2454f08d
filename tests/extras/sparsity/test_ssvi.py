"""SSVI (Li et al., "Training Bayesian Neural Networks with Sparse Subspace Variational
Inference", arXiv:2402.11025): a mean-field posterior on a fixed-size sparse subspace, swapped
every T steps by a signal-to-noise criterion."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from graphkit.extras import create_model
from graphkit.extras.sparsity.masks import check_density
from graphkit.extras.sparsity.methods.ssvi import (
    SparseBayesConv2d,
    SparseBayesLinear,
    SSVITrainer,
    expected_calibration_error,
    gaussian_kl,
)


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = SparseBayesConv2d(1, 4, 3, padding=1)
        self.fc = SparseBayesLinear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.conv(x)).flatten(1))


def _mlp(width: int) -> nn.Module:
    return nn.Sequential(
        SparseBayesLinear(2, width),
        nn.ReLU(),
        SparseBayesLinear(width, width),
        nn.ReLU(),
        SparseBayesLinear(width, 3),
    )


def test_active_count_is_constant_and_the_lowest_snr_are_swapped():
    torch.manual_seed(0)
    model = _ConvNet()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    trainer = create_model(
        "ssvi",
        model=model,
        density=0.2,
        update_every=3,
        drop_fraction=0.25,
        optimizer=opt,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(trainer, SSVITrainer)
    # round(0.2 * 468) = 94 in all, largest remainder: conv 7 (of 7.2), fc 87 (of 86.4)
    assert trainer.counts == {"conv": 7, "fc": 87}
    expected = 94
    assert trainer.active_count() == expected
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    for step in range(1, 13):
        before = {n: layer.mask.clone() for n, layer in trainer.layers.items()}
        loss = trainer.loss(F.cross_entropy(model(x), y), dataset_size=100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        snr = {
            n: (layer.mu_latent.abs() / F.softplus(layer.weight_rho)).detach()
            for n, layer in trainer.layers.items()
        }
        updated = trainer.step(step)
        assert updated == (step % 3 == 0)
        assert trainer.active_count() == expected
        check_density(model, expected / 468)  # the masks: 94 of 36 + 432 coordinates
        if not updated:
            continue
        for n, layer in trainer.layers.items():
            dropped, grown = before[n] & ~layer.mask, layer.mask & ~before[n]
            count = round(0.25 * int(before[n].sum()))
            assert int(dropped.sum()) == int(grown.sum()) == count
            # the dropped are the lowest SNR of the old active set
            assert snr[n][dropped].max() <= snr[n][before[n] & ~dropped].min()
            assert (layer.mu_latent[grown] == 0).all()
            sigma = F.softplus(layer.weight_rho[grown])
            torch.testing.assert_close(sigma, torch.full_like(sigma, layer.init_sigma))
            state = opt.state[layer.weight_rho]
            assert (state["exp_avg"][grown] == 0).all() and (state["exp_avg_sq"][grown] == 0).all()


def test_off_subspace_weights_are_zero_and_get_no_gradient():
    torch.manual_seed(1)
    layer = SparseBayesLinear(6, 5, density=0.3)
    assert layer.active == 9
    layer.track_grad = True
    out = layer(torch.randn(4, 6))
    w = layer.sampled_weight
    assert (w[~layer.mask] == 0).all() and (w[layer.mask] != 0).all()
    (out.square().sum() + layer.kl()).backward()
    assert (layer.mu_latent.grad[~layer.mask] == 0).all()
    assert (layer.weight_rho.grad[~layer.mask] == 0).all()
    layer.sampling = False
    torch.testing.assert_close(layer(torch.eye(6)), layer.weight_mu.t() + layer.bias)


def test_kl_matches_torch_distributions_on_the_active_coordinates():
    torch.manual_seed(2)
    layer = SparseBayesConv2d(2, 3, 3, prior_sigma=0.5, density=0.4)
    with torch.no_grad():
        layer.weight_rho.normal_(-2.0, 0.5)
    mask = layer.mask
    q = Normal(layer.mu_latent[mask], F.softplus(layer.weight_rho[mask]))
    expected = kl_divergence(q, Normal(0.0, 0.5)).sum()
    torch.testing.assert_close(layer.kl(), expected)
    torch.testing.assert_close(
        gaussian_kl(torch.zeros(3), torch.full((3,), 0.5), 0.5), torch.tensor(0.0)
    )


def test_gradient_growth_takes_the_largest_gradients_off_the_subspace():
    torch.manual_seed(3)
    model = nn.Sequential(SparseBayesLinear(8, 8))
    trainer = SSVITrainer(model, 0.25, update_every=1, drop_fraction=0.5, grow="gradient")
    layer = model[0]
    before = layer.mask.clone()
    model(torch.randn(5, 8)).square().sum().backward()
    grad = layer.sampled_weight.grad.abs()
    trainer.update()
    grown = layer.mask & ~before
    assert int(grown.sum()) == 8
    assert grad[grown].min() >= grad[~before & ~grown].max()


def test_elbo_increases_on_a_synthetic_regression():
    """y = sin(3x) + 0.1 noise, 90% sparse Bayesian MLP; mean ELBO per sample over the first and
    last 20 of 200 steps (measured: -24.96 then -3.45)."""
    torch.manual_seed(4)
    gen = torch.Generator().manual_seed(4)
    x = torch.linspace(-1, 1, 256).unsqueeze(1)
    y = torch.sin(3 * x) + 0.1 * torch.randn(x.shape, generator=gen)
    model = nn.Sequential(SparseBayesLinear(1, 64), nn.Tanh(), SparseBayesLinear(64, 1))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    trainer = SSVITrainer(model, 0.1, update_every=20, optimizer=opt, generator=gen)
    elbo = []
    for step in range(1, 201):
        nll = 0.5 * ((model(x) - y) / 0.1).square().mean() + math.log(0.1 * math.sqrt(2 * math.pi))
        loss = trainer.loss(nll, dataset_size=256)
        opt.zero_grad()
        loss.backward()
        opt.step()
        trainer.step(step)
        elbo.append(-loss.item())
    first, last = sum(elbo[:20]) / 20, sum(elbo[-20:]) / 20
    assert last > first + 10.0


def _blob_run(density: float, seed: int) -> tuple[float, float]:
    """ECE and accuracy of a VI MLP 2-64-64-3 (ERK allocation) trained 200 Adam steps on
    three overlapping 2-D Gaussian classes; predictive = mean of 20 samples, 4000 test points."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0], [1.5, 0.5], [0.5, 1.5]])
    y_train = torch.randint(0, 3, (1000,), generator=gen)
    x_train = centers[y_train] + 0.6 * torch.randn(1000, 2, generator=gen)
    y_test = torch.randint(0, 3, (4000,), generator=gen)
    x_test = centers[y_test] + 0.6 * torch.randn(4000, 2, generator=gen)
    model = _mlp(64)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    trainer = SSVITrainer(
        model, density, update_every=25, allocation="erk", optimizer=opt, generator=gen
    )
    for step in range(1, 201):
        i = torch.randint(0, 1000, (100,), generator=gen)
        loss = trainer.loss(F.cross_entropy(model(x_train[i]), y_train[i]), 1000)
        opt.zero_grad()
        loss.backward()
        opt.step()
        trainer.step(step)
    with torch.no_grad():
        probs = torch.stack([model(x_test).softmax(1) for _ in range(20)]).mean(0)
    accuracy = float((probs.argmax(1) == y_test).float().mean())
    return expected_calibration_error(probs, y_test), accuracy


def test_ece_at_90_percent_sparsity_within_1_5x_of_dense_vi():
    """Mean ECE over seeds 0-3 (measured: dense 0.0253, 90% sparse 0.0247, ratio 0.98; all
    accuracies 0.81-0.83). Single seeds are too noisy for the bound at these ECE levels (about
    0.01-0.04): per-seed ratios were 0.68, 0.67, 2.41, 0.81, so the check averages seeds."""
    dense = [_blob_run(1.0, seed) for seed in range(4)]
    sparse = [_blob_run(0.1, seed) for seed in range(4)]
    assert min(acc for _, acc in dense + sparse) > 0.8
    mean_dense = sum(e for e, _ in dense) / 4
    mean_sparse = sum(e for e, _ in sparse) / 4
    assert mean_sparse <= 1.5 * mean_dense


def test_expected_calibration_error_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1, 0])
    # two bins: [0.5, 1) holds all four (conf 0.75 mean, accuracy 0.75) -> ECE 0
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(0.0)
    # ten bins: 0.9 right (0.1), 0.8 wrong (0.8), 0.7 right (0.3), 0.6 right (0.4)
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(1.6 / 4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="density"):
        SparseBayesLinear(3, 3, density=0.0)
    with pytest.raises(ValueError, match="prior_sigma"):
        SparseBayesLinear(3, 3, prior_sigma=-1.0)
    with pytest.raises(ValueError, match="out_features"):
        SparseBayesLinear(3, 0)
    with pytest.raises(ValueError, match="last dimension 3"):
        SparseBayesLinear(3, 2)(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        SparseBayesConv2d(2, 2, 3)(torch.randn(1, 3, 5, 5))
    model = nn.Sequential(SparseBayesLinear(4, 4))
    with pytest.raises(ValueError, match="no SparseBayesLinear"):
        SSVITrainer(nn.Linear(3, 3), 0.5, 10)
    with pytest.raises(ValueError, match="density"):
        SSVITrainer(model, 1.5, 10)
    with pytest.raises(ValueError, match="update_every"):
        SSVITrainer(model, 0.5, 0)
    with pytest.raises(ValueError, match="criterion"):
        SSVITrainer(model, 0.5, 10, criterion="hessian")
    with pytest.raises(ValueError, match="grow"):
        SSVITrainer(model, 0.5, 10, grow="magnitude")
    with pytest.raises(ValueError, match="drop_fraction"):
        SSVITrainer(model, 0.5, 10, drop_fraction=1.0)
    trainer = SSVITrainer(model, 0.5, 10, grow="gradient")
    with pytest.raises(RuntimeError, match="backward pass"):
        trainer.update()
    with torch.no_grad():
        model[0].weight_rho.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        SSVITrainer(model, 0.5, 10).update()
    with pytest.raises(ValueError, match=r"probs \(n, K\)"):
        expected_calibration_error(torch.rand(4), torch.zeros(4))


def test_calibration_error_rejects_nan_probs_bad_labels_and_no_samples():
    probs = torch.tensor([[0.5, 0.5], [0.3, 0.7]])
    # these gave a number: NaN confidences were binned, labels past K counted as wrong
    with pytest.raises(ValueError, match="probs contain NaN"):
        nan_probs = torch.tensor([[float("nan"), 0.5], [0.3, 0.7]])
        expected_calibration_error(nan_probs, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        expected_calibration_error(probs, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        expected_calibration_error(probs, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        expected_calibration_error(torch.tensor([[2.0, -1.0], [0.3, 0.7]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least one sample"):  # was a ZeroDivisionError
        expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))


def test_gaussian_kl_checks_prior_and_shapes():
    with pytest.raises(ValueError, match="prior_sigma must be a positive finite"):
        gaussian_kl(torch.zeros(3), torch.ones(3), -1.0)  # was "math domain error"
    with pytest.raises(ValueError, match="mu and sigma must have one shape"):
        gaussian_kl(torch.zeros(3), torch.ones(4), 1.0)


def test_argument_free_reset_keeps_the_layer_density():
    # reset_parameters() used to default to density 1.0: a 10% layer came back dense
    linear = SparseBayesLinear(100, 50, density=0.1)
    linear.reset_parameters()
    assert linear.active == 500
    conv = SparseBayesConv2d(4, 8, 3, density=0.25)
    conv.reset_parameters()
    assert conv.active == 72
    # a density given explicitly (as SSVITrainer does) becomes the layer's own
    model = nn.Sequential(SparseBayesLinear(10, 10))
    SSVITrainer(model, 0.3, 10)
    model[0].reset_parameters()
    assert model[0].active == 30
    with pytest.raises(ValueError, match="density"):
        linear.reset_parameters(1.5)


def test_a_layer_allocated_no_weight_trains_on():
    # round_counts gives the 2 x 2 layer 0 of its 4 weights at 5%: the trainer resets it at
    # density 0, which the layer check refused for a while
    model = nn.Sequential(SparseBayesLinear(100, 100), SparseBayesLinear(100, 2),
                          SparseBayesLinear(2, 2))
    trainer = SSVITrainer(model, density=0.05, update_every=10)
    assert model[2].active == 0
    trainer.update()
