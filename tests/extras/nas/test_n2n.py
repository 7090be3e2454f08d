"""N2N learning (arXiv 1709.06030): reward, removal/shrinkage actions, policy updates, toy run."""

import pytest
import torch
import torch.nn.functional as F

from graphkit.extras._core.counting import count_params
from graphkit.extras._core.registry import create_model
from graphkit.extras.nas.methods.n2n import (
    SHRINK_RATIOS,
    LayerSpec,
    N2NCompressor,
    PlainNet,
    RemovalPolicy,
    constrained_reward,
    layer_features,
    n2n_reward,
    n2n_toy_teacher,
)


def _data(n: int, seed: int):
    """Four classes of 16x16 images: a bright quadrant (class = quadrant) in one channel."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.5 * torch.randn(n, 3, 16, 16, generator=g)
    for i, c in enumerate(y.tolist()):
        r, s = divmod(c, 2)
        x[i, c % 3, 8 * r : 8 * r + 8, 8 * s : 8 * s + 8] += 1.0
    return x, y


def _trained_teacher(width: int = 16, epochs: int = 8):
    torch.manual_seed(0)
    train, val = _data(512, 0), _data(256, 1)
    teacher = n2n_toy_teacher(width=width)
    opt = torch.optim.Adam(teacher.parameters(), 3e-3)
    for _ in range(epochs):
        perm = torch.randperm(512)
        for i in range(0, 512, 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(teacher(train[0][idx]), train[1][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return teacher, train, val


def test_reward_values_of_the_paper():
    """R = C(2 - C) A_s / A_t (paper eq.; official rl.py ``Reward``)."""
    assert n2n_reward(0.8, 10, 0.8, 100) == pytest.approx(0.99, abs=1e-12)  # C = 0.9
    assert n2n_reward(0.8, 50, 0.8, 100) == pytest.approx(0.75, abs=1e-12)  # C = 0.5
    assert n2n_reward(0.4, 50, 0.8, 100) == pytest.approx(0.375, abs=1e-12)
    assert n2n_reward(0.9, 100, 0.9, 100) == 0.0  # no compression, no reward
    assert n2n_reward(None, 10, 0.8, 100) == -1.0  # invalid student
    with pytest.raises(ValueError, match="student accuracy"):
        n2n_reward(1.5, 10, 0.8, 100)
    with pytest.raises(ValueError, match="teacher accuracy"):
        n2n_reward(0.5, 10, 0.0, 100)


def test_constrained_reward_anneals_to_minus_one():
    """Official getConstrainedReward: over-size -> (eps - 1) + eps R, eps = (1 - t/15)^4 for
    t <= 15. Past t = 15 the official clip-after-power would let eps rise again ((1 - 20/15)^4
    = 0.012 at t = 20, 1 at t = 30); ours stays at 0 (the annealing it evidently intends)."""
    assert constrained_reward(0.5, 90, 100, 3) == 0.5  # within the limit
    assert constrained_reward(0.5, 110, 100, 0) == 0.5  # eps = 1 at t = 0
    eps = (1 - 5 / 15) ** 4
    assert constrained_reward(0.5, 110, 100, 5) == pytest.approx(eps - 1 + eps * 0.5)
    assert constrained_reward(0.5, 110, 100, 15) == -1.0
    assert constrained_reward(0.5, 110, 100, 20) == -1.0
    assert constrained_reward(0.5, 110, 100, 40) == -1.0
    with pytest.raises(ValueError, match="iteration"):
        constrained_reward(0.5, 110, 100, -1)


def test_plain_net_and_specs():
    teacher = n2n_toy_teacher(width=8)
    assert teacher(torch.randn(2, 3, 16, 16)).shape == (2, 4)
    assert len(teacher.specs) == 6
    # removing any subset keeps the shapes compatible: every reduced net runs
    for drop in range(6):
        specs = [s for i, s in enumerate(teacher.specs) if i != drop]
        assert PlainNet(3, specs, 4)(torch.randn(1, 3, 16, 16)).shape == (1, 4)
    assert PlainNet(3, [], 4)(torch.randn(1, 3, 8, 8)).shape == (1, 4)
    with pytest.raises(ValueError, match="before every fc"):
        PlainNet(3, [LayerSpec("fc", 4), LayerSpec("conv", 4)], 2)
    with pytest.raises(ValueError, match="kind"):
        LayerSpec("pool", 4)
    with pytest.raises(ValueError, match="odd"):
        LayerSpec("conv", 4, kernel=2)
    with pytest.raises(ValueError, match="input channels"):
        teacher(torch.randn(1, 1, 16, 16))
    feats = layer_features(teacher.specs)
    assert feats.shape == (6, 5) and float(feats.max()) <= 1.0


def test_removal_policy_log_prob_and_gradient():
    torch.manual_seed(0)
    policy = RemovalPolicy()
    feats = layer_features(n2n_toy_teacher().specs)
    logp = policy.log_probs(feats)
    assert logp.shape == (6, 2)
    assert torch.allclose(logp.exp().sum(1), torch.ones(6))
    remove = policy.sample(feats, torch.Generator().manual_seed(0))
    assert len(remove) == 6
    lp = policy.log_prob(feats, remove)
    expected = sum(float(logp.detach()[i, int(r)]) for i, r in enumerate(remove))
    assert float(lp.detach()) == pytest.approx(expected, abs=1e-6)
    lp.backward()
    assert policy.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="decisions"):
        policy.log_prob(feats, remove[:3])
    with pytest.raises(ValueError, match="features"):
        policy.log_probs(torch.randn(6, 4))


def test_shrink_rounds_widths_and_space():
    specs = (LayerSpec("conv", 10), LayerSpec("fc", 3))
    cfg = {"layer0": 0.25, "layer1": 0.25}
    assert [s.width for s in N2NCompressor.shrunk(specs, cfg)] == [2, 1]
    assert SHRINK_RATIOS == (0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def test_compressor_stages_mechanics_and_bad_inputs():
    """Tiny budgets: every rollout is scored with the paper reward from measured sizes."""
    teacher, train, val = _trained_teacher(width=8, epochs=2)
    comp = N2NCompressor(teacher, train, val, student_epochs=1, student_lr=0.02, seed=1)
    assert comp.teacher_params == count_params(teacher)
    before = [p.detach().clone() for p in comp.removal_policy.parameters()]
    best, history = comp.remove(3)
    assert len(history) == 3
    # the first rollout sets the baseline; the second (a different reward) moves the policy
    assert history[1].score != history[0].score
    after = list(comp.removal_policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    for t in history:
        kept = tuple(s for s, r in zip(teacher.specs, t.cfg["remove"]) if not r)
        res = comp.evaluate(kept)
        assert t.score == res.reward
        if res.valid:
            assert res.params == count_params(res.student)
            assert res.reward == n2n_reward(
                res.accuracy, res.params, comp.teacher_acc, comp.teacher_params
            )
        else:
            assert res.reward == -1.0
    assert comp.evaluate(()).reward == -1.0  # every layer removed: invalid
    assert best.reward == max(t.score for t in history)
    shrunk, hist2 = comp.shrink(teacher.specs[:2], 2)
    assert len(hist2) == 2 and len(shrunk.specs) == 2
    with pytest.raises(TypeError, match="PlainNet"):
        N2NCompressor(torch.nn.Linear(2, 2), train, val)
    with pytest.raises(ValueError, match="reward"):
        N2NCompressor(teacher, train, val, reward="accuracy")
    with pytest.raises(ValueError, match="labels"):
        N2NCompressor(teacher, train, (val[0], val[1][:3]))


def test_compressor_names_bad_data_and_settings():
    # these were accepted (NaN students, labels compared as given) or ended in a misleading
    # "the teacher has zero validation accuracy"
    teacher = n2n_toy_teacher(width=4)
    x, y = _data(8, 0)
    nan_x = x.clone()
    nan_x[0, 0, 0, 0] = float("nan")
    cases = [
        (((nan_x, y), (x, y)), {}, "train images hold NaN or infinite values"),
        (((x, y), (nan_x, y)), {}, "val images hold NaN or infinite values"),
        (((x, y), (x, y + 10)), {}, "val labels hold class 1[0-3], out of range for the "
                                    "teacher's 4 classes"),
        (((x, y - 5), (x, y)), {}, "train labels hold class -[2-5]"),
        (((x, y.float()), (x, y)), {}, "train labels must be integer class ids"),
        (((x[:0], y[:0]), (x, y)), {}, "train data is empty"),
        (((x, y), (x, y)), {"student_lr": float("inf")}, "positive and finite"),
        (((x, y), (x, y)), {"size_limit": -1}, "size_limit must be a positive integer"),
    ]
    for (train, val), kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            N2NCompressor(teacher, train, val, **kwargs)


def test_registered():
    teacher, train, val = _trained_teacher(width=4, epochs=1)
    comp = create_model("n2n", teacher=teacher, train=train, val=val, student_epochs=1)
    assert isinstance(comp, N2NCompressor)


@pytest.mark.slow
def test_toy_teacher_compressed_2x_at_95_percent():
    """Toy 6-layer CNN (5 convs + 1 fc, 27,220 params) on the synthetic quadrant task:
    12 removal + 12 shrinkage rollouts reach >= 2x compression at >= 95% of the teacher's
    validation accuracy (measured here: teacher 100% val. accuracy; student conv10-conv29,
    27,220 -> 3,078 params, 8.84x, 100% accuracy, reward 0.987; about 32 s on one core)."""
    teacher, train, val = _trained_teacher(width=16, epochs=8)
    comp = N2NCompressor(
        teacher, train, val, student_epochs=6, student_lr=0.02, shrink_lr=0.03, seed=0
    )
    assert comp.teacher_acc > 0.9
    result = comp.compress(12, 12)
    assert result.valid
    assert comp.teacher_params / result.params >= 2.0
    assert result.accuracy >= 0.95 * comp.teacher_acc
