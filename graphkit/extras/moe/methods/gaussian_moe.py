"""Softmax-gated Gaussian mixture of experts with dense-to-sparse gates, its MLE and Voronoi loss.

Paper: `Is Temperature Sample Efficient for Softmax Gaussian Mixture of Experts?
<https://arxiv.org/abs/2401.13875>`_ (Nguyen, Akbarian and Ho, ICML 2024). A theory paper: the
artefact is the conditional density, the maximum-likelihood estimator and the parameter loss
used to measure how fast the estimator converges.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.registry import register_model

PAPER = "Is Temperature Sample Efficient for Softmax Gaussian Mixture of Experts?"
GATES = ("softmax", "temperature", "activation")
_LOG_2PI = math.log(2 * math.pi)


@register_model("gaussian_moe", family="moe", paper=PAPER)
class GaussianMoE(nn.Module):
    r"""Conditional density :math:`p(y \mid x) = \sum_k g_k(x)\,
    \mathcal{N}(y \mid a_k^\top x + b_k, \sigma_k^2)` with one of three gates:

    .. math::
        \text{softmax:}\quad & g(x) = \mathrm{softmax}(\beta_k^\top x + \beta_{k0}) \\
        \text{temperature:}\quad & g(x) = \mathrm{softmax}((\beta_k^\top x + \beta_{k0}) / \tau) \\
        \text{activation:}\quad & g(x) = \mathrm{softmax}((\sigma(\beta_k^\top x) + \beta_{k0})
            / \tau)

    :math:`\tau` is learned by the two dense-to-sparse gates. The temperature gate is invariant
    to scaling :math:`(\beta, \beta_0, \tau)` by a common factor, the interaction that the paper
    shows makes its parameters estimable no faster than :math:`1/\log n`; the activation gate
    passes the linear layer through :math:`\sigma` first, which breaks it. The bias
    :math:`\beta_{k0}` is added after :math:`\sigma` so that :math:`e^{\beta_{k0}/\tau}` is a
    mixing mass that can split among over-specified experts, as in the paper's Voronoi losses
    (which weight each fitted expert by :math:`e^{\beta_{k0}}`).

    Args:
        K: number of experts.
        d: input dimension.
        gate: ``"softmax"``, ``"temperature"`` or ``"activation"`` (default: ``"softmax"``).
        act: :math:`\sigma` of the activation gate (default: :func:`torch.tanh`).
        tau: initial temperature (default: 1.0; fixed at 1 for ``"softmax"``).

    Shapes:
        ``x (n, d)``, ``y (n,)``; :meth:`log_prob` ``(n,)``, :meth:`gate_probs` ``(n, K)``.
    """

    def __init__(
        self,
        K: int,
        d: int,
        gate: str = "softmax",
        act: Callable[[Tensor], Tensor] = torch.tanh,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        if K < 1 or d < 1:
            raise ValueError(f"K and d must be >= 1, got K={K}, d={d}")
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}; choose one of {GATES}")
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"tau must be a positive finite number, got {tau}")
        if gate == "softmax" and tau != 1.0:
            raise ValueError("the plain softmax gate has no temperature; use gate='temperature'")
        self.K, self.d, self.gate, self.act, self._tau0 = K, d, gate, act, tau
        self.beta = nn.Parameter(torch.empty(K, d))
        self.beta0 = nn.Parameter(torch.empty(K))
        self.a = nn.Parameter(torch.empty(K, d))
        self.b = nn.Parameter(torch.empty(K))
        self.log_sigma = nn.Parameter(torch.empty(K))
        if gate == "softmax":
            self.register_buffer("log_tau", torch.zeros(()))
        else:
            self.log_tau = nn.Parameter(torch.zeros(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = 1.0 / math.sqrt(self.d)
        nn.init.normal_(self.beta, std=std)
        nn.init.normal_(self.a, std=std)
        nn.init.normal_(self.b)
        nn.init.zeros_(self.beta0)
        nn.init.zeros_(self.log_sigma)
        with torch.no_grad():
            self.log_tau.fill_(math.log(self._tau0))

    @classmethod
    def from_params(
        cls,
        beta: Tensor,
        beta0: Tensor,
        a: Tensor,
        b: Tensor,
        sigma: Tensor,
        tau: float = 1.0,
        gate: str = "softmax",
        act: Callable[[Tensor], Tensor] = torch.tanh,
    ) -> GaussianMoE:
        """A model with the given parameters (``beta, a`` ``(K, d)``; the rest ``(K,)``)."""
        if beta.dim() != 2:
            raise ValueError(f"beta must be (K, d), got shape {tuple(beta.shape)}")
        K, d = beta.shape
        if a.shape != (K, d) or any(t.shape != (K,) for t in (beta0, b, sigma)):
            raise ValueError("beta and a must be (K, d); beta0, b and sigma must be (K,)")
        if not (sigma > 0).all():
            raise ValueError("sigma must be positive")
        model = cls(K, d, gate=gate, act=act, tau=tau).to(device=beta.device, dtype=beta.dtype)
        with torch.no_grad():
            for name, value in (("beta", beta), ("beta0", beta0), ("a", a), ("b", b)):
                getattr(model, name).copy_(value)
            model.log_sigma.copy_(sigma.log())
            model.log_tau.fill_(math.log(tau))  # again, now at the tensors' precision
        return model

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp()

    @property
    def sigma(self) -> Tensor:
        return self.log_sigma.exp()

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.d:
            raise ValueError(f"x must be (n, {self.d}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")

    def gate_scores(self, x: Tensor) -> Tensor:
        """The softmax's argument, ``(n, K)``."""
        self._check_x(x)
        s = x @ self.beta.T
        if self.gate == "activation":
            s = self.act(s)
        return (s + self.beta0) / self.tau

    def gate_probs(self, x: Tensor) -> Tensor:
        return F.softmax(self.gate_scores(x), dim=-1)

    def mean(self, x: Tensor) -> Tensor:
        """:math:`E[y \\mid x]`, shape ``(n,)``."""
        return (self.gate_probs(x) * (x @ self.a.T + self.b)).sum(-1)

    def log_prob(self, x: Tensor, y: Tensor) -> Tensor:
        """:math:`\\log p(y \\mid x)`, shape ``(n,)``."""
        if y.shape != x.shape[:1]:
            raise ValueError(
                f"y must be ({x.shape[0]},) for x {tuple(x.shape)}, got {tuple(y.shape)}"
            )
        log_gate = F.log_softmax(self.gate_scores(x), dim=-1)
        z = (y[:, None] - x @ self.a.T - self.b) / self.sigma
        log_normal = -0.5 * (z**2 + _LOG_2PI) - self.log_sigma
        return torch.logsumexp(log_gate + log_normal, dim=-1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.log_prob(x, y)

    @torch.no_grad()
    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw one :math:`y \\sim p(\\cdot \\mid x)` per row of ``x``."""
        k = torch.multinomial(self.gate_probs(x), 1, generator=generator).squeeze(1)
        noise = torch.randn(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)
        return (x * self.a[k]).sum(-1) + self.b[k] + self.sigma[k] * noise

    def extra_repr(self) -> str:
        return f"K={self.K}, d={self.d}, gate={self.gate!r}"


def fit_mle(
    model: GaussianMoE, x: Tensor, y: Tensor, max_iter: int = 500, tol: float = 1e-10
) -> float:
    """Maximum-likelihood fit of ``model`` to ``(x, y)`` in place, from its current parameters.

    Full-batch L-BFGS with a strong-Wolfe line search on the mean negative log-likelihood
    (the paper's estimator; EM would reach the same maximiser). Returns the final mean NLL.

    Args:
        model: the model to fit; its parameters are the starting point.
        x, y: data, ``(n, d)`` and ``(n,)``.
        max_iter: L-BFGS iterations (default: 500).
        tol: stop when the NLL or the step changes less than this (default: 1e-10).
    """
    model._check_x(x)
    if x.shape[0] == 0:
        raise ValueError("fit_mle needs at least one sample, x has none")
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must be of shape ({x.shape[0]},), got {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise ValueError("y must be finite, but it holds NaN or infinite values")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=tol,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = -model.log_prob(x, y).mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(-model.log_prob(x, y).mean())


def _atoms(model: GaussianMoE) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Each expert's mixing mass and its parameters, with the gate's shift invariance removed."""
    mass = F.softmax(model.beta0 / model.tau, dim=0)
    beta = model.beta
    if model.gate != "activation":
        # the softmax gates do not change when every beta_k moves by one vector: compare the
        # slopes after removing their mass-weighted mean, which undoes any such shift
        beta = beta - (mass[:, None] * beta).sum(0)
    return mass, beta, model.a, model.b, model.sigma, model.tau


@torch.no_grad()
def voronoi_loss(fitted: GaussianMoE, true: GaussianMoE) -> float:
    r"""Voronoi-cell loss between a fitted and a true mixture (the paper's estimation error).

    Each fitted expert :math:`i` joins the cell :math:`A_j` of its nearest true expert in
    :math:`\omega = (\beta, a, b, \sigma)`. With masses :math:`\pi = \mathrm{softmax}(\beta_0/\tau)`
    (invariant to a common shift of the biases):

    .. math::
        \mathcal{D} = \sum_j \Bigl|\sum_{i \in A_j} \pi_i - \pi^*_j\Bigr|
        + \sum_j \sum_{i \in A_j} \pi_i \bigl(\|\Delta\beta_{ij}\|^{r_j} + \|\Delta a_{ij}\|^{r_j}
        + |\Delta b_{ij}|^{r_j} + |\Delta\sigma_{ij}|^{r_j}\bigr) + |\tau - \tau^*|

    with :math:`r_j = 1` for a cell holding one fitted expert and :math:`r_j = 2` for a cell
    that several share (over-specified experts converge at half the rate, so their squared
    distances shrink like the exactly-fitted ones). For the two softmax-type gates,
    :math:`\beta` is compared after removing its mass-weighted mean (the gate's shift
    invariance); the temperature term is left out for ``"softmax"``.

    Args:
        fitted: the estimate (any number of experts).
        true: the true mixture, same ``d`` and gate.
    """
    if fitted.d != true.d or fitted.gate != true.gate:
        raise ValueError(
            f"models differ: d {fitted.d} vs {true.d}, gate {fitted.gate!r} vs {true.gate!r}"
        )
    pi, beta, a, b, sigma, tau = _atoms(fitted)
    pi_t, beta_t, a_t, b_t, sigma_t, tau_t = _atoms(true)
    omega = torch.cat([beta, a, b[:, None], sigma[:, None]], dim=1)
    omega_t = torch.cat([beta_t, a_t, b_t[:, None], sigma_t[:, None]], dim=1)
    cell = torch.cdist(omega, omega_t).argmin(dim=1)
    loss = 0.0
    for j in range(true.K):
        members = (cell == j).nonzero(as_tuple=True)[0]
        loss += abs(float(pi[members].sum() - pi_t[j]))
        r = 1 if members.numel() == 1 else 2
        for i in members.tolist():
            dist = (
                (beta[i] - beta_t[j]).norm() ** r
                + (a[i] - a_t[j]).norm() ** r
                + (b[i] - b_t[j]).abs() ** r
                + (sigma[i] - sigma_t[j]).abs() ** r
            )
            loss += float(pi[i] * dist)
    if true.gate != "softmax":
        loss += abs(float(tau - tau_t))
    return loss
