"""BossNAS (#18): HyTra space counts, supernet paths, ensemble bootstrapping, population-centre
rating and search, BossNet-T0."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from graphkit.extras._core.counting import count_macs, count_params
from graphkit.extras._core.registry import create_model
from graphkit.extras.nas.methods.bossnas import (
    BossNet,
    EnsembleBootstrappingTrainer,
    HyTraSpace,
    HyTraSupernet,
    ResAtt,
    ResConv,
    bossnet_t0,
    bossnet_t1,
    ensemble_bootstrapping_loss,
    population_center_rating,
    population_center_search,
)
from graphkit.extras.nas.supernet import Supernet


def _brute_force(levels: int, layers: int, start: int, max_step: int | None, n_ops) -> int:
    """Count by filtering every level sequence: independent of the space's tree."""
    total = 0
    for seq in itertools.product(range(levels), repeat=layers):
        steps = [b - a for a, b in zip((start, *seq), seq)]
        if all(s >= 0 and (max_step is None or s <= max_step) for s in steps):
            total += math.prod(n_ops[lvl] for lvl in seq)
    return total


# -- search space -------------------------------------------------------------------------
def test_hytra_counts_equal_official_enumeration():
    """The official ``hytra_paths.py`` (changlin31/BossNAS, searching/bossnas/models/utils)
    enumerates 4-layer paths with ops per level {0: 2, 1: 2, 2: 1, 3: 1} and any jump; its
    comment gives the counts "201 129 80 16" for 4, 3, 2, 1 levels [code]."""
    ops = {0: ("resatt", "resconv"), 1: ("resatt", "resconv"), 2: ("resatt",), 3: ("resconv",)}
    expected = {1: 16, 2: 80, 3: 129, 4: 201}
    for levels, count in expected.items():
        space = HyTraSpace(levels, 4, max_step=None, ops={k: ops[k] for k in range(levels)})
        assert space.size() == count
        assert sum(1 for _ in space.enumerate()) == count


@pytest.mark.parametrize(
    "levels,layers,start,max_step",
    [(4, 4, 0, 1), (4, 4, 0, None), (3, 5, 1, 1), (4, 3, 2, None), (2, 6, 0, 1), (4, 2, 3, 1)],
)
def test_hytra_size_closed_form_and_enumeration(levels, layers, start, max_step):
    space = HyTraSpace(levels, layers, start_level=start, max_step=max_step)
    n = _brute_force(levels, layers, start, max_step, {k: 2 for k in range(levels)})
    assert space.size() == space.closed_form_size() == n
    cfgs = list(space.enumerate())
    assert len(cfgs) == n
    paths = {tuple(space.to_path(c)) for c in cfgs}
    assert len(paths) == n  # all distinct


def test_paper_fabric_count_4_levels_4_layers():
    """Stay-or-downsample over 4 levels, 4 layers, 2 ops: 2^4 * (1 + 4 + 6 + 4) = 240."""
    assert HyTraSpace(4, 4).size() == 240


def test_hytra_path_round_trip_and_bad_paths():
    space = HyTraSpace(4, 4)
    for cfg in space.enumerate():
        assert space.from_path(space.to_path(cfg)) == cfg
    with pytest.raises(ValueError):
        space.from_path([(1, "resconv"), (0, "resconv"), (0, "resconv"), (0, "resconv")])
    with pytest.raises(ValueError):  # a jump of two levels is outside the fabric
        space.from_path([(2, "resconv"), (2, "resconv"), (2, "resconv"), (2, "resconv")])
    with pytest.raises(ValueError):
        space.from_path([(0, "conv")] * 4)
    with pytest.raises(ValueError):
        space.from_path([(0, "resconv")] * 3)
    with pytest.raises(ValueError):
        HyTraSpace(levels=4, start_level=4)
    with pytest.raises(ValueError):
        HyTraSpace(levels=0)
    with pytest.raises(ValueError):
        HyTraSpace(levels=2, ops={0: ("resconv",)})
    with pytest.raises(ValueError):
        HyTraSpace(levels=2, ops={0: ("a",), 1: ("a", "b")}).closed_form_size()


# -- operations and supernet ----------------------------------------------------------------
def test_ops_shapes_and_bad_input():
    x = torch.randn(2, 8, 9, 9)
    assert ResConv(8, 16, stride=2)(x).shape == (2, 16, 5, 5)
    assert ResAtt(8, 16, stride=2, heads=2, head_dim=4)(x).shape == (2, 16, 5, 5)
    assert ResAtt(8, 8, heads=2, head_dim=4)(x).shape == (2, 8, 9, 9)
    with pytest.raises(ValueError):
        ResConv(8, 16, stride=3)
    with pytest.raises(ValueError):
        ResAtt(8, 16, heads=0)
    with pytest.raises(ValueError):
        ResConv(8, 16)(torch.randn(2, 7, 9, 9))
    with pytest.raises(ValueError):
        ResAtt(8, 16, heads=2, head_dim=4)(torch.randn(8, 9, 9))


def test_fresh_ops_start_as_their_shortcut():
    """Zero-initialised last BN scale (official ``zero_init_last_bn``): y = act(shortcut(x))."""
    torch.manual_seed(0)
    for op in (ResConv(8, 8), ResAtt(8, 8, heads=2, head_dim=4)):
        op.eval()
        x = torch.randn(2, 8, 6, 6)
        torch.testing.assert_close(op(x), torch.relu(x))


def _tiny_block(start_level: int = 0) -> HyTraSupernet:
    return HyTraSupernet(8, widths=(8, 16, 24), layers=3, start_level=start_level,
                         heads=(1, 2, 2), head_dim=4)


def test_supernet_paths_shapes_and_extract():
    torch.manual_seed(0)
    net = _tiny_block()
    assert isinstance(net, Supernet)
    for m in net.modules():  # non-trivial residual branches for the extract check
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    net.eval()
    x = torch.randn(2, 8, 16, 16)
    for cfg in net.space.enumerate():
        path = net.space.to_path(cfg)
        net.set_active(cfg)
        y = net(x)
        last = path[-1][0]
        assert y.shape == (2, net.out_channels(cfg), 16 >> last, 16 >> last)
        if path[0][1] == "resatt":  # a sample of paths: extraction is exact
            torch.testing.assert_close(net.extract(cfg).eval()(x), y, rtol=0, atol=0)
    with pytest.raises(ValueError):
        net.set_active({"level0": 5})
    with pytest.raises(ValueError):
        HyTraSupernet(8, widths=(8, 16), heads=(1,))


def test_supernet_shares_weights_by_position():
    """Paths through the same (layer, level in, level out, op) use one module."""
    net = _tiny_block()
    a = net.space.from_path([(0, "resconv"), (1, "resatt"), (1, "resconv")])
    b = net.space.from_path([(0, "resconv"), (1, "resatt"), (2, "resconv")])
    net.set_active(a)
    keys_a = list(net.active)
    net.set_active(b)
    assert keys_a[:2] == net.active[:2] and keys_a[2] != net.active[2]
    # per layer: ops x (stay, down) from each reachable level; 3 levels, 3 layers
    assert len(net.candidates) == 2 * (2 + 4 + 5)


# -- ensemble bootstrapping -------------------------------------------------------------------
def test_ensemble_loss_values():
    torch.manual_seed(0)
    z = [(torch.randn(4, 6), torch.randn(4, 6)) for _ in range(3)]
    c1 = torch.stack([nn.functional.normalize(a, dim=-1) for a, _ in z]).mean(0)
    c2 = torch.stack([nn.functional.normalize(b, dim=-1) for _, b in z]).mean(0)
    # predictions that point at the centre give exactly zero (up to rounding)
    online = [(3.0 * c2, 0.5 * c1)] * 3
    assert float(ensemble_bootstrapping_loss(online, z)) == pytest.approx(0.0, abs=1e-6)
    # a hand-computed value: one path, orthogonal predictions -> 2 per view
    one = [(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))]
    pred = [(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, -1.0]]))]
    assert float(ensemble_bootstrapping_loss(pred, one)) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        ensemble_bootstrapping_loss(online, z[:2])
    with pytest.raises(ValueError):
        ensemble_bootstrapping_loss([(torch.randn(4, 6), torch.randn(4, 5))], z[:1])


def _images(n: int, gen: torch.Generator) -> torch.Tensor:
    """Bright squares of random colour and place on a dim noisy background."""
    x = 0.1 * torch.rand(n, 3, 16, 16, generator=gen)
    for i in range(n):
        r, c = torch.randint(0, 9, (2,), generator=gen).tolist()
        x[i, :, r : r + 7, c : c + 7] += torch.rand(3, 1, 1, generator=gen)
    return x


def _view(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift, horizontal flip, brightness and noise."""
    dr, dc = torch.randint(-2, 3, (2,), generator=gen).tolist()
    x = torch.roll(x, (dr, dc), dims=(2, 3))
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(3)
    scale = 0.8 + 0.4 * torch.rand(x.size(0), 1, 1, 1, generator=gen)
    return x * scale + 0.05 * torch.randn(x.shape, generator=gen)


def _trainer(seed: int = 0) -> EnsembleBootstrappingTrainer:
    torch.manual_seed(seed)
    stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    return EnsembleBootstrappingTrainer(
        _tiny_block(), stem=stem, proj_dim=16, hidden=32, momentum=0.9, num_paths=3, seed=seed
    )


def test_block_loss_falls_on_synthetic_images():
    """Ensemble-bootstrapping loss of one block (3 paths per step), 20 Adam steps on batches
    of 8 synthetic square images: the mean of the last 5 steps is below 0.6x the mean of the
    first 5. Measured (seeds 0, 1, 2): 3.89 -> 1.46, 2.92 -> 0.90, 3.68 -> 1.54."""
    trainer = _trainer(0)
    opt = torch.optim.Adam([p for p in trainer.parameters() if p.requires_grad], lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(20):
        x = _images(8, gen)
        losses.append(trainer.step(_view(x, gen), _view(x, gen), opt))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)


def test_target_is_an_exact_ema_and_gets_no_gradient():
    trainer = _trainer(1)
    with torch.no_grad():
        for p in trainer.block.parameters():
            p.add_(1.0)
    old = [p.clone() for p in trainer.target_block.parameters()]
    trainer.update_target()
    for t, o, s in zip(trainer.target_block.parameters(), old, trainer.block.parameters()):
        torch.testing.assert_close(t, 0.9 * o + 0.1 * s)
        assert not t.requires_grad
    x = torch.rand(4, 3, 16, 16)
    trainer(x, x).backward()
    assert all(p.grad is None for p in trainer.target_projector.parameters())
    assert all(p.grad is None for p in trainer.stem.parameters())
    with pytest.raises(ValueError):
        trainer(x, x[:2])
    with pytest.raises(ValueError):
        EnsembleBootstrappingTrainer(_tiny_block(), momentum=1.0)
    with pytest.raises(TypeError):
        EnsembleBootstrappingTrainer(nn.Identity())


def test_per_path_views_equal_shared_views_when_identical():
    trainer = _trainer(3).train()
    x = torch.rand(4, 3, 16, 16)
    v1, v2 = x + 0.05 * torch.randn_like(x), x.flip(3)
    paths = [trainer.block.space.sample(i) for i in range(3)]
    shared = trainer(v1, v2, paths)
    per_path = trainer(torch.stack([v1] * 3), torch.stack([v2] * 3), paths)
    torch.testing.assert_close(per_path, shared)
    with pytest.raises(ValueError):
        trainer(torch.stack([v1] * 2), torch.stack([v2] * 2), paths)
    with pytest.raises(ValueError):
        trainer(v1, v2, [])


def test_blockwise_flow_next_block_starts_where_the_searched_path_ends():
    """Block 1 is trained and searched; its best path, frozen, feeds block 2, whose space
    starts at the level where that path ended (the paper's block-wise search)."""
    trainer = _trainer(4)
    opt = torch.optim.Adam([p for p in trainer.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(4)
    x = _images(8, gen)
    trainer.step(_view(x, gen), _view(x, gen), opt)
    v1, v2 = _view(x, gen), _view(x, gen)
    best, _ = population_center_search(
        trainer.block.space, lambda c: trainer.rate(v1, v2, c), population=3, generations=1,
        seed=0,
    )
    level = trainer.block.space.to_path(best)[-1][0]
    stem = nn.Sequential(trainer.stem, trainer.block.extract(best).eval())
    block2 = HyTraSupernet(trainer.block.out_channels(best), widths=(8, 16, 24, 32), layers=2,
                           start_level=level, heads=(1, 2, 2, 4), head_dim=4)
    assert all(lvl >= level for cfg in block2.space.enumerate()
               for lvl, _ in block2.space.to_path(cfg))
    trainer2 = EnsembleBootstrappingTrainer(block2, stem=stem, proj_dim=16, hidden=32, seed=0)
    opt2 = torch.optim.Adam([p for p in trainer2.parameters() if p.requires_grad], lr=1e-3)
    frozen = [p.clone() for p in stem.parameters()]
    assert math.isfinite(trainer2.step(v1, v2, opt2))
    assert all(torch.equal(a, b) for a, b in zip(frozen, stem.parameters()))


# -- population-centre rating and search ----------------------------------------------------------
def test_population_center_rating_values():
    out = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]], [[3.0, 0.0]]])  # (P=3, B=1, D=2)
    # normalised: (1,0), (0,1), (1,0); centre (2/3, 1/3) of norm sqrt(5)/3
    s5 = math.sqrt(5.0)
    expected = torch.tensor([-(2 - 4 / s5), -(2 - 2 / s5), -(2 - 4 / s5)])
    torch.testing.assert_close(population_center_rating(out), expected)
    # with separate targets the centre is theirs: all targets (0,1) -> cos = y_2 / |y|
    targets = torch.tensor([[[0.0, 1.0]]] * 3)
    torch.testing.assert_close(
        population_center_rating(out, targets), torch.tensor([-2.0, 0.0, -2.0])
    )
    with pytest.raises(ValueError):
        population_center_rating(torch.randn(3, 2))
    with pytest.raises(ValueError):
        population_center_rating(out, targets[:2])
    with pytest.raises(ValueError):
        population_center_rating(torch.tensor([[[float("nan"), 1.0]]]))


def test_population_center_search_finds_the_central_architecture():
    """Outputs = centre + (number of ResAtt ops) x a fixed per-path direction: the all-ResConv
    paths sit at the centre of any population, and the search must return one of them."""
    space = HyTraSpace(4, 4)
    gen = torch.Generator().manual_seed(0)
    centre = torch.randn(8, 32, generator=gen)
    directions = {tuple(space.to_path(c)): torch.randn(8, 32, generator=gen)
                  for c in space.enumerate()}

    def rate(cfgs):
        rows = []
        for cfg in cfgs:
            path = tuple(space.to_path(cfg))
            n_att = sum(op == "resatt" for _, op in path)
            rows.append(centre + 0.3 * n_att * directions[path])
        return population_center_rating(torch.stack(rows))

    for seed in range(3):
        best, history = population_center_search(
            space, rate, population=8, generations=8, seed=seed
        )
        assert all(op == "resconv" for _, op in space.to_path(best))
        assert len(history) == 8 * 16 + 8  # distinct children fill every generation
    with pytest.raises(ValueError):
        population_center_search(space, rate, population=0)
    with pytest.raises(ValueError):
        population_center_search(space, rate, mutation_rate=0.0)


def test_trainer_rating_feeds_the_search_and_keeps_buffers():
    trainer = _trainer(2).eval()
    gen = torch.Generator().manual_seed(2)
    x = _images(6, gen)
    v1, v2 = _view(x, gen), _view(x, gen)
    space = trainer.block.space
    paths = [space.sample(i) for i in range(4)]
    before = {k: b.clone() for k, b in trainer.named_buffers()}
    ratings = trainer.rate(v1, v2, paths)
    assert ratings.shape == (4,) and bool(((ratings <= 0) & (ratings >= -8)).all())
    assert not trainer.training
    for k, b in trainer.named_buffers():
        assert torch.equal(b, before[k]), k
    # the mean rating is minus the training loss of the same paths (same batch statistics)
    loss = trainer.train()(v1, v2, paths)
    trainer.eval()
    torch.testing.assert_close(-ratings.mean(), loss.detach())
    best, history = population_center_search(
        space, lambda cfgs: trainer.rate(v1, v2, cfgs), population=3, generations=2, seed=1
    )
    space.validate(best)
    assert {t.step for t in history} == {0, 1, 2}
    with pytest.raises(ValueError):
        trainer.rate(v1, v2, [])
    with pytest.raises(ValueError):
        population_center_search(space, lambda cfgs: torch.zeros(1), population=3, seed=0)


# -- BossNet-T0 ---------------------------------------------------------------------------------
def test_bossnet_t0_macs_and_params():
    """BossNet-T0 built from the official retraining config (``bossnet_T0`` in
    changlin31/BossNAS retraining_hytra/boss_models.py: encoding [[1], [1], [1,1,1,0,1],
    [0,0,0,1,0,0,0,0,0]], ResNet-D shortcuts, SiLU, SE in ResConv, timm 0.3.2 SEModule width
    max(C // 16, 8)). The official README lists MAdds only: 3.4B [code]; counted here
    3,442,978,304 MACs at 224 (within the README's rounding: 1.5%). The README gives no
    parameter count; 38,415,960 is the count of this build of the official config, kept as a
    regression figure."""
    model = bossnet_t0().eval()
    assert count_params(model) == 38_415_960
    assert abs(count_macs(model, (1, 3, 224, 224)) / 3.4e9 - 1) < 0.015


def test_bossnet_registry_shapes_and_bad_input():
    model = create_model("bossnet_t0", num_classes=10).eval()
    assert isinstance(model, BossNet)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    # without SE: the SE convolutions' weights and biases are the whole difference
    se = sum(count_params(m.se) for m in model.modules() if isinstance(m, ResConv))
    nose = create_model("bossnet_t0_nose", num_classes=10)
    assert count_params(nose) == count_params(model) - se > 0
    with pytest.raises(ValueError):
        BossNet(encoding=[[1], [1], [1]])
    with pytest.raises(ValueError):
        BossNet(encoding=[[1], [1], [2], [0]])
    with pytest.raises(ValueError):
        model(torch.randn(1, 1, 64, 64))


@pytest.mark.slow
def test_bossnet_t1_macs():
    """BossNet-T1 (official ``bossnet_T1``: T0 with last_stride=1): README 7.9B MAdds [code];
    counted here 7,944,442,880 MACs at 224 (0.6% above; same 38,415,960 parameters)."""
    model = bossnet_t1().eval()
    assert count_params(model) == 38_415_960
    assert abs(count_macs(model, (1, 3, 224, 224)) / 7.9e9 - 1) < 0.015
