r"""A-SDM: the reusable parts of an accelerated Stable-Diffusion UNet, for any UNet.

Paper: `A-SDM: Accelerating Stable Diffusion through Redundancy Removal and Performance
Optimization <https://arxiv.org/abs/2312.15516>`_ (Zhu et al., 2023). The library cannot ship
SD weights, so it provides the four mechanisms the recipe is built from:

- :class:`CLMECondConv` — a conditional convolution (`CondConv
  <https://arxiv.org/abs/1904.04971>`_) whose expert kernels can be initialised from the
  convolutions of removed blocks ("cross-layer multi-expert"), mixed per sample by
  :math:`r = \sigma(W\,\mathrm{GAP}(x) + b)`;
- :class:`GRIAttention` — global-regional interactive attention: each window's tokens attend to
  their window and to a few pooled global tokens, so the cost is linear in the tokens for a
  fixed window;
- :class:`BlockIncubation` — progressive incubation: student blocks replace teacher blocks stage
  by stage, and only the block being incubated is trained while the rest stays frozen;
- :func:`semantic_alignment_loss` — teacher and student outputs compared in a frozen feature
  space.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.attention import (
    MultiHeadSelfAttention,
    _pair,
    scaled_dot_product,
    window_partition,
    window_reverse,
)
from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.modules import replace_module
from graphkit.extras._core.registry import register_model
from graphkit.extras.training.distill import feature_mse

PAPER = (
    "A-SDM: Accelerating Stable Diffusion through Redundancy Removal and Performance Optimization"
)

Size2 = tuple[int, int]


class CLMECondConv(nn.Module):
    r"""Cross-layer multi-expert conditional convolution.

    .. math::
        r(x) = \sigma\big(W_r\, \mathrm{GAP}(x) + b_r\big) \in (0, 1)^E, \qquad
        y = \Big(\sum_{e=1}^{E} r_e(x)\, K_e\Big) * x + \sum_e r_e(x)\, b_e

    one mixed kernel per sample, run as a single grouped convolution over the batch (CondConv's
    cost: one convolution plus the mixing). The routing is an independent sigmoid per expert, as
    in CondConv; :class:`~graphkit.extras.moe.Router` only has softmax-normalised gates, so the
    routing layer is a plain ``Linear`` here. :meth:`from_convs` initialises the experts from
    the convolutions of pruned blocks.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): square kernel. (default: ``3``)
        num_experts (int): experts :math:`E`. (default: ``4``)
        stride (int): stride. (default: ``1``)
        padding (int, optional): padding; ``None`` gives ``kernel_size // 2``. (default: ``None``)
        bias (bool): a bias per expert. (default: ``True``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`; ``routing`` (optional) :math:`(B, E)`.
        - output: :math:`(B, C_{out}, H', W')`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        num_experts: int = 4,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            num_experts=num_experts,
            stride=stride,
        )
        padding = kernel_size // 2 if padding is None else padding
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.num_experts = kernel_size, num_experts
        self.stride, self.padding = stride, padding
        k = kernel_size
        self.weight = nn.Parameter(torch.empty(num_experts, out_channels, in_channels, k, k))
        self.bias = nn.Parameter(torch.empty(num_experts, out_channels)) if bias else None
        self.routing = nn.Linear(in_channels, num_experts)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each expert initialised as ``nn.Conv2d`` would be; the routing as ``nn.Linear``."""
        for e in range(self.num_experts):
            conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size)
            with torch.no_grad():
                self.weight[e].copy_(conv.weight)
                if self.bias is not None:
                    self.bias[e].copy_(conv.bias)
        self.routing.reset_parameters()

    @classmethod
    def from_convs(cls, convs: Sequence[nn.Conv2d], **kwargs: Any) -> CLMECondConv:
        """Experts copied from ``convs`` (the convolutions of removed blocks), one per expert.

        All convolutions must share channels and kernel size and have groups = dilation = 1.
        Stride and padding are taken from the first; ``kwargs`` may override them.
        """
        if not convs:
            raise ValueError("from_convs needs at least one convolution")
        first = convs[0]
        for c in convs:
            if not isinstance(c, nn.Conv2d):
                raise TypeError(f"from_convs expects nn.Conv2d modules, got {type(c).__name__}")
            if c.weight.shape != first.weight.shape or c.groups != 1 or c.dilation != (1, 1):
                raise ValueError(
                    "all convolutions must have the same weight shape, groups=1 and dilation=1"
                )
            if c.kernel_size[0] != c.kernel_size[1]:
                raise ValueError(f"only square kernels are supported, got {c.kernel_size}")
        kwargs.setdefault("stride", first.stride[0])
        kwargs.setdefault("padding", first.padding[0])
        kwargs.setdefault("bias", all(c.bias is not None for c in convs))
        layer = cls(
            first.in_channels, first.out_channels, first.kernel_size[0], len(convs), **kwargs
        )
        with torch.no_grad():
            for e, c in enumerate(convs):
                layer.weight[e].copy_(c.weight)
                if layer.bias is not None:
                    layer.bias[e].copy_(c.bias)
        return layer.to(first.weight.device)

    def route(self, x: Tensor) -> Tensor:
        """The per-sample expert weights :math:`r(x)`, shape :math:`(B, E)`."""
        return torch.sigmoid(self.routing(x.mean(dim=(2, 3))))

    def forward(self, x: Tensor, routing: Tensor | None = None) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        b = x.size(0)
        r = self.route(x) if routing is None else routing
        if r.shape != (b, self.num_experts):
            raise ValueError(
                f"routing must have shape {(b, self.num_experts)}, got {tuple(r.shape)}"
            )
        if not torch.isfinite(r).all():
            raise ValueError("routing weights contain NaN or infinite values")
        kernels = (r @ self.weight.flatten(1)).view(b * self.out_channels, *self.weight.shape[2:])
        bias = (r @ self.bias).flatten() if self.bias is not None else None
        y = F.conv2d(
            x.reshape(1, b * self.in_channels, *x.shape[2:]),
            kernels,
            bias,
            stride=self.stride,
            padding=self.padding,
            groups=b,
        )
        return y.view(b, self.out_channels, *y.shape[2:])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, num_experts={self.num_experts}, "
            f"stride={self.stride}, padding={self.padding})"
        )


class GRIAttention(nn.Module):
    r"""Global-regional interactive attention.

    The :math:`(H, W)` token map is cut into :math:`(w_h, w_w)` windows (regional tokens) and
    average-pooled by ``pool`` into :math:`G = HW / p^2` global tokens. Each window's queries
    attend to the union of its own tokens and the global tokens:

    .. math::
        Y_{\text{win}} = \Big[\mathrm{softmax}\big(Q_n [K^{\text{win}}_n; K^{g}_n]^\top/\sqrt d\big)
        [V^{\text{win}}_n; V^{g}_n]\Big]_n W_o

    with the projections of :class:`~graphkit.extras._core.attention.MultiHeadSelfAttention`
    (held as ``self.attn``). Multiply-accumulates for :math:`N = HW` tokens of width :math:`C`
    (see :meth:`macs`): :math:`4NC^2 + 2GC^2` projections and :math:`2NC(w_h w_w + G)` for the
    attention, against :math:`4NC^2 + 2N^2C` for full attention. With the window equal to the
    map and ``pool=None`` it *is* full attention.

    Args:
        dim (int): token width :math:`C`.
        num_heads (int): heads; must divide ``dim``. (default: ``8``)
        window (int or tuple): window :math:`(w_h, w_w)`. (default: ``8``)
        pool (int, optional): pooling factor :math:`p` for the global tokens; ``None`` for no
            global tokens (plain window attention). (default: ``4``)
        qkv_bias (bool): biases of the q and kv projections. (default: ``True``)

    Shapes:
        - input: tokens :math:`(B, HW, C)` and ``size=(H, W)``; output :math:`(B, HW, C)`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        window: int | Size2 = 8,
        pool: int | None = 4,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        if pool is not None:
            check_positive(pool=pool)
        self.window = _pair(window, "window")
        self.pool = pool
        self.attn = MultiHeadSelfAttention(dim, num_heads, qkv_bias=qkv_bias)
        self.dim, self.num_heads = dim, num_heads

    def reset_parameters(self) -> None:
        self.attn.reset_parameters()

    def forward(self, x: Tensor, size: Size2) -> Tensor:
        if x.dim() != 3 or x.size(-1) != self.dim:
            raise ValueError(
                f"GRIAttention expects tokens (B, N, {self.dim}), got {tuple(x.shape)}"
            )
        h, w = _pair(size, "size")
        if h * w != x.size(1):
            raise ValueError(f"size {(h, w)} does not match the {x.size(1)} tokens")
        b, a = x.size(0), self.attn
        win = window_partition(x.reshape(b, h, w, self.dim), self.window)  # (B*nW, n, C)
        n_win = win.size(0) // b
        q, kv = a._heads(a.q(win)), a.kv(win)
        if self.pool is not None:
            if h % self.pool or w % self.pool:
                raise ValueError(f"pool={self.pool} must divide the feature size {(h, w)}")
            grid = x.transpose(1, 2).reshape(b, self.dim, h, w)
            glob = F.avg_pool2d(grid, self.pool).flatten(2).transpose(1, 2)  # (B, G, C)
            # the global keys/values are computed once per image and shared by its windows
            g_kv = a.kv(glob).repeat_interleave(n_win, dim=0)
            kv = torch.cat([kv, g_kv], dim=1)
        k, v = (a._heads(t) for t in kv.chunk(2, dim=-1))
        out = scaled_dot_product(q, k, v, a.scale, None, a.attn_drop)
        out = out.transpose(1, 2).reshape(win.shape)
        out = window_reverse(out, self.window, (h, w)).reshape(b, h * w, self.dim)
        return a.proj_drop(a.proj(out))

    def macs(self, height: int, width: int) -> int:
        """Analytic multiply-accumulates of one image's forward pass at ``(height, width)``."""
        check_positive(height=height, width=width)
        n, c = height * width, self.dim
        g = 0 if self.pool is None else n // self.pool**2
        keys = self.window[0] * self.window[1] + g
        return 4 * n * c * c + 2 * g * c * c + 2 * n * keys * c

    @staticmethod
    def full_attention_macs(dim: int, tokens: int) -> int:
        """Multiply-accumulates of full global self-attention over ``tokens`` tokens."""
        return 4 * tokens * dim * dim + 2 * tokens * tokens * dim

    def extra_repr(self) -> str:
        return f"window={self.window}, pool={self.pool}"


class BlockIncubation(nn.Module):
    r"""Progressive block incubation: student blocks replace teacher blocks stage by stage.

    ``model`` is a copy of ``teacher``. At stage :math:`s` the student blocks of stages
    :math:`0..s` sit in place of their teacher blocks; only the blocks of stage :math:`s` (the
    ones being incubated) are trainable, everything else (teacher blocks and the students of
    earlier stages) is frozen, as A-SDM trains each replaced part while the rest of the network
    supplies its context. :meth:`finish` swaps all students in and unfreezes them all.

    Args:
        teacher (nn.Module): the network to compress; it is copied, never modified.
        students (dict): ``{submodule name: student block}`` (names as in
            ``teacher.named_modules()``, e.g. ``"down.1"``).
        stages (sequence of sequences of str, optional): the names incubated together at each
            stage; ``None`` gives one stage per student, in the dict's order. (default: ``None``)

    Shapes:
        - input/output: those of ``teacher``.
    """

    def __init__(
        self,
        teacher: nn.Module,
        students: dict[str, nn.Module],
        stages: Sequence[Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        if not students:
            raise ValueError("BlockIncubation needs at least one student block")
        names = dict(teacher.named_modules())
        for name in students:
            if not name or name not in names:
                raise ValueError(f"teacher has no submodule named {name!r}")
        stages = [[n] for n in students] if stages is None else [list(s) for s in stages]
        flat = [n for s in stages for n in s]
        if sorted(flat) != sorted(students) or len(set(flat)) != len(flat):
            raise ValueError("stages must name every student block exactly once")
        self.model = copy.deepcopy(teacher)
        self.stages = stages
        self.names = list(students)
        self.students = nn.ModuleList(students[n] for n in self.names)
        self.teacher_blocks = nn.ModuleList(self.model.get_submodule(n) for n in self.names)
        self.stage = -1
        self.set_stage(0)

    def _place(self, name: str, block: nn.Module) -> None:
        replace_module(self.model, name, block)

    def set_stage(self, stage: int) -> None:
        """Swap in the students of stages ``0..stage``; only stage ``stage`` stays trainable."""
        if not 0 <= stage < len(self.stages):
            raise ValueError(f"stage must lie in [0, {len(self.stages)}), got {stage}")
        done = {n for s in self.stages[: stage + 1] for n in s}
        for i, name in enumerate(self.names):
            self._place(name, self.students[i] if name in done else self.teacher_blocks[i])
        self.model.requires_grad_(False)
        for i, name in enumerate(self.names):
            if name in self.stages[stage]:
                self.students[i].requires_grad_(True)
        self.stage = stage

    def finish(self) -> nn.Module:
        """Swap every student in, unfreeze them all, and return the compressed model."""
        self.set_stage(len(self.stages) - 1)
        for s in self.students:
            s.requires_grad_(True)
        return self.model

    def trainable_names(self) -> list[str]:
        """Names (in ``self.model``) of the parameters the current stage trains."""
        return [n for n, p in self.model.named_parameters() if p.requires_grad]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"stage={self.stage} of {len(self.stages)}, stages={self.stages}"


def semantic_alignment_loss(
    student_out: Tensor,
    teacher_out: Tensor,
    feature_net: Callable[[Tensor], Tensor] | nn.Module,
    normalize: bool = True,
) -> Tensor:
    r"""Semantic-aware supervision: :math:`\lVert \phi(y_s) - \phi(y_t) \rVert^2` in a frozen
    feature space :math:`\phi`.

    Reuses :func:`~graphkit.extras.training.distill.feature_mse` (the teacher side is
    detached). ``feature_net`` must be frozen when it is a module, so the loss trains the
    student only.

    Args:
        student_out (Tensor): student output :math:`(B, *)`.
        teacher_out (Tensor): teacher output, same shape.
        feature_net (callable): the frozen feature extractor :math:`\phi`.
        normalize (bool): compare L2-normalised features (their direction). (default: ``True``)
    """
    if student_out.shape != teacher_out.shape:
        raise ValueError(
            f"student and teacher outputs differ in shape: {tuple(student_out.shape)} vs "
            f"{tuple(teacher_out.shape)}"
        )
    if isinstance(feature_net, nn.Module) and any(
        p.requires_grad for p in feature_net.parameters()
    ):
        raise ValueError("feature_net must be frozen (call feature_net.requires_grad_(False))")
    with torch.no_grad():
        target = feature_net(teacher_out)
    return feature_mse(feature_net(student_out), target, normalize=normalize)


@register_model("asdm", family="generative", paper=PAPER)
def asdm(block: str = "condconv", **kwargs: Any) -> nn.Module:
    """An A-SDM building block: ``"condconv"`` (:class:`CLMECondConv`) or ``"gri"``
    (:class:`GRIAttention`), built with ``kwargs``."""
    builders: dict[str, Callable[..., nn.Module]] = {
        "condconv": CLMECondConv,
        "gri": GRIAttention,
    }
    if block not in builders:
        raise ValueError(f"unknown block {block!r}; choose one of {sorted(builders)}")
    return builders[block](**kwargs)
