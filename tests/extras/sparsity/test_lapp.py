"""LAPP (Zhai et al., "LAPP: Layer Adaptive Progressive Pruning for Compressing CNNs from
Scratch", arXiv:2309.14157): learnable per-layer thresholds, FLOPs loss, bypasses, binary masks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras import create_model
from graphkit.extras._core.counting import count_params, nonzero_macs
from graphkit.extras._core.synthetic import blobs_classification
from graphkit.extras.sparsity.masks import get_mask
from graphkit.extras.sparsity.methods.lapp import BypassConv2d, LAPPPruner
from graphkit.extras.sparsity.methods.tas import TASResNet

SHAPE = (1, 3, 16, 16)


def _resnet20(seed: int = 0) -> TASResNet:
    torch.manual_seed(seed)
    return TASResNet((3, 3, 3), (16, 32, 64), 10)


def _train(pruner: LAPPPruner, net: nn.Module, iters: int = 30, lam: float = 10.0) -> None:
    """Pruning phase on a fixed synthetic batch: SGD on weights, Adam (cosine) on thresholds."""
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    opt_t = torch.optim.Adam(pruner.parameters(), lr=0.1)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, pruner.warm_epochs * iters)
    x, y = torch.randn(64, 3, 16, 16), torch.randint(0, 10, (64,))
    while not pruner.frozen:
        for it in range(iters):
            part = slice(it % 4 * 16, (it % 4 + 1) * 16)
            loss = F.cross_entropy(net(x[part]), y[part]) + lam * pruner.flops_loss()
            opt.zero_grad()
            opt_t.zero_grad()
            loss.backward()
            opt.step()
            opt_t.step()
            decay.step()
        pruner.end_epoch()


def test_flops_model_equals_nonzero_macs_before_and_after_masking():
    net = _resnet20()
    pr = LAPPPruner(net, 1e6, SHAPE)
    assert pr.flops().item() == pytest.approx(nonzero_macs(net, SHAPE), rel=1e-12)
    with torch.no_grad():  # prune two layers by hand: one completely, one by half
        pr.threshold("stages.1.1.conv_a.conv").fill_(1e9)
        scores = pr.filter_scores("stages.2.0.conv_b.conv")
        pr.threshold("stages.2.0.conv_b.conv").fill_(scores.median().item())
    want = pr.flops().item()
    kept = pr.finalize()
    assert kept["stages.1.1.conv_a.conv"] == 0
    assert kept["stages.2.0.conv_b.conv"] == int((scores > scores.median()).sum())
    assert nonzero_macs(net, SHAPE) == pytest.approx(want, rel=1e-12)
    assert pr.flops().item() == pytest.approx(want, rel=1e-12)


def test_finalize_gives_binary_channel_masks_and_removes_gates():
    net = _resnet20()
    pr = LAPPPruner(net, 1e6, SHAPE, importance="bn")
    with torch.no_grad():
        for name in pr.layers:
            pr.threshold(name).fill_(pr.filter_scores(name).quantile(0.3).item())
    pr.finalize()
    assert pr.frozen and not pr._handles
    for module in pr.layers.values():
        mask = get_mask(module).mask
        assert mask.dtype == torch.bool
        per_filter = mask.flatten(1)
        assert bool((per_filter.all(1) | ~per_filter.any(1)).all())  # whole filters only
    conv = pr.layers["stages.0.0.conv_a.conv"]
    x = torch.randn(2, 16, 16, 16)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, None, 1, 1))  # no gate left
    assert pr.end_epoch() is False


def test_gates_are_hard_forward_and_pass_gradient_to_thresholds():
    net = _resnet20()
    pr = LAPPPruner(net, 1e6, SHAPE)
    with torch.no_grad():
        pr.threshold("stem.conv").fill_(1.0)
    gate = pr.gate("stem.conv")
    assert set(gate.detach().unique().tolist()) <= {0.0, 1.0}
    pr.flops_loss().backward()
    assert all(t.grad is not None and t.grad.item() != 0 for t in pr.parameters())


def test_bn_importance_reads_the_following_batchnorm():
    net = _resnet20()
    pr = LAPPPruner(net, 1e6, SHAPE, importance="bn")
    assert pr.norms["stages.0.0.conv_a.conv"] is net.stages[0][0].bn_a
    assert pr.norms["stages.1.0.shortcut.0.conv"] is net.stages[1][0].shortcut[1]
    with torch.no_grad():
        net.stages[0][0].bn_a.weight.copy_(torch.arange(1.0, 17.0))
    want = torch.arange(1.0, 17.0) / 8.5
    torch.testing.assert_close(pr.filter_scores("stages.0.0.conv_a.conv"), want)
    with pytest.raises(ValueError, match="BatchNorm after"):
        LAPPPruner(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), 1e3, SHAPE, importance="bn")


def test_bypass_is_light_and_adds_to_the_conv():
    """ResNet-20 (CIFAR widths): the 1x1 grouped bypasses add 0.30% parameters (< 5%)."""
    net = _resnet20()
    before = count_params(net)
    pr = LAPPPruner(net, 1e6, SHAPE)
    assert isinstance(net.stages[1][0].conv_a, BypassConv2d)
    assert pr.bypass_params() == count_params(net) - before
    assert pr.bypass_params() / before < 0.05
    wrapper = net.stages[1][0].conv_a
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        pr.threshold("stages.1.0.conv_a.conv").fill_(1e9)  # every filter gated off
        torch.testing.assert_close(wrapper(x), wrapper.bypass(x))
    plain = LAPPPruner(_resnet20(), 1e6, SHAPE, bypass=False)
    assert plain.bypass_params() == 0 and "stem" in plain.layers


def test_pruning_phase_reaches_target_within_2_percent():
    """Acceptance: after 4 epochs x 30 steps from scratch (ResNet-20, 16x16 synthetic batch,
    target 40% of the dense network's MACs, bypass MACs counted in the pruned network) the
    binary-masked network's MACs are within 2% of the target, and the layers keep different
    shares of their filters (rates are not uniform). Measured here: 1.0003 x target; over seeds
    0-3 and targets 40% / 60% the worst was 0.9924 (20 steps per epoch: up to 1.0145)."""
    net = _resnet20()
    pr = LAPPPruner(net, 0.4 * nonzero_macs(net, SHAPE), SHAPE, warm_epochs=4)
    _train(pr, net)
    assert pr.frozen
    for module in pr.layers.values():  # binary masks of whole filters
        per_filter = get_mask(module).mask.flatten(1)
        assert bool((per_filter.all(1) | ~per_filter.any(1)).all())
    assert nonzero_macs(net, SHAPE) == pytest.approx(pr.target_flops, rel=0.02)
    shares = {n: k / pr.mask(n).shape[0] for n, k in pr.kept().items()}
    assert len(set(shares.values())) > 3


def _fit_blobs(prune: bool, epochs: int = 10, seed: int = 0) -> tuple[float, LAPPPruner | None]:
    """Train ResNet-20 on 512 noisy 16x16 blob images (10 classes); test accuracy on 512 more.
    With ``prune``, LAPP prunes to 40% of the dense MACs in the first 4 of the epochs.
    ``seed`` draws the initial weights and the batch order."""
    x, y = blobs_classification(1024, 10, 16, noise=0.5, seed=0)
    net = _resnet20(seed)
    pr = LAPPPruner(net, 0.4 * nonzero_macs(net, SHAPE), SHAPE, warm_epochs=4) if prune else None
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    opt_t = torch.optim.Adam(pr.parameters(), lr=0.1) if pr else None
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, 4 * 16) if pr else None
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(512, generator=order).split(32):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            pruning = pr is not None and not pr.frozen
            if pruning:
                loss = loss + 10.0 * pr.flops_loss()
                opt_t.zero_grad()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if pruning:
                opt_t.step()
                decay.step()
        if pr is not None:
            pr.end_epoch()
    net.eval()
    with torch.no_grad():
        return (net(x[512:]).argmax(1) == y[512:]).float().mean().item(), pr


@pytest.mark.slow
def test_pruned_resnet20_accuracy_close_to_dense():
    """Acceptance: ResNet-20 pruned by LAPP to 40% MACs during the first 4 of 10 epochs stays
    within 1.5 points of the dense net trained the same way. Measured on one machine (seed 0):
    dense 89.06%, LAPP 89.26% at 0.997 x the MACs target. Not reproduced robustly: on a second
    machine (float rounding differs) seed 0 gives dense 92.58%, LAPP 83.79%, and seeds 1-4
    show the toy itself is unstable (dense / LAPP 91.6 / 8.8, 89.8 / 86.5, 92.4 / 86.9,
    65.6 / 83.6). Asserted: the MACs target is met and the pruned net learns (far above the
    10% of chance); the README lists the accuracy claim as not reproduced."""
    pruned, pr = _fit_blobs(True)
    assert pr.frozen
    assert nonzero_macs(pr.model, SHAPE) == pytest.approx(pr.target_flops, rel=0.02)
    assert pruned > 0.5


def test_registered():
    pr = create_model("lapp", model=_resnet20(), target_flops=1e6, input_shape=SHAPE)
    assert isinstance(pr, LAPPPruner)


def test_bad_inputs():
    with pytest.raises(ValueError, match="importance"):
        LAPPPruner(_resnet20(), 1e6, SHAPE, importance="l2")
    with pytest.raises(ValueError, match="target_flops"):
        LAPPPruner(_resnet20(), 0, SHAPE)
    with pytest.raises(ValueError, match="warm_epochs"):
        LAPPPruner(_resnet20(), 1e6, SHAPE, warm_epochs=0)
    with pytest.raises(ValueError, match="temperature"):
        LAPPPruner(_resnet20(), 1e6, SHAPE, temperature=0.0)
    with pytest.raises(ValueError, match="not an nn.Conv2d"):
        LAPPPruner(_resnet20(), 1e6, SHAPE, layers=["fc"])
    with pytest.raises(TypeError, match="Conv2d"):
        BypassConv2d(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="'same'-padded"):
        BypassConv2d(nn.Conv2d(3, 4, 3))(torch.randn(1, 3, 8, 8))


def test_fractional_input_shape_is_rejected():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    with pytest.raises(ValueError, match="input_shape must hold positive integers"):
        LAPPPruner(model, 100.0, (1, 3, 8.5, 8))  # 8.5 was truncated to 8
