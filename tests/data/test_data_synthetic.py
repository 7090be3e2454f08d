import pytest
import torch

import graphkit.data as gd


def test_karate():
    d = gd.load("karate")
    assert d.num_nodes == 34 and d.edge_index.size(1) == 156
    assert d.y.bincount().tolist() == [17, 17]
    assert int(d.y[0]) == 0 and int(d.y[33]) == 1  # Mr. Hi and the Officer
    assert d.train_mask.sum() == 8 and d.val_mask.sum() == 8 and d.test_mask.sum() == 18


@pytest.mark.parametrize("h", [0.0, 0.3, 0.8, 1.0])
def test_csbm_has_exact_edge_count_and_homophily(h):
    d = gd.load("csbm", num_nodes=400, num_classes=4, homophily=h, avg_degree=6, seed=3)
    m = round(400 * 6 / 2)
    assert d.edge_index.size(1) == 2 * m
    intra = int((d.y[d.edge_index[0]] == d.y[d.edge_index[1]]).sum())
    assert intra == 2 * round(h * m)  # edge homophily ratio exactly round(h m) / m
    pairs = set(map(tuple, d.edge_index.t().tolist()))
    assert len(pairs) == 2 * m  # no duplicates
    assert all((v, u) in pairs and u != v for u, v in pairs)  # undirected, no self-loops
    assert d.y.bincount().tolist() == [100] * 4
    masks = d.train_mask.int() + d.val_mask.int() + d.test_mask.int()
    assert bool((masks == 1).all()) and int(d.train_mask.sum()) == 240


def test_csbm_is_deterministic_and_feature_signal_separates_classes():
    a = gd.load("csbm", seed=7)
    b = gd.load("csbm", seed=7)
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    assert not torch.equal(a.x, gd.load("csbm", seed=8).x)
    strong = gd.load("csbm", feature_signal=10.0, num_classes=2)
    means = torch.stack([strong.x[strong.y == c].mean(0) for c in range(2)])
    assert float((means[0] - means[1]).norm()) > 10
    none = gd.load("csbm", feature_signal=0.0, num_classes=2)
    means = torch.stack([none.x[none.y == c].mean(0) for c in range(2)])
    assert float((means[0] - means[1]).norm()) < 1


@pytest.mark.parametrize(
    "kwargs,match",
    [({"homophily": 1.5}, "homophily"), ({"num_nodes": 1}, "num_nodes"),
     ({"avg_degree": -1}, "avg_degree"), ({"feature_signal": float("nan")}, "feature_signal"),
     ({"num_nodes": 10, "avg_degree": 9}, "lower avg_degree"),
     ({"num_classes": 1, "homophily": 0.5}, "at least 2 classes")],
)
def test_csbm_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gd.load("csbm", **kwargs)


def test_hsbm_structure():
    d = gd.load("hsbm", num_nodes=300, num_classes=3, num_hyperedges=200, min_size=3,
                max_size=5, homophily=1.0, seed=1)
    assert d.num_hyperedges == 200 and d.x.shape == (300, 32)
    sizes = torch.bincount(d.hyperedge_index[1], minlength=200)
    assert int(sizes.min()) >= 3 and int(sizes.max()) <= 5
    # homophily 1: every hyperedge lies inside one class; members are distinct
    for e in range(200):
        members = d.hyperedge_index[0, d.hyperedge_index[1] == e]
        assert d.y[members].unique().numel() == 1
        assert members.unique().numel() == members.numel()
    assert torch.equal(d.hyperedge_index, gd.load(
        "hsbm", num_nodes=300, num_classes=3, num_hyperedges=200, min_size=3, max_size=5,
        homophily=1.0, seed=1).hyperedge_index)


def test_hsbm_bad_arguments():
    with pytest.raises(ValueError, match="max_size"):
        gd.load("hsbm", min_size=4, max_size=3)
    with pytest.raises(ValueError, match="smallest class"):
        gd.load("hsbm", num_nodes=12, num_classes=3, max_size=6)


@pytest.mark.parametrize("name, kwargs, match", [
    # each used to fail deep inside NumPy with an IndexError or TypeError naming no argument
    ("csbm", {"num_nodes": 10.5}, "num_nodes must be an integer, got 10.5"),
    ("csbm", {"num_nodes": "100"}, "num_nodes must be an integer, got '100'"),
    ("csbm", {"num_classes": 2.0}, "num_classes must be an integer"),
    ("csbm", {"num_features": 3.5}, "num_features must be an integer"),
    ("csbm", {"seed": -1}, "seed must lie in"),
    ("hsbm", {"num_hyperedges": 10.5}, "num_hyperedges must be an integer"),
    ("hsbm", {"min_size": 2.5}, "min_size must be an integer"),  # was silently accepted
])
def test_integer_arguments_must_be_integers(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gd.load(name, **kwargs)
