"""HMoDE: a hierarchical mixture of multi-scale density experts for crowd counting.

Paper: `Redesigning Multi-Scale Neural Network for Crowd Counting
<https://arxiv.org/abs/2208.02894>`_ (Du, Shi, Deng and Zafeiriou, IEEE TIP 2023).

Density experts read backbone features at several scales; their maps are merged in a binary
tree (pairs, then pairs of merged maps) by pixel-wise soft gating nets, whose per-pixel
softmax weights come from the shared :class:`~graphkit.extras.moe.router.Router`. Training uses
the density map and local counting maps (the density integrated over windows), with an expert
competition / collaboration loss and the paper's relative local counting loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct
from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.moe.router import Router

PAPER = "Redesigning Multi-Scale Neural Network for Crowd Counting"


def _check_maps(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must be a (B, 1, H, W) density map, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def gaussian_density(
    points: Tensor, shape: tuple[int, int], sigma: float = 1.5, radius: int | None = None
) -> Tensor:
    r"""A density map with one unit-mass Gaussian per head: its integral is the head count.

    Each kernel :math:`\exp(-\|p - c\|^2 / 2\sigma^2)` is truncated to the image (and to
    ``radius`` pixels, default :math:`\lceil 3\sigma \rceil`) and renormalised to sum to one,
    so heads near the border keep their full count.

    Args:
        points: head centres ``(n, 2)`` as (row, col) pixel coordinates inside the image.
        shape: ``(H, W)`` of the map.
        sigma: kernel width in pixels (default: 1.5).
        radius: kernel truncation radius (default: ``ceil(3 sigma)``); a head with no pixel
            centre within it (or a ``sigma`` so small that the kernel underflows) puts its
            unit mass on its nearest pixel.

    Returns:
        ``(H, W)`` map in ``points``' floating dtype (float32 for integer points).
    """
    h, w = shape
    check_positive(height=h, width=w)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number, got {sigma}")
    if radius is not None and (isinstance(radius, bool) or int(radius) != radius or radius < 0):
        raise ValueError(f"radius must be a non-negative whole number of pixels, got {radius}")
    if points.dim() != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (n, 2) (row, col), got {tuple(points.shape)}")
    dtype = points.dtype if points.is_floating_point() else torch.float32
    pts = points.to(dtype)
    if not bool(torch.isfinite(pts).all()):
        raise ValueError("points contain NaN or infinite coordinates")
    if pts.numel() and ((pts < 0).any() or (pts[:, 0] > h - 1).any() or (pts[:, 1] > w - 1).any()):
        raise ValueError(f"points must lie inside the {h}x{w} image")
    r = math.ceil(3 * sigma) if radius is None else radius
    rows = torch.arange(h, dtype=dtype, device=points.device)
    cols = torch.arange(w, dtype=dtype, device=points.device)
    density = torch.zeros(h, w, dtype=dtype, device=points.device)
    for cy, cx in pts.tolist():
        gy = torch.exp(-((rows - cy) ** 2) / (2 * sigma**2)) * ((rows - cy).abs() <= r)
        gx = torch.exp(-((cols - cx) ** 2) / (2 * sigma**2)) * ((cols - cx).abs() <= r)
        kernel = gy[:, None] * gx[None, :]
        total = kernel.sum()
        if total > 0:
            density += kernel / total
        else:  # no pixel centre within the radius, or exp underflowed: the nearest pixel
            density[round(cy), round(cx)] += 1
    return density


def local_count_map(density: Tensor, window: int) -> Tensor:
    """Counts of non-overlapping ``window`` x ``window`` regions (zero-padded at the far edges).

    Every pixel falls in exactly one region, so the map's sum equals the density's integral.

    Shapes:
        ``(B, 1, H, W)`` -> ``(B, 1, ceil(H / window), ceil(W / window))``.
    """
    _check_maps(density, "density")
    check_positive(window=window)
    h, w = density.shape[-2:]
    padded = F.pad(density, (0, -w % window, 0, -h % window))
    return F.avg_pool2d(padded, window) * window**2


class PixelSoftGate(nn.Module):
    r"""Pixel-wise soft gating: a softmax over :math:`n` density maps at every pixel.

    .. math::
        g(p) = \mathrm{softmax}\bigl(W_r\, \phi(f)(p)\bigr), \qquad
        \hat{D}(p) = \sum_{i=1}^{n} g_i(p)\, D_i(p)

    :math:`\phi` is a 3x3 ConvNormAct on the gating features :math:`f`; the per-pixel linear
    scores and softmax are the shared :class:`~graphkit.extras.moe.router.Router` (dense
    ``"softmax"`` gate) applied to each pixel as a token.

    Args:
        in_channels: channels of the gating features.
        n_inputs: number of maps merged :math:`n` (default: 2).
        hidden: channels of :math:`\phi` (default: 32).

    Shapes:
        ``features (B, in_channels, H, W)``, ``maps`` a sequence of ``n`` tensors
        ``(B, C, H, W)`` -> ``(merged (B, C, H, W), gates (B, n, H, W))``.
    """

    def __init__(self, in_channels: int, n_inputs: int = 2, hidden: int = 32) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, n_inputs=n_inputs, hidden=hidden)
        self.in_channels, self.n_inputs = in_channels, n_inputs
        self.body = ConvNormAct(in_channels, hidden, 3)
        self.router = Router(hidden, n_inputs, gate="softmax")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.body.reset_parameters()
        self.router.reset_parameters()

    def gates(self, features: Tensor) -> Tensor:
        """The per-pixel weights ``(B, n, H, W)``: non-negative, summing to one over ``n``."""
        h = self.body(features)
        b, c, hh, ww = h.shape
        weights, _, _ = self.router(h.permute(0, 2, 3, 1).reshape(-1, c))
        return weights.view(b, hh, ww, self.n_inputs).permute(0, 3, 1, 2)

    def forward(self, features: Tensor, maps: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        if len(maps) != self.n_inputs:
            raise ValueError(f"expected {self.n_inputs} maps, got {len(maps)}")
        g = self.gates(features)
        for m in maps:
            if m.dim() != 4 or m.shape[0] != g.shape[0] or m.shape[-2:] != g.shape[-2:]:
                raise ValueError(
                    f"maps must be (B, C, {g.shape[-2]}, {g.shape[-1]}) like the features, "
                    f"got {tuple(m.shape)}"
                )
        merged = sum(g[:, i : i + 1] * m for i, m in enumerate(maps))
        return merged, g


@dataclass
class HMoDEOutput:
    """What one HMoDE pass produces.

    Attributes:
        density: the final density map ``(B, 1, H, W)``.
        experts: the scale experts' maps, each ``(B, 1, H, W)``, finest scale first.
        merged: every merged map of the hierarchy, bottom level first (the last is ``density``).
        gates: the gate weights of each merge, in the order of ``merged``.
    """

    density: Tensor
    experts: list[Tensor]
    merged: list[Tensor] = field(default_factory=list)
    gates: list[Tensor] = field(default_factory=list)

    def all_maps(self) -> list[Tensor]:
        return self.experts + self.merged


class HMoDE(nn.Module):
    r"""Hierarchical mixture of density experts on a small multi-scale CNN.

    The backbone has one stage per width (two 3x3 ConvNormAct, each stage after the first
    halving the resolution); ``scales`` picks the stages that get an expert (one scale is the
    single-scale baseline on the same backbone). Expert :math:`i` turns stage :math:`i`'s
    features into gating
    features :math:`h_i` and a non-negative density map at its own scale :math:`s = 2^i`,
    brought to full resolution by nearest upsampling divided by :math:`s^2` (which keeps its
    integral exactly). Adjacent maps are merged pairwise by :class:`PixelSoftGate` (gating
    features: both members' :math:`h`; the merged node's :math:`h` is the gate-weighted mean),
    level by level until one map is left; an odd node is carried up unchanged. The paper uses
    VGG16-BN features; torchvision is not needed here.

    Args:
        in_channels: image channels (default: 3).
        widths: channels of the backbone stages, one per scale (default: ``(16, 32, 64, 64)``).
        expert_channels: channels of each expert's hidden / gating features (default: 16).
        gate_hidden: hidden channels of each gating net (default: 16).
        scales: indices of the stages with an expert, increasing (default: all of them).

    Shapes:
        input ``(B, in_channels, H, W)`` with ``H, W`` divisible by ``2^(len(widths) - 1)``
        -> :class:`HMoDEOutput` with maps ``(B, 1, H, W)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64, 64),
        expert_channels: int = 16,
        gate_hidden: int = 16,
        scales: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        check_positive(
            in_channels=in_channels, expert_channels=expert_channels, gate_hidden=gate_hidden
        )
        if not widths:
            raise ValueError("widths needs at least one scale")
        for i, w in enumerate(widths):
            check_positive(**{f"widths[{i}]": w})
        scales = tuple(range(len(widths))) if scales is None else tuple(scales)
        if (
            not scales
            or list(scales) != sorted(set(scales))
            or not (0 <= scales[0] and scales[-1] < len(widths))
        ):
            raise ValueError(
                f"scales must be increasing stage indices in [0, {len(widths)}), got {scales}"
            )
        self.in_channels, self.widths, self.scales = in_channels, widths, scales
        self.stages = nn.ModuleList()
        prev = in_channels
        for i, w in enumerate(widths):
            self.stages.append(
                nn.Sequential(
                    ConvNormAct(prev, w, 3, stride=1 if i == 0 else 2), ConvNormAct(w, w, 3)
                )
            )
            prev = w
        self.expert_feats = nn.ModuleDict(
            {str(i): ConvNormAct(widths[i], expert_channels, 3) for i in scales}
        )
        self.expert_heads = nn.ModuleDict(
            {str(i): nn.Conv2d(expert_channels, 1, 1) for i in scales}
        )
        self.gates = nn.ModuleList()
        n = len(scales)
        while n > 1:
            level = nn.ModuleList(
                PixelSoftGate(2 * expert_channels, 2, gate_hidden) for _ in range(n // 2)
            )
            self.gates.append(level)
            n = n // 2 + n % 2
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> HMoDEOutput:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        div = 2 ** (len(self.widths) - 1)
        if x.shape[-2] % div or x.shape[-1] % div:
            raise ValueError(f"H and W must be divisible by {div}, got {tuple(x.shape[-2:])}")
        size = x.shape[-2:]
        maps, feats = [], []
        for i, stage in enumerate(self.stages[: self.scales[-1] + 1]):
            x = stage(x)
            if str(i) not in self.expert_feats:
                continue
            h = self.expert_feats[str(i)](x)
            head, s = self.expert_heads[str(i)], 2**i
            # nearest upsampling divided by s^2 keeps each expert's integral exactly
            maps.append(F.interpolate(F.relu(head(h)), size=size, mode="nearest") / s**2)
            feats.append(F.interpolate(h, size=size, mode="bilinear", align_corners=False))
        out = HMoDEOutput(density=maps[0], experts=list(maps))
        for level in self.gates:
            next_maps, next_feats = [], []
            for j, gate in enumerate(level):
                pair_m, pair_h = maps[2 * j : 2 * j + 2], feats[2 * j : 2 * j + 2]
                merged, g = gate(torch.cat(pair_h, dim=1), pair_m)
                out.merged.append(merged)
                out.gates.append(g)
                next_maps.append(merged)
                next_feats.append(g[:, :1] * pair_h[0] + g[:, 1:] * pair_h[1])
            if len(maps) % 2:
                next_maps.append(maps[-1])
                next_feats.append(feats[-1])
            maps, feats = next_maps, next_feats
        out.density = maps[0]
        return out

    def count(self, x: Tensor) -> Tensor:
        """Predicted head counts ``(B,)``: the integral of the final density."""
        return self.forward(x).density.sum(dim=(1, 2, 3))


class RelativeLocalCountLoss(nn.Module):
    r"""Relative local counting loss over hard-predicted local regions.

    With local count maps :math:`P, G` (windows of ``window`` pixels) and the set :math:`S`
    of the ``n_hard`` regions with the largest absolute error :math:`|P_r - G_r|` in each
    image (selected without gradient),

    .. math::
        L = \frac{1}{|\{(r, s)\}|} \sum_{r < s \in S}
        \bigl|(P_r - P_s) - (G_r - G_s)\bigr|

    compares count *differences* between region pairs. It vanishes whenever the prediction
    errs by the same offset on every selected region (so it complements an absolute loss,
    which would penalise that offset) and is positive when the offsets differ.

    Args:
        window: local region size in pixels (default: 8).
        n_hard: regions compared per image, at least 2 (default: 8; fewer if the map has
            fewer regions).

    Shapes:
        ``pred, target (B, 1, H, W)`` density maps -> scalar.
    """

    def __init__(self, window: int = 8, n_hard: int = 8) -> None:
        super().__init__()
        check_positive(window=window, n_hard=n_hard)
        if n_hard < 2:
            raise ValueError(f"n_hard must be >= 2 (pairs of regions), got {n_hard}")
        self.window, self.n_hard = window, n_hard

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        _check_maps(pred, "pred")
        _check_maps(target, "target")
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        p = local_count_map(pred, self.window).flatten(1)
        g = local_count_map(target, self.window).flatten(1)
        n = min(self.n_hard, p.shape[1])
        if n < 2:
            raise ValueError(f"the map has {p.shape[1]} region(s) of {self.window} px; need 2")
        hard = (p - g).detach().abs().topk(n, dim=1).indices
        err = (p - g).gather(1, hard)  # (B, n): per-region offsets of the hard regions
        i, j = torch.triu_indices(n, n, offset=1, device=pred.device)
        return (err[:, i] - err[:, j]).abs().mean()

    def extra_repr(self) -> str:
        return f"window={self.window}, n_hard={self.n_hard}"


def hmode_loss(
    output: HMoDEOutput,
    target: Tensor,
    window: int = 8,
    relative_weight: float = 1.0,
    local_weight: float = 1.0,
    n_hard: int = 8,
    competition_tau: float | None = None,
) -> Tensor:
    r"""HMoDE's training objective: collaboration + competition + local and relative counts.

    *Collaboration*: every map of the hierarchy (experts, merged maps, the final density) is
    supervised by pixel MSE against the target. *Competition*: the experts' squared errors
    are reweighted per pixel by :math:`w_i = E\,\mathrm{softmax}_i(-e_i / \tau)` (detached), so
    the best expert at a pixel takes more of the loss there (winner-take-more); with
    ``competition_tau=None`` the weights are 1 (collaboration only). The final density's local
    count map (``window``) adds an absolute L1 term and :class:`RelativeLocalCountLoss`.
    The weighting follows the catalogue's description of the paper's scheme.

    Args:
        output: an :class:`HMoDEOutput`.
        target: the ground-truth density ``(B, 1, H, W)``.
        window: local-count window (default: 8).
        relative_weight: weight of the relative local count loss (default: 1.0).
        local_weight: weight of the absolute local count loss (default: 1.0).
        n_hard: hard regions of the relative loss (default: 8).
        competition_tau: temperature of the competition weights, or ``None`` (default).
    """
    _check_maps(target, "target")
    if output.density.shape != target.shape:
        raise ValueError(
            f"target {tuple(target.shape)} must match the density {tuple(output.density.shape)}"
        )
    errs = torch.stack([(m - target).pow(2) for m in output.experts])  # (E, B, 1, H, W)
    if competition_tau is not None:
        if competition_tau <= 0:
            raise ValueError(f"competition_tau must be > 0, got {competition_tau}")
        w = len(output.experts) * torch.softmax(-errs.detach() / competition_tau, dim=0)
        errs = w * errs
    loss = errs.mean(dim=(1, 2, 3, 4)).sum()
    for m in output.merged:
        loss = loss + F.mse_loss(m, target)
    if not output.merged:  # a single expert: the final density is that expert
        loss = loss + F.mse_loss(output.density, target)
    p, g = local_count_map(output.density, window), local_count_map(target, window)
    loss = loss + local_weight * F.l1_loss(p, g)
    if relative_weight:
        loss = loss + relative_weight * RelativeLocalCountLoss(window, n_hard)(
            output.density, target
        )
    return loss


@register_model("hmode", family="moe", paper=PAPER)
def hmode(**kwargs) -> HMoDE:
    """HMoDE on the small multi-scale CNN (see :class:`HMoDE`)."""
    return HMoDE(**kwargs)
