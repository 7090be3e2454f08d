"""ISS-P (Wang et al., "Iterative Soft Shrinkage Learning for Efficient Image Super-Resolution",
arXiv:2211.13654): soft shrinkage of the low-magnitude share, then a frozen mask."""

import math

import pytest
import torch
from torch import nn

from graphkit.extras import create_model
from graphkit.extras.sparsity.masks import check_density, get_mask
from graphkit.extras.sparsity.methods.iss_p import ISSPPruner
from graphkit.extras.sparsity.schedules import CubicSchedule


def _sr_net(seed: int = 0) -> nn.Module:
    """A tiny x2 super-resolution net (conv body, pixel-shuffle tail)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 4, 3, padding=1),
        nn.PixelShuffle(2),
    )


def _lowest(w: torch.Tensor, share: float) -> torch.Tensor:
    """The ``share`` smallest |w|, computed independently of the library (argsort)."""
    count = w.numel() - math.floor((1 - share) * w.numel() + 0.5)
    low = torch.zeros(w.numel(), dtype=torch.bool)
    low[w.abs().flatten().argsort()[:count]] = True
    return low.view(w.shape)


def test_shrink_step_multiplies_only_the_low_magnitude_share():
    net = _sr_net()
    pruner = create_model("iss_p", model=net, target_sparsity=0.6, prune_iters=5, shrink=0.2)
    assert isinstance(pruner, ISSPPruner)
    before = {n: m.weight.detach().clone() for n, m in pruner.layers.items()}
    assert pruner.step(1)
    for name, module in pruner.layers.items():
        low = _lowest(before[name], 0.6)
        after = module.weight.detach()
        assert torch.equal(after[low], before[name][low] * (1 - 0.2))
        assert torch.equal(after[~low], before[name][~low])
        assert get_mask(module).mask.all()  # nothing is hard-pruned before Kp


def test_schedule_sets_the_share_per_iteration():
    net = _sr_net()
    schedule = CubicSchedule(0.9, t0=0, n=4, dt=1)
    pruner = ISSPPruner(net, 0.9, prune_iters=4, shrink=0.5, schedule=schedule)
    for k in (1, 2):
        before = {n: m.weight.detach().clone() for n, m in pruner.layers.items()}
        pruner.step(k)
        for name, module in pruner.layers.items():
            changed = module.weight.detach() != before[name]
            assert torch.equal(changed, _lowest(before[name], schedule(k)))


def test_mask_frozen_after_kp_with_exact_sparsity():
    net = _sr_net()
    pruner = ISSPPruner(net, 0.75, prune_iters=3, shrink=0.3)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    lr, hr = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 12, 12)
    frozen = None
    for k in range(1, 9):
        opt.zero_grad()
        nn.functional.mse_loss(net(lr), hr).backward()
        opt.step()
        acted = pruner.step(k)
        assert acted == (k <= 3)
        masks = {n: get_mask(m).mask.clone() for n, m in pruner.layers.items()}
        if k < 3:
            assert all(m.all() for m in masks.values())
        elif k == 3:
            frozen = masks
        else:
            assert all(torch.equal(masks[n], frozen[n]) for n in masks)
        if k >= 3:
            for name, module in pruner.layers.items():
                mask = masks[name]
                assert int(mask.sum()) == math.floor(0.25 * mask.numel() + 0.5)
                assert not module.weight[~mask].any()
                if k == 3:  # zeroed when frozen; momentum may move it later, never the weight
                    assert not module.parametrizations.weight.original[~mask].any()
    check_density(net, 0.25)


def test_soft_shrinkage_lets_the_structure_change():
    # a weight shrunk in one iteration but grown by the gradient leaves the low share again:
    # with hard zeroing it would be gone for good
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 1.0, 2.0, 3.0]]))
    pruner = ISSPPruner(layer, 0.25, prune_iters=2, shrink=0.5)
    pruner.step(1)
    assert torch.equal(layer.weight.detach(), torch.tensor([[0.05, 1.0, 2.0, 3.0]]))
    with torch.no_grad():
        layer.parametrizations.weight.original[0, 0] += 5.0  # what training could do
    pruner.step(2)
    assert torch.equal(get_mask(layer).mask, torch.tensor([[True, False, True, True]]))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="target_sparsity"):
        ISSPPruner(_sr_net(), 1.5, prune_iters=3)
    with pytest.raises(ValueError, match="shrink"):
        ISSPPruner(_sr_net(), 0.5, prune_iters=3, shrink=0.0)
    with pytest.raises(ValueError, match="prune_iters"):
        ISSPPruner(_sr_net(), 0.5, prune_iters=-1)
