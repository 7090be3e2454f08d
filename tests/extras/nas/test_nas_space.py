import json
import math
import random

import pytest
import torch

from graphkit.extras.nas.space import Choice, SearchSpace


def _layer(i: int) -> SearchSpace:
    return SearchSpace(f"layer{i}", [Choice("ks", (3, 5, 7)), Choice("expand", (3, 4, 6))])


def _unit(name: str, depths=(2, 3, 4)) -> SearchSpace:
    branches = {d: SearchSpace("layers", [_layer(i) for i in range(d)]) for d in depths}
    return SearchSpace(name, [Choice("depth", depths, branches=branches)])


def _key(cfg) -> str:
    return json.dumps(cfg, sort_keys=True)


def test_flat_space_size_is_product_and_enumeration_matches():
    space = SearchSpace(
        "s", [Choice("a", (1, 2, 3)), Choice("b", ("x", "y")), Choice("c", (0.5, 1.0, 2.0, 4.0))]
    )
    assert space.size() == 3 * 2 * 4
    cfgs = list(space.enumerate())
    assert len(cfgs) == 24 and len({_key(c) for c in cfgs}) == 24
    assert space.num_features == 3 + 2 + 4
    for cfg in cfgs:
        vec = space.encode(cfg)
        assert vec.sum() == 3 and set(vec.tolist()) == {0.0, 1.0}
        assert space.decode(vec) == cfg


def test_conditional_branches_enumerate_and_round_trip():
    unit = _unit("unit", depths=(1, 2))
    assert unit.size() == 9 + 9**2
    cfgs = list(unit.enumerate())
    assert len(cfgs) == unit.size() == len({_key(c) for c in cfgs})
    # every choice of both branches owns a segment: depth (2) + 1 layer (6) + 2 layers (12)
    assert unit.num_features == 2 + 6 + 12
    for cfg in cfgs:
        unit.validate(cfg)
        assert unit.decode(unit.encode(cfg)) == cfg
    assert {"depth": 1, "layers": {"layer0": {"ks": 7, "expand": 4}}} in cfgs
    paths = [p for p, _ in unit.choices()]
    assert paths[:3] == ["depth", "depth=0.layers.layer0.ks", "depth=0.layers.layer0.expand"]
    assert unit.segment("depth=1.layers.layer1.expand") == slice(17, 20)


def test_ofa_space_size_is_exact_integer():
    """Spec #27: (9^2 + 9^3 + 9^4)^5 = 7371^5, counted as a Python integer."""
    space = SearchSpace("ofa", [_unit(f"unit{u}") for u in range(5)])
    assert space.size() == (9**2 + 9**3 + 9**4) ** 5 == 7371**5 == 21758655492572485851
    assert isinstance(space.size(), int)
    rng = random.Random(0)
    for _ in range(20):
        cfg = space.sample(rng)
        space.validate(cfg)
        assert space.decode(space.encode(cfg)) == cfg
        assert all(len(cfg[f"unit{u}"]["layers"]) == cfg[f"unit{u}"]["depth"] for u in range(5))


def test_sample_is_seeded_and_covers_options():
    space = SearchSpace("s", [Choice("a", range(4)), _unit("u", depths=(1, 2))])
    assert space.sample(3) == space.sample(3)
    seen = {space.sample(rng)["a"] for rng in [random.Random(s) for s in range(40)]}
    assert seen == {0, 1, 2, 3}


def test_decode_takes_argmax_of_scores():
    space = SearchSpace("s", [Choice("a", (1, 2, 3)), Choice("b", ("x", "y"))])
    assert space.decode(torch.tensor([0.1, 2.0, -1.0, -3.0, 0.5])) == {"a": 2, "b": "y"}


def test_build_follows_decisions_in_tree_order():
    unit = _unit("unit", depths=(1, 2))
    visited = []

    def decide(path, choice):
        visited.append(path)
        return len(choice) - 1

    cfg = unit.build(decide)
    assert cfg["depth"] == 2 and cfg["layers"]["layer1"] == {"ks": 7, "expand": 6}
    assert visited == [
        "depth",
        "depth=1.layers.layer0.ks",
        "depth=1.layers.layer0.expand",
        "depth=1.layers.layer1.ks",
        "depth=1.layers.layer1.expand",
    ]


def test_size_of_nested_product():
    inner = SearchSpace("inner", [Choice("p", (0, 1)), Choice("q", (0, 1, 2))])
    outer = SearchSpace("outer", [inner, Choice("r", tuple(range(5)))])
    assert outer.size() == math.prod((2, 3, 5)) == len(list(outer.enumerate()))


def test_bad_spaces_and_configurations_raise():
    with pytest.raises(ValueError, match="repeated options"):
        Choice("a", (1, 1))
    with pytest.raises(ValueError, match="at least one option"):
        Choice("a", ())
    with pytest.raises(ValueError, match="unknown option"):
        Choice("a", (1, 2), branches={3: _layer(0)})
    with pytest.raises(ValueError, match="repeated keys"):
        SearchSpace("s", [Choice("a", (1,)), Choice("a", (2,))])
    with pytest.raises(TypeError, match="Choice or SearchSpace"):
        SearchSpace("s", [(1, 2)])
    space = _unit("unit", depths=(1, 2))
    good = {"depth": 1, "layers": {"layer0": {"ks": 3, "expand": 3}}}
    with pytest.raises(ValueError, match="not an option"):
        space.encode({**good, "depth": 5})
    with pytest.raises(ValueError, match="misses"):
        space.validate({"depth": 2, "layers": {"layer0": {"ks": 3, "expand": 3}}})
    with pytest.raises(ValueError, match="outside the space"):
        space.validate({**good, "extra": 1})
    with pytest.raises(ValueError, match="shape"):
        space.decode(torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        space.decode(torch.full((space.num_features,), float("nan")))
    with pytest.raises(ValueError, match=r"decision for 'depth' must be an index in \[0, 2\), "
                                         r"got True"):
        space.build(lambda path, choice: True)
