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
With ``conv=True`` the blocks are convolutions over image-shaped layers
(:class:`ConvCouplings`), :math:`(2I - W)^{-1}` is applied by conjugate gradients and the
backward system is solved in the symmetric form :math:`(I - L^\top W L)\,t = L^\top g`
with :math:`D = LL^\top`. Observed units are clamped by conditioning: the free units solve
the same problem restricted to them (a principal block keeps
:math:`\operatorname{sym}(I - W) \succeq mI`) with the
observed values entering the bias.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.grad import conv2d_input

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

    def jacobian_factor(self, s: Tensor, v: Tensor, transpose: bool = False) -> Tensor:
        """:math:`L v` (or :math:`L^\\top v`) for a factor :math:`D = L L^\\top` at output
        ``s``; ``v`` is ``(B, n)``. Bernoulli units: :math:`L = \\sqrt{s(1-s)}`; a softmax
        group: :math:`L = S^{1/2}(I - uu^\\top)` with :math:`S = \\mathrm{diag}(s)`,
        :math:`u = \\sqrt{s}` (a unit vector, so :math:`I - uu^\\top` is a projector)."""
        parts = []
        for sl, units, group in self._slices():
            sv, vv = s[:, sl], v[:, sl]
            if group == 1:
                parts.append((sv * (1 - sv)).sqrt() * vv)
                continue
            b = vv.shape[0]
            u = sv.clamp_min(0).sqrt().reshape(b, units // group, group)
            w = vv.reshape(b, units // group, group)
            if transpose:
                w = u * w
                out = w - u * (u * w).sum(-1, keepdim=True)
            else:
                out = u * (w - u * (u * w).sum(-1, keepdim=True))
            parts.append(out.reshape(b, units))
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


def _matvec(M: Tensor, x: Tensor) -> Tensor:
    """``M x`` per sample for ``M`` shared ``(n, n)`` (one GEMM) or per sample ``(B, n, n)``."""
    if M.dim() == 2:
        return x @ M.T
    return torch.bmm(M, x.unsqueeze(-1)).squeeze(-1)


def _peaceman_rachford(
    resolvent: Callable[[Tensor], Tensor],
    bias: Tensor,
    act: MeanFieldActivation,
    u0: Tensor,
    tol: float,
    max_iter: int,
) -> tuple[Tensor, int, float]:
    """Peaceman–Rachford with step 1; ``resolvent(x)`` solves :math:`(2I - W) z = x`."""
    u = u0
    z = act(u)
    err = float("inf")
    for it in range(1, max_iter + 1):
        u_half = 2 * z - u
        z_half = resolvent(u_half + bias)
        u = 2 * z_half - u_half
        z_new = act(u)
        err = (z_new - z).abs().max().item()
        z = z_new
        if err < tol:
            return z, it, err
    return z, max_iter, err


def _warn_if_stopped(err: float, tol: float, max_iter: int) -> None:
    if not err < tol:
        warnings.warn(
            f"mean-field splitting stopped after {max_iter} iterations with step change "
            f"{err:.3g} > tol {tol:g}",
            RuntimeWarning,
            stacklevel=4,
        )


class _MeanFieldFixedPoint(torch.autograd.Function):
    """Solves :math:`q = \\sigma(Wq + b)` without a graph; implicit gradients in backward."""

    @staticmethod
    def forward(ctx, W, bias, u0, act, tol, max_iter, stats):
        with torch.no_grad():
            n = W.shape[-1]
            # resolvent of q -> (I - W) q - b with step 1: (2I - W)^{-1}(. + b)
            V = torch.linalg.inv(2 * torch.eye(n, dtype=W.dtype, device=W.device) - W)
            z, iters, err = _peaceman_rachford(
                lambda x: _matvec(V, x), bias, act, u0, tol, max_iter
            )
        stats.update(iterations=iters, residual=err)
        _warn_if_stopped(err, tol, max_iter)
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
    obs_values = _prepare_clamp(act, n, batch, values, observed)
    if observed is not None:
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


def _prepare_clamp(
    act: MeanFieldActivation,
    n: int,
    batch: int,
    values: Tensor | None,
    observed: Tensor | None,
) -> Tensor | None:
    """Checks the clamp arguments; the values with zeros on the free units (or ``None``)."""
    if observed is None:
        if values is not None:
            raise ValueError(
                "values were given without observed: pass the bool mask of the clamped units "
                "(values alone would be ignored)"
            )
        return None
    if values is None:
        raise ValueError("observed units need their values")
    if values.shape != (batch, n):
        raise ValueError(f"values must be (B, {n}), got {tuple(values.shape)}")
    if observed.dtype != torch.bool or observed.shape not in ((n,), (batch, n)):
        raise ValueError(f"observed must be a bool mask of shape ({n},) or (B, {n})")
    for sl, units, group in act._slices():
        if group > 1:
            g = observed[..., sl].reshape(*observed.shape[:-1], units // group, group)
            if (g.any(-1) != g.all(-1)).any():
                raise ValueError("a categorical group must be observed whole or not at all")
    obs_values = torch.where(observed, values, torch.zeros_like(values))
    if torch.isnan(obs_values).any():
        raise ValueError("values are NaN on observed units")
    return obs_values


def _parse_conv_layers(layers: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    if len(layers) == 0:
        raise ValueError("layers must name at least one layer")
    out = []
    for i, spec in enumerate(layers):
        if isinstance(spec, int) or len(spec) not in (2, 3):
            raise ValueError(
                f"layers[{i}]: a convolutional layer is (channels, side) or "
                f"(channels, side, group), got {spec!r}"
            )
        channels, side, group = (*spec, 1) if len(spec) == 2 else spec
        check_positive(
            **{f"layers[{i}] channels": channels, f"layers[{i}] side": side},
            **{f"layers[{i}] group": group},
        )
        if channels % group:
            raise ValueError(f"layers[{i}]: group size {group} must divide its {channels} channels")
        if i and side != 1 and out[-1][1] % side:
            raise ValueError(
                f"layers[{i}]: side {side} must divide the previous side {out[-1][1]} (or be 1)"
            )
        out.append((int(channels), int(side), int(group)))
    return out


def _cg(
    apply: Callable[[Tensor], Tensor], rhs: Tensor, x0: Tensor, tol: float, max_iter: int
) -> Tensor:
    """Conjugate gradients per sample for a symmetric positive definite ``apply``; stops when
    every residual is below ``tol`` times its right-hand side."""
    tiny = torch.finfo(rhs.dtype).tiny
    x = x0
    r = rhs - apply(x)
    p = r
    rs = (r * r).sum(-1, keepdim=True)
    target = (tol * rhs.norm(dim=-1, keepdim=True)) ** 2
    for _ in range(max_iter):
        if bool((rs <= target).all()):
            break
        Ap = apply(p)
        alpha = rs / (p * Ap).sum(-1, keepdim=True).clamp_min(tiny)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = (r * r).sum(-1, keepdim=True)
        p = r + (rs_new / rs.clamp_min(tiny)) * p
        rs = rs_new
    return x


class ConvCouplings(nn.Module):
    r"""The couplings :math:`W = (1 - m) I - A^\top A` of a convolutional monotone DBM, as an
    operator on flat states.

    :math:`A` is block lower-bidiagonal over the layers: :math:`A_{ii}` a "same" convolution
    (kernel ``kernel_size``, 1 on a 1×1 layer) and :math:`A_{i+1,i}` a convolution from layer
    :math:`i` to layer :math:`i+1` with stride :math:`s = \text{side}_i/\text{side}_{i+1}`,
    kernel :math:`2s - 1` and padding :math:`s - 1` (kernel ``kernel_size`` when
    :math:`s = 1`), or, onto a 1×1 layer, a convolution spanning the whole map (a dense map).
    :math:`A^\top` is the exact adjoint (the convolutions' input gradients). A layer's
    flat layout is channels-last, ``(side, side, channels)``, so a categorical group is
    ``group`` consecutive channels of one position.

    Args:
        layers: ``(channels, side, group)`` per layer.
        m (float): monotonicity margin. (default: ``0.1``)
        kernel_size (int): odd kernel of the within-layer convolutions. (default: ``3``)
        init_scale (float): weight standard deviation is ``init_scale / sqrt(fan_in)``.
            (default: ``0.5``)
    """

    def __init__(
        self,
        layers: Sequence[tuple[int, int, int]],
        m: float = 0.1,
        kernel_size: int = 3,
        init_scale: float = 0.5,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if not 0.0 < m <= 1.0:
            raise ValueError(f"m must lie in (0, 1], got {m}")
        self.layers = list(layers)
        self.m = float(m)
        self.init_scale = float(init_scale)
        self.sizes = [c * side * side for c, side, _ in self.layers]
        self.diag_geometry = []
        self.diag = nn.ParameterList()
        for c, side, _ in self.layers:
            k = kernel_size if side > 1 else 1
            self.diag_geometry.append((1, k // 2))
            self.diag.append(nn.Parameter(torch.empty(c, c, k, k)))
        self.sub_geometry = []
        self.sub = nn.ParameterList()
        for (c0, s0, _), (c1, s1, _) in zip(self.layers[:-1], self.layers[1:], strict=True):
            if s1 == 1:
                k, stride, pad = s0, 1, 0
            else:
                stride = s0 // s1
                k = kernel_size if stride == 1 else 2 * stride - 1
                pad = k // 2
            self.sub_geometry.append((stride, pad))
            self.sub.append(nn.Parameter(torch.empty(c1, c0, k, k)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in [*self.diag, *self.sub]:
            nn.init.normal_(w, std=self.init_scale / w[0].numel() ** 0.5)

    def unflatten(self, z: Tensor) -> list[Tensor]:
        """Flat ``(B, n)`` to one ``(B, C, side, side)`` map per layer."""
        parts = torch.split(z, self.sizes, dim=-1)
        return [
            x.reshape(-1, side, side, c).permute(0, 3, 1, 2)
            for x, (c, side, _) in zip(parts, self.layers, strict=True)
        ]

    @staticmethod
    def flatten(maps: Sequence[Tensor]) -> Tensor:
        return torch.cat([x.permute(0, 2, 3, 1).flatten(1) for x in maps], dim=-1)

    def A(self, z: Tensor) -> Tensor:
        x = self.unflatten(z)
        out = []
        for i, w in enumerate(self.diag):
            stride, pad = self.diag_geometry[i]
            y = F.conv2d(x[i], w, stride=stride, padding=pad)
            if i:
                stride, pad = self.sub_geometry[i - 1]
                y = y + F.conv2d(x[i - 1], self.sub[i - 1], stride=stride, padding=pad)
            out.append(y)
        return self.flatten(out)

    def At(self, y: Tensor) -> Tensor:
        """The adjoint :math:`A^\top y`."""
        ys = self.unflatten(y)
        out = []
        for i, w in enumerate(self.diag):
            shape = ys[i].shape
            stride, pad = self.diag_geometry[i]
            x = conv2d_input(shape, w, ys[i], stride=stride, padding=pad)
            if i + 1 < len(self.layers):
                stride, pad = self.sub_geometry[i]
                x = x + conv2d_input(shape, self.sub[i], ys[i + 1], stride=stride, padding=pad)
            out.append(x)
        return self.flatten(out)

    def forward(self, z: Tensor) -> Tensor:
        """:math:`W z` for flat ``z`` of shape ``(B, n)``."""
        return (1 - self.m) * z - self.At(self.A(z))

    def dense_matrix(self) -> Tensor:
        """:math:`W` as an explicit ``(n, n)`` matrix (for inspection on small layers)."""
        n = sum(self.sizes)
        eye = torch.eye(n, dtype=self.diag[0].dtype, device=self.diag[0].device)
        return self(eye).T

    def extra_repr(self) -> str:
        return f"layers={self.layers}, m={self.m}"


class _OperatorFixedPoint(torch.autograd.Function):
    """The fixed point for couplings given as a symmetric operator (conjugate-gradient solves)."""

    @staticmethod
    def forward(ctx, bias, u0, free, op, act, tol, max_iter, stats, *params):
        def w_eff(z: Tensor) -> Tensor:
            return free * op(free * z)

        state = {"x": torch.zeros_like(bias)}
        # the inner solves must be finer than the outer steps, within the dtype's reach
        inner_tol = max(tol / 10, 10 * torch.finfo(bias.dtype).eps)

        def resolvent(rhs: Tensor) -> Tensor:
            # 2I - W_eff is symmetric positive definite (>= (1 + m) I); warm-started CG
            state["x"] = _cg(lambda x: 2 * x - w_eff(x), rhs, state["x"], inner_tol, max_iter)
            return state["x"]

        with torch.no_grad():
            z, iters, err = _peaceman_rachford(resolvent, bias, act, u0, tol, max_iter)
        stats.update(iterations=iters, residual=err)
        _warn_if_stopped(err, tol, max_iter)
        ctx.op, ctx.act, ctx.tol, ctx.max_iter = op, act, tol, max_iter
        ctx.save_for_backward(z, free, *params)
        return z

    @staticmethod
    def backward(ctx, gz):
        z, free, *params = ctx.saved_tensors
        # z is this function's output: detached, so the parameter vjp below stays local
        z = z.detach()
        op, act = ctx.op, ctx.act

        def L(v: Tensor) -> Tensor:
            return act.jacobian_factor(z, v)

        def Lt(v: Tensor) -> Tensor:
            return act.jacobian_factor(z, v, transpose=True)

        with torch.no_grad():

            def w_eff(v: Tensor) -> Tensor:
                return free * op(free * v)

            # the gradient wrt the pre-activation is r = D (I - W D)^{-1} g (W symmetric);
            # with D = L L^T it is r = L t for the SPD system (I - L^T W L) t = L^T g
            # (I - L^T W L >= m I because W <= (1 - m) I and L^T L <= I)
            tol = max(ctx.tol, 10 * torch.finfo(gz.dtype).eps)
            rhs = Lt(gz)
            t = _cg(lambda v: v - Lt(w_eff(L(v))), rhs, rhs, tol, ctx.max_iter)
            gp = L(t)
        with torch.enable_grad():
            out = free * op(free * z)
            grads = torch.autograd.grad(out, params, gp, allow_unused=True)
        return (gp, None, None, None, None, None, None, None, *grads)


class MonotoneDBM(nn.Module):
    r"""A monotone deep Boltzmann machine (Feng, Winston and Kolter, 2023).

    .. math::
        W = (1 - m) I - A^\top A \;(+\, B - B^\top), \qquad
        q^\star = \sigma(W q^\star + b)

    :math:`A` is block lower-bidiagonal over the layers (blocks :math:`A_{ii}` and
    :math:`A_{i+1,i}`), so :math:`W` couples each layer to itself and its neighbours.
    ``conv=True`` makes the blocks convolutions over image-shaped layers
    (:class:`ConvCouplings`; fixed point by Peaceman–Rachford with conjugate-gradient
    resolvents); ``conv=False`` makes them dense matrices (exact resolvents, see
    :func:`mean_field_fixed_point`). With ``skew=False`` (default) :math:`W` is symmetric and
    :math:`q^\star` is the unique mean-field solution of the Boltzmann machine with energy
    :math:`-\tfrac12 x^\top W x - b^\top x`; ``skew=True`` (dense only) adds the skew term
    :math:`B - B^\top` of the general monotone DEQ on the same block pattern, which keeps
    the fixed point unique but no longer comes from a symmetric energy. Image completion
    clamps the observed pixels; classification adds a categorical label layer.

    Args:
        layers (sequence): with ``conv=True``, ``(channels, side)`` or
            ``(channels, side, group)`` per layer (each side divides the previous one, or
            is 1 for a dense layer such as the labels); with ``conv=False``, ``units``
            (Bernoulli units) or ``(units, group)``. ``group`` consecutive channels (units)
            form one categorical variable; ``group = 1`` means Bernoulli units.
        conv (bool): convolutional couplings. (default: ``True``)
        m (float): monotonicity margin, :math:`\operatorname{sym}(I - W) \succeq mI`, in
            ``(0, 1]``. (default: ``0.1``)
        skew (bool): add :math:`B - B^\top` (dense only). (default: ``False``)
        kernel_size (int): within-layer kernel with ``conv=True``. (default: ``3``)
        init_scale (float): weight standard deviation is ``init_scale / sqrt(fan_in)``.
            (default: ``0.5``)
        tol (float): solver tolerance (largest change of a marginal in one step).
            (default: ``1e-6``)
        max_iter (int): solver iteration cap. (default: ``2000``)

    Shapes:
        - values: :math:`(B, n)` flat states (each convolutional layer channels-last),
          observed: :math:`(n,)` or :math:`(B, n)` boolean
        - output: :math:`(B, n)` marginals (:meth:`split` gives one tensor per layer).
    """

    def __init__(
        self,
        layers: Sequence[int | Sequence[int]],
        conv: bool = True,
        m: float = 0.1,
        skew: bool = False,
        kernel_size: int = 3,
        init_scale: float = 0.5,
        tol: float = 1e-6,
        max_iter: int = 2000,
    ) -> None:
        super().__init__()
        if not 0.0 < m <= 1.0:
            raise ValueError(f"m must lie in (0, 1], got {m}")
        if init_scale <= 0:
            raise ValueError(f"init_scale must be positive, got {init_scale}")
        if tol <= 0 or max_iter < 1:
            raise ValueError(f"need tol > 0 and max_iter >= 1, got {tol} and {max_iter}")
        if conv and skew:
            raise ValueError("skew couplings are implemented for conv=False only")
        self.conv = conv
        self.m = float(m)
        self.skew = skew
        self.init_scale = float(init_scale)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        if conv:
            conv_layers = _parse_conv_layers(layers)
            self.layers = [(c * side * side, g) for c, side, g in conv_layers]
            self.couplings = ConvCouplings(conv_layers, m, kernel_size, init_scale)
        else:
            self.layers = _parse_layers(layers)
        self.act = MeanFieldActivation(self.layers)
        sizes = [u for u, _ in self.layers]
        self.size = sum(sizes)
        if not conv:
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
        if self.conv:
            self.couplings.reset_parameters()
        else:
            for block in [*self.A_diag, *self.A_sub]:
                nn.init.normal_(block, std=self.init_scale / block.shape[1] ** 0.5)
            if self.B is not None:
                nn.init.normal_(self.B, std=self.init_scale / self.size**0.5)
        nn.init.zeros_(self.bias)

    def A(self) -> Tensor:
        """The dense block lower-bidiagonal factor :math:`A`, ``(n, n)`` (``conv=False``)."""
        if self.conv:
            raise RuntimeError("A() is the dense factor; conv couplings are operators")
        rows = []
        for i, (u, _) in enumerate(self.layers):
            row = [self.bias.new_zeros(u, w) for w, _ in self.layers]
            row[i] = self.A_diag[i]
            if i > 0:
                row[i - 1] = self.A_sub[i - 1]
            rows.append(torch.cat(row, dim=1))
        return torch.cat(rows, dim=0)

    def weight(self) -> Tensor:
        """The couplings :math:`W = (1 - m)I - A^\\top A (+ B - B^\\top)` as an ``(n, n)``
        matrix (built from the operator when ``conv=True``: small layers only)."""
        if self.conv:
            return self.couplings.dense_matrix()
        A = self.A()
        eye = torch.eye(self.size, dtype=A.dtype, device=A.device)
        W = (1 - self.m) * eye - A.T @ A
        if self.B is not None:
            Bm = self.B * self.pattern
            W = W + Bm - Bm.T
        return W

    def coupling(self, q: Tensor) -> Tensor:
        """:math:`W q` for flat states ``(B, n)``."""
        return self.couplings(q) if self.conv else q @ self.weight().T

    def forward(
        self,
        values: Tensor | None = None,
        observed: Tensor | None = None,
        init: Tensor | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        """Mean-field marginals given the clamped units (``values`` read where ``observed``);
        with nothing clamped and no ``init``, ``batch_size`` copies of the free solution."""
        bias = self.bias
        if values is None and init is None:
            bias = bias.expand(batch_size or 1, self.size)
        if not self.conv:
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
        batch = next((t.shape[0] for t in (values, init) if t is not None), bias.shape[0])
        n = self.size
        obs_values = _prepare_clamp(self.act, n, batch, values, observed)
        if obs_values is None:
            free = bias.new_ones(batch, n)
            bias_eff = bias.expand(batch, n)
        else:
            free = (~observed).to(bias.dtype).expand(batch, n)
            bias_eff = (bias + self.couplings(obs_values)) * free
        if init is None:
            init = bias.new_zeros(batch, n)
        elif init.shape != (batch, n):
            raise ValueError(f"init must be (B, {n}), got {tuple(init.shape)}")
        q = _OperatorFixedPoint.apply(
            bias_eff,
            init,
            free.detach(),
            self.couplings,
            self.act,
            self.tol,
            self.max_iter,
            self.stats,
            *self.couplings.parameters(),
        )
        return q if observed is None else torch.where(observed, values, q)

    def free_energy(self, q: Tensor) -> Tensor:
        r"""The mean-field free energy :math:`-\tfrac12 q^\top W q - b^\top q + \sum q\log q`
        per sample (with the symmetric part of :math:`W`)."""
        return -0.5 * (self.coupling(q) * q).sum(-1) - q @ self.bias + self.act.neg_entropy(q)

    def split(self, q: Tensor) -> list[Tensor]:
        """One tensor per layer: ``(B, units)``, or ``(B, C, side, side)`` with ``conv=True``."""
        if self.conv:
            return self.couplings.unflatten(q)
        return list(torch.split(q, [u for u, _ in self.layers], dim=-1))

    def extra_repr(self) -> str:
        return f"layers={self.layers}, conv={self.conv}, m={self.m}, skew={self.skew}"


@register_model("monotone_dbm", family="generative", paper=PAPER)
def monotone_dbm(
    layers: Sequence[Sequence[int]] = ((1, 14), (16, 7), (10, 1, 10)), **kwargs
) -> MonotoneDBM:
    """:class:`MonotoneDBM`; the default is convolutional: 14×14 binary pixels, a 16-channel
    7×7 binary hidden layer and a 10-way label layer."""
    return MonotoneDBM(layers, **kwargs)
