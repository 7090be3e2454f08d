import itertools
import random

import pytest
import torch

from graphkit.extras.nas.predictors import (
    MLPPredictor,
    RidgePredictor,
    crowding_distance,
    hypervolume,
    make_predictor,
    non_dominated_sort,
    pareto_mask,
)
from graphkit.extras.nas.space import Choice, SearchSpace


def _space() -> SearchSpace:
    return SearchSpace("net", [Choice(f"c{i}", (1, 2, 3, 4)) for i in range(6)])


def test_hypervolume_known_2d_values():
    staircase = torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(staircase, torch.zeros(2)) == 6.0
    # a dominated point and a point not above the reference change nothing
    more = torch.cat([staircase, torch.tensor([[1.5, 1.5], [4.0, -1.0]])])
    assert hypervolume(more, torch.zeros(2)) == 6.0
    # only (2, 2) lies strictly above (1, 1) in both objectives
    assert hypervolume(staircase, torch.tensor([1.0, 1.0])) == 1.0
    assert hypervolume(torch.tensor([[2.0, 5.0]]), torch.tensor([-1.0, 1.0])) == 12.0
    assert hypervolume(torch.empty(0, 2), torch.zeros(2)) == 0.0
    assert hypervolume(torch.tensor([[3.0], [5.0]]), torch.tensor([1.0])) == 4.0


def test_hypervolume_3d_equals_inclusion_exclusion():
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(4, 3, generator=gen, dtype=torch.float64) + 0.1
    ref = torch.zeros(3, dtype=torch.float64)
    exact = 0.0
    for r in range(1, 5):
        for subset in itertools.combinations(range(4), r):
            corner = points[list(subset)].min(0).values
            exact += (-1) ** (r + 1) * float(corner.prod())
    assert hypervolume(points, ref) == pytest.approx(exact, rel=1e-12)
    assert hypervolume(torch.tensor([[1.0, 2.0, 3.0]]), torch.zeros(3)) == 6.0


def test_fronts_and_crowding():
    pts = torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [1.0, 1.0], [0.5, 2.0], [0.0, 0.0]])
    assert pareto_mask(pts).tolist() == [True, True, True, False, False, False]
    fronts = non_dominated_sort(pts)
    assert [sorted(f) for f in fronts] == [[0, 1, 2], [3, 4], [5]]
    dist = crowding_distance(pts[:3])
    assert dist[0] == dist[2] == float("inf")
    assert dist[1] == pytest.approx((3 - 1) / 2 + (3 - 1) / 2)
    # equal points do not dominate each other
    assert pareto_mask(torch.ones(3, 2)).all()


def test_ridge_recovers_an_additive_objective_on_one_hot_configs():
    space = _space()
    rng = random.Random(0)
    weights = torch.randn(space.num_features, generator=torch.Generator().manual_seed(1))
    x = torch.stack([space.encode(space.sample(rng)) for _ in range(80)])
    y = x @ weights + 0.5
    fit = RidgePredictor(alpha=0.0).fit(x, y)
    test = torch.stack([space.encode(space.sample(rng)) for _ in range(20)])
    assert torch.allclose(fit.predict(test), test @ weights + 0.5, atol=1e-4)
    # a penalty shrinks the fitted weights toward zero
    assert RidgePredictor(alpha=50.0).fit(x, y).weight.norm() < fit.weight.norm()


def test_mlp_fits_an_interaction_ridge_cannot():
    space = _space()
    rng = random.Random(0)
    cfgs = [space.sample(rng) for _ in range(120)]
    x = torch.stack([space.encode(c) for c in cfgs])
    y = torch.tensor([float(c["c0"] * c["c1"] - 3 * (c["c2"] == c["c3"])) for c in cfgs])
    mlp = MLPPredictor(hidden=32, epochs=150, seed=0).fit(x, y)
    ridge = RidgePredictor(alpha=1e-3).fit(x, y)

    def mse(p):
        return float(((p.predict(x) - y) ** 2).mean())

    assert mse(mlp) < 0.25 * mse(ridge)
    once, twice = (MLPPredictor(hidden=8, epochs=5, seed=3).fit(x, y) for _ in range(2))
    assert torch.equal(once.predict(x), twice.predict(x))  # seeded


def test_bad_inputs():
    with pytest.raises(RuntimeError, match="fitted"):
        RidgePredictor().predict(torch.zeros(1, 3))
    fit = RidgePredictor().fit(torch.eye(3), torch.arange(3.0))
    with pytest.raises(ValueError, match="3 features"):
        fit.predict(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="NaN"):
        RidgePredictor().fit(torch.eye(3), torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="targets"):
        RidgePredictor().fit(torch.eye(3), torch.zeros(2))
    with pytest.raises(ValueError, match="alpha"):
        RidgePredictor(alpha=-1.0)
    with pytest.raises(ValueError, match="epochs"):
        MLPPredictor(epochs=0)
    # infinite settings fitted NaN weights and predicted NaN silently
    with pytest.raises(ValueError, match="alpha must be non-negative and finite, got inf"):
        RidgePredictor(alpha=float("inf"))
    with pytest.raises(ValueError, match="both finite"):
        MLPPredictor(lr=float("inf"))
    with pytest.raises(ValueError, match="both finite"):
        MLPPredictor(weight_decay=float("inf"))
    with pytest.raises(ValueError, match="predictor"):
        make_predictor("svr")
    with pytest.raises(ValueError, match="reference"):
        hypervolume(torch.ones(2, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        hypervolume(torch.tensor([[float("nan"), 1.0]]), torch.zeros(2))
    with pytest.raises(ValueError, match="unbounded"):
        hypervolume(torch.tensor([[float("inf"), 1.0]]), torch.zeros(2))
