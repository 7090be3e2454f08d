import math

import pytest
import torch
from torch import nn

from graphkit.extras import create_model
from graphkit.extras.analysis.neural_collapse import imbalanced_mse_geometry, nc_metrics


def _simplex_etf(K: int, d: int, seed: int = 0) -> torch.Tensor:
    """K unit vectors in R^d with pairwise cosine -1/(K-1), rotated at random."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, K, generator=g, dtype=torch.float64))
    centred = torch.eye(K, dtype=torch.float64) - 1.0 / K
    return math.sqrt(K / (K - 1)) * centred @ basis.t()  # (K, d)


def _lbfgs(params, loss_fn) -> None:
    opt = torch.optim.LBFGS(
        params, lr=1, max_iter=2000, history_size=50, tolerance_grad=1e-13,
        tolerance_change=1e-16, line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)


def test_exact_simplex_etf_collapse_gives_zero_and_random_features_do_not():
    K, d, n = 5, 12, 7
    means = _simplex_etf(K, d) * 3.0 + 0.5  # any scale, any global offset
    labels = torch.arange(K).repeat_interleave(n)
    W = 2.0 * (means - means.mean(0))  # self-dual classifier
    m = nc_metrics(means[labels], labels, W, bias=-(W @ means.mean(0)))
    for value in (m.nc1, m.nc2, m.nc2_equinorm, m.nc2_equiangular, m.nc3, m.nc4):
        assert value == pytest.approx(0.0, abs=1e-12)

    g = torch.Generator().manual_seed(1)
    r = nc_metrics(torch.randn(K * n, d, generator=g), labels, torch.randn(K, d, generator=g))
    assert r.nc1 > 1.0 and r.nc2 > 0.2 and r.nc3 > 0.5 and r.nc4 > 0.2


def test_registered_and_uncentred_mode_measures_an_orthogonal_frame():
    assert create_model("neural_collapse", features=torch.eye(3), labels=torch.arange(3),
                        W=torch.eye(3), center=False).nc2 == pytest.approx(0.0, abs=1e-12)
    # an orthogonal frame is not self-dual against centred means, but is against raw ones
    labels = torch.arange(4).repeat(3)
    feats = 2.0 * torch.eye(4)[labels]
    assert nc_metrics(feats, labels, torch.eye(4), center=False).nc3 == pytest.approx(0, abs=1e-12)
    assert nc_metrics(feats, labels, torch.eye(4), center=True).nc3 > 0.1


def test_trained_deep_linear_net_collapses():
    """Depth-3 bias-free linear net, MSE + weight decay, balanced classes.

    Orthonormal inputs make the net the paper's deep unconstrained-features model (the first
    layer's output is a free feature per sample); its theory predicts an orthogonal frame, so
    NC2/NC3 are measured on uncentred means.
    """
    torch.manual_seed(0)
    K, n, D = 4, 10, 64
    X = torch.linalg.qr(torch.randn(D, K * n, dtype=torch.float64))[0].t().contiguous()
    y = torch.arange(K).repeat_interleave(n)
    Y = nn.functional.one_hot(y, K).double()
    net = nn.Sequential(
        nn.Linear(D, 16, bias=False), nn.Linear(16, 16, bias=False), nn.Linear(16, K, bias=False)
    ).double()
    features = lambda: net[1](net[0](X))  # noqa: E731
    before = nc_metrics(features().detach(), y, net[2].weight.detach(), center=False)
    lam = 1e-3
    _lbfgs(
        list(net.parameters()),
        lambda: ((net(X) - Y) ** 2).sum() / (2 * K * n)
        + lam / 2 * sum((p**2).sum() for p in net.parameters()),
    )
    after = nc_metrics(features().detach(), y, net[2].weight.detach(), center=False)
    assert before.nc1 > 1.0 and before.nc2 > 0.1 and before.nc3 > 0.5
    assert after.nc1 < 1e-2 and after.nc2 < 1e-2 and after.nc3 < 1e-2 and after.nc4 == 0.0


def test_imbalanced_mse_matches_trained_unconstrained_features_model():
    """Plain UFM, bias-free MSE, classes of 40/20/10/5: the trained minimum equals the formula.

    Measured here: class means orthogonal (|cos| < 1e-6), feature and classifier norms equal
    the closed form to 1e-5 (classifier norms grow with class size, feature norms shrink).
    """
    torch.manual_seed(0)
    counts, d, lw, lh = [40, 20, 10, 5], 8, 2e-3, 1e-3
    K, N = len(counts), sum(counts)
    y = torch.arange(K).repeat_interleave(torch.tensor(counts))
    Y = nn.functional.one_hot(y, K).double()
    H = torch.randn(N, d, dtype=torch.float64, requires_grad=True)
    W = torch.randn(K, d, dtype=torch.float64, requires_grad=True)
    _lbfgs(
        [H, W],
        lambda: ((H @ W.t() - Y) ** 2).sum() / (2 * N)
        + lw / 2 * (W**2).sum() + lh / 2 * (H**2).sum(),
    )
    H, W = H.detach(), W.detach()
    geo = imbalanced_mse_geometry(counts, lw, lh)
    means = torch.stack([H[y == k].mean(0) for k in range(K)])
    unit = nn.functional.normalize(means, dim=1)
    cos = unit @ unit.t() - torch.eye(K, dtype=torch.float64)
    assert cos.abs().max() < 1e-6
    assert torch.allclose(means.norm(dim=1), geo.feature_norms, atol=1e-5)
    assert torch.allclose(W.norm(dim=1), geo.classifier_norms, atol=1e-5)
    assert torch.allclose((W * means).sum(1), geo.scales, atol=1e-5)
    assert bool((geo.classifier_norms.diff() < 0).all())  # ordered by class frequency
    assert nc_metrics(H, y, W, center=False).nc1 < 1e-8


def test_minority_collapse_threshold():
    # N^2 lw lh = 100^2 * 0.01 * 0.01 = 1: the one-sample class sits on the threshold
    geo = imbalanced_mse_geometry([90, 9, 1], 0.01, 0.01)
    assert geo.scales[2] == 0 and geo.feature_norms[2] == 0 and geo.scales[0] > 0
    assert geo.scales[0].item() == pytest.approx(1 - 100 * 0.01 / math.sqrt(90), rel=1e-12)


def test_bad_inputs_raise():
    x, y, W = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2]), torch.randn(3, 3)
    with pytest.raises(ValueError, match=r"W must be \(K, 3\)"):
        nc_metrics(x, y, torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        nc_metrics(x, y + 1, W)
    with pytest.raises(ValueError, match="classes \\[2\\] have none"):
        nc_metrics(x, torch.tensor([0, 1, 0, 1, 0, 1]), W)
    with pytest.raises(ValueError, match="finite"):
        nc_metrics(torch.full((6, 3), float("nan")), y, W)
    with pytest.raises(ValueError, match="integers"):
        nc_metrics(x, y.float(), W)
    with pytest.raises(ValueError, match="positive integers"):
        imbalanced_mse_geometry([10, 0], 1e-3, 1e-3)
    with pytest.raises(ValueError, match="weight decays must be positive"):
        imbalanced_mse_geometry([10, 5], 0.0, 1e-3)


def test_infinite_weight_decay_is_an_error():
    # inf gave NaN feature norms
    with pytest.raises(ValueError, match="weight decays must be positive"):
        imbalanced_mse_geometry([5, 3], float("inf"), 1e-3)
