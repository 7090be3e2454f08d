"""Mixed operations: one edge of a supernet holding every candidate op and its logits alpha.

:class:`MixedOp` is DARTS's continuous relaxation (all candidates run, outputs weighted by a
softmax); :class:`BinarizedMixedOp` is ProxylessNAS's path binarisation (one sampled candidate
runs and keeps activations, the architecture gradient comes from a binary-gate estimate).
:func:`arch_parameters` and :func:`weight_parameters` split a model's parameters for the
bi-level (architecture / weight) optimisation both methods use.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _as_candidates(
    candidates: Sequence[nn.Module] | Mapping[str, nn.Module],
) -> tuple[list[str], nn.ModuleList]:
    if isinstance(candidates, Mapping):
        names, modules = [str(k) for k in candidates], list(candidates.values())
    else:
        modules = list(candidates)
        names = [str(i) for i in range(len(modules))]
    if not modules:
        raise ValueError("a mixed op needs at least one candidate op")
    for name, module in zip(names, modules):
        if not isinstance(module, nn.Module):
            raise TypeError(f"candidate {name!r} is not an nn.Module: {module!r}")
    return names, nn.ModuleList(modules)


class _Candidates(nn.Module):
    """What both mixed ops share: named candidates and one logit per candidate."""

    alpha: nn.Parameter

    def __init__(self, candidates: Sequence[nn.Module] | Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.names, self.candidates = _as_candidates(candidates)
        self.alpha = nn.Parameter(torch.empty(len(self.candidates)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Architecture logits near zero (near-uniform mixture), as in DARTS (std 1e-3)."""
        with torch.no_grad():
            self.alpha.normal_(0.0, 1e-3)

    def probs(self) -> Tensor:
        """The softmax of :attr:`alpha`: each candidate's architecture probability."""
        return F.softmax(self.alpha, dim=0)

    def chosen(self) -> int:
        """Index of the candidate with the largest logit (the derived architecture)."""
        return int(self.alpha.detach().argmax())

    def extract(self) -> nn.Module:
        """A standalone copy of the chosen candidate."""
        return copy.deepcopy(self.candidates[self.chosen()])

    def extra_repr(self) -> str:
        return f"candidates={self.names}"


class MixedOp(_Candidates):
    r"""DARTS's mixed operation, a softmax-weighted sum of all candidate ops.

    From `DARTS: Differentiable Architecture Search <https://arxiv.org/abs/1806.09055>`_:

    .. math::
        \bar o(x) = \sum_{i} \frac{\exp \alpha_i}{\sum_j \exp \alpha_j}\, o_i(x)

    Every candidate runs, so the memory grows with the number of candidates; the gradient
    reaches every logit :math:`\alpha_i`. After the search the op is replaced by the candidate
    of largest weight (:meth:`chosen`, :meth:`extract`).

    Args:
        candidates (Sequence[nn.Module] | Mapping[str, nn.Module]): the candidate ops, all
            mapping an input to outputs of one shape; names are kept for reports.

    Shapes:
        - **input:** whatever the candidates take, e.g. :math:`(N, C, H, W)`
        - **weights** (optional): :math:`(K,)` for :math:`K` candidates, overriding the softmax
        - **output:** the candidates' common output shape
    """

    def forward(self, x: Tensor, weights: Tensor | None = None) -> Tensor:
        if weights is None:
            weights = self.probs()
        elif weights.shape != (len(self.candidates),):
            raise ValueError(
                f"weights must have shape ({len(self.candidates)},), got {tuple(weights.shape)}"
            )
        elif torch.isnan(weights).any():
            raise ValueError("mixture weights hold NaN")
        out: Tensor | None = None
        for name, op, w in zip(self.names, self.candidates, weights):
            y = op(x)
            if out is not None and y.shape != out.shape:
                raise ValueError(
                    f"candidate {name!r} gives shape {tuple(y.shape)}, "
                    f"the others {tuple(out.shape)}"
                )
            out = w * y if out is None else out + w * y
        assert out is not None
        return out


class _BinaryGate(torch.autograd.Function):
    """Runs only the active candidate; its backward gives alpha the binary-gate gradient.

    Forward keeps the active path's graph (built under ``enable_grad`` on a detached input)
    and returns its output. Backward (1) back-propagates through that graph, so the active
    op's weights and the input receive their gradients, and (2) recomputes the other
    involved candidates without a graph to get ``dL/dg_j = <o_j(x), dL/dy>`` for each binary
    gate ``g_j``, from which the logits' gradient follows (ProxylessNAS, eq. 4).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, alpha: Tensor, op: BinarizedMixedOp, active: int, involved: list[int]
    ) -> Tensor:
        x_in = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad():
            out = op.candidates[active](x_in)
        ctx.graph = (x_in, out)
        ctx.op, ctx.active, ctx.involved = op, active, involved
        return out.detach()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor, None, None, None]:
        x_in, out = ctx.graph
        del ctx.graph
        if out.requires_grad:
            torch.autograd.backward(out, grad)
        op: BinarizedMixedOp = ctx.op
        with torch.no_grad():
            gate_grads = []
            for j in ctx.involved:
                y = out if j == ctx.active else op.candidates[j](x_in.detach())
                if y.shape != grad.shape:
                    raise ValueError(
                        f"candidate {op.names[j]!r} gives shape {tuple(y.shape)}, "
                        f"the active one {tuple(grad.shape)}"
                    )
                gate_grads.append((y * grad).sum())
            g = torch.stack(gate_grads)
            idx = torch.tensor(ctx.involved, device=op.alpha.device)
            p = F.softmax(op.alpha.detach()[idx], dim=0)
            # dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i) = p_i (dL/dg_i - sum_j p_j dL/dg_j)
            grad_alpha = torch.zeros_like(op.alpha)
            grad_alpha[idx] = p * (g - (p * g).sum())
        grad_x = x_in.grad if x_in.requires_grad else None
        return grad_x, grad_alpha, None, None, None


class BinarizedMixedOp(_Candidates):
    r"""ProxylessNAS's path-binarised mixed op: one sampled candidate runs per step.

    From `ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware
    <https://arxiv.org/abs/1812.00332>`_. In training mode each forward samples binary gates
    :math:`g` (one active candidate) and computes only that candidate, so activations are held
    for one path, as for a single model. The logits receive the binary-gate estimate

    .. math::
        \frac{\partial L}{\partial \alpha_i} = \sum_j \frac{\partial L}{\partial g_j}\, p_j
        (\delta_{ij} - p_i), \qquad
        \frac{\partial L}{\partial g_j} = \Big\langle o_j(x), \frac{\partial L}{\partial y}
        \Big\rangle .

    With ``mode="two"`` (the paper's memory-saving default) two candidates are drawn without
    replacement from :math:`p = \mathrm{softmax}(\alpha)`, the active one is drawn from the
    softmax over those two, and only their logits are updated (:math:`p` above is that
    two-way softmax); call :meth:`rescale_updated_alpha` after the optimiser step so the other
    candidates' probabilities stay as they were. ``mode="full"`` draws the active candidate
    from :math:`p` and updates every logit. The other involved candidates are recomputed in
    the backward pass without keeping a graph (in training mode, so their BatchNorm statistics
    move as in the reference code). In eval mode the op runs the chosen candidate (largest
    logit); in training without a gradient for :attr:`alpha` it runs the sampled one directly.

    The inner backward of the active path accumulates weight gradients into ``.grad`` (as
    reentrant checkpointing does), so use it with ``loss.backward()``, not
    ``torch.autograd.grad``.

    Args:
        candidates (Sequence[nn.Module] | Mapping[str, nn.Module]): the candidate ops.
        mode (str): ``"two"`` or ``"full"`` (default: ``"two"``).
        generator (torch.Generator, optional): a CPU generator for the path samples (default:
            the global one); samples are drawn on the CPU whatever the op's device.

    Shapes:
        - **input:** whatever the candidates take
        - **output:** the candidates' common output shape
    """

    def __init__(
        self,
        candidates: Sequence[nn.Module] | Mapping[str, nn.Module],
        mode: str = "two",
        generator: torch.Generator | None = None,
    ) -> None:
        if mode not in ("two", "full"):
            raise ValueError(f"mode must be 'two' or 'full', got {mode!r}")
        super().__init__(candidates)
        self.mode = mode
        self.generator = generator
        #: the candidates of the last training step: (active, involved, their logits then)
        self.last_sample: tuple[int, list[int], Tensor] | None = None

    def sample(self) -> tuple[int, list[int]]:
        """Draw ``(active, involved)`` candidate indices for one step."""
        # detached (no graph to keep) and on the CPU, where the generator lives by default
        logits = self.alpha.detach().cpu()
        p = F.softmax(logits, dim=0)
        if self.mode == "full" or len(self.candidates) == 1:
            active = int(torch.multinomial(p, 1, generator=self.generator))
            return active, list(range(len(self.candidates)))
        pair = torch.multinomial(p, 2, replacement=False, generator=self.generator)
        within = F.softmax(logits[pair], dim=0)
        active = int(pair[torch.multinomial(within, 1, generator=self.generator)])
        return active, [int(i) for i in pair]

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return self.candidates[self.chosen()](x)
        active, involved = self.sample()
        self.last_sample = (active, involved, self.alpha.detach()[involved].clone())
        if not (torch.is_grad_enabled() and self.alpha.requires_grad):
            return self.candidates[active](x)
        return _BinaryGate.apply(x, self.alpha, self, active, involved)

    @torch.no_grad()
    def rescale_updated_alpha(self) -> None:
        """Shift the involved logits after an update so the others' probabilities are kept.

        ProxylessNAS's two-path update changes only the involved logits; subtracting
        ``logsumexp(new) - logsumexp(old)`` over them keeps their total probability mass, and
        so every other candidate's probability, unchanged.
        """
        if self.last_sample is None:
            raise RuntimeError("no training step sampled yet: nothing to rescale")
        _, involved, before = self.last_sample
        idx = torch.tensor(involved, device=self.alpha.device)
        after = self.alpha[idx]
        self.alpha[idx] = after - (torch.logsumexp(after, 0) - torch.logsumexp(before, 0))

    def extra_repr(self) -> str:
        return f"candidates={self.names}, mode={self.mode!r}"


def _mixed_ops(model: nn.Module) -> Iterator[_Candidates]:
    for module in model.modules():
        if isinstance(module, _Candidates):
            yield module


def arch_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The architecture logits of every mixed op in ``model``."""
    return [op.alpha for op in _mixed_ops(model)]


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter of ``model`` except the architecture logits."""
    arch = {id(p) for p in arch_parameters(model)}
    return [p for p in model.parameters() if id(p) not in arch]
