"""Sparse subspace variational inference (Li et al., "Training Bayesian Neural Networks with
Sparse Subspace Variational Inference", ICLR 2024, https://arxiv.org/abs/2402.11025).

Bayesian layers whose mean-field Gaussian posterior lives on a fixed number of active weight
coordinates (a :class:`~graphkit.extras.sparsity.masks.SparsityMask` on the posterior mean),
and a trainer that periodically swaps the least useful active coordinates for new ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.allocation import erdos_renyi, keep_count, round_counts, uniform
from graphkit.extras.sparsity.masks import apply_mask, get_mask, unstructured, update_mask

__all__ = [
    "SSVITrainer",
    "SparseBayesConv2d",
    "SparseBayesLinear",
    "expected_calibration_error",
    "gaussian_kl",
]

CRITERIA = ("snr", "mean")
GROWTH = ("random", "gradient")


def _inverse_softplus(x: float) -> float:
    return x + math.log(-math.expm1(-x))


def gaussian_kl(mu: Tensor, sigma: Tensor, prior_sigma: float) -> Tensor:
    r""":math:`\sum_i \mathrm{KL}(\mathcal N(\mu_i, \sigma_i^2)\,\|\,\mathcal N(0, s^2))
    = \sum_i \log\frac{s}{\sigma_i} + \frac{\sigma_i^2 + \mu_i^2}{2 s^2} - \frac12`."""
    if not 0.0 < prior_sigma < math.inf:
        raise ValueError(f"prior_sigma must be a positive finite number, got {prior_sigma}")
    if mu.shape != sigma.shape:
        raise ValueError(
            f"mu and sigma must have one shape, got {tuple(mu.shape)} and {tuple(sigma.shape)}"
        )
    return (
        math.log(prior_sigma) - sigma.log() + (sigma.square() + mu.square()) / (2 * prior_sigma**2)
    ).sum() - 0.5 * mu.numel()


class _SparseBayes(nn.Module):
    """Shared state of the sparse Bayesian layers: ``weight_mu`` (masked), ``weight_rho``."""

    weight_shape: tuple[int, ...]
    fan_in: int

    def _init_posterior(
        self, bias: bool, prior_sigma: float, init_sigma: float, density: float
    ) -> None:
        if not prior_sigma > 0 or not init_sigma > 0:
            raise ValueError(
                f"prior_sigma and init_sigma must be > 0, got {prior_sigma}, {init_sigma}"
            )
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {density}")
        self.prior_sigma, self.init_sigma = float(prior_sigma), float(init_sigma)
        self.weight_mu = nn.Parameter(torch.empty(self.weight_shape))
        self.weight_rho = nn.Parameter(torch.empty(self.weight_shape))
        self.bias = nn.Parameter(torch.empty(self.weight_shape[0])) if bias else None
        apply_mask(self, "weight_mu")
        self.sampling = True  # False: forward with the posterior mean
        self.track_grad = False
        self.sampled_weight: Tensor | None = None
        self.reset_parameters(density)

    @property
    def mask(self) -> Tensor:
        """Boolean buffer of the active coordinates (``True``: in the subspace)."""
        return get_mask(self, "weight_mu").mask

    @property
    def mu_latent(self) -> nn.Parameter:
        return self.parametrizations["weight_mu"].original

    def reset_parameters(self, density: float | None = None) -> None:
        """Means as ``nn.Linear`` initialises weights, :math:`\\sigma` = ``init_sigma``, a random
        active set of ``round(density * numel)`` coordinates (seed with ``torch.manual_seed``).
        ``density`` defaults to the layer's own (its construction's or the last one given)."""
        if density is None:
            density = self.density
        elif not 0.0 <= density <= 1.0:  # 0: SSVITrainer may allocate a small layer nothing
            raise ValueError(f"density must lie in [0, 1], got {density}")
        # kept so that a later argument-free reset does not make the layer dense
        self.density = float(density)
        bound = 1.0 / math.sqrt(self.fan_in)
        with torch.no_grad():
            self.mu_latent.uniform_(-bound, bound)
            self.weight_rho.fill_(_inverse_softplus(self.init_sigma))
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)
        mask = torch.zeros(self.mask.numel(), dtype=torch.bool, device=self.mask.device)
        order = torch.randperm(mask.numel()).to(mask.device)
        mask[order[: keep_count(density, mask.numel())]] = True
        update_mask(self, mask.view(self.mask.shape), "weight_mu")

    def sigma(self) -> Tensor:
        """Posterior standard deviations, zero off the active set."""
        return torch.where(self.mask, F.softplus(self.weight_rho), 0.0)

    def sample_weight(self) -> Tensor:
        r""":math:`w = \mu + \sigma \odot \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`,
        zero off the active set; :math:`\mu` itself when ``sampling`` is off."""
        mu = self.weight_mu
        if not self.sampling:
            return mu
        w = mu + self.sigma() * torch.randn_like(mu)
        if self.track_grad and w.requires_grad:
            # kept for gradient-guided growth: dL/dw is dense even where w is inactive
            w.retain_grad()
            self.sampled_weight = w
        return w

    def kl(self) -> Tensor:
        """KL divergence of the active coordinates' posterior from the prior."""
        mask = self.mask
        sigma = F.softplus(self.weight_rho[mask])
        return gaussian_kl(self.mu_latent[mask], sigma, self.prior_sigma)

    @property
    def active(self) -> int:
        return int(self.mask.sum())


class SparseBayesLinear(_SparseBayes):
    r"""Linear layer with a mean-field Gaussian posterior on a sparse set of weights (SSVI).

    .. math::
        y = x W^\top + b,\quad W_{ij} = \begin{cases}\mu_{ij} + \sigma_{ij}\varepsilon_{ij}
        & (i,j) \in \mathcal S \\ 0 & \text{otherwise}\end{cases},\quad
        \sigma = \mathrm{softplus}(\rho)

    with :math:`|\mathcal S| = s` fixed (the mask on ``weight_mu``). A fresh
    :math:`\varepsilon` is drawn each forward, in training and eval mode alike (average a few
    forwards for the predictive distribution); set ``layer.sampling = False`` to use
    :math:`\mu`. The bias is deterministic.

    Args:
        in_features (int): input width.
        out_features (int): output width.
        bias (bool): learn a bias. (default: ``True``)
        prior_sigma (float): prior :math:`\mathcal N(0, s^2)` scale. (default: ``1.0``)
        init_sigma (float): initial and re-grown :math:`\sigma`. (default: ``0.005``)
        density (float): initial share of active weights. (default: ``1.0``)

    Shapes:
        - input: :math:`(*, C_{in})`; output: :math:`(*, C_{out})`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        prior_sigma: float = 1.0,
        init_sigma: float = 0.005,
        density: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive(in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight_shape = (out_features, in_features)
        self.fan_in = in_features
        self._init_posterior(bias, prior_sigma, init_sigma, density)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.size(-1) != self.in_features:
            raise ValueError(
                f"SparseBayesLinear expects last dimension {self.in_features}, "
                f"got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.sample_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, active={self.active}, "
            f"prior_sigma={self.prior_sigma}"
        )


class SparseBayesConv2d(_SparseBayes):
    r"""2-D convolution with a mean-field Gaussian posterior on a sparse set of kernel weights;
    the same posterior and sampling as :class:`SparseBayesLinear`.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): square kernel size.
        stride (int): stride. (default: ``1``)
        padding (int): zero padding. (default: ``0``)
        bias (bool): learn a bias. (default: ``True``)
        prior_sigma (float): prior scale. (default: ``1.0``)
        init_sigma (float): initial and re-grown :math:`\sigma`. (default: ``0.005``)
        density (float): initial share of active weights. (default: ``1.0``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`; output: :math:`(B, C_{out}, H', W')`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        prior_sigma: float = 1.0,
        init_sigma: float = 0.005,
        density: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
        )
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight_shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.fan_in = in_channels * kernel_size * kernel_size
        self._init_posterior(bias, prior_sigma, init_sigma, density)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f"SparseBayesConv2d expects (B, {self.in_channels}, H, W), "
                f"got shape {tuple(x.shape)}"
            )
        return F.conv2d(x, self.sample_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, active={self.active}"
        )


@register_model(
    "ssvi",
    family="pruning",
    paper="Training Bayesian Neural Networks with Sparse Subspace Variational Inference",
)
class SSVITrainer:
    r"""Keeps a Bayesian network's posterior on ``density`` of its weights from init to end.

    At construction every :class:`SparseBayesLinear` / :class:`SparseBayesConv2d` of ``model``
    not already at its allocated count (``density`` of its weights for the uniform
    allocation) is re-initialised (``reset_parameters``) with a random active set of that
    many coordinates. Training alternates

    (a) ELBO steps on the active :math:`\mu, \rho` (the caller's optimiser; use
        :meth:`loss` for the per-sample negative ELBO
        :math:`\mathrm{NLL} + \mathrm{KL}(q\,\|\,p) / N`), and
    (b) every ``update_every`` steps (:meth:`step`, after the optimiser), in each layer, the
        ``drop_fraction`` share of active coordinates with the lowest criterion is removed,
        ``criterion="snr"``: :math:`|\mu| / \sigma`, ``"mean"``: :math:`|\mu|`, and the same
        number of inactive coordinates (not the ones just removed) is added, at random or by
        the largest :math:`|\partial L / \partial w|` of the last sampled weight
        (``grow="gradient"``), with :math:`\mu = 0`, :math:`\sigma` = the layer's
        ``init_sigma``.

    So the number of active coordinates is the same at every step. When an ``optimizer`` is
    given, its per-parameter state (e.g. Adam moments) is zeroed at the swapped coordinates so
    that stale momentum does not move a new coordinate.

    Args:
        model: a network built from the sparse Bayesian layers (others stay as they are).
        density: share :math:`s / D` of active coordinates, in ``(0, 1]``.
        update_every: :math:`T`, steps between subspace updates.
        criterion: ``"snr"`` or ``"mean"``. (default: ``"snr"``)
        drop_fraction: share of each layer's active set swapped per update, in ``[0, 1)``.
            (default: ``0.1``)
        grow: ``"random"`` or ``"gradient"``. (default: ``"random"``)
        allocation: split of the budget over layers: ``"uniform"`` (every layer at
            ``density``) or ``"erk"`` (Erdős–Rényi-kernel, which keeps small layers such as a
            2-input first layer denser); the total is ``round(density * all weights)``.
            (default: ``"uniform"``)
        optimizer: optional optimiser whose state to reset at swapped coordinates.
        generator: optional ``torch.Generator`` for the random choices.
    """

    def __init__(
        self,
        model: nn.Module,
        density: float,
        update_every: int,
        criterion: str = "snr",
        drop_fraction: float = 0.1,
        grow: str = "random",
        allocation: str = "uniform",
        optimizer: torch.optim.Optimizer | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {density}")
        check_positive(update_every=update_every)
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        if grow not in GROWTH:
            raise ValueError(f"grow must be one of {GROWTH}, got {grow!r}")
        if allocation not in ("uniform", "erk"):
            raise ValueError(f"allocation must be 'uniform' or 'erk', got {allocation!r}")
        check_fraction("drop_fraction", drop_fraction)
        self.layers = {n: m for n, m in model.named_modules() if isinstance(m, _SparseBayes)}
        if not self.layers:
            raise ValueError("the model has no SparseBayesLinear / SparseBayesConv2d layers")
        self.model, self.density, self.update_every = model, float(density), int(update_every)
        self.criterion, self.drop_fraction, self.grow = criterion, float(drop_fraction), grow
        self.optimizer, self.generator, self.allocation = optimizer, generator, allocation
        for layer in self.layers.values():
            layer.track_grad = grow == "gradient"
        shapes = {n: tuple(layer.mask.shape) for n, layer in self.layers.items()}
        if allocation == "erk":
            densities = erdos_renyi(shapes, self.density)
        else:
            densities = uniform(shapes, self.density)
        sizes = {n: layer.mask.numel() for n, layer in self.layers.items()}
        #: active coordinates per layer, fixed for the whole of training
        self.counts = round_counts(densities, sizes)
        for name, layer in self.layers.items():
            if layer.active != self.counts[name]:
                layer.reset_parameters(self.counts[name] / sizes[name])

    @staticmethod
    def _top(scores: Tensor, count: int) -> Tensor:
        """The ``count`` highest ``scores`` (the mask API's unstructured selection)."""
        return unstructured().select(scores, count / scores.numel())

    @torch.no_grad()
    def _set_mask(self, layer: _SparseBayes, mask: Tensor) -> Tensor:
        """Install ``mask``; new coordinates start at mu=0, sigma=init_sigma. Returns them."""
        new = mask & ~layer.mask
        update_mask(layer, mask, "weight_mu")  # zeroes mu off the mask
        layer.mu_latent[new] = 0.0
        layer.weight_rho[new] = _inverse_softplus(layer.init_sigma)
        return new

    def kl(self) -> Tensor:
        """Sum of the layers' KL terms."""
        return sum(layer.kl() for layer in self.layers.values())

    def loss(self, nll: Tensor, dataset_size: int) -> Tensor:
        """Per-sample negative ELBO: mean ``nll`` of the batch plus ``KL / dataset_size``."""
        check_positive(dataset_size=dataset_size)
        return nll + self.kl() / dataset_size

    def active_count(self) -> int:
        """Active coordinates over all sparse Bayesian layers."""
        return sum(layer.active for layer in self.layers.values())

    def criterion_scores(self, layer: _SparseBayes) -> Tensor:
        """Criterion of each coordinate (higher is kept)."""
        mu = layer.mu_latent.detach().abs()
        if self.criterion == "mean":
            return mu
        return mu / F.softplus(layer.weight_rho.detach())

    @torch.no_grad()
    def update(self) -> dict[str, int]:
        """Swap ``drop_fraction`` of each layer's active set; returns swapped counts."""
        swapped = {}
        for name, layer in self.layers.items():
            mask = layer.mask.clone()
            active = int(mask.sum())
            count = min(round(self.drop_fraction * active), mask.numel() - active)
            if count == 0:
                swapped[name] = 0
                continue
            score = self.criterion_scores(layer).masked_fill(~mask, math.inf)
            if torch.isnan(score).any():
                raise ValueError(f"layer {name!r} has NaN posterior parameters")
            dropped = self._top(-score, count)
            pool = ~mask  # new coordinates only: not the ones just removed
            if self.grow == "gradient":
                w = layer.sampled_weight
                if w is None or w.grad is None:
                    raise RuntimeError("grow='gradient' needs a backward pass before update()")
                grow_score = w.grad.abs().masked_fill(~pool, -1.0)
            else:
                noise = torch.rand(mask.shape, generator=self.generator).to(mask.device)
                grow_score = noise.masked_fill(~pool, -1.0)
            grown = self._top(grow_score, count)
            new = self._set_mask(layer, (mask & ~dropped) | grown)
            self._reset_state(layer, new | dropped)
            swapped[name] = count
        return swapped

    def _reset_state(self, layer: _SparseBayes, where: Tensor) -> None:
        if self.optimizer is None:
            return
        for param in (layer.mu_latent, layer.weight_rho):
            for value in self.optimizer.state.get(param, {}).values():
                if isinstance(value, Tensor) and value.shape == where.shape:
                    value[where] = 0.0

    def step(self, global_step: int) -> bool:
        """Update the subspace if ``global_step`` (``>= 1``) is a multiple of ``update_every``."""
        if global_step < 1 or global_step % self.update_every:
            return False
        self.update()
        return True

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(layers={len(self.layers)}, density={self.density}, "
            f"update_every={self.update_every}, criterion={self.criterion!r}, "
            f"allocation={self.allocation!r}, "
            f"drop_fraction={self.drop_fraction}, grow={self.grow!r})"
        )


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int = 15) -> float:
    r"""Expected calibration error :math:`\sum_b \frac{|B_b|}{n} |\mathrm{acc}(B_b) -
    \mathrm{conf}(B_b)|` over ``bins`` equal-width confidence bins.

    Shapes: ``probs`` :math:`(n, K)` (rows sum to 1), ``labels`` :math:`(n,)`.
    """
    check_positive(bins=bins)
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(
            f"need probs (n, K) and labels (n,), got {tuple(probs.shape)}, {tuple(labels.shape)}"
        )
    if probs.shape[0] == 0 or probs.shape[1] == 0:
        raise ValueError(f"probs must hold at least one sample and class, got {tuple(probs.shape)}")
    if not torch.isfinite(probs).all():
        raise ValueError("probs contain NaN or infinite values")
    if float(probs.min()) < -1e-6 or float(probs.max()) > 1 + 1e-6:  # logits as confidences
        raise ValueError("probs must lie in [0, 1] (pass probabilities, not logits)")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got {labels.dtype}")
    if int(labels.min()) < 0 or int(labels.max()) >= probs.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {probs.shape[1]}) for probs of {probs.shape[1]} classes, "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    conf, pred = probs.max(1)
    correct = (pred == labels).to(probs.dtype)
    idx = (conf * bins).long().clamp(max=bins - 1)
    total = 0.0
    for b in range(bins):
        inside = idx == b
        if inside.any():
            total += float(inside.sum()) * abs(float(correct[inside].mean() - conf[inside].mean()))
    return total / probs.shape[0]
