r"""Likelihood models of quantised latents for learned image compression.

Two models, written for graphkit (CompressAI is not needed; it is only required to write real
bitstreams, which this module does not do):

- :class:`GaussianConditional`: the conditional model of `Variational Image Compression with a
  Scale Hyperprior <https://arxiv.org/abs/1802.01436>`_ (Ballé et al., 2018) with a mean
  (`Joint Autoregressive and Hierarchical Priors <https://arxiv.org/abs/1809.02736>`_,
  Minnen et al., 2018): a Gaussian convolved with a unit box,

  .. math::
      p(\hat y \mid \mu, \sigma) = \Phi\Big(\frac{\hat y - \mu + \tfrac12}{\sigma}\Big)
      - \Phi\Big(\frac{\hat y - \mu - \tfrac12}{\sigma}\Big);

- :class:`EntropyBottleneck`: the factorised (per-channel, non-parametric) prior of the same
  paper (appendix 6.1): a learned monotone CDF :math:`c = \mathrm{sigmoid}(f_K\circ\cdots
  \circ f_1)`, each :math:`f_k(x) = g_k(\mathrm{softplus}(H_k) x + b_k)` with
  :math:`g_k(x) = x + \tanh(a_k) \odot \tanh(x)`, and :math:`p(\hat z) = c(\hat z + \tfrac12)
  - c(\hat z - \tfrac12)`.

Both telescope: summed over all integers (or all integer offsets from :math:`\mu`), the
likelihoods are exactly one. Training replaces rounding by additive uniform noise
(``"noise"``) or by rounding with a straight-through gradient (``"ste"``); evaluation rounds
(``"round"``). The rate in bits is :math:`-\sum \log_2 p` (:func:`bits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive

_MODES = ("noise", "ste", "round")


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def _broadcasts_to(t: Tensor, x: Tensor) -> bool:
    """``t`` broadcasts to ``x``'s shape (metadata only)."""
    try:
        return torch.broadcast_shapes(x.shape, t.shape) == x.shape
    except RuntimeError:
        return False


def quantize(x: Tensor, mode: str, offset: Tensor | None = None) -> Tensor:
    r"""Quantise ``x`` to the lattice :math:`\mathrm{offset} + \mathbb Z`.

    Args:
        x (Tensor): values.
        mode (str): ``"noise"`` adds :math:`U(-\tfrac12, \tfrac12)` (the training proxy),
            ``"ste"`` rounds with a straight-through gradient, ``"round"`` rounds.
        offset (Tensor, optional): lattice offset broadcastable to ``x`` (e.g. the mean).
    """
    if mode not in _MODES:
        raise ValueError(f"quantisation mode must be one of {_MODES}, got {mode!r}")
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    if offset is not None and not _broadcasts_to(offset, x):
        raise ValueError(
            f"offset of shape {tuple(offset.shape)} does not broadcast to x {tuple(x.shape)}"
        )
    shifted = x if offset is None else x - offset
    out = ste_round(shifted) if mode == "ste" else torch.round(shifted)
    return out if offset is None else out + offset


def bits(likelihoods: Tensor) -> Tensor:
    r"""Rate in bits, :math:`-\sum \log_2 p`."""
    return -torch.log2(likelihoods).sum()


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


class GaussianConditional(nn.Module):
    r"""Likelihood of quantised values under a per-element Gaussian convolved with a unit box.

    .. math::
        p(\hat y) = \Phi\Big(\frac{\tfrac12 - |\hat y - \mu|}{\sigma}\Big)
        - \Phi\Big(\frac{-\tfrac12 - |\hat y - \mu|}{\sigma}\Big)

    (the symmetric form of the box-convolved Gaussian: equal to the textbook difference, but
    evaluated in the lower tail where it is accurate). Scales are clamped below at
    ``scale_bound`` and likelihoods at ``likelihood_bound`` so the rate stays finite.

    Args:
        scale_bound (float): smallest scale :math:`\sigma`. (default: ``0.11``, as Ballé et al.)
        likelihood_bound (float): smallest likelihood; ``0`` disables it. (default: ``1e-9``)

    Shapes:
        - ``forward(y, scales, means=None, mode)``: all broadcastable to :math:`y`; returns
          ``(y_hat, likelihoods)`` of the shape of :math:`y`.
    """

    def __init__(self, scale_bound: float = 0.11, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        if not scale_bound > 0 or not likelihood_bound >= 0:  # also rejects NaN
            raise ValueError(
                f"need scale_bound > 0 and likelihood_bound >= 0, got {scale_bound}, "
                f"{likelihood_bound}"
            )
        self.scale_bound = scale_bound
        self.likelihood_bound = likelihood_bound

    def likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """The box-convolved Gaussian density at ``y_hat`` (no lower bound applied)."""
        if torch.isnan(scales).any():
            raise ValueError("GaussianConditional got NaN scales")
        centred = y_hat if means is None else y_hat - means
        s = scales.clamp_min(self.scale_bound)
        v = centred.abs()
        return _std_normal_cdf((0.5 - v) / s) - _std_normal_cdf((-0.5 - v) / s)

    def forward(
        self, y: Tensor, scales: Tensor, means: Tensor | None = None, mode: str | None = None
    ) -> tuple[Tensor, Tensor]:
        for name, t in (("scales", scales), ("means", means)):
            if t is not None and not _broadcasts_to(t, y):
                raise ValueError(
                    f"{name} must have (or broadcast to) y's shape {tuple(y.shape)}, "
                    f"got {tuple(t.shape)}"
                )
        mode = mode or ("noise" if self.training else "round")
        y_hat = quantize(y, mode, means)
        p = self.likelihood(y_hat, scales, means)
        if self.likelihood_bound > 0:
            p = p.clamp_min(self.likelihood_bound)
        return y_hat, p

    def extra_repr(self) -> str:
        return f"scale_bound={self.scale_bound}, likelihood_bound={self.likelihood_bound}"


class EntropyBottleneck(nn.Module):
    r"""The factorised prior: one learned monotone CDF per channel (Ballé et al., 2018).

    .. math::
        c(x) = \mathrm{sigmoid}\big(f_K(\cdots f_1(x))\big),\qquad
        f_k(u) = g_k\big(\mathrm{softplus}(H_k)\,u + b_k\big),\qquad
        g_k(u) = u + \tanh(a_k) \odot \tanh(u)

    (the last :math:`f_K` has no :math:`g_K`). Positive matrices and :math:`\tanh(a_k) \ge -1`
    make every :math:`f_k` non-decreasing, so :math:`c` is a CDF and
    :math:`p(\hat z) = c(\hat z + \frac12) - c(\hat z - \frac12)` sums to one over the
    integers. Evaluated as :math:`|\,\sigma(-s(l_+)) - \sigma(-s(l_-))|` with
    :math:`s = \mathrm{sign}(l_+ + l_-)`, which stays accurate in the upper tail.
    Quantisation is to the integers (no learned median offset).

    Args:
        channels (int): channels :math:`C` of the latent.
        filters (sequence of int): hidden widths of the density network.
            (default: ``(3, 3, 3, 3)``)
        init_scale (float): the initial CDF spreads over about :math:`\pm` this. (default:
            ``10``)
        likelihood_bound (float): smallest likelihood. (default: ``1e-9``)

    Shapes:
        - ``forward(z, mode)``: :math:`z` of shape :math:`(B, C, *)`; returns ``(z_hat,
          likelihoods)`` of the same shape.
    """

    def __init__(
        self,
        channels: int,
        filters: Sequence[int] = (3, 3, 3, 3),
        init_scale: float = 10.0,
        likelihood_bound: float = 1e-9,
    ) -> None:
        super().__init__()
        check_positive(channels=channels, **{f"filters[{i}]": f for i, f in enumerate(filters)})
        if not 0 < init_scale < math.inf:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        if not likelihood_bound >= 0:
            raise ValueError(f"likelihood_bound must be >= 0, got {likelihood_bound}")
        self.channels = channels
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = init_scale
        self.likelihood_bound = likelihood_bound
        dims = (1, *self.filters, 1)
        self.matrices = nn.ParameterList(
            nn.Parameter(torch.empty(channels, dims[i + 1], dims[i])) for i in range(len(dims) - 1)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(channels, dims[i + 1], 1)) for i in range(len(dims) - 1)
        )
        self.factors = nn.ParameterList(
            nn.Parameter(torch.empty(channels, dims[i + 1], 1)) for i in range(len(dims) - 2)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Ballé's initialisation: the composed map starts close to a wide logistic."""
        dims = (1, *self.filters, 1)
        scale = self.init_scale ** (1 / (len(dims) - 1))
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            nn.init.constant_(m, math.log(math.expm1(1 / scale / dims[i + 1])))
            nn.init.uniform_(b, -0.5, 0.5)
        for a in self.factors:
            nn.init.zeros_(a)

    def _logits_cdf(self, x: Tensor) -> Tensor:
        # x: (C, 1, n) -> logits of the CDF, (C, 1, n)
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def cdf(self, x: Tensor) -> Tensor:
        """The per-channel CDF at ``x`` of shape :math:`(B, C, *)`."""
        return torch.sigmoid(self._per_channel(x, self._logits_cdf))

    def _per_channel(self, x: Tensor, fn) -> Tensor:
        if x.dim() < 2 or x.size(1) != self.channels:
            raise ValueError(
                f"EntropyBottleneck expects (B, {self.channels}, ...), got {tuple(x.shape)}"
            )
        perm = [1, 0, *range(2, x.dim())]
        flat = x.permute(*perm).reshape(self.channels, 1, -1)
        out = fn(flat).reshape(x.permute(*perm).shape)
        return out.permute(*perm)

    def likelihood(self, z_hat: Tensor) -> Tensor:
        """:math:`c(\\hat z + \\tfrac12) - c(\\hat z - \\tfrac12)` (no lower bound applied)."""

        def fn(v: Tensor) -> Tensor:
            lower = self._logits_cdf(v - 0.5)
            upper = self._logits_cdf(v + 0.5)
            sign = -torch.sign(lower + upper).detach()
            return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()

        return self._per_channel(z_hat, fn)

    def forward(self, z: Tensor, mode: str | None = None) -> tuple[Tensor, Tensor]:
        if torch.isnan(z).any():
            raise ValueError("EntropyBottleneck got NaN latents")
        mode = mode or ("noise" if self.training else "round")
        z_hat = quantize(z, mode)
        p = self.likelihood(z_hat)
        if self.likelihood_bound > 0:
            p = p.clamp_min(self.likelihood_bound)
        return z_hat, p

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filters={self.filters}, init_scale={self.init_scale}"
