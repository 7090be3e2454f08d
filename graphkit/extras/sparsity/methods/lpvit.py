"""LPViT: hardware-aware block pruning of vision transformers by second-order saliency (Xu et
al., "LPViT: Low-Power Semi-structured Pruning for Vision Transformers", ECCV 2024,
https://arxiv.org/abs/2407.02068).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.allocation import keep_count
from graphkit.extras.sparsity.masks import Pruner, check_block_size
from graphkit.extras.sparsity.masks import block as block_granularity

__all__ = ["LPViTPruner", "block_sums"]

HESSIANS = ("fisher", "diagonal")
SALIENCIES = ("taylor", "magnitude")


def block_sums(x: Tensor, bh: int, bw: int) -> Tensor:
    """Sum of ``x`` (viewed as ``(out, in * kernel)``) over each ``bh x bw`` block of the grid.

    Shapes: ``(out, ...)`` in, ``(out / bh, rest / bw)`` out; raises ``ValueError`` when the
    matrix does not tile.
    """
    check_block_size(bh, bw)  # 0 was a ZeroDivisionError, 2.5 a confusing tiling error
    mat = x.reshape(x.shape[0], -1)
    if mat.shape[0] % bh or mat.shape[1] % bw:
        raise ValueError(f"a weight viewed as {tuple(mat.shape)} cannot be tiled into {bh}x{bw}")
    return mat.reshape(mat.shape[0] // bh, bh, mat.shape[1] // bw, bw).sum((1, 3))


@register_model(
    "lpvit",
    family="pruning",
    paper="LPViT: Low-Power Semi-structured Pruning for Vision Transformers",
)
class LPViTPruner(Pruner):
    r"""Post-training block pruning of a ViT's linear layers, chosen by loss change and hardware
    cost.

    Every pruned weight matrix (qkv, output projection, MLP) is tiled into ``bh x bw`` blocks
    on a fixed grid. Removing block :math:`b` (:math:`\Delta w = -w_b`) changes the loss by,
    to second order,

    .. math::
        \Delta L_b \approx -\bar g_b^\top w_b + \tfrac12\, w_b^\top H_b\, w_b,\qquad
        H_b \approx F_b = \frac1N \sum_{n=1}^N g_{n,b}\, g_{n,b}^\top

    (the first term only with ``first_order=True``) with :math:`\bar g` the mean gradient and
    :math:`F_b` the block of the empirical Fisher over the ``N`` calibration batches
    (``hessian="fisher"``, :math:`w_b^\top F_b w_b = \frac1N \sum_n (g_{n,b}^\top w_b)^2`)
    or its diagonal (``hessian="diagonal"``). Power and speed-up are modelled as linear in the
    number :math:`k_l` of blocks kept per layer, :math:`P = \sum_l p_l k_l`,
    :math:`T = \sum_l t_l k_l`, and the kept set solves

    .. math::
        \min_{\text{kept}}\ \sum_{b\ \text{pruned}} \Delta L_b
        + \lambda_P \sum_l p_l k_l + \lambda_T \sum_l t_l k_l
        \quad \text{s.t.}\quad \sum_l k_l = K,

    which, the objective being separable, keeps exactly the :math:`K` blocks of largest
    :math:`\Delta L_b - \lambda_P p_{l(b)} - \lambda_T t_{l(b)}` over all layers (one global
    ranking; each layer ends with its own density); :math:`K` is ``1 - target`` of all blocks,
    rounded. By default :math:`p_l = t_l` is the share of the pruned layers' MACs one
    block of layer :math:`l` costs (rows it multiplies times ``bh * bw``, measured during
    calibration), i.e. energy and time proportional to executed MACs; pass ``power`` /
    ``latency`` per layer to use measured costs instead. Short fine-tuning afterwards is up to
    the caller (masks keep pruned blocks at zero).

    Use: ``pruner.calibrate(loss_fn, batches)`` then ``pruner.prune_to_target()``.

    Args:
        model: the ViT (any model whose pruned layers are ``Linear`` / ``Conv*d``).
        block: ``(bh, bw)`` block size on the ``(out, in)`` weight. (default: ``(16, 16)``)
        target: block sparsity to reach, in ``[0, 1)``. (default: ``0.5``)
        lambda_power: :math:`\lambda_P`. (default: ``0.0``)
        lambda_latency: :math:`\lambda_T`. (default: ``0.0``)
        hessian: ``"fisher"`` (block Fisher) or ``"diagonal"``. (default: ``"fisher"``)
        saliency: ``"taylor"`` (the formula above) or ``"magnitude"`` (block :math:`\sum|w|`,
            the baseline the paper compares with). (default: ``"taylor"``)
        power: optional ``{layer: p_l}``. (default: MAC share per block)
        latency: optional ``{layer: t_l}``. (default: MAC share per block)
        first_order: keep the gradient term :math:`-\bar g_b^\top w_b`; off by default
            because at a trained model it is batch noise around zero and, being signed, can
            outrank the curvature term (the usual assumption of OBS-style post-training
            pruning). (default: ``False``)
        layers: module names to prune. (default: every ``Linear`` / ``Conv*d``)

    The empirical Fisher is a sum over calibration *batches*; batches of one sample give the
    textbook per-sample Fisher, large batches average the gradients towards zero and weaken it.
    """

    def __init__(
        self,
        model: nn.Module,
        block: tuple[int, int] = (16, 16),
        target: float = 0.5,
        lambda_power: float = 0.0,
        lambda_latency: float = 0.0,
        hessian: str = "fisher",
        saliency: str = "taylor",
        power: Mapping[str, float] | None = None,
        latency: Mapping[str, float] | None = None,
        first_order: bool = False,
        layers: Iterable[str] | None = None,
    ) -> None:
        if len(tuple(block)) != 2:
            raise ValueError(f"block must be (bh, bw), got {block!r}")
        bh, bw = (int(b) for b in block)
        check_positive(bh=bh, bw=bw)
        check_fraction("target", float(target))
        if hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
        if saliency not in SALIENCIES:
            raise ValueError(f"saliency must be one of {SALIENCIES}, got {saliency!r}")
        if not (0 <= lambda_power < math.inf and 0 <= lambda_latency < math.inf):  # NaN too
            raise ValueError(
                f"lambda_power and lambda_latency must be finite and >= 0, got {lambda_power}, "
                f"{lambda_latency}"
            )
        super().__init__(model, None, block_granularity(bh, bw), "uniform", layers)
        for name in self.layers:
            block_sums(self.weight(name).detach(), bh, bw)  # raises early if it does not tile
        for label, costs in (("power", power), ("latency", latency)):
            unknown = set(costs or ()) - set(self.layers)
            if unknown:
                raise ValueError(f"{label} names layers that are not pruned: {sorted(unknown)}")
        self.bh, self.bw = bh, bw
        self.target = float(target)
        self.lambda_power, self.lambda_latency = float(lambda_power), float(lambda_latency)
        self.hessian, self.saliency = hessian, saliency
        self.first_order = bool(first_order)
        self.power = dict(power) if power is not None else None
        self.latency = dict(latency) if latency is not None else None
        self.batches = 0
        self.grad_sum: dict[str, Tensor] = {}
        self.curvature: dict[str, Tensor] = {}
        self.rows: dict[str, int] = {}

    # ------------------------------------------------------------------ calibration

    def calibrate(self, loss_fn: Callable[[nn.Module, Any], Tensor], batches: Iterable[Any]) -> int:
        """Accumulate the gradient and curvature statistics over calibration ``batches``.

        ``loss_fn(model, batch)`` returns the scalar loss of one batch; each batch is one
        sample :math:`g_n` of the empirical Fisher. Returns the number of batches seen.
        """
        rows: dict[str, int] = {}

        def counter(name: str) -> Callable[..., None]:
            def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
                rows[name] = out.numel() // out.shape[-1 if isinstance(module, nn.Linear) else 1]

            return hook

        handles = [m.register_forward_hook(counter(n)) for n, m in self.layers.items()]
        params = [p for p in self.model.parameters() if p.requires_grad]
        try:
            for batch in batches:
                for p in params:
                    p.grad = None
                loss = loss_fn(self.model, batch)
                if loss.dim() != 0 or not torch.isfinite(loss):
                    raise ValueError(f"loss_fn must return a finite scalar, got {loss}")
                loss.backward()
                self._accumulate()
                if not self.rows:
                    self.rows = dict(rows)
                self.batches += 1
        finally:
            for h in handles:
                h.remove()
            for p in params:
                p.grad = None
        if self.batches == 0:
            raise ValueError("calibrate needs at least one batch")
        return self.batches

    @torch.no_grad()
    def _accumulate(self) -> None:
        for name in self.layers:
            latent = self.latent(name)
            g = latent.grad if latent.grad is not None else torch.zeros_like(latent)
            w = self.weight(name)
            if name not in self.grad_sum:
                self.grad_sum[name] = torch.zeros_like(g)
                shape = block_sums(g, self.bh, self.bw).shape
                self.curvature[name] = torch.zeros(shape, dtype=g.dtype, device=g.device)
            self.grad_sum[name] += g
            if self.hessian == "fisher":
                self.curvature[name] += block_sums(g * w, self.bh, self.bw) ** 2
            else:
                self.curvature[name] += block_sums(g.square() * w.square(), self.bh, self.bw)

    # ------------------------------------------------------------------ selection

    def block_saliency(self, name: str) -> Tensor:
        r""":math:`\Delta L_b` of each block of layer ``name`` (block magnitude for
        ``saliency="magnitude"``), shape ``(out / bh, in / bw)``."""
        w = self.weight(name).detach()
        if self.saliency == "magnitude":
            return block_sums(w.abs(), self.bh, self.bw)
        if self.batches == 0:
            raise RuntimeError("Taylor saliency needs calibrate(loss_fn, batches) first")
        second = 0.5 * self.curvature[name] / self.batches
        if not self.first_order:
            return second
        return second - block_sums(self.grad_sum[name] * w, self.bh, self.bw) / self.batches

    def block_cost(self, name: str) -> float:
        r""":math:`\lambda_P p_l + \lambda_T t_l` of one block of layer ``name``."""
        if self.lambda_power == 0 and self.lambda_latency == 0:
            return 0.0
        default = None
        if self.power is None or self.latency is None:
            if not self.rows:
                raise RuntimeError("the default MAC-share costs need calibrate(...) first")
            total = sum(self.rows[n] * self.weight(n).numel() for n in self.layers)
            default = self.rows[name] * self.bh * self.bw / total
        p = self.power[name] if self.power is not None else default
        t = self.latency[name] if self.latency is not None else default
        return self.lambda_power * p + self.lambda_latency * t

    def score(self, name: str, module: nn.Module) -> Tensor:
        """The block objective spread evenly over each block's weights (its block sums are the
        ranked values, as :func:`~graphkit.extras.sparsity.masks.block` sums scores)."""
        blocks = self.block_saliency(name) - self.block_cost(name)
        per_weight = (blocks / (self.bh * self.bw)).repeat_interleave(self.bh, 0)
        per_weight = per_weight.repeat_interleave(self.bw, 1)
        return per_weight.reshape(self.weight(name).shape)

    def allocate(self, scores: Mapping[str, Tensor], density: float) -> dict[str, float]:
        """One ranking of all blocks: each layer's density is its share of the ``K`` best."""
        blocks = {name: block_sums(s, self.bh, self.bw).flatten() for name, s in scores.items()}
        flat = torch.cat(list(blocks.values()))
        keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        keep[flat.topk(keep_count(density, flat.numel())).indices] = True
        out, start = {}, 0
        for name, b in blocks.items():
            out[name] = float(keep[start : start + b.numel()].sum()) / b.numel()
            start += b.numel()
        return out

    def prune_to_target(self) -> dict[str, float]:
        """Mask every layer so that ``target`` of all blocks are zero; returns layer densities."""
        return self.prune(1.0 - self.target)

    def block_sparsity(self) -> float:
        """Share of all blocks of the pruned layers that are entirely zero."""
        zero = total = 0
        for name in self.layers:
            nonzero = block_sums((self.weight(name) != 0).to(torch.int64), self.bh, self.bw)
            zero += int((nonzero == 0).sum())
            total += nonzero.numel()
        return zero / total

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(layers={len(self.layers)}, block=({self.bh}, {self.bw}), "
            f"target={self.target}, hessian={self.hessian!r}, saliency={self.saliency!r}, "
            f"lambda_power={self.lambda_power}, lambda_latency={self.lambda_latency})"
        )
