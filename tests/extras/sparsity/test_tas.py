"""TAS (Dong and Yang, "Network Pruning via Transformable Architecture Search", arXiv:1905.09717):
exact expected FLOPs, channel-wise interpolation, the pruned network and the KD loss."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphkit.extras import create_model
from graphkit.extras._core.counting import count_macs
from graphkit.extras.sparsity.methods.tas import (
    TASResNet,
    TASSearch,
    channel_wise_interpolation,
    gumbel_select,
    tas_distill_loss,
    teacher_copy,
)
from graphkit.extras.training.distill import kd_kl


def _search(depths=(2, 1), widths=(4, 8), ratios=(0.5, 1.0), depth_choices=(1, 2), **kw):
    torch.manual_seed(0)
    net = TASResNet(depths, widths, num_classes=5)
    kw.setdefault("target_flops", 1e4)
    return TASSearch(net, ratios, depth_choices, input_size=(8, 8), **kw)


def test_expected_flops_equals_enumerated_expectation():
    """E[F] equals sum over all 64 architectures of prod(p) * FLOPs(cfg), in float64."""
    tas = _search().double()
    torch.manual_seed(1)
    for logits in tas.arch.values():
        logits.data.normal_(0.0, 1.0)
    probs = {k: p.detach() for k, p in tas.probabilities().items()}
    assert tas.space.size() == 64
    want = 0.0
    for cfg in tas.space.enumerate():
        p = math.prod(float(probs[k][c.index(cfg[k])]) for k, c in tas.space.choices())
        want += p * tas.flops(cfg)
    got = tas.expected_flops()
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(want, rel=1e-12)
    got.backward()  # differentiable in every logit
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for p in tas.arch_parameters()
        if p.numel() > 1
    )


def test_flops_equal_counted_macs_of_extracted_net():
    """FLOPs(cfg) is what FlopCounterMode counts on the pruned network, for sampled cfgs."""
    tas = _search(depths=(2, 2, 2), widths=(8, 16, 32), ratios=(0.25, 0.5, 0.75, 1.0))
    full = {k: c.options[-1] for k, c in tas.space.choices()}
    assert tas.flops(full) == count_macs(tas.model, (1, 3, 8, 8))
    for seed in range(2):
        cfg = tas.space.sample(random.Random(seed))
        assert tas.flops(cfg) == count_macs(tas.extract(cfg), (1, 3, 8, 8))


def test_extract_keeps_first_channels_and_full_cfg_is_the_model():
    tas = _search(depths=(2, 2), widths=(4, 8))
    full = {k: c.options[-1] for k, c in tas.space.choices()}
    x = torch.randn(3, 3, 8, 8)
    tas.model.eval()
    net = tas.extract(full).eval()
    torch.testing.assert_close(net(x), tas.model(x))
    cfg = {**full, "stream1": 4, "mid0_1": 2}
    small = tas.extract(cfg)
    assert small.widths == (4, 4) and small.mids[0] == (4, 2)
    w = tas.model.stages[1][0].conv_b.weight
    torch.testing.assert_close(small.stages[1][0].conv_b.weight, w[:4, :8])


def test_cwi_pool_is_the_windowed_channel_mean():
    """Paper/official CWI: channel i of C is the mean of [floor(ic/C), ceil((i+1)c/C))."""
    torch.manual_seed(0)
    for c, big in ((3, 7), (5, 8), (8, 3), (6, 6)):
        x = torch.randn(2, c, 4, 5)
        out = channel_wise_interpolation(x, big)
        want = torch.stack(
            [x[:, (i * c) // big : -(-((i + 1) * c) // big)].mean(1) for i in range(big)], 1
        )
        torch.testing.assert_close(out, want)


def test_cwi_linear_reproduces_linear_interpolation_along_channels():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    out = channel_wise_interpolation(x, 9, mode="linear")
    pos = np.linspace(0, 4, 9)
    want = np.apply_along_axis(lambda v: np.interp(pos, np.arange(5), v), 1, x.numpy())
    np.testing.assert_allclose(out.numpy(), want, rtol=0, atol=1e-12)


def test_gumbel_select_draws_distinct_candidates_with_normalised_weights():
    gen = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 3.0, -1.0, 0.5], requires_grad=True)
    index, weights = gumbel_select(logits, tau=1.0, num=2, generator=gen)
    assert index.shape == (2,) and index[0] != index[1]
    assert weights.sum().item() == pytest.approx(1.0)
    weights[0].backward()
    assert logits.grad.abs().sum() > 0
    index, weights = gumbel_select(torch.zeros(1), tau=1.0, num=2)
    assert index.tolist() == [0] and weights.tolist() == [1.0]


def test_cost_loss_sign_follows_the_argmax_architecture():
    tas = _search()
    current = tas.flops(tas.argmax_config())
    tas.target_flops = current / 2  # argmax too large: minimise log E[F]
    assert torch.equal(tas.cost_loss(), tas.expected_flops().log())
    tas.target_flops = current * 2  # too small: maximise it
    assert torch.equal(tas.cost_loss(), -tas.expected_flops().log())
    tas.target_flops = current * 1.01  # within the band: no cost
    assert tas.cost_loss().item() == 0.0


def test_search_forward_trains_weights_and_architecture():
    tas = _search()
    tas.generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
    loss = F.cross_entropy(tas(x), y) + tas.cost_loss()
    loss.backward()
    assert tas.model.stem.weight.grad.abs().sum() > 0
    assert sum(float(p.grad.abs().sum()) for p in tas.arch_parameters() if p.grad is not None) > 0


def test_distill_loss_uses_shared_kd_kl():
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    got = tas_distill_loss(s, t, y, T=3.0, alpha=0.7)
    want = 0.3 * F.cross_entropy(s, y) + 0.7 * kd_kl(s, t, 3.0)
    torch.testing.assert_close(got, want)
    teacher = teacher_copy(TASResNet((1,), (4,)))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_pruned_net_learns_from_the_unpruned_teacher():
    """KD after the search: 30 Adam steps on tas_distill_loss bring the pruned net's KL to the
    teacher down (measured here: 0.1349 -> 0.0212, so a factor of 2 is a clear margin)."""
    tas = _search(depths=(2, 2), widths=(8, 16), ratios=(0.5, 1.0))
    teacher = teacher_copy(tas.model)
    student = tas.extract({k: c.options[0] for k, c in tas.space.choices()})
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 5, (16,))
    with torch.no_grad():
        target = teacher(x)
        before = kd_kl(student(x), target, 4.0).item()
    opt = torch.optim.Adam(student.parameters(), lr=0.01)
    for _ in range(30):
        loss = tas_distill_loss(student(x), target, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = kd_kl(student(x), target, 4.0).item()
    assert after < 0.5 * before


def test_registered():
    tas = create_model("tas", model=TASResNet((1, 1), (4, 8)), target_flops=1e3, input_size=(8, 8))
    assert isinstance(tas, TASSearch)


def test_bad_inputs():
    net = TASResNet((2,), (4,))
    with pytest.raises(TypeError, match="TASResNet"):
        TASSearch(torch.nn.Linear(2, 2), target_flops=1.0)
    with pytest.raises(ValueError, match="width_choices"):
        TASSearch(net, (0.0, 1.0), target_flops=1.0)
    with pytest.raises(ValueError, match="depth_choices"):
        TASSearch(net, depth_choices=(0,), target_flops=1.0)
    with pytest.raises(ValueError, match="no depth choice fits"):
        TASSearch(net, depth_choices=(3,), target_flops=1.0)
    with pytest.raises(ValueError, match="target_flops"):
        TASSearch(net, target_flops=0.0)
    with pytest.raises(ValueError, match="tau"):
        TASSearch(net, target_flops=1.0, tau=0.0)
    with pytest.raises(ValueError, match="mids"):
        TASResNet((2,), (4,), mids=[[4]])
    with pytest.raises(ValueError, match="input channels"):
        net(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="mode"):
        channel_wise_interpolation(torch.randn(1, 2, 3), 4, mode="cubic")
    with pytest.raises(ValueError, match="channels must be a positive"):
        channel_wise_interpolation(torch.randn(1, 2, 3), 0)
    with pytest.raises(ValueError, match="alpha"):
        tas_distill_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), alpha=1.5)
    tas = TASSearch(net, target_flops=1.0)
    with pytest.raises(ValueError):
        tas.flops({"stream0": 3})


@pytest.mark.slow
def test_search_reaches_flops_target_within_5_percent():
    """Acceptance: after a 150-step search (tau annealed 10 -> 0.1, Adam on the logits with a
    cosine-decayed rate, task loss on a fixed synthetic batch) the argmax network of a
    (2, 2, 2) x (16, 32, 64) ResNet with eight width ratios is within 5% of a 50% MACs target.
    Measured here: 1.038 x target (seed 0; 0.980 with seed 1). Short searches (60 steps, four
    ratios) oscillate around the target by up to 15%, which is why this check is slow."""
    torch.manual_seed(0)
    net = TASResNet((2, 2, 2), (16, 32, 64), 10)
    full = count_macs(net, (1, 3, 16, 16))
    ratios = tuple(i / 8 for i in range(1, 9))
    tas = TASSearch(net, ratios, (1, 2), 0.5 * full, tau=10.0, input_size=(16, 16))
    tas.generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16), torch.randint(0, 10, (32,))
    steps = 150
    opt_w = torch.optim.SGD(tas.weight_parameters(), lr=0.05, momentum=0.9)
    opt_a = torch.optim.Adam(tas.arch_parameters(), lr=0.01)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt_a, steps)
    for step in range(steps):
        tas.tau = 10.0 - 9.9 * step / (steps - 1)
        loss = F.cross_entropy(tas(x), y) + tas.cost_loss()
        opt_w.zero_grad()
        opt_a.zero_grad()
        loss.backward()
        opt_w.step()
        opt_a.step()
        decay.step()
    pruned = tas.extract()
    assert count_macs(pruned, (1, 3, 16, 16)) == pytest.approx(0.5 * full, rel=0.05)
