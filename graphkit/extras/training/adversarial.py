"""L-infinity adversarial attacks: projected gradient descent (PGD) and its one-step case, FGSM.

PGD is the attack of `Towards Deep Learning Models Resistant to Adversarial Attacks
<https://arxiv.org/abs/1706.06083>`_ (Madry et al.); FGSM is `Explaining and Harnessing
Adversarial Examples <https://arxiv.org/abs/1412.6572>`_. Shared by AdvMoE's robust training
(:mod:`graphkit.extras.moe.methods.advmoe`) and by robustness checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.modules import eval_mode

LossFn = Callable[[Tensor, Tensor], Tensor]


def _check_attack(
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float,
    steps: int,
    clamp: tuple[float, float] | None = None,
) -> None:
    if clamp is not None:
        if len(clamp) != 2 or not all(math.isfinite(c) for c in clamp) or clamp[0] > clamp[1]:
            raise ValueError(f"clamp must be a finite (low, high) with low <= high, got {clamp}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if x.dim() == 0 or y.shape[:1] != x.shape[:1]:
        raise ValueError(
            f"x and y must share the batch dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    if clamp is not None and x.numel() and (float(x.min()) < clamp[0] or float(x.max()) > clamp[1]):
        # clamping x_adv to a range the clean x leaves moves it far outside the eps-ball
        raise ValueError(f"x lies in [{float(x.min()):.4g}, {float(x.max()):.4g}], outside "
                         f"clamp={tuple(clamp)}: pass the inputs' valid range (e.g. the "
                         "normalised one) as clamp, or clamp=None")


def pgd_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    random_start: bool = True,
    loss_fn: LossFn = F.cross_entropy,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Untargeted :math:`\ell_\infty` PGD: ascend the loss by signed gradient steps.

    .. math::
        x^{t+1} = \Pi_{\|x' - x\|_\infty \le \epsilon,\ x' \in [a, b]}
        \bigl(x^t + \alpha\, \mathrm{sign}(\nabla_{x^t} L(f(x^t), y))\bigr)

    from :math:`x^0 = x + U(-\epsilon, \epsilon)` (``random_start``) or :math:`x^0 = x`.
    ``steps=1, alpha=eps, random_start=False`` is FGSM. Gradients are taken with respect to
    the input only: the model's parameter gradients are left untouched, and the model's
    train/eval mode is the caller's choice (robust training usually attacks in train mode).

    Args:
        model: the classifier under attack.
        x: clean inputs, shape ``(B, *)``.
        y: targets of ``loss_fn``, shape ``(B, *)``.
        eps: radius :math:`\epsilon` of the :math:`\ell_\infty` ball (default: 8/255).
        alpha: step size :math:`\alpha` (default: 2/255).
        steps: number of steps (default: 10; PGD-10).
        random_start: start from a uniform point of the ball (default: ``True``).
        loss_fn: the loss to ascend (default: cross-entropy, mean over the batch).
        clamp: valid input range :math:`[a, b]`, or ``None`` (default: ``(0, 1)``).
        generator: random generator of the start point (default: the global one).

    Returns:
        The adversarial inputs (detached), same shape and dtype as ``x``.
    """
    _check_attack(x, y, eps, alpha, steps, clamp)
    x = x.detach()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, device="cpu", dtype=x.dtype)
        x_adv = x + (2 * noise.to(x.device) - 1) * eps
    else:
        x_adv = x.clone()
    if clamp is not None:
        x_adv = x_adv.clamp(*clamp)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(model(x_adv), y)
            (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + alpha * grad.sign()
        # project back onto the eps-ball around x, then onto the valid input range
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        if clamp is not None:
            x_adv = x_adv.clamp(*clamp)
    return x_adv.detach()


def fgsm_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    loss_fn: LossFn = F.cross_entropy,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> Tensor:
    r"""FGSM, :math:`x + \epsilon\,\mathrm{sign}(\nabla_x L)`: one PGD step from ``x`` itself."""
    return pgd_attack(model, x, y, eps, eps, 1, False, loss_fn, clamp)


@torch.no_grad()
def robust_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float = 8 / 255,
    alpha: float = 2 / 255,
    steps: int = 10,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> float:
    """Share of ``x`` still classified as ``y`` under PGD-``steps`` (eval mode, batched);
    ``clamp`` is the inputs' valid range, as in :func:`pgd_attack`."""
    if isinstance(batch_size, bool) or not float(batch_size).is_integer() or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"robust_accuracy needs at least one sample, got x {tuple(x.shape)}")
    if y.shape[:1] != x.shape[:1]:
        raise ValueError(
            f"x and y must share the batch dimension, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    correct = 0
    with eval_mode(model):
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            adv = pgd_attack(model, xb, yb, eps, alpha, steps, clamp=clamp, generator=generator)
            correct += int((model(adv).argmax(dim=-1) == yb).sum())
    return correct / max(x.shape[0], 1)
