r"""Performance predictors on one-hot configurations, and Pareto-front tools.

Predictor-guided searches (LINAS in `DyNAS-T <https://github.com/IntelLabs/DyNAS-T>`_, after
`A Hardware-Aware Framework for Accelerating Neural Architecture Search Across Modalities
<https://arxiv.org/abs/2205.10358>`_) fit a cheap regressor per objective on the
:meth:`~graphkit.extras.nas.space.SearchSpace.encode` vectors of the configurations evaluated so
far, then search the regressors instead of the network.

- :class:`RidgePredictor`: closed-form ridge regression with an unpenalised intercept;
- :class:`MLPPredictor`: a small ReLU network trained full-batch with Adam;
- :func:`non_dominated_sort`, :func:`crowding_distance`, :func:`pareto_mask`: NSGA-II's ranking;
- :func:`hypervolume`: the exact dominated volume, the usual quality measure of a front.

Every objective is **maximised** (as scores are in :mod:`graphkit.extras.nas.searchers`);
negate a cost such as latency or MACs.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive


def _check_xy(x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    x = torch.as_tensor(x, dtype=torch.get_default_dtype())
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"features must have shape (n > 0, d), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("features hold NaN or infinite values")
    if y is None:
        return x, None
    y = torch.as_tensor(y, dtype=x.dtype, device=x.device)
    if y.shape != (x.shape[0],):
        raise ValueError(f"targets must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("targets hold NaN or infinite values")
    return x, y


class Predictor(abc.ABC):
    """A regressor from encoded configurations ``(n, d)`` to one objective ``(n,)``."""

    num_features: int | None = None

    @abc.abstractmethod
    def fit(self, x: Tensor, y: Tensor) -> Predictor:
        """Fit on features ``x`` ``(n, d)`` and targets ``y`` ``(n,)``; returns ``self``."""

    @abc.abstractmethod
    def _predict(self, x: Tensor) -> Tensor: ...

    def predict(self, x: Tensor) -> Tensor:
        """Predicted objective ``(n,)`` of features ``(n, d)``."""
        if self.num_features is None:
            raise RuntimeError(f"{type(self).__name__} must be fitted before predicting")
        x, _ = _check_xy(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"fitted on {self.num_features} features, got {x.shape[1]}")
        return self._predict(x)


class RidgePredictor(Predictor):
    r"""Ridge regression :math:`\hat y = x^\top w + b`,
    :math:`w = (X_c^\top X_c + \alpha I)^{-1} X_c^\top y_c` on centred data (the intercept
    :math:`b = \bar y - \bar x^\top w` is not penalised); at :math:`\alpha = 0` the
    minimum-norm least-squares :math:`w = X_c^{+} y_c` (one-hot columns are collinear).

    Args:
        alpha (float): the penalty :math:`\alpha \ge 0` (default: ``1.0``).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha >= 0 or not math.isfinite(alpha):
            raise ValueError(f"alpha must be non-negative and finite, got {alpha}")
        self.alpha = float(alpha)

    def fit(self, x: Tensor, y: Tensor) -> RidgePredictor:
        x, y = _check_xy(x, y)
        x64, y64 = x.double(), y.double()  # type: ignore[union-attr]
        x_mean, y_mean = x64.mean(0), y64.mean()
        xc, yc = x64 - x_mean, y64 - y_mean
        if self.alpha > 0:
            eye = torch.eye(x.shape[1], dtype=x64.dtype, device=x.device)
            w = torch.linalg.solve(xc.T @ xc + self.alpha * eye, xc.T @ yc)
        else:  # one-hot features are collinear: the minimum-norm least-squares solution
            w = torch.linalg.pinv(xc) @ yc
        self.weight = w.to(x.dtype)
        self.bias = float(y_mean - x_mean @ w)
        self.num_features = x.shape[1]
        return self

    def _predict(self, x: Tensor) -> Tensor:
        return x @ self.weight.to(x.device) + self.bias

    def __repr__(self) -> str:
        return f"RidgePredictor(alpha={self.alpha})"


class MLPPredictor(Predictor):
    """A ReLU MLP regressor trained full-batch with Adam on the standardised targets.

    Args:
        hidden (int): hidden width (default: ``64``).
        layers (int): hidden layers (default: ``2``).
        epochs (int): full-batch Adam steps (default: ``300``).
        lr (float): learning rate (default: ``1e-2``).
        weight_decay (float): Adam weight decay (default: ``1e-4``).
        seed (int, optional): seeds the initial weights (default: :obj:`None`).
    """

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        epochs: int = 300,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        seed: int | None = None,
    ) -> None:
        check_positive(hidden=hidden, layers=layers, epochs=epochs)
        if not lr > 0 or not weight_decay >= 0 or not math.isfinite(lr + weight_decay):
            raise ValueError(f"lr must be positive and weight_decay non-negative (both finite), "
                             f"got {lr}, {weight_decay}")
        self.hidden, self.layers, self.epochs = hidden, layers, epochs
        self.lr, self.weight_decay, self.seed = lr, weight_decay, seed
        self.net: nn.Module | None = None

    def fit(self, x: Tensor, y: Tensor) -> MLPPredictor:
        x, y = _check_xy(x, y)
        assert y is not None
        self.y_mean, self.y_std = y.mean(), y.std(unbiased=False).clamp_min(1e-12)
        widths = [x.shape[1]] + [self.hidden] * self.layers
        modules: list[nn.Module] = []
        with torch.random.fork_rng(devices=[]):
            if self.seed is not None:
                torch.manual_seed(self.seed)
            for a, b in zip(widths[:-1], widths[1:], strict=True):
                modules += [nn.Linear(a, b), nn.ReLU()]
            modules.append(nn.Linear(widths[-1], 1))
            net = nn.Sequential(*modules).to(device=x.device, dtype=x.dtype)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        target = (y - self.y_mean) / self.y_std
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(x)[:, 0], target)
            loss.backward()
            opt.step()
        self.net = net.eval()
        self.num_features = x.shape[1]
        return self

    @torch.no_grad()
    def _predict(self, x: Tensor) -> Tensor:
        assert self.net is not None
        return self.net(x)[:, 0] * self.y_std + self.y_mean

    def __repr__(self) -> str:
        return f"MLPPredictor(hidden={self.hidden}, layers={self.layers}, epochs={self.epochs})"


def make_predictor(spec: str | Predictor, seed: int | None = None) -> Predictor:
    """A fresh predictor from ``"ridge"`` / ``"mlp"``, or ``spec`` itself if it is one."""
    if isinstance(spec, Predictor):
        return spec
    if spec == "ridge":
        return RidgePredictor()
    if spec == "mlp":
        return MLPPredictor(seed=seed)
    raise ValueError(f"predictor must be 'ridge', 'mlp' or a Predictor, got {spec!r}")


# -- Pareto fronts (maximisation) ---------------------------------------------------------------
def _points(points: Tensor) -> Tensor:
    points = torch.as_tensor(points, dtype=torch.float64)
    if points.dim() != 2 or points.shape[1] == 0:
        raise ValueError(f"points must have shape (n, m > 0), got {tuple(points.shape)}")
    if torch.isnan(points).any():
        raise ValueError("points hold NaN")
    return points


def dominates(a: Tensor, b: Tensor) -> Tensor:
    """``a`` dominates ``b``: no worse in every objective and better in one (broadcasts)."""
    return (a >= b).all(-1) & (a > b).any(-1)


def pareto_mask(points: Tensor) -> Tensor:
    """``(n,)`` boolean: which of the ``(n, m)`` points no other point dominates."""
    p = _points(points)
    return ~dominates(p[:, None, :], p[None, :, :]).any(0)


def non_dominated_sort(points: Tensor) -> list[list[int]]:
    """NSGA-II's fronts: indices of the non-dominated points, then of those dominated only by
    the first front, and so on (every index once)."""
    p = _points(points)
    dom = dominates(p[:, None, :], p[None, :, :])  # dom[i, j]: i dominates j
    count = dom.sum(0)
    fronts: list[list[int]] = []
    current = torch.nonzero(count == 0).flatten()
    while current.numel():
        fronts.append(current.tolist())
        count = count - dom[current].sum(0)
        count[current] = -1  # placed
        current = torch.nonzero(count == 0).flatten()
    return fronts


def crowding_distance(points: Tensor) -> Tensor:
    r"""NSGA-II's crowding distance of each point of one front, ``(n,)``.

    Per objective, the points are sorted and each interior point gets the gap between its
    neighbours divided by the objective's range; the two ends get :math:`\infty`.
    """
    p = _points(points)
    n, m = p.shape
    dist = torch.zeros(n, dtype=torch.float64)
    if n <= 2:
        return torch.full((n,), math.inf, dtype=torch.float64)
    for k in range(m):
        order = torch.argsort(p[:, k], stable=True)
        values = p[order, k]
        span = float(values[-1] - values[0])
        dist[order[0]] = dist[order[-1]] = math.inf
        if span > 0:
            dist[order[1:-1]] += (values[2:] - values[:-2]) / span
    return dist


def hypervolume(points: Tensor, reference: Tensor) -> float:
    r"""The volume dominated by ``points`` ``(n, m)`` and bounded by ``reference`` ``(m,)``:

    .. math::
        \mathrm{HV} = \lambda\Big(\bigcup_{p} [r_1, p_1] \times \dots \times [r_m, p_m]\Big)

    for maximised objectives; points not strictly better than the reference in every objective
    add nothing. Exact: a sweep in 2-D, slicing along the last objective above.
    """
    p = _points(points)
    ref = torch.as_tensor(reference, dtype=torch.float64)
    if ref.shape != (p.shape[1],) or not torch.isfinite(ref).all():
        raise ValueError(f"reference must be finite with shape ({p.shape[1]},)")
    p = p[(p > ref).all(1)]
    if not torch.isfinite(p).all():
        raise ValueError("points hold infinite values: the hypervolume is unbounded")
    return _hv(p - ref)


def _hv(p: Tensor) -> float:
    """Hypervolume of positive points against the origin."""
    if p.shape[0] == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(p.max())
    p = p[pareto_mask(p)]
    if p.shape[1] == 2:
        p = p[torch.argsort(p[:, 0], descending=True)]
        heights = torch.cat([p.new_zeros(1), torch.cummax(p[:, 1], 0).values[:-1]])
        return float((p[:, 0] * (p[:, 1] - heights).clamp_min(0)).sum())
    # slice along the last objective: between consecutive levels the section is the
    # (m-1)-D hypervolume of the points at or above the upper level
    levels = torch.unique(p[:, -1])
    volume, lower = 0.0, 0.0
    for level in levels.tolist():
        volume += (level - lower) * _hv(p[p[:, -1] >= level][:, :-1])
        lower = level
    return volume
