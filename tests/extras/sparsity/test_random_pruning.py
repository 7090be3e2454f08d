"""Random pruning with ER / ERK densities (Liu et al., arXiv:2202.02643) and the allocations."""

import math

import pytest
import torch
from torch import nn

from graphkit.extras import create_model
from graphkit.extras.sparsity.allocation import (
    erdos_renyi,
    global_magnitude,
    round_counts,
    uniform,
)
from graphkit.extras.sparsity.masks import check_density, get_mask
from graphkit.extras.sparsity.methods.random_pruning import RandomPruning

SHAPES = {
    "stem": (16, 3, 3, 3),
    "conv": (32, 16, 3, 3),
    "fc1": (128, 512),
    "fc2": (10, 128),
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(512, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def _sizes(shapes):
    return {n: math.prod(s) for n, s in shapes.items()}


@pytest.mark.parametrize("density", [0.05, 0.2, 0.5])
def test_erk_reproduces_the_global_density_with_the_per_layer_formula(density):
    d = erdos_renyi(SHAPES, density)
    sizes = _sizes(SHAPES)
    total = sum(sizes.values())
    assert sum(d[n] * sizes[n] for n in d) == pytest.approx(density * total, rel=1e-12)
    raw = {n: sum(s) / math.prod(s) for n, s in SHAPES.items()}  # (n_in+n_out+k_h+k_w)/prod
    free = [n for n in d if d[n] < 1.0]
    eps = {d[n] / raw[n] for n in free}
    assert max(eps) == pytest.approx(min(eps), rel=1e-12)  # one epsilon for all free layers
    for n in d:
        if d[n] == 1.0:
            assert max(eps) * raw[n] >= 1.0  # a dense layer is one that would pass 1
    assert all(0.0 < v <= 1.0 for v in d.values())


def test_erk_saturation_and_redistribution_by_hand():
    # a: (8)/(16) = 0.5, b: 200/10000 = 0.02. eps = 5008/208 makes a pass 1, so a is dense
    # and b takes the rest: (0.5 * 10016 - 16) / 10000 = 0.4992.
    d = erdos_renyi({"a": (4, 4), "b": (100, 100)}, 0.5)
    assert d["a"] == 1.0
    assert d["b"] == pytest.approx(0.4992, rel=1e-12)


def test_er_drops_kernel_terms_and_uniform_is_flat():
    d = erdos_renyi(SHAPES, 0.2, kernel=False)
    raw = {n: (s[0] + s[1]) / (s[0] * s[1]) for n, s in SHAPES.items()}
    ratios = {d[n] / raw[n] for n in d if d[n] < 1}
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-12)
    assert set(uniform(SHAPES, 0.3).values()) == {0.3}
    sizes = _sizes(SHAPES)
    u = uniform(SHAPES, 0.3, dense=["stem"])
    assert u["stem"] == 1.0 and len({u[n] for n in ("conv", "fc1", "fc2")}) == 1
    assert sum(u[n] * sizes[n] for n in u) == pytest.approx(0.3 * sum(sizes.values()))


def test_round_counts_and_global_magnitude_are_exact():
    sizes = {"a": 10, "b": 10, "c": 10}
    counts = round_counts({"a": 0.35, "b": 0.35, "c": 0.35}, sizes)
    assert sum(counts.values()) == 11 and set(counts.values()) == {3, 4}  # round(10.5) = 11
    scores = {"a": torch.arange(10.0), "b": torch.arange(10.0, 30.0)}
    assert global_magnitude(scores, 0.5) == {"a": 0.0, "b": 0.75}


def test_random_pruning_masks_hit_the_global_count_and_follow_the_seed():
    sizes = _sizes(SHAPES)
    total = sum(sizes.values())
    nets = [_net() for _ in range(3)]
    pruners = [
        RandomPruning(nets[0], 0.1, seed=0),
        RandomPruning(nets[1], 0.1, seed=1),
        create_model("random_pruning", model=nets[2], density=0.1, seed=0),
    ]
    for net in nets:
        kept = sum(int(get_mask(m).mask.sum()) for m in pruners[0].layers.values())
        assert kept == round(0.1 * total)  # the global density to within one weight
        check_density(net, 0.1)
    assert pruners[0].densities == pruners[1].densities == pruners[2].densities
    names = list(pruners[0].layers)
    erk = erdos_renyi(dict(zip(names, SHAPES.values(), strict=True)), 0.1)
    for n in names:  # each layer gets floor or ceil of its ERK share
        count = round(pruners[0].densities[n] * sizes[list(SHAPES)[names.index(n)]])
        exact = erk[n] * sizes[list(SHAPES)[names.index(n)]]
        assert math.floor(exact) <= count <= math.ceil(exact)
    m0 = [get_mask(m).mask for m in pruners[0].layers.values()]
    m1 = [get_mask(m).mask for m in pruners[1].layers.values()]
    m2 = [get_mask(m).mask for m in pruners[2].layers.values()]
    assert all(torch.equal(a, c) for a, c in zip(m0, m2, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(m0, m1, strict=True))


def test_static_masks_do_not_change_with_training():
    net = _net()
    pruner = RandomPruning(net, 0.2, allocation="er", dense_first_last=True, seed=3)
    names = list(pruner.layers)
    assert pruner.densities[names[0]] == 1.0 and pruner.densities[names[-1]] == 1.0
    before = {n: get_mask(m).mask.clone() for n, m in pruner.layers.items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    for t in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        assert not pruner.step(t)
    for n, m in pruner.layers.items():
        assert torch.equal(get_mask(m).mask, before[n])
        assert not m.weight[~before[n]].any()
    check_density(net, 0.2)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="allocation must be"):
        RandomPruning(_net(), 0.1, allocation="snip")
    with pytest.raises(ValueError, match="density must lie"):
        RandomPruning(_net(), 1.2)
    with pytest.raises(ValueError, match="cannot be met"):
        erdos_renyi(SHAPES, 0.01, dense=["fc1"])
    with pytest.raises(ValueError, match="not among the layers"):
        erdos_renyi(SHAPES, 0.1, dense=["head"])
    with pytest.raises(ValueError, match=">= 2 positive dims"):
        erdos_renyi({"bias": (10,)}, 0.1)
    with pytest.raises(ValueError, match="power_scale"):
        erdos_renyi(SHAPES, 0.1, power_scale=-1.0)
