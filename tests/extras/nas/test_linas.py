import math
import random
import statistics

import pytest
import torch

from graphkit.extras import create_model, list_models
from graphkit.extras.nas.methods.linas import (
    LINASSearch,
    MOTrial,
    NSGA2Search,
    _encode,
    _offsets,
    _sample,
    pareto_front,
)
from graphkit.extras.nas.predictors import MLPPredictor, hypervolume
from graphkit.extras.nas.space import Choice, SearchSpace


def ofa_like(units: int = 5, depths=(2, 3, 4)) -> SearchSpace:
    """OFA-like: per unit an elastic depth, and per active layer a kernel and an expansion."""

    def layers(d: int) -> SearchSpace:
        return SearchSpace(
            "layers",
            [
                SearchSpace(f"l{i}", [Choice("ks", (3, 5, 7)), Choice("e", (3, 4, 6))])
                for i in range(d)
            ],
        )

    def unit(u: int) -> SearchSpace:
        return SearchSpace(
            f"u{u}", [Choice("depth", depths, branches={d: layers(d) for d in depths})]
        )

    return SearchSpace("net", [unit(u) for u in range(units)])


def objectives(cfg) -> tuple[float, float]:
    """Analytic (accuracy, -MACs): accuracy saturates in each unit's capacity, MACs grow with
    k² · e; later units weigh more in both. Both maximised."""
    acc, macs = 0.0, 0.0
    for u in range(5):
        unit, w = cfg[f"u{u}"], 1.0 + 0.3 * u
        capacity = 0.0
        for i in range(unit["depth"]):
            layer = unit["layers"][f"l{i}"]
            capacity += (layer["ks"] / 7) ** 0.5 * (layer["e"] / 6) ** 0.7
            macs += w * layer["ks"] ** 2 * layer["e"] / 294
        acc += w * (1 - math.exp(-capacity / 1.5))
    return acc, -macs


REFERENCE = torch.tensor([0.0, -40.0])  # below every configuration (max MACs here: 32)


def _hv(history: list[MOTrial]) -> float:
    return hypervolume(torch.tensor([t.scores for t in history]), REFERENCE)


def test_linas_beats_nsga2_at_equal_true_evaluations():
    """Spec acceptance: on an analytic two-objective function over an OFA-like space (5 units,
    depth {2,3,4}, kernel {3,5,7}, expansion {3,4,6}: 7371^5 configurations), LINAS (ridge
    predictors, 15 generations per iteration) reaches a higher hypervolume than NSGA-II with
    the same 80 true evaluations and population 16, mean over 5 seeds. Measured here:
    NSGA-II 225.2, LINAS 231.8 (LINAS ahead on each seed)."""
    space = ofa_like()
    assert space.size() == 7371**5
    hv = {"nsga2": [], "linas": []}
    for seed in range(5):
        plain = NSGA2Search(space, objectives, population=16, seed=seed).run(budget=80)
        linas = LINASSearch(space, objectives, population=16, generations=15, seed=seed).run(
            budget=80
        )
        assert len(plain) == len(linas) == 80
        hv["nsga2"].append(_hv(plain))
        hv["linas"].append(_hv(linas))
    assert statistics.mean(hv["linas"]) > statistics.mean(hv["nsga2"])


def test_histories_are_distinct_valid_configurations():
    space = ofa_like(units=2)
    for search in (
        NSGA2Search(space, objectives_2, population=6, seed=0),
        LINASSearch(space, objectives_2, population=6, generations=5, seed=0),
    ):
        history = search.run(budget=23)
        assert [t.step for t in history] == list(range(23))
        assert len({repr(t.cfg) for t in history}) == 23
        for t in history:
            space.validate(t.cfg)
            assert t.scores == tuple(objectives_2(t.cfg))


def objectives_2(cfg) -> list[float]:
    ks = [cfg[u]["layers"][f"l{i}"]["ks"] for u in ("u0", "u1") for i in range(cfg[u]["depth"])]
    return [float(sum(ks)), -float(len(ks))]


def test_fast_encoding_equals_the_space_encoding():
    space = ofa_like(units=3)
    rng = random.Random(0)
    inds = [_sample(space, rng) for _ in range(10)]
    fast = _encode(inds, _offsets(space), space.num_features)
    assert torch.equal(fast, torch.stack([space.encode(i.cfg) for i in inds]))


def test_evaluators_as_one_callable_or_one_per_objective_agree():
    space = ofa_like(units=2)
    split = [lambda c: objectives_2(c)[0], lambda c: objectives_2(c)[1]]
    a = LINASSearch(space, objectives_2, population=5, generations=3, seed=1).run(budget=15)
    b = LINASSearch(space, split, population=5, generations=3, seed=1).run(budget=15)
    assert [t.cfg for t in a] == [t.cfg for t in b]
    c = NSGA2Search(space, population=5, seed=1).run(objectives_2, budget=15)
    assert len(c) == 15


def test_linas_with_mlp_and_per_objective_predictors():
    space = ofa_like(units=2)
    preds = ["ridge", MLPPredictor(hidden=8, epochs=30, seed=0)]
    search = LINASSearch(space, objectives_2, predictors=preds, population=6, generations=4)
    assert len(search.run(budget=18)) == 18
    assert search.fitted[1] is preds[1]


def test_pareto_front_of_a_history():
    trials = [MOTrial({}, s, i) for i, s in enumerate([(1.0, 3.0), (2.0, 2.0), (1.0, 1.0)])]
    assert [t.step for t in pareto_front(trials)] == [0, 1]


def test_small_space_is_exhausted_without_repeats():
    space = SearchSpace("s", [Choice("a", (0, 1, 2)), Choice("b", (0, 1))])
    history = NSGA2Search(space, lambda c: (c["a"], c["b"]), population=4, seed=0).run(budget=50)
    assert len(history) == 6  # the whole space, each configuration once


def test_registered():
    assert "linas" in list_models(family="nas")
    search = create_model("linas", space=ofa_like(units=1), evaluators=objectives_2)
    assert isinstance(search, LINASSearch) and search.population == 50


def test_bad_arguments():
    space = ofa_like(units=2)
    with pytest.raises(ValueError, match="population"):
        LINASSearch(space, objectives_2, population=1)
    with pytest.raises(ValueError, match="probabilities"):
        NSGA2Search(space, objectives_2, crossover=1.5)
    with pytest.raises(ValueError, match="predictor"):
        LINASSearch(space, objectives_2, predictors="svr")
    with pytest.raises(ValueError, match="generations"):
        LINASSearch(space, objectives_2, generations=0)
    with pytest.raises(TypeError, match="evaluators"):
        NSGA2Search(space, [1, 2])
    with pytest.raises(TypeError, match="SearchSpace"):
        LINASSearch("space", objectives_2)
    with pytest.raises(ValueError, match="evaluate"):
        NSGA2Search(space).run(budget=5)
    with pytest.raises(ValueError, match="finite"):
        NSGA2Search(space, lambda c: (float("nan"), 0.0)).run(budget=5)
    with pytest.raises(ValueError, match="predictors for"):
        LINASSearch(space, objectives_2, predictors=["ridge"] * 3, population=4).run(budget=10)
    with pytest.raises(ValueError, match="budget"):
        LINASSearch(space, objectives_2).run(budget=0)
    with pytest.raises(ValueError, match=r"different numbers of objectives: \[1, 2\]"):
        pareto_front([MOTrial({}, (1.0,), 0), MOTrial({}, (1.0, 2.0), 1)])
