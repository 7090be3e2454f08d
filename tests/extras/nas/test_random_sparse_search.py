import pytest
import torch
from torch import nn

from graphkit.extras import create_model, list_models
from graphkit.extras.nas.methods.random_sparse_search import (
    RandomSparseSearch,
    removed_count,
    searched_vs_random,
    train,
)
from graphkit.extras.sparsity.masks import check_density, get_mask


def mlp(seed: int = 0, width: int = 40) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(10, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 3)
    )


def blobs(seed: int, n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian classes in 10-D with fixed centres; ``seed`` draws the samples."""
    centres = torch.randn(3, 10, generator=torch.Generator().manual_seed(123)) * 0.6
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    return centres[y] + torch.randn(n, 10, generator=gen), y


X, Y = blobs(0)
XV, YV = blobs(1)


def step(model, _i):
    return nn.functional.cross_entropy(model(X), Y)


def accuracy(model):
    return (model(XV).argmax(1) == YV).float().mean().item()


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.9])
def test_masks_remove_exactly_the_requested_share_of_units(sparsity):
    search = RandomSparseSearch(mlp(), sparsity, seed=0)
    assert list(search.units) == ["0", "2"]  # the output layer is not searched
    for _ in range(3):
        cfg = search.sample()
        net = search.build(cfg)
        for name, module in dict(net.named_modules()).items():
            if name not in search.units:
                assert get_mask(module) is None
                continue
            kept = 40 - removed_count(40, sparsity)
            assert len(cfg[name]) == kept
            assert int(search.node_masks(net)[name].sum()) == kept
            check_density(module.weight, kept / 40)  # whole rows: exact weight density
            live_rows = module.weight.ne(0).any(1).nonzero().flatten().tolist()
            assert live_rows == list(cfg[name])
    assert removed_count(40, 0.9) == 36 and removed_count(10, 0.25) == 3  # round half up


def test_removed_units_are_silent_and_candidates_share_the_parent_init():
    parent = mlp()
    search = RandomSparseSearch(parent, 0.5, seed=1)
    cfg = search.sample()
    net = search.build(cfg)
    hidden = net[1](net[0](X))
    dropped = sorted(set(range(40)) - set(cfg["0"]))
    assert len(dropped) == 20
    assert torch.equal(hidden[:, dropped], torch.zeros(X.shape[0], 20))
    assert (hidden[:, list(cfg["0"])] != 0).any()
    kept = list(cfg["0"])
    assert torch.equal(net[0].weight[kept], parent[0].weight[kept])
    assert torch.equal(net[4].weight, parent[4].weight)
    assert get_mask(parent[0]) is None  # the parent is never modified


def test_training_keeps_the_node_masks():
    search = RandomSparseSearch(mlp(), 0.5, seed=2)
    net = search.build(search.sample())
    before = search.node_masks(net)
    train(net, step, 15)
    after = search.node_masks(net)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_run_rates_every_trial_and_best_rebuilds_the_winner():
    search = RandomSparseSearch(mlp(), 0.5, trials=6, proxy_steps=0, seed=3)
    history = search.run(step, lambda m: -step(m, 0).item())
    assert [t.step for t in history] == list(range(6))
    assert len({tuple(t.cfg["0"]) for t in history}) == 6
    best = max(history, key=lambda t: t.score)
    winner = search.best()
    with torch.no_grad():
        assert -step(winner, 0).item() == best.score  # rated at the shared initialisation
    # with proxy training the rating is the score after proxy_steps steps
    trained = RandomSparseSearch(mlp(), 0.5, trials=2, proxy_steps=10, seed=3)
    rated = trained.run(step, accuracy)
    assert all(0.0 <= t.score <= 1.0 for t in rated)


def test_searched_vs_random_helper_shapes():
    out = searched_vs_random(mlp, 0.5, step, accuracy, train_steps=5, seeds=(0, 1), trials=2,
                             proxy_steps=2)  # fmt: skip
    assert len(out["searched"]) == len(out["random"]) == len(out["difference"]) == 2
    assert out["mean"] == pytest.approx(sum(out["difference"]) / 2)


@pytest.mark.slow
def test_paper_finding_searched_is_not_better_than_random():
    """The paper's finding on synthetic 3-class blobs: a 10-40-40-3 MLP at 75% node sparsity,
    10 candidates rated after 20 proxy steps, winner and a random mask both trained 150
    full-batch steps; over 5 seeds the accuracy difference (searched - random) has
    |mean| <= 2 std. Expected outcome, not a guarantee (the spec marks it slow). Measured
    here: validation accuracies about 0.83-0.86, difference mean -0.0073, std 0.0068."""
    out = searched_vs_random(mlp, 0.75, step, accuracy, train_steps=150, trials=10,
                             proxy_steps=20)  # fmt: skip
    assert abs(out["mean"]) <= 2 * out["std"] + 1e-9


def test_registered():
    assert "random_sparse_search" in list_models(family="nas")
    search = create_model("random_sparse_search", model=mlp(), sparsity=0.5)
    assert isinstance(search, RandomSparseSearch) and search.trials == 10


def test_removed_count_and_comparison_reject_bad_arguments():
    # NaN failed in int(); a negative sparsity "removed" -4 units; 10.5 units were truncated
    for sparsity in (float("nan"), -0.5):
        with pytest.raises(ValueError, match="sparsity must lie in"):
            removed_count(10, sparsity)
    with pytest.raises(ValueError, match="units must be a positive integer, got 10.5"):
        removed_count(10.5, 0.5)
    with pytest.raises(ValueError, match="steps must be a non-negative integer, got 1.5"):
        train(mlp(), lambda m, i: m(torch.ones(1, 10)).sum(), 1.5)  # was range()'s TypeError
    search = RandomSparseSearch(mlp(), 0.5, trials=1, proxy_steps=0)
    with pytest.raises(ValueError, match="evaluate returned inf for trial 0"):
        search.run(lambda m, i: m(torch.ones(1, 10)).sum(), lambda m: float("inf"))
    with pytest.raises(ValueError, match="seeds is empty"):  # was statistics' StatisticsError
        searched_vs_random(lambda seed: mlp(), 0.5, lambda m, x: None, lambda m: 0.0, 1,
                           seeds=())


def test_bad_arguments():
    with pytest.raises(ValueError, match="sparsity"):
        RandomSparseSearch(mlp(), 1.0)
    with pytest.raises(ValueError, match="all 4 units"):
        RandomSparseSearch(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), 0.9)
    with pytest.raises(ValueError, match="trials"):
        RandomSparseSearch(mlp(), 0.5, trials=0)
    with pytest.raises(ValueError, match="proxy_steps"):
        RandomSparseSearch(mlp(), 0.5, proxy_steps=-1)
    with pytest.raises(ValueError, match="not a Linear"):
        RandomSparseSearch(mlp(), 0.5, layers=["1"])
    with pytest.raises(ValueError, match="no hidden"):
        RandomSparseSearch(nn.Linear(3, 2), 0.5)
    with pytest.raises(TypeError, match="nn.Module"):
        RandomSparseSearch("net", 0.5)
    search = RandomSparseSearch(mlp(), 0.5)
    cfg = search.sample()
    with pytest.raises(ValueError, match="searched layers"):
        search.build({"0": cfg["0"]})
    with pytest.raises(ValueError, match="distinct units"):
        search.build({"0": cfg["0"][:-1], "2": cfg["2"]})
    with pytest.raises(ValueError, match="lie in"):
        search.build({"0": (99,) + cfg["0"][1:], "2": cfg["2"]})
    with pytest.raises(RuntimeError, match="run"):
        search.best()
    with pytest.raises(ValueError, match="training loss"):
        train(mlp(), lambda m, i: torch.tensor(float("nan"), requires_grad=True), 1)
