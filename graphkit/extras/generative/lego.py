r"""LEGO bricks: stackable, skippable diffusion backbones that keep the full resolution throughout.

Paper: `Learning Stackable and Skippable LEGO Bricks for Efficient, Reconfigurable, and
Variable-Resolution Diffusion Modeling <https://arxiv.org/abs/2310.06389>`_ (Zheng et al., ICLR
2024; official code: JegZheng/LEGODiffusion).

A :class:`LEGOBrick` maps a full-resolution image to a full-resolution image. It cuts its input
into non-overlapping :math:`r \times r` regions; inside each region, Local-feature Enrichment
embeds every :math:`p \times p` patch linearly (the official ``PatchEmbed``), and
Global-content Orchestration runs DiT blocks (adaLN-Zero conditioning on time and class) over
the :math:`(r/p)^2` patches of the region; the output patches are projected back and
re-assembled. :class:`LEGODiffusion` stacks bricks as in the official model: every brick sees the
noisy image with two normalised coordinate channels, and every brick after the first also the
previous brick's output; each brick's output is a full prediction (here of the noise
:math:`\epsilon`), all of them trained. Region sizes grow along the stack (progressive
growth, "PG") or shrink ("PR"). At sampling, bricks after the first can be skipped at chosen
steps (:func:`skip_schedule`), and a canvas larger than the training images is processed
region by region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.attention import MultiHeadSelfAttention
from graphkit.extras._core.blocks import MLP
from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.registry import register_model

PAPER = (
    "Learning Stackable and Skippable LEGO Bricks for Efficient, Reconfigurable, and "
    "Variable-Resolution Diffusion Modeling"
)

#: Official brick widths and heads (``lego_module_dict``): S, L and XL.
SIZES: dict[str, tuple[int, int]] = {"S": (384, 6), "L": (1024, 16), "XL": (1152, 16)}


def sincos_2d(dim: int, grid: int) -> Tensor:
    """Fixed 2-D sine-cosine position embedding of a ``grid x grid`` patch grid, ``(grid², dim)``.

    Half of the channels encode the row, half the column (MAE/DiT form); ``dim % 4 == 0``.
    """
    if dim % 4:
        raise ValueError(f"a 2-D sine-cosine embedding needs dim divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    pos = torch.arange(grid, dtype=torch.float64)
    ang = pos[:, None] * omega[None]  # (grid, dim/4)
    one = torch.cat([ang.sin(), ang.cos()], dim=1)  # (grid, dim/2)
    rows = one[:, None, :].expand(grid, grid, dim // 2)
    cols = one[None, :, :].expand(grid, grid, dim // 2)
    return torch.cat([rows, cols], dim=-1).reshape(grid * grid, dim).float()


def timestep_embedding(
    t: Tensor, dim: int, max_period: float = 10000.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Sinusoidal embedding ``[cos(t w), sin(t w)]`` of ``(B,)`` timesteps, shape ``(B, dim)``,
    in ``dtype`` (computed in at least float32)."""
    half = dim // 2
    work = torch.promote_types(dtype, torch.float32)
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=work) / half
    )
    args = t.to(work)[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1).to(dtype)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class _DiTBlock(nn.Module):
    """DiT block with adaLN-Zero: attention and MLP, each shifted, scaled and gated by ``c``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio), act_layer=lambda: nn.GELU(approximate="tanh"))
        self.ada = nn.Linear(dim, 6 * dim)

    def forward(self, x: Tensor, mod: Tensor) -> Tensor:
        s1, g1, a1, s2, g2, a2 = mod.chunk(6, dim=1)
        x = x + a1.unsqueeze(1) * self.attn(_modulate(self.norm1(x), s1, g1))
        return x + a2.unsqueeze(1) * self.mlp(_modulate(self.norm2(x), s2, g2))


class LEGOBrick(nn.Module):
    r"""One LEGO brick: region-wise patch transformer, full resolution in and out.

    For an input :math:`(B, C_{in}, H, W)` with :math:`r \mid H, W`, the :math:`R = HW/r^2`
    regions are processed independently (so any canvas that the region tiles works, e.g. twice
    the training size):

    .. math::
        z^0 = \mathrm{Patch}_p(x_{\text{region}})\, W_e + b_e + P, \qquad
        z^{l} = \mathrm{DiT}_l(z^{l-1}, c), \qquad
        y_{\text{region}} = \mathrm{Unpatch}_p\big(\mathrm{adaLN}(z^{L}, c)\, W_o + b_o\big)

    with :math:`P` the fixed 2-D sine-cosine embedding of the :math:`(r/p)^2` patch grid and
    :math:`c \in \mathbb{R}^{D}` the time/class conditioning. adaLN modulations are computed
    once per sample and shared by its regions. Initialised as DiT: Xavier-uniform linears,
    zero adaLN and zero output layer (a new brick outputs zeros).

    Multiply-accumulates per image (:meth:`macs`), with :math:`N = HW/p^2` tokens,
    :math:`n = (r/p)^2` per region and MLP width :math:`M`:
    :math:`N p^2 (C_{in} D + D C_{out}) + L(4ND^2 + 2NnD + 2NDM + 6D^2) + 2D^2`.

    Args:
        in_channels (int): input channels :math:`C_{in}`.
        out_channels (int): output channels :math:`C_{out}`.
        patch (int): patch size :math:`p`.
        region (int): region size :math:`r` (a multiple of ``patch``).
        dim (int): token width :math:`D` (divisible by 4 and by ``heads``).
        depth (int): DiT blocks :math:`L`.
        heads (int): attention heads.
        mlp_ratio (float): MLP width over ``dim``. (default: ``4.0``)

    Shapes:
        - input: ``x`` :math:`(B, C_{in}, H, W)` and ``c`` :math:`(B, D)`.
        - output: :math:`(B, C_{out}, H, W)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch: int,
        region: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            patch=patch,
            region=region,
            dim=dim,
            depth=depth,
            heads=heads,
        )
        if region % patch:
            raise ValueError(f"patch={patch} must divide region={region}")
        if not mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.patch, self.region, self.dim = patch, region, dim
        self.depth, self.heads, self.mlp_ratio = depth, heads, mlp_ratio
        self.embed = nn.Linear(patch * patch * in_channels, dim)
        self.register_buffer("pos", sincos_2d(dim, region // patch), persistent=False)
        self.blocks = nn.ModuleList(_DiTBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, patch * patch * out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for lin in [b.ada for b in self.blocks] + [self.ada_out, self.out]:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _patches(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` to ``(B * R, n, p * p * C)``: regions row-major, patches row-major."""
        b, c, h, w = x.shape
        r, p = self.region, self.patch
        g = r // p
        x = x.reshape(b, c, h // r, g, p, w // r, g, p)
        x = x.permute(0, 2, 5, 3, 6, 4, 7, 1)  # b, rows, cols, gy, gx, py, px, c
        return x.reshape(b * (h // r) * (w // r), g * g, p * p * c)

    def _image(self, z: Tensor, b: int, h: int, w: int) -> Tensor:
        r, p, c = self.region, self.patch, self.out_channels
        g = r // p
        z = z.reshape(b, h // r, w // r, g, g, p, p, c).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return z.reshape(b, c, h, w)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        b, _, h, w = x.shape
        if h % self.region or w % self.region:
            raise ValueError(f"region={self.region} must divide the image size {(h, w)}")
        if c.shape != (b, self.dim):
            raise ValueError(f"conditioning must have shape {(b, self.dim)}, got {tuple(c.shape)}")
        regions = (h // self.region) * (w // self.region)
        z = self.embed(self._patches(x)) + self.pos
        c = F.silu(c)
        for block in self.blocks:
            z = block(z, block.ada(c).repeat_interleave(regions, dim=0))
        shift, scale = self.ada_out(c).repeat_interleave(regions, dim=0).chunk(2, dim=1)
        z = self.out(_modulate(self.norm_out(z), shift, scale))
        return self._image(z, b, h, w)

    def macs(self, height: int, width: int) -> int:
        """Analytic multiply-accumulates of one image's forward pass at ``(height, width)``."""
        check_positive(height=height, width=width)
        n_tok = height * width // self.patch**2
        n_reg = (self.region // self.patch) ** 2
        d, m = self.dim, int(self.dim * self.mlp_ratio)
        pp = self.patch**2
        block = 4 * n_tok * d * d + 2 * n_tok * n_reg * d + 2 * n_tok * d * m + 6 * d * d
        return (
            n_tok * pp * (self.in_channels + self.out_channels) * d + self.depth * block + 2 * d * d
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, patch={self.patch}, "
            f"region={self.region}, dim={self.dim}, depth={self.depth}, heads={self.heads})"
        )


def skip_schedule(
    num_steps: int, num_bricks: int, skip: Sequence[int], first_step: int, last_step: int
) -> Tensor:
    """Which bricks run at each sampling step: ``(num_steps, num_bricks)`` booleans.

    Bricks ``skip`` are left out at sampler steps ``first_step <= s < last_step`` (step 0 is the
    noisiest); every other brick runs at every step. Brick 0 cannot be skipped, since every
    later brick reads its output.
    """
    check_positive(num_steps=num_steps, num_bricks=num_bricks)
    if not 0 <= first_step <= last_step <= num_steps:
        raise ValueError(
            f"need 0 <= first_step <= last_step <= num_steps, got {first_step}, {last_step}"
        )
    for i in skip:
        if not 1 <= i < num_bricks:
            raise ValueError(f"skipped bricks must lie in [1, {num_bricks}), got {i}")
    active = torch.ones(num_steps, num_bricks, dtype=torch.bool)
    active[first_step:last_step, list(skip)] = False
    return active


class LEGODiffusion(nn.Module):
    r"""A stack of LEGO bricks predicting the noise of a DDPM, with skippable bricks.

    With :math:`u = [x_t; \text{coords}]` (two channels of row/column coordinates in
    :math:`[-1, 1]`) and :math:`c = \mathrm{MLP}(\mathrm{emb}(t)) + E[y]`:

    .. math::
        F_1 = B_1(u, c), \qquad F_k = B_k([F_{k'}; u], c)

    where :math:`k'` is the last brick that ran before :math:`k`; the output is the last
    :math:`F`. Training (:meth:`loss`) applies the :math:`\epsilon`-prediction loss to every
    brick's output, so that a stack cut short by skipping still predicts the noise, as the
    official ``train_intermediate_stages``. The noise schedule is DDPM's linear
    :math:`\beta_t` from ``1e-4`` to ``0.02``; :meth:`sample` runs deterministic DDIM.

    Args:
        bricks (sequence of LEGOBrick): brick 0 takes ``C + 2`` channels, later ones
            ``2C + 2``; all output ``C`` channels and share ``dim``.
        stacking (str): ``"PG"`` (region sizes non-decreasing) or ``"PR"`` (non-increasing);
            checked against the bricks. (default: ``"PG"``)
        num_classes (int): class labels; ``0`` for unconditional. (default: ``0``)
        num_train_steps (int): diffusion steps :math:`T`. (default: ``1000``)
        freq_dim (int): width of the sinusoidal timestep embedding. (default: ``256``)

    Shapes:
        - input: ``x`` :math:`(B, C, H, W)`, ``t`` :math:`(B,)`, ``y`` :math:`(B,)` or None,
          ``active`` a sequence of ``num_bricks`` booleans or None (all).
        - output: :math:`(B, C, H, W)`.
    """

    def __init__(
        self,
        bricks: Sequence[LEGOBrick],
        stacking: str = "PG",
        num_classes: int = 0,
        num_train_steps: int = 1000,
        freq_dim: int = 256,
    ) -> None:
        super().__init__()
        if not bricks:
            raise ValueError("LEGODiffusion needs at least one brick")
        if stacking not in ("PG", "PR"):
            raise ValueError(f"stacking must be 'PG' or 'PR', got {stacking!r}")
        check_positive(num_train_steps=num_train_steps, freq_dim=freq_dim)
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        c, dim = bricks[0].out_channels, bricks[0].dim
        for k, brick in enumerate(bricks):
            want = c + 2 if k == 0 else 2 * c + 2
            if brick.in_channels != want or brick.out_channels != c or brick.dim != dim:
                raise ValueError(
                    f"brick {k} must map {want} to {c} channels with dim={dim}, got {brick!r}"
                )
        regions = [b.region for b in bricks]
        ordered = regions == sorted(regions, reverse=stacking == "PR")
        if not ordered:
            raise ValueError(f"region sizes {regions} do not follow {stacking} stacking")
        self.bricks = nn.ModuleList(bricks)
        self.stacking, self.channels, self.dim = stacking, c, dim
        self.num_classes, self.num_train_steps, self.freq_dim = (
            num_classes,
            num_train_steps,
            freq_dim,
        )
        self.t_mlp = MLP(freq_dim, dim, dim, act_layer=nn.SiLU)
        self.y_embed = nn.Embedding(num_classes, dim) if num_classes else None
        betas = torch.linspace(1e-4, 0.02, num_train_steps, dtype=torch.float64)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0).float(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for brick in self.bricks:
            brick.reset_parameters()
        nn.init.normal_(self.t_mlp.fc1.weight, std=0.02)
        nn.init.normal_(self.t_mlp.fc2.weight, std=0.02)
        nn.init.zeros_(self.t_mlp.fc1.bias)
        nn.init.zeros_(self.t_mlp.fc2.bias)
        if self.y_embed is not None:
            nn.init.normal_(self.y_embed.weight, std=0.02)

    def condition(self, t: Tensor, y: Tensor | None) -> Tensor:
        """The conditioning vector :math:`c`, shape ``(B, dim)``."""
        # in the MLP's dtype, so that a .double() (or half) model runs
        c = self.t_mlp(timestep_embedding(t, self.freq_dim, dtype=self.t_mlp.fc1.weight.dtype))
        if self.y_embed is not None:
            if y is None:
                raise ValueError("this model is class-conditional: pass labels y")
            if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                raise ValueError(f"labels y must be integer classes, got {y.dtype}")
            if y.min() < 0 or y.max() >= self.num_classes:
                raise ValueError(f"labels must lie in [0, {self.num_classes})")
            c = c + self.y_embed(y)
        elif y is not None:
            raise ValueError("this model is unconditional (num_classes=0): y must be None")
        return c

    def _coords(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        rows = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
        cols = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
        grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=0)
        return torch.cat([x, grid.unsqueeze(0).expand(b, 2, h, w)], dim=1)

    def _active(self, active: Sequence[bool] | Tensor | None) -> list[bool]:
        if active is None:
            return [True] * len(self.bricks)
        flags = [bool(a) for a in active]
        if len(flags) != len(self.bricks):
            raise ValueError(f"active needs {len(self.bricks)} flags, got {len(flags)}")
        if not flags[0]:
            raise ValueError("brick 0 cannot be skipped: every later brick reads its output")
        return flags

    def forward_all(
        self,
        x: Tensor,
        t: Tensor,
        y: Tensor | None = None,
        active: Sequence[bool] | Tensor | None = None,
    ) -> list[Tensor]:
        """The outputs of every brick that runs, in order."""
        check_image(x, self.channels, type(self).__name__)
        if t.shape != (x.size(0),):
            raise ValueError(f"t must have shape {(x.size(0),)}, got {tuple(t.shape)}")
        flags = self._active(active)
        u, c = self._coords(x), self.condition(t, y)
        outs: list[Tensor] = []
        for brick, on in zip(self.bricks, flags, strict=True):
            if on:
                outs.append(brick(u if not outs else torch.cat([outs[-1], u], dim=1), c))
        return outs

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        y: Tensor | None = None,
        active: Sequence[bool] | Tensor | None = None,
    ) -> Tensor:
        return self.forward_all(x, t, y, active)[-1]

    def macs(self, height: int, width: int, active: Sequence[bool] | None = None) -> int:
        """Analytic multiply-accumulates of one image's forward pass with ``active`` bricks."""
        flags = self._active(active)
        embed = self.freq_dim * self.dim + self.dim * self.dim
        return embed + sum(b.macs(height, width) for b, on in zip(self.bricks, flags) if on)

    def loss(self, x0: Tensor, y: Tensor | None = None, generator: Any = None) -> Tensor:
        r""":math:`\epsilon`-prediction loss, averaged over the bricks' outputs."""
        b = x0.size(0)
        t = torch.randint(0, self.num_train_steps, (b,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        ab = self.alpha_bar[t].view(b, 1, 1, 1).to(x0.dtype)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        outs = self.forward_all(xt, t, y)
        return torch.stack([F.mse_loss(o, noise) for o in outs]).mean()

    @torch.no_grad()
    def sample(
        self, noise: Tensor, steps: int, y: Tensor | None = None, schedule: Tensor | None = None
    ) -> Tensor:
        """Deterministic DDIM from ``noise`` in ``steps`` steps; ``schedule`` is
        :func:`skip_schedule`'s ``(steps, num_bricks)`` mask (default: every brick runs)."""
        check_positive(steps=steps)
        if steps > self.num_train_steps:
            raise ValueError(f"steps must be at most num_train_steps={self.num_train_steps}")
        if schedule is not None and schedule.shape != (steps, len(self.bricks)):
            raise ValueError(
                f"schedule must have shape {(steps, len(self.bricks))}, got {tuple(schedule.shape)}"
            )
        ts = torch.linspace(self.num_train_steps - 1, 0, steps).round().long().tolist()
        x = noise
        for s, t in enumerate(ts):
            ab = self.alpha_bar[t].to(x.dtype)
            ab_next = self.alpha_bar[ts[s + 1]].to(x.dtype) if s + 1 < steps else x.new_ones(())
            tt = torch.full((x.size(0),), t, device=x.device, dtype=torch.long)
            eps = self(x, tt, y, None if schedule is None else schedule[s])
            x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        return x

    def extra_repr(self) -> str:
        return f"stacking={self.stacking!r}, channels={self.channels}, classes={self.num_classes}"


def lego(
    regions: Sequence[int],
    patches: Sequence[int],
    depths: Sequence[int],
    dim: int,
    heads: int,
    in_channels: int = 3,
    mlp_ratio: float = 4.0,
    **kwargs: Any,
) -> LEGODiffusion:
    """A LEGO stack from per-brick regions, patch sizes and depths; ``kwargs`` go to
    :class:`LEGODiffusion` (stacking is inferred from the regions unless given)."""
    if not len(regions) == len(patches) == len(depths):
        raise ValueError("regions, patches and depths must have the same length")
    c = in_channels
    bricks = [
        LEGOBrick(c + 2 if k == 0 else 2 * c + 2, c, p, r, dim, d, heads, mlp_ratio)
        for k, (r, p, d) in enumerate(zip(regions, patches, depths, strict=True))
    ]
    kwargs.setdefault("stacking", "PR" if list(regions) != sorted(regions) else "PG")
    return LEGODiffusion(bricks, **kwargs)


# Official configurations (training/lego_models.py): regions, patch sizes, depths per brick.
_CONFIGS: dict[str, tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "lego_s_pg_64": ("S", (4, 16, 64), (2, 8, 2), (2, 4, 6)),
    "lego_s_pr_64": ("S", (64, 16, 4), (2, 8, 2), (6, 4, 2)),
    "lego_l_pg_32": ("L", (4, 16, 32), (2, 8, 2), (4, 8, 12)),
    "lego_l_pr_32": ("L", (32, 16, 4), (2, 8, 2), (12, 8, 4)),
    "lego_xl_pg_32": ("XL", (4, 16, 32), (2, 8, 2), (4, 12, 14)),
    "lego_xl_pr_32": ("XL", (32, 16, 4), (2, 8, 2), (14, 12, 4)),
}


def _named(name: str) -> Any:
    size, regions, patches, depths = _CONFIGS[name]
    dim, heads = SIZES[size]

    def build(**kwargs: Any) -> LEGODiffusion:
        return lego(regions, patches, depths, dim, heads, **kwargs)

    build.__name__ = name
    build.__doc__ = (
        f"LEGO-{size} with regions {regions}, patches {patches}, depths {depths} (official)."
    )
    return register_model(name, family="generative", paper=PAPER)(build)


for _name in _CONFIGS:
    _named(_name)
