r"""DPENet: a dual-stage progressive enhancement network for single-image deraining.

From `From Heavy Rain Removal to Detail Restoration: A Faster and Better Network
<https://arxiv.org/abs/2205.03553>`_ (Wen, Gao, Zhang, Zhang and Chen, 2022; official code
``chdwyb/DPENet``). Two stages share one residual form, :math:`\hat y = x + f(x)`:

- **R²Net** (rain-streak removal): a 1×1 stem, ten :class:`DDRB` (dilated dense residual
  blocks) and a 1×1 head give the stage-1 estimate :math:`\hat y_1 = x + R(x)`;
- **DRNet** (detail reconstruction): a 1×1 stem on :math:`\mathrm{ReLU}(\hat y_1)`, three
  :class:`ERPAB` (enhanced residual pixel-wise attention blocks) and a 1×1 head give
  :math:`\hat y_2 = \hat y_1 + D(\mathrm{ReLU}(\hat y_1))`.

Every convolution is stride 1 with "same" padding, so any ``H × W`` (odd or even) is kept.
:class:`DerainLoss` supervises both stages with a regional (SSIM) and a marginal (Laplacian
edge) term, weighted as in the official training script.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.registry import register_model

PAPER = "From Heavy Rain Removal to Detail Restoration: A Faster and Better Network"


def _dilated(cin: int, cout: int, dilation: int) -> nn.Conv2d:
    # padding = dilation keeps a 3x3 dilated convolution "same" for every size
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False)


def _check_dilations(dilations: Sequence[int], length: int, who: str) -> tuple[int, ...]:
    if len(dilations) != length:
        raise ValueError(f"{who} needs {length} dilations, got {len(dilations)}")
    check_positive(**{f"dilations[{i}]": d for i, d in enumerate(dilations)})
    return tuple(int(d) for d in dilations)


class DDRB(nn.Module):
    r"""Dilated dense residual block (R²Net).

    Three two-convolution units :math:`u_1, u_2, u_3` (3×3, ReLU, 3×3; dilations in pairs)
    whose inputs are dense residual sums of everything before them:

    .. math::
        r_1 = u_1(x),\quad r_2 = u_2(\phi(x + r_1)),\quad r_3 = u_3(\phi(x + r_1 + r_2)),
        \quad y = \phi(x + r_1 + r_2 + r_3)

    with :math:`\phi = \mathrm{ReLU}`. Convolutions have no bias. The growing dilation
    (1, 1, 2, 2, 5, 5) aggregates low- and high-level context at full resolution.

    Args:
        channels (int): input and output channels. (default: ``32``)
        dilations (sequence of int): the six dilations. (default: ``(1, 1, 2, 2, 5, 5)``)

    Shapes:
        - input: :math:`(B, C, H, W)`; output: :math:`(B, C, H, W)`.
    """

    def __init__(self, channels: int = 32, dilations: Sequence[int] = (1, 1, 2, 2, 5, 5)) -> None:
        super().__init__()
        check_positive(channels=channels)
        self.channels = channels
        self.dilations = _check_dilations(dilations, 6, "DDRB")
        d = self.dilations
        self.units = nn.ModuleList(
            nn.Sequential(
                _dilated(channels, channels, d[2 * i]),
                nn.ReLU(),
                _dilated(channels, channels, d[2 * i + 1]),
            )
            for i in range(3)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for unit in self.units:
            for layer in unit:
                if isinstance(layer, nn.Conv2d):
                    layer.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.channels, "DDRB")
        acc = x
        for unit in self.units:
            # the first unit sees x itself; later ones the rectified dense sum
            acc = acc + unit(x if acc is x else F.relu(acc))
        return F.relu(acc)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dilations={self.dilations}"


class ERPAB(nn.Module):
    r"""Enhanced residual pixel-wise attention block (DRNet).

    Three parallel 3×3 convolutions with dilations :math:`(1, 2, 5)` are concatenated and
    fused by a 1×1 convolution (with bias) and ReLU into :math:`f`; a pixel-attention branch
    (3×3 conv to :math:`C / r` channels, ReLU, 3×3 conv back, sigmoid) reweights every
    position and channel:

    .. math::
        f = \phi\big(W_{1\times1}[\,k_1 * x,\ k_2 * x,\ k_5 * x\,] + b\big),\qquad
        y = \phi\big(f \odot \sigma(P(f)) + x\big)

    Args:
        channels (int): input and output channels. (default: ``32``)
        dilations (sequence of int): the three branch dilations. (default: ``(1, 2, 5)``)
        reduction (int): channel reduction :math:`r` of the attention branch; the official
            default reduces 32 channels to one. (default: ``32``)

    Shapes:
        - input: :math:`(B, C, H, W)`; output: :math:`(B, C, H, W)`.
    """

    def __init__(
        self, channels: int = 32, dilations: Sequence[int] = (1, 2, 5), reduction: int = 32
    ) -> None:
        super().__init__()
        check_positive(channels=channels, reduction=reduction)
        if reduction > channels:
            raise ValueError(f"reduction={reduction} must not exceed channels={channels}")
        self.channels = channels
        self.reduction = reduction
        self.dilations = _check_dilations(dilations, 3, "ERPAB")
        self.branches = nn.ModuleList(_dilated(channels, channels, d) for d in self.dilations)
        self.fuse = nn.Conv2d(3 * channels, channels, 1)
        hidden = channels // reduction
        self.attention = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 3, padding=1, bias=False),
            nn.Sigmoid(),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in [*self.branches, self.fuse, self.attention[0], self.attention[2]]:
            conv.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.channels, "ERPAB")
        f = F.relu(self.fuse(torch.cat([branch(x) for branch in self.branches], dim=1)))
        return F.relu(f * self.attention(f) + x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dilations={self.dilations}, reduction={self.reduction}"


def _pointwise(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    # the official 1x1 stems and heads are bias-free and followed by ReLU
    act = nn.ReLU() if relu else nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), act)


@register_model("dpenet", family="compression", paper=PAPER)
class DPENet(nn.Module):
    r"""The dual-stage progressive enhancement network (the official ``DPENet`` config).

    .. math::
        \hat y_1 = x + \rho(H_1\, \mathrm{DDRB}^{n_d}(\phi(S_1 x))),\qquad
        \hat y_2 = \hat y_1 + \rho(H_2\, \mathrm{ERPAB}^{n_e}(\phi(S_2\, \phi(\hat y_1))))

    with bias-free 1×1 stems :math:`S_i` and heads :math:`H_i`, :math:`\phi = \mathrm{ReLU}`
    and :math:`\rho = \phi` (official) or the identity (``head_relu=False``). The default
    configuration has 647,328 parameters (stems and heads 4·96, ten DDRBs of 55,296, three
    ERPABs of 31,328).

    Args:
        in_channels (int): image channels. (default: ``3``)
        channels (int): feature width. (default: ``32``)
        num_ddrb (int): DDRBs in R²Net. (default: ``10``; the official "light" variant uses 5)
        num_erpab (int): ERPABs in DRNet. (default: ``3``)
        ddrb_dilations (sequence of int): see :class:`DDRB`. (default: ``(1, 1, 2, 2, 5, 5)``)
        erpab_dilations (sequence of int): see :class:`ERPAB`. (default: ``(1, 2, 5)``)
        reduction (int): ERPAB attention reduction. (default: ``32``)
        head_relu (bool): rectify the two 1×1 heads, as the official code does. Then each
            stage adds a non-negative image to its input, so the network can never darken a
            pixel and cannot remove additive bright streaks; ``False`` gives a signed residual
            (no parameter changes). (default: ``True``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`, any :math:`H, W`.
        - output: the pair :math:`(\hat y_1, \hat y_2)`, each :math:`(B, C_{in}, H, W)`; the
          second is the restored image.
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: int = 32,
        num_ddrb: int = 10,
        num_erpab: int = 3,
        ddrb_dilations: Sequence[int] = (1, 1, 2, 2, 5, 5),
        erpab_dilations: Sequence[int] = (1, 2, 5),
        reduction: int = 32,
        head_relu: bool = True,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels, channels=channels, num_ddrb=num_ddrb, num_erpab=num_erpab
        )
        self.in_channels = in_channels
        self.channels = channels
        self.head_relu = head_relu
        self.stem1 = _pointwise(in_channels, channels)
        self.r2net = nn.Sequential(*(DDRB(channels, ddrb_dilations) for _ in range(num_ddrb)))
        self.head1 = _pointwise(channels, in_channels, head_relu)
        self.stem2 = _pointwise(in_channels, channels)
        self.drnet = nn.Sequential(
            *(ERPAB(channels, erpab_dilations, reduction) for _ in range(num_erpab))
        )
        self.head2 = _pointwise(channels, in_channels, head_relu)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for seq in (self.stem1, self.head1, self.stem2, self.head2):
            seq[0].reset_parameters()
        for block in [*self.r2net, *self.drnet]:
            block.reset_parameters()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_image(x, self.in_channels, "DPENet")
        stage1 = x + self.head1(self.r2net(self.stem1(x)))
        stage2 = stage1 + self.head2(self.drnet(self.stem2(F.relu(stage1))))
        return stage1, stage2

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_channels={self.in_channels}, channels={self.channels}, "
            f"num_ddrb={len(self.r2net)}, num_erpab={len(self.drnet)}, head_relu={self.head_relu})"
        )


def _gaussian_window(size: int, sigma: float, channels: int, ref: Tensor) -> Tensor:
    r = torch.arange(size, device=ref.device, dtype=ref.dtype) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    r"""Mean structural similarity of two ``(B, C, H, W)`` images in :math:`[0, 1]`.

    Gaussian-weighted local statistics (window 11, :math:`\sigma = 1.5`, zero padding) and
    :math:`C_1 = 0.01^2`, :math:`C_2 = 0.03^2`:
    :math:`\frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
    {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}` averaged over pixels.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"ssim expects two (B, C, H, W) images of one shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    check_positive(window=window)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive finite number, got {sigma}")
    c = x.size(1)
    w = _gaussian_window(window, sigma, c, x)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, w, padding=window // 2, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    return (num / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean()


def laplacian(x: Tensor) -> Tensor:
    r"""One Laplacian-pyramid band: :math:`x - G(\uparrow_2 \downarrow_2 G(x))` with the
    5-tap binomial-like kernel :math:`[.05, .25, .4, .25, .05]` (replicate padding); the
    up-sampling inserts zeros and multiplies by 4."""
    if x.dim() != 4:
        raise ValueError(f"laplacian expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    c = x.size(1)
    k = torch.tensor([0.05, 0.25, 0.4, 0.25, 0.05], device=x.device, dtype=x.dtype)
    kernel = (k[:, None] * k[None, :]).expand(c, 1, 5, 5)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.pad(t, (2, 2, 2, 2), mode="replicate"), kernel, groups=c)

    filtered = blur(x)
    up = torch.zeros_like(filtered)
    up[:, :, ::2, ::2] = 4 * filtered[:, :, ::2, ::2]
    return x - blur(up)


class DerainLoss(nn.Module):
    r"""DPENet's training loss on both stages:

    .. math::
        \mathcal L = \sum_{s=1}^{2} \Big[\big(1 - \mathrm{SSIM}(\hat y_s, y)\big)
        + \lambda\, \mathbb E\sqrt{(L(\hat y_s) - L(y))^2 + \varepsilon^2}\Big]

    with :math:`L` one Laplacian-pyramid band (:func:`laplacian`, the marginal term) and SSIM
    the regional term (:func:`ssim`). :math:`\lambda = 0.05` is the official script's weight;
    that script writes :math:`1 - \sum_s \mathrm{SSIM}_s`, which differs from this sum by the
    constant 1 (same gradients), and leaves :math:`\varepsilon` undefined: 1e-3 here, the
    Charbonnier value of the edge loss it derives from (MPRNet).

    Args:
        edge_weight (float): :math:`\lambda`. (default: ``0.05``)
        eps (float): Charbonnier :math:`\varepsilon`. (default: ``1e-3``)
    """

    def __init__(self, edge_weight: float = 0.05, eps: float = 1e-3) -> None:
        super().__init__()
        if edge_weight < 0 or eps <= 0:
            raise ValueError(f"need edge_weight >= 0 and eps > 0, got {edge_weight}, {eps}")
        self.edge_weight = edge_weight
        self.eps = eps

    def forward(self, outputs: Tensor | Sequence[Tensor], target: Tensor) -> Tensor:
        stages = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        if not stages:
            raise ValueError("DerainLoss needs at least one output")
        total = target.new_zeros(())
        for out in stages:
            if out.shape != target.shape:
                raise ValueError(
                    f"output shape {tuple(out.shape)} differs from target {tuple(target.shape)}"
                )
            diff = laplacian(out) - laplacian(target)
            edge = torch.sqrt(diff * diff + self.eps**2).mean()
            total = total + (1 - ssim(out, target)) + self.edge_weight * edge
        return total

    def extra_repr(self) -> str:
        return f"edge_weight={self.edge_weight}, eps={self.eps}"


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB of images in :math:`[0, 1]` (over the whole batch)."""
    if x.shape != y.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    return -10 * torch.log10(F.mse_loss(x, y))


def rain_streak_pairs(
    n: int, size: int = 64, density: float = 0.02, angle: float = 0.3, length: int = 9,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Seeded synthetic deraining pairs ``(rainy, clean)``, each :math:`(n, 3, s, s)` in
    :math:`[0, 1]`.

    The clean image is smooth colour noise (a 4×4 random field, bicubically upsampled); rain
    is a sparse Bernoulli(``density``) field of drops smeared along a line of ``length``
    pixels at ``angle`` radians from vertical, added in white and clipped.
    """
    check_positive(n=n, size=size, length=length)
    if not math.isfinite(angle):
        raise ValueError(f"angle must be a finite number of radians, got {angle}")
    if not 0.0 < density < 1.0:
        raise ValueError(f"density must lie in (0, 1), got {density}")
    g = generator
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    clean = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    clean = clean.clamp(0.05, 0.95)
    drops = (torch.rand(n, 1, size, size, generator=g) < density).float()
    drops = drops * (0.5 + 0.5 * torch.rand(n, 1, size, size, generator=g))
    # a line kernel: one pixel per row, shifted by tan(angle) per row
    kernel = torch.zeros(1, 1, length, length)
    slope = torch.tan(torch.tensor(angle))
    for r in range(length):
        c = int(round(length // 2 + (r - length // 2) * slope.item()))
        if 0 <= c < length:
            kernel[0, 0, r, c] = 1.0
    streaks = F.conv2d(drops, kernel, padding=length // 2).clamp(max=1.0)
    rainy = (clean + 0.8 * streaks).clamp(0.0, 1.0)
    return rainy, clean
