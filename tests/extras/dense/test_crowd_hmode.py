"""HMoDE: pixel gates, count-preserving maps, the relative local counting loss's invariants."""

import pytest
import torch

from graphkit.extras._core.registry import create_model
from graphkit.extras.dense.crowd_hmode import (
    HMoDE,
    HMoDEOutput,
    PixelSoftGate,
    RelativeLocalCountLoss,
    gaussian_density,
    hmode_loss,
    local_count_map,
)


def test_pixel_gates_are_a_softmax_per_pixel():
    torch.manual_seed(0)
    gate = PixelSoftGate(6, n_inputs=3, hidden=8)
    g = gate.gates(torch.randn(2, 6, 5, 7) * 10)
    assert g.shape == (2, 3, 5, 7) and (g >= 0).all()
    assert (g.sum(dim=1) - 1).abs().max() < 1e-6


def test_pixel_gate_merges_with_its_weights():
    torch.manual_seed(0)
    gate = PixelSoftGate(4, n_inputs=2, hidden=8)
    f, a, b = torch.randn(1, 4, 3, 3), torch.rand(1, 1, 3, 3), torch.rand(1, 1, 3, 3)
    merged, g = gate(f, [a, b])
    torch.testing.assert_close(merged, g[:, :1] * a + g[:, 1:] * b)
    with pytest.raises(ValueError, match="expected 2 maps"):
        gate(f, [a])
    with pytest.raises(ValueError, match="maps must be"):
        gate(f, [a, torch.rand(1, 1, 4, 4)])


@pytest.mark.parametrize("widths", [(8, 8, 8, 8), (8, 8, 8), (8,)])
def test_hierarchy_gates_sum_to_one_and_shapes(widths):
    torch.manual_seed(0)
    model = HMoDE(widths=widths, expert_channels=4, gate_hidden=4).eval()
    out = model(torch.rand(2, 3, 16, 16))
    n = len(widths)
    assert out.density.shape == (2, 1, 16, 16) and (out.density >= 0).all()
    assert len(out.experts) == n and len(out.merged) == n - 1 == len(out.gates)
    for g in out.gates:
        assert (g.sum(dim=1) - 1).abs().max() < 1e-6
    if n > 1:
        assert out.density is out.merged[-1]


def test_single_scale_baseline_on_the_same_backbone():
    torch.manual_seed(0)
    model = HMoDE(widths=(8, 8, 8), expert_channels=4, scales=(2,)).eval()
    out = model(torch.rand(1, 3, 16, 16))
    assert len(out.experts) == 1 and not out.merged and out.density is out.experts[0]
    # the coarse expert's map is piecewise constant on 4x4 blocks (stride 4)
    blocks = out.density.view(4, 4, 4, 4).transpose(1, 2)
    assert (blocks == blocks[..., :1, :1]).all()


def test_expert_maps_keep_their_coarse_integral():
    """Nearest upsampling / s^2 leaves each expert's count equal to its coarse map's sum."""
    torch.manual_seed(0)
    model = HMoDE(widths=(8, 8, 8), expert_channels=4).eval()
    coarse = []
    for head in model.expert_heads.values():
        head.register_forward_hook(lambda m, a, o: coarse.append(torch.relu(o).sum()))
    out = model(torch.rand(1, 3, 16, 16))
    for c, m in zip(coarse, out.experts, strict=True):
        torch.testing.assert_close(m.sum(), c, rtol=1e-6, atol=0)


def test_density_integral_equals_local_count_map_sum():
    torch.manual_seed(0)
    out = HMoDE(widths=(8, 8), expert_channels=4)(torch.rand(2, 3, 18, 14))
    for window in (1, 4, 5, 32):
        lcm = local_count_map(out.density, window)
        assert lcm.shape[-2:] == (-(-18 // window), -(-14 // window))
        torch.testing.assert_close(lcm.sum(dim=(1, 2, 3)), out.density.sum(dim=(1, 2, 3)))


def test_gaussian_density_integral_is_the_count():
    pts = torch.tensor([[0.0, 0.0], [5.0, 7.5], [11.0, 15.0], [3.2, 0.4]])
    d = gaussian_density(pts, (12, 16), sigma=2.0)
    assert d.shape == (12, 16) and (d >= 0).all()
    torch.testing.assert_close(d.sum(), torch.tensor(4.0))
    assert gaussian_density(pts[:0], (4, 4)).sum() == 0
    with pytest.raises(ValueError, match="inside"):
        gaussian_density(torch.tensor([[12.0, 0.0]]), (12, 16))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_density(pts, (12, 16), sigma=0.0)


def _gt(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 1, 16, 16, generator=g) * 0.1


def test_relative_loss_is_zero_for_an_equal_offset_on_every_region():
    gt = _gt()
    loss = RelativeLocalCountLoss(window=4, n_hard=16)
    assert loss(gt, gt) == 0
    shifted = gt + 0.3 / 16  # every 4x4 region's count rises by exactly 0.3
    assert loss(shifted, gt) < 1e-6
    # an absolute local loss does see that offset: the two are complementary
    assert (local_count_map(shifted, 4) - local_count_map(gt, 4)).abs().mean() > 0.29


def test_relative_loss_is_positive_when_offsets_differ():
    gt = _gt()
    pred = gt.clone()
    pred[:, :, :4, :4] += 0.5 / 16  # one region off by 0.5, the others exact
    loss = RelativeLocalCountLoss(window=4, n_hard=4)(pred, gt)
    # the hard set holds the erring region and 3 exact ones: 3 of 6 pairs differ by 0.5
    torch.testing.assert_close(loss, torch.tensor(0.25), rtol=1e-5, atol=1e-6)


def test_relative_loss_is_differentiable_and_checks_inputs():
    gt = _gt()
    pred = (gt + torch.rand_like(gt) * 0.05).requires_grad_(True)
    RelativeLocalCountLoss(4, 4)(pred, gt).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="n_hard"):
        RelativeLocalCountLoss(4, 1)
    with pytest.raises(ValueError, match="differ"):
        RelativeLocalCountLoss(4, 4)(gt, gt[:, :, :8])
    with pytest.raises(ValueError, match="NaN"):
        RelativeLocalCountLoss(4, 4)(torch.full_like(gt, float("nan")), gt)
    with pytest.raises(ValueError, match="need 2"):
        RelativeLocalCountLoss(16, 4)(gt, gt)


def test_hmode_loss_vanishes_only_for_a_perfect_hierarchy_and_trains():
    torch.manual_seed(0)
    model = HMoDE(widths=(8, 8), expert_channels=4, gate_hidden=4)
    x, gt = torch.rand(2, 3, 16, 16), _gt()
    out = model(x)
    loss = hmode_loss(out, gt, window=4, competition_tau=0.1)
    loss.backward()
    assert loss > 0 and all(p.grad is not None for p in model.parameters())
    perfect = type(out)(density=gt, experts=[gt, gt], merged=[gt], gates=out.gates)
    assert hmode_loss(perfect, gt, window=4, competition_tau=0.1) == 0
    with pytest.raises(ValueError, match="competition_tau"):
        hmode_loss(out, gt, window=4, competition_tau=0.0)


def test_competition_weights_favour_the_better_expert():
    """Winner-take-more: with tau -> small the loss is E x the best expert's error per pixel."""
    gt = torch.zeros(1, 1, 4, 4)
    good, bad = gt + 0.1, gt + 1.0
    out = HMoDEOutput(density=gt, experts=[good, bad], merged=[gt])
    loss = hmode_loss(out, gt, window=4, relative_weight=0, local_weight=0, competition_tau=1e-3)
    torch.testing.assert_close(loss, torch.tensor(2 * 0.01), rtol=1e-4, atol=0)


def test_registered_and_bad_arguments():
    model = create_model("hmode", widths=(8, 8), expert_channels=4)
    assert isinstance(model, HMoDE)
    assert model.count(torch.rand(3, 3, 8, 8)).shape == (3,)
    with pytest.raises(ValueError, match="divisible"):
        model(torch.rand(1, 3, 9, 8))
    with pytest.raises(ValueError, match="expected"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="widths"):
        HMoDE(widths=())
    with pytest.raises(ValueError, match="scales"):
        HMoDE(widths=(8, 8), scales=(1, 0))
    with pytest.raises(ValueError, match="scales"):
        HMoDE(widths=(8, 8), scales=(2,))
    with pytest.raises(ValueError, match="widths\\[1\\]"):
        HMoDE(widths=(8, 0))
    with pytest.raises(ValueError, match="window"):
        local_count_map(torch.rand(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="density"):
        local_count_map(torch.rand(1, 2, 4, 4), 2)


def _crowd(n: int, seed: int, size: int = 32):
    """Gaussian-dot crowds with perspective: heads small and dense at the top, large below."""
    g = torch.Generator().manual_seed(seed)
    rows, cols = torch.arange(size).float()[:, None], torch.arange(size).float()[None, :]
    xs, ds = [], []
    for _ in range(n):
        k = int(torch.randint(3, 40, (1,), generator=g))
        r = torch.rand(k, generator=g) ** 2 * (size - 1)  # more heads far away (top)
        c = torch.rand(k, generator=g) * (size - 1)
        img = 0.15 * torch.rand(size, size, generator=g)
        for y, x in zip(r.tolist(), c.tolist(), strict=True):
            rad = 0.6 + 2.4 * y / (size - 1)
            img = img + torch.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * rad**2))
        xs.append(img.clamp(0, 1.5).expand(3, -1, -1))
        ds.append(gaussian_density(torch.stack([r, c], 1), (size, size), sigma=1.5))
    return torch.stack(xs), torch.stack(ds)[:, None]


@pytest.mark.slow
def test_hmode_counts_better_than_single_scale_baselines():
    """Spec #51: test MAE of HMoDE below single-scale models on the same backbone.

    300 Adam steps, 256 train / 128 test crowds of 3-39 heads, seeds 0-5. Asserted over the
    seeds, not on each: which model wins on one seed changed with the CPU and the thread count
    (seed 0 on the first machine, 1 thread: HMoDE 2.434, finest scale only 2.941; on a second
    machine 3.310 against 3.167). Measured on the second, 1 thread (as the test suite runs),
    mean MAE HMoDE 1.351, finest scale only 2.125, coarsest only 3.920; HMoDE lowest on 4 of 6
    seeds (2 threads: 1.331 / 2.173 / 4.070, 5 of 6).
    """
    xtr, dtr = _crowd(256, 1)
    xte, dte = _crowd(128, 2)
    mae: dict[str, list[float]] = {"hmode": [], "finest": [], "coarsest": []}
    for seed in range(6):
        for name, scales in {"hmode": None, "finest": (0,), "coarsest": (3,)}.items():
            torch.manual_seed(seed)
            model = HMoDE(widths=(8, 16, 32, 32), expert_channels=8, gate_hidden=8, scales=scales)
            opt = torch.optim.Adam(model.parameters(), 1e-3)
            g = torch.Generator().manual_seed(seed)
            tau = 1e-3 if scales is None else None
            for _ in range(300):
                idx = torch.randint(0, 256, (16,), generator=g)
                loss = hmode_loss(model(xtr[idx]), dtr[idx], window=8, competition_tau=tau)
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                mae[name].append((model.count(xte) - dte.sum(dim=(1, 2, 3))).abs().mean().item())
    mean = {name: sum(v) / len(v) for name, v in mae.items()}
    wins = sum(h < min(f, c) for h, f, c in zip(mae["hmode"], mae["finest"], mae["coarsest"]))
    assert mean["hmode"] < 0.8 * min(mean["finest"], mean["coarsest"]), mae
    assert wins >= 4, mae


def test_gaussian_density_rejects_nan_points():
    with pytest.raises(ValueError, match="points contain NaN or infinite coordinates"):
        gaussian_density(torch.tensor([[float("nan"), 1.0]]), (8, 8))


def test_density_keeps_unit_mass_when_no_pixel_is_within_the_kernel():
    point = torch.tensor([[2.5, 2.5]])
    for kwargs in (dict(radius=0), dict(sigma=0.02)):  # both gave an all-NaN map
        density = gaussian_density(point, (6, 6), **kwargs)
        assert torch.isfinite(density).all() and float(density.sum()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="radius must be a non-negative"):
        gaussian_density(point, (6, 6), radius=-1)
