import pytest
import torch
from torch import nn

from graphkit.extras import create_model
from graphkit.extras.analysis.convergent import (
    bipartite_match,
    semi_match,
    sparse_prediction,
    spectral_clusters,
    unit_correlation,
)


def test_unit_correlation_equals_numpy_corrcoef_and_handles_feature_maps():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=g), torch.randn(50, 3, generator=g)
    ref = torch.from_numpy(__import__("numpy").corrcoef(a.t().numpy(), b.t().numpy()))[:4, 4:]
    assert torch.allclose(unit_correlation(a, b), ref, atol=1e-6)
    maps = torch.randn(2, 5, 3, 3, generator=g)
    flat = maps.permute(0, 2, 3, 1).reshape(-1, 5)
    assert torch.allclose(unit_correlation(maps), unit_correlation(flat), atol=1e-12)
    # a constant unit correlates 0 with everything instead of NaN
    const = torch.cat([a[:, :2], torch.ones(50, 1)], dim=1)
    assert bool((unit_correlation(const, b)[2] == 0).all())


def test_matching_recovers_a_hidden_permutation_of_units():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU())
    perm = torch.randperm(16)
    copy = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU())
    with torch.no_grad():  # the same units in another order
        copy[0].weight.copy_(net[0].weight[perm])
        copy[0].bias.copy_(net[0].bias[perm])
    x = torch.randn(8, 3, 10, 10)
    with torch.no_grad():
        corr = unit_correlation(net(x), copy(x))
    match = bipartite_match(corr)
    inverse = torch.argsort(perm)  # unit i of net is unit inverse[i] of the copy
    assert torch.equal(match.permutation(), inverse)
    assert torch.allclose(match.correlation, torch.ones(16, dtype=torch.float64), atol=1e-9)
    assert torch.equal(semi_match(corr).cols, inverse)
    assert torch.equal(create_model("convergent_learning", corr=corr).cols, match.cols)


def test_bipartite_is_one_to_one_where_semi_matching_repeats():
    corr = torch.tensor([[0.9, 0.8], [0.85, 0.1]], dtype=torch.float64)
    assert semi_match(corr).cols.tolist() == [0, 0]
    m = bipartite_match(corr)
    assert m.cols.tolist() == [1, 0]  # 0.8 + 0.85 beats 0.9 + 0.1
    assert m.correlation.sum().item() == pytest.approx(1.65)
    rect = bipartite_match(torch.rand(3, 5, dtype=torch.float64))
    assert len(set(rect.cols.tolist())) == 3


def _bars(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy 12x12 images of a horizontal, vertical or diagonal line, one class each."""
    y = torch.randint(4, (n,), generator=g)
    pos = torch.randint(2, 10, (n,), generator=g)
    eye = torch.eye(12)
    x = torch.zeros(n, 12, 12)
    for i in range(n):
        shift = int(pos[i]) - 6
        x[i] = [eye[int(pos[i])].expand(12, 12), eye[int(pos[i])].expand(12, 12).t(),
                eye.roll(shift, 1), eye.flip(1).roll(shift, 1)][int(y[i])]
    return (x + 0.3 * torch.randn(n, 12, 12, generator=g)).unsqueeze(1), y


def test_two_trained_seeds_share_more_first_layer_units_than_random_nets():
    """Mean bipartite-matched conv1 correlation of two seeds, before and after training.

    Measured here (fixed seeds): 0.271 for the random-init pair, 0.467 after 150 Adam steps;
    the test asks for a 0.1 gap.
    """
    g = torch.Generator().manual_seed(0)
    x, y = _bars(512, g)
    probe, _ = _bars(64, g)

    def net(seed: int) -> nn.Sequential:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                             nn.Flatten(), nn.Linear(8, 4))

    def matched(a: nn.Module, b: nn.Module) -> float:
        with torch.no_grad():
            return bipartite_match(unit_correlation(a[0](probe), b[0](probe))).correlation.mean()

    a, b = net(1), net(2)
    baseline = matched(a, b)
    for model in (a, b):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(150):
            idx = torch.randint(512, (64,), generator=g)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.1
    assert matched(a, b) > baseline + 0.1


def test_sparse_prediction_finds_one_to_many_maps():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    # B's unit 0 copies A's unit 3; unit 1 mixes A's units 0 and 5
    b = torch.stack([a[:, 3], a[:, 0] + a[:, 5]], dim=1)
    pred = sparse_prediction(a, b, l1=0.05)
    support = pred.weight.abs() > 1e-3
    assert support[0].nonzero().flatten().tolist() == [3]
    assert support[1].nonzero().flatten().tolist() == [0, 5]
    assert bool((pred.r2 > 0.9).all())
    # no penalty: the exact least-squares map
    exact = sparse_prediction(a, b, l1=0.0, max_iter=5000, tol=1e-14)
    assert bool((exact.r2 > 1 - 1e-8).all())


def test_spectral_clusters_group_units_of_two_nets_that_share_features():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(300, 3, generator=g, dtype=torch.float64)
    noise = lambda: 0.2 * torch.randn(300, 1, generator=g, dtype=torch.float64)  # noqa: E731
    # net A: two units per hidden feature; net B: one unit per feature, in another order
    a = torch.cat([hidden[:, [f]] + noise() for f in (0, 0, 1, 1, 2, 2)], dim=1)
    b = torch.cat([-hidden[:, [f]] + noise() for f in (2, 0, 1)], dim=1)  # sign flips too
    labels = spectral_clusters(unit_correlation(torch.cat([a, b], dim=1)), k=3)
    groups = {tuple(torch.nonzero(labels == c).flatten().tolist()) for c in range(3)}
    assert groups == {(0, 1, 7), (2, 3, 8), (4, 5, 6)}


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same samples"):
        unit_correlation(torch.randn(5, 2), torch.randn(6, 2))
    with pytest.raises(ValueError, match="NaN"):
        unit_correlation(torch.full((5, 2), float("nan")))
    with pytest.raises(ValueError, match="at least 2 samples"):
        unit_correlation(torch.randn(1, 3))
    with pytest.raises(ValueError, match="non-empty"):
        bipartite_match(torch.randn(4))
    with pytest.raises(ValueError, match="square symmetric"):
        spectral_clusters(torch.randn(3, 4), 2)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 3\]"):
        spectral_clusters(torch.eye(3), 4)
    with pytest.raises(ValueError, match="l1 must be non-negative"):
        sparse_prediction(torch.randn(5, 2), torch.randn(5, 2), l1=-1.0)


def test_fractional_k_nan_eps_and_nan_tol_are_errors():
    corr = torch.eye(4)
    # 2.5 ended in a TypeError from a slice
    with pytest.raises(ValueError, match=r"k must lie in \[1, 4\] and be an integer, got 2.5"):
        spectral_clusters(corr, 2.5)
    # a NaN eps made every correlation NaN
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        unit_correlation(torch.rand(5, 3), eps=float("nan"))
    with pytest.raises(ValueError, match="tol must be >= 0"):
        sparse_prediction(torch.rand(5, 3), torch.rand(5, 3), tol=float("nan"))
