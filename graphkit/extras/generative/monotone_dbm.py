r"""Monotone deep Boltzmann machines: mean-field inference with a unique, always-reached solution.

From `Monotone deep Boltzmann machines <https://arxiv.org/abs/2307.04990>`_ (Feng, Winston and
Kolter). A Boltzmann machine over layers of Bernoulli units and categorical groups has energy
:math:`E(x) = -\tfrac12 x^\top W x - b^\top x`; its mean-field marginals :math:`q` minimise

.. math::
    \mathcal{F}(q) = -\tfrac12 q^\top W q - b^\top q + \sum_{\text{groups}} \sum_i q_i \log q_i,

whose stationary points are :math:`q = \sigma(Wq + b)` (sigmoid per Bernoulli unit, softmax per
group). In general there are many. Writing :math:`\mathcal{F}(q) = \tfrac12 q^\top (I - W) q
- b^\top q + g(q)` with :math:`g = (\text{negative entropy}) - \tfrac12\|q\|^2` (convex, since
the negative entropy is 1-strongly convex), the monotone DEQ parametrisation

.. math::
    W = (1 - m) I - A^\top A \;(+\, B - B^\top), \qquad \operatorname{sym}(I - W) \succeq m I,

makes :math:`\mathcal{F}` strongly convex: the mean-field solution exists, is unique and is the
zero of the strongly monotone inclusion :math:`0 \in (I - W) q - b + \partial g(q)`. The
proximal map of :math:`g` with step 1 is exactly the sigmoid/softmax
(:math:`\arg\min_z \tfrac12\|z - v\|^2 + g(z) = \arg\min_z g(z) + \tfrac12\|z\|^2 - z^\top v`),
so Peaceman–Rachford splitting with step 1 solves it with guaranteed linear convergence:

.. math::
    u' = 2z - u,\quad z' = (2I - W)^{-1}(u' + b),\quad u \leftarrow 2z' - u',\quad
    z \leftarrow \sigma(u).

Gradients come from implicit differentiation at the fixed point:
:math:`\partial\ell/\partial p = D\,(I - W^\top D)^{-1}\,\partial\ell/\partial q` with
:math:`D = \partial\sigma/\partial p` and :math:`p = Wq + b`.

Layers couple only to themselves and their neighbours: :math:`A` is block lower-bidiagonal, so
:math:`A^\top A` is block tridiagonal (arbitrary intra-layer connections, as the paper allows).
Observed units are clamped by conditioning: the free units solve the same problem restricted
to them (a principal block keeps :math:`\operatorname{sym}(I - W) \succeq mI`) with the
observed values entering the bias.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model

PAPER = "Monotone deep Boltzmann machines"

LayerSpec = tuple[int, int]  # (units, group size); group 1 = Bernoulli units


def _parse_layers(layers: Sequence[int | Sequence[int]]) -> list[LayerSpec]:
    if len(layers) == 0:
        raise ValueError("layers must name at least one layer")
    out = []
    for i, spec in enumerate(layers):
        units, group = (spec, 1) if isinstance(spec, int) else tuple(spec)
        check_positive(**{f"layers[{i}] units": units, f"layers[{i}] group": group})
        if units % group:
            raise ValueError(f"layers[{i}]: group size {group} must divide its {units} units")
        out.append((int(units), int(group)))
    return out


class MeanFieldActivation:
    """The mean-field map :math:`\\sigma` of a layered machine and its Jacobian, per layer.

    Args:
        layers: ``(units, group)`` per layer; ``group == 1`` is Bernoulli units (sigmoid),
            ``group >= 2`` categorical groups of that many consecutive units (softmax).
    """

    def __init__(self, layers: Sequence[LayerSpec]) -> None:
        self.layers = list(layers)
        self.size = sum(u for u, _ in self.layers)

    def _slices(self):
        start = 0
        for units, group in self.layers:
            yield slice(start, start + units), units, group
            start += units

    def __call__(self, p: Tensor) -> Tensor:
        parts = []
        for sl, units, group in self._slices():
            v = p[..., sl]
            if group == 1:
                parts.append(torch.sigmoid(v))
            else:
                shape = v.shape[:-1] + (units // group, group)
                parts.append(torch.softmax(v.reshape(shape), dim=-1).reshape(v.shape))
        return torch.cat(parts, dim=-1)

    def jacobian_apply(self, s: Tensor, v: Tensor) -> Tensor:
        """:math:`D v` with :math:`D = \\partial\\sigma/\\partial p` at output ``s``
        (``(B, n)``); ``v`` is ``(B, n, k)``, ``D`` acting on its unit dimension."""
        parts = []
        for sl, units, group in self._slices():
            sv, vv = s[:, sl].unsqueeze(-1), v[:, sl]
            if group == 1:
                parts.append(sv * (1 - sv) * vv)
            else:
                b, k = vv.shape[0], vv.shape[-1]
                sg = sv.reshape(b, units // group, group, 1)
                vg = vv.reshape(b, units // group, group, k)
                sv_v = sg * vg
                parts.append((sv_v - sg * sv_v.sum(dim=2, keepdim=True)).reshape(b, units, k))
        return torch.cat(parts, dim=1)

    def neg_entropy(self, q: Tensor) -> Tensor:
        """:math:`\\sum q\\log q` over all units (plus :math:`(1-q)\\log(1-q)` for Bernoulli
        units), per sample."""
        total = torch.zeros(q.shape[:-1], dtype=q.dtype, device=q.device)
        for sl, _, group in self._slices():
            x = q[..., sl]
            total = total + torch.special.xlogy(x, x).sum(-1)
            if group == 1:
                total = total + torch.special.xlogy(1 - x, 1 - x).sum(-1)
        return total

    def initial(self, batch: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The uniform marginals: 1/2 for Bernoulli units, 1/k in a group of k."""
        parts = [
            torch.full(
                (batch, units), 0.5 if group == 1 else 1.0 / group, dtype=dtype, device=device
            )
            for _, units, group in self._slices()
        ]
        return torch.cat(parts, dim=-1)


def _matvec(M: Tensor, x: Tensor) -> Tensor:
    """``M x`` per sample for ``M`` shared ``(n, n)`` (one GEMM) or per sample ``(B, n, n)``."""
    if M.dim() == 2:
        return x @ M.T
    return torch.bmm(M, x.unsqueeze(-1)).squeeze(-1)


def _peaceman_rachford(
    W: Tensor, bias: Tensor, act: MeanFieldActivation, u0: Tensor, tol: float, max_iter: int
) -> tuple[Tensor, int, float]:
    n = W.shape[-1]
    eye = torch.eye(n, dtype=W.dtype, device=W.device)
    # resolvent of q -> (I - W) q - b with step 1: (2I - W)^{-1}(. + b)
    V = torch.linalg.inv(2 * eye - W)
    u = u0
    z = act(u)
    err = float("inf")
    for it in range(1, max_iter + 1):
        u_half = 2 * z - u
        z_half = _matvec(V, u_half + bias)
        u = 2 * z_half - u_half
        z_new = act(u)
        err = (z_new - z).abs().max().item()
        z = z_new
        if err < tol:
            return z, it, err
    return z, max_iter, err


class _MeanFieldFixedPoint(torch.autograd.Function):
    """Solves :math:`q = \\sigma(Wq + b)` without a graph; implicit gradients in backward."""

    @staticmethod
    def forward(ctx, W, bias, u0, act, tol, max_iter, stats):
        with torch.no_grad():
            z, iters, err = _peaceman_rachford(W, bias, act, u0, tol, max_iter)
        stats.update(iterations=iters, residual=err)
        if not err < tol:
            warnings.warn(
                f"mean-field splitting stopped after {max_iter} iterations with step change "
                f"{err:.3g} > tol {tol:g}",
                RuntimeWarning,
                stacklevel=3,
            )
        ctx.act = act
        ctx.save_for_backward(W, z)
        return z

    @staticmethod
    def backward(ctx, gz):
        W, z = ctx.saved_tensors
        act = ctx.act
        B, n = z.shape
        Wb = W.expand(B, n, n)
        # I - W^T D = (I - D W)^T; D acts on W's rows
        DW = act.jacobian_apply(z, Wb)
        M = torch.eye(n, dtype=W.dtype, device=W.device) - DW.transpose(1, 2)
        y = torch.linalg.solve(M, gz.unsqueeze(-1))
        gp = act.jacobian_apply(z, y).squeeze(-1)
        gW = gp.unsqueeze(-1) * z.unsqueeze(-2)
        if W.dim() == 2:
            gW = gW.sum(0)
        gbias = gp if ctx.needs_input_grad[1] else None
        return gW, gbias, None, None, None, None, None


def mean_field_fixed_point(
    W: Tensor,
    bias: Tensor,
    layers: Sequence[int | Sequence[int]],
    values: Tensor | None = None,
    observed: Tensor | None = None,
    init: Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 2000,
    stats: dict | None = None,
) -> Tensor:
    r"""Mean-field marginals :math:`q^\star = \sigma(W q^\star + b)` of a layered machine.

    Peaceman–Rachford splitting with step 1 (see the module docstring); unique and reached
    from any start when :math:`\operatorname{sym}(I - W) \succeq mI` for some :math:`m > 0`.
    Differentiable in ``W``, ``bias`` and ``values`` by implicit differentiation.

    Args:
        W: ``(n, n)`` couplings.
        bias: ``(n,)`` or ``(B, n)`` biases.
        layers: ``units`` (Bernoulli) or ``(units, group)`` per layer, summing to ``n``.
        values: ``(B, n)`` clamped values, read where ``observed``. (default: ``None``)
        observed: ``(n,)`` or ``(B, n)`` boolean mask of clamped units; a categorical group
            is clamped whole or not at all. (default: ``None``, nothing clamped)
        init: ``(B, n)`` starting pre-activations :math:`u_0` (the start is
            :math:`\sigma(u_0)`). (default: ``None``, zeros)
        tol: stop when no marginal moves by more than ``tol`` in one step. (default: ``1e-6``)
        max_iter: iteration cap; a warning is raised when it is reached. (default: ``2000``)
        stats: a dict that receives ``iterations`` and ``residual``. (default: ``None``)

    Returns:
        ``(B, n)`` marginals, equal to ``values`` on the observed units.
    """
    specs = _parse_layers(layers)
    act = MeanFieldActivation(specs)
    n = act.size
    if W.shape != (n, n):
        raise ValueError(f"W must be ({n}, {n}) for these layers, got {tuple(W.shape)}")
    if bias.shape[-1:] != (n,) or bias.dim() > 2:
        raise ValueError(f"bias must be ({n},) or (B, {n}), got {tuple(bias.shape)}")
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"need tol > 0 and max_iter >= 1, got {tol} and {max_iter}")
    batch = next((t.shape[0] for t in (values, init) if t is not None), None)
    batch = batch if batch is not None else (bias.shape[0] if bias.dim() == 2 else 1)
    if observed is not None:
        if values is None:
            raise ValueError("observed units need their values")
        if values.shape != (batch, n):
            raise ValueError(f"values must be (B, {n}), got {tuple(values.shape)}")
        if observed.dtype != torch.bool or observed.shape not in ((n,), (batch, n)):
            raise ValueError(f"observed must be a bool mask of shape ({n},) or (B, {n})")
        _check_group_clamps(act, observed)
        obs_values = torch.where(observed, values, torch.zeros_like(values))
        if torch.isnan(obs_values).any():
            raise ValueError("values are NaN on observed units")
        free = (~observed).to(W.dtype)
        # conditioning: couplings among free units, observed values folded into the bias
        W_eff = W * free.unsqueeze(-1) * free.unsqueeze(-2)
        bias_eff = (bias + obs_values @ W.T) * free
    else:
        W_eff, bias_eff = W, bias
    bias_eff = bias_eff.expand(batch, n)
    if init is None:
        init = torch.zeros(batch, n, dtype=W.dtype, device=W.device)
    elif init.shape != (batch, n):
        raise ValueError(f"init must be (B, {n}), got {tuple(init.shape)}")
    stats = {} if stats is None else stats
    q = _MeanFieldFixedPoint.apply(W_eff, bias_eff, init, act, tol, max_iter, stats)
    if observed is not None:
        q = torch.where(observed, values, q)
    return q


def _check_group_clamps(act: MeanFieldActivation, observed: Tensor) -> None:
    for sl, units, group in act._slices():
        if group > 1:
            g = observed[..., sl].reshape(*observed.shape[:-1], units // group, group)
            if (g.any(-1) != g.all(-1)).any():
                raise ValueError("a categorical group must be observed whole or not at all")


class MonotoneDBM(nn.Module):
    r"""A monotone deep Boltzmann machine over dense layers (Feng, Winston and Kolter, 2023).

    .. math::
        W = (1 - m) I - A^\top A \;(+\, B - B^\top), \qquad
        q^\star = \sigma(W q^\star + b)

    :math:`A` is block lower-bidiagonal over the layers (blocks :math:`A_{ii}` and
    :math:`A_{i+1,i}`), so :math:`W` couples each layer to itself and its neighbours. With
    ``skew=False`` (default) :math:`W` is symmetric and :math:`q^\star` is the unique
    mean-field solution of the Boltzmann machine with energy
    :math:`-\tfrac12 x^\top W x - b^\top x`; ``skew=True`` adds the skew term
    :math:`B - B^\top` of the general monotone DEQ (same block pattern), which keeps the
    fixed point unique but is no longer a symmetric energy. A task such as image completion
    clamps the observed pixels; classification adds a categorical label layer.

    Args:
        layers (sequence): per layer ``units`` (Bernoulli units) or ``(units, group)``
            (categorical groups of ``group`` consecutive units).
        m (float): monotonicity margin, :math:`\operatorname{sym}(I - W) \succeq mI`, in
            ``(0, 1]``. (default: ``0.1``)
        skew (bool): add :math:`B - B^\top`. (default: ``False``)
        init_scale (float): standard deviation of :math:`A`'s entries is
            ``init_scale / sqrt(units of its column layer)``. (default: ``0.5``)
        tol (float): solver tolerance. (default: ``1e-6``)
        max_iter (int): solver iteration cap. (default: ``2000``)

    Shapes:
        - values: :math:`(B, n)`, observed: :math:`(n,)` or :math:`(B, n)` boolean
        - output: :math:`(B, n)` marginals (:meth:`split` gives one tensor per layer).
    """

    def __init__(
        self,
        layers: Sequence[int | Sequence[int]],
        m: float = 0.1,
        skew: bool = False,
        init_scale: float = 0.5,
        tol: float = 1e-6,
        max_iter: int = 2000,
    ) -> None:
        super().__init__()
        self.layers = _parse_layers(layers)
        if not 0.0 < m <= 1.0:
            raise ValueError(f"m must lie in (0, 1], got {m}")
        if init_scale <= 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        self.m = float(m)
        self.skew = skew
        self.init_scale = float(init_scale)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.act = MeanFieldActivation(self.layers)
        sizes = [u for u, _ in self.layers]
        self.size = sum(sizes)
        self.A_diag = nn.ParameterList(nn.Parameter(torch.empty(u, u)) for u in sizes)
        self.A_sub = nn.ParameterList(
            nn.Parameter(torch.empty(b, a)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.B = nn.Parameter(torch.empty(self.size, self.size)) if skew else None
        self.register_buffer("pattern", self._block_pattern(sizes), persistent=False)
        self.bias = nn.Parameter(torch.empty(self.size))
        self.stats: dict = {}
        self.reset_parameters()

    @staticmethod
    def _block_pattern(sizes: list[int]) -> Tensor:
        ids = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        return ((ids.unsqueeze(0) - ids.unsqueeze(1)).abs() <= 1).float()

    def reset_parameters(self) -> None:
        for block in self.A_diag:
            nn.init.normal_(block, std=self.init_scale / block.shape[1] ** 0.5)
        for block in self.A_sub:
            nn.init.normal_(block, std=self.init_scale / block.shape[1] ** 0.5)
        if self.B is not None:
            nn.init.normal_(self.B, std=self.init_scale / self.size**0.5)
        nn.init.zeros_(self.bias)

    def A(self) -> Tensor:
        """The block lower-bidiagonal factor :math:`A`, ``(n, n)``."""
        rows = []
        for i, (u, _) in enumerate(self.layers):
            row = [self.bias.new_zeros(u, w) for w, _ in self.layers]
            row[i] = self.A_diag[i]
            if i > 0:
                row[i - 1] = self.A_sub[i - 1]
            rows.append(torch.cat(row, dim=1))
        return torch.cat(rows, dim=0)

    def weight(self) -> Tensor:
        """The couplings :math:`W = (1 - m)I - A^\\top A (+ B - B^\\top)`, ``(n, n)``."""
        A = self.A()
        eye = torch.eye(self.size, dtype=A.dtype, device=A.device)
        W = (1 - self.m) * eye - A.T @ A
        if self.B is not None:
            Bm = self.B * self.pattern
            W = W + Bm - Bm.T
        return W

    def forward(
        self,
        values: Tensor | None = None,
        observed: Tensor | None = None,
        init: Tensor | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        """Mean-field marginals given the clamped units (see :func:`mean_field_fixed_point`);
        with nothing clamped, ``batch_size`` copies of the free solution."""
        bias = self.bias
        if values is None and init is None:
            bias = bias.expand(batch_size or 1, self.size)
        return mean_field_fixed_point(
            self.weight(),
            bias,
            self.layers,
            values=values,
            observed=observed,
            init=init,
            tol=self.tol,
            max_iter=self.max_iter,
            stats=self.stats,
        )

    def free_energy(self, q: Tensor) -> Tensor:
        r"""The mean-field free energy :math:`-\tfrac12 q^\top W q - b^\top q + \sum q\log q`
        per sample (with the symmetric part of :math:`W`)."""
        W = self.weight()
        return -0.5 * ((q @ W) * q).sum(-1) - q @ self.bias + self.act.neg_entropy(q)

    def split(self, q: Tensor) -> list[Tensor]:
        """One ``(B, units)`` tensor per layer."""
        return list(torch.split(q, [u for u, _ in self.layers], dim=-1))

    def extra_repr(self) -> str:
        return f"layers={self.layers}, m={self.m}, skew={self.skew}"


@register_model("monotone_dbm", family="generative", paper=PAPER)
def monotone_dbm(
    layers: Sequence[int | Sequence[int]] = (196, 64, (10, 10)), **kwargs
) -> MonotoneDBM:
    """:class:`MonotoneDBM`; the default is 14×14 binary pixels, 64 hidden units and a
    10-way label group."""
    return MonotoneDBM(layers, **kwargs)
