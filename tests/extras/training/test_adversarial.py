"""PGD / FGSM: the ball and range constraints, the FGSM closed form, and that the loss rises."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras.training.adversarial import fgsm_attack, pgd_attack, robust_accuracy


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.rand(8, 3, 2, 2)
    y = torch.randint(0, 3, (8,))
    return model, x, y


def test_pgd_stays_in_ball_and_range_and_raises_loss():
    model, x, y = _setup()
    eps = 0.1
    adv = pgd_attack(model, x, y, eps=eps, alpha=0.03, steps=10)
    assert adv.shape == x.shape and not adv.requires_grad
    assert (adv - x).abs().max() <= eps + 1e-7
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    with torch.no_grad():
        assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)


def test_pgd_leaves_parameter_gradients_untouched():
    model, x, y = _setup()
    pgd_attack(model, x, y, eps=0.05, alpha=0.01, steps=3)
    assert all(p.grad is None for p in model.parameters())


def test_fgsm_is_the_closed_form_step():
    model, x, y = _setup(1)
    x = x * 0.5 + 0.25  # interior points: no clamping at [0, 1] for eps = 0.1
    xg = x.clone().requires_grad_(True)
    F.cross_entropy(model(xg), y).backward()
    expected = x + 0.1 * xg.grad.sign()
    torch.testing.assert_close(fgsm_attack(model, x, y, eps=0.1), expected, rtol=0, atol=0)


def test_zero_steps_without_random_start_is_identity():
    model, x, y = _setup()
    adv = pgd_attack(model, x, y, eps=0.1, steps=0, random_start=False)
    assert torch.equal(adv, x)


def test_random_start_is_seeded():
    model, x, y = _setup()
    a = pgd_attack(model, x, y, steps=2, generator=torch.Generator().manual_seed(3))
    b = pgd_attack(model, x, y, steps=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_robust_accuracy_not_above_clean_and_restores_mode():
    model, x, y = _setup()
    model.train()
    with torch.no_grad():
        clean = (model(x).argmax(-1) == y).float().mean().item()
    rob = robust_accuracy(model, x, y, eps=0.2, alpha=0.05, steps=5, batch_size=3)
    assert 0.0 <= rob <= clean
    assert model.training


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eps": -0.1}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"alpha": -1.0}, "alpha"),
        ({"steps": -1}, "steps"),
        ({"steps": 1.5}, "steps"),
    ],
)
def test_bad_arguments(kwargs, match):
    model, x, y = _setup()
    with pytest.raises(ValueError, match=match):
        pgd_attack(model, x, y, **kwargs)


def test_bad_inputs():
    model, x, y = _setup()
    with pytest.raises(ValueError, match="batch"):
        pgd_attack(model, x, y[:3])
    with pytest.raises(ValueError, match="NaN"):
        pgd_attack(model, torch.full_like(x, float("nan")), y)
    with pytest.raises(TypeError, match="floating"):
        pgd_attack(model, x.long(), y)


def test_reversed_clamp_and_empty_robust_accuracy_are_errors():
    model, x, y = _setup()
    # a (1, 0) range clamped every pixel to 0 silently
    with pytest.raises(ValueError, match="clamp must be a finite"):
        fgsm_attack(model, x, y, clamp=(1.0, 0.0))
    with pytest.raises(ValueError, match="clamp must be a finite"):
        pgd_attack(model, x, y, clamp=(0.0, float("nan")))
    # an empty set scored 0.0 accuracy
    with pytest.raises(ValueError, match="at least one sample"):
        robust_accuracy(model, x[:0], y[:0])
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        robust_accuracy(model, x, y, batch_size=2.5)


def test_inputs_outside_the_clamp_range_are_named_and_clamp_reaches_robust_accuracy():
    # mean/std-normalised inputs were clamped to [0, 1]: x_adv left the eps-ball, and the
    # robust accuracy at eps 0 was 0.675 instead of the clean 1.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = torch.randn(200, 3, 2, 2) * 1.5
    y = model(x).argmax(1)
    with pytest.raises(ValueError, match=r"outside clamp=\(0.0, 1.0\)"):
        pgd_attack(model, x, y, eps=0.0, steps=1)
    with pytest.raises(ValueError, match="outside clamp"):
        robust_accuracy(model, x, y, eps=0.0)
    assert robust_accuracy(model, x, y, eps=0.0, clamp=None) == 1.0
    low, high = float(x.min()), float(x.max())
    adv = pgd_attack(model, x, y, eps=0.1, steps=2, clamp=(low, high))
    assert float((adv - x).abs().max()) <= 0.1 + 1e-6
