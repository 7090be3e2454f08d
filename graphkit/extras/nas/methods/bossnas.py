r"""BossNAS: the HyTra fabric search space, ensemble-bootstrapping supernet training, the
population-centre architecture rating, and the searched BossNet-T0.

`BossNAS: Exploring Hybrid CNN-transformers with Block-wisely Self-supervised Neural
Architecture Search <https://arxiv.org/abs/2103.12424>`_ (official code: changlin31/BossNAS).

- **HyTra space** (:class:`HyTraSpace`): a chain of layers over a fabric of ``levels`` scales
  (stride 4, 8, 16, 32 in the paper). Each layer picks a scale level, the same as the previous
  layer's or deeper (a down-sampling position), and an operation at that level: ``ResConv``
  (a bottleneck convolution) or ``ResAtt`` (a bottleneck whose 3×3 convolution is multi-head
  self-attention). With at most one level per layer (``max_step=1``, the paper's fabric), a
  path is a choice of down-sampling positions; with ``n`` ops at every level, starting at
  level :math:`s` of :math:`K`,

  .. math::
      |\mathcal{A}| = n^{L} \sum_{d=0}^{\min(L,\,K-1-s)} \binom{L}{d},
      \qquad\text{and, with any jump } (\texttt{max_step=None}),\qquad
      |\mathcal{A}| = n^{L} \binom{L + K - 1 - s}{L}.

- **Ensemble bootstrapping** (:class:`EnsembleBootstrappingTrainer`): a block of the supernet
  is trained on its own, BYOL-style. For two augmented views and a set :math:`P` of sampled
  paths, each path's online prediction :math:`q_p` is pulled to the ensemble of the EMA
  target's projections over the sampled paths, the *population centre*:

  .. math::
      c = \frac{1}{|P|}\sum_{p \in P} \bar z_p,\qquad
      \mathcal{L} = \frac{1}{|P|}\sum_{p \in P}
        \big(2 - 2\cos(q_p(v_1), c(v_2))\big) + \big(2 - 2\cos(q_p(v_2), c(v_1))\big),

  with :math:`\bar z = z / \lVert z \rVert`. The target follows
  :math:`\xi \leftarrow m \xi + (1 - m)\theta`.
- **Population-centre rating** (:func:`population_center_rating`,
  :meth:`EnsembleBootstrappingTrainer.rate`, :func:`population_center_search`): a candidate's
  rating is minus the same loss between its online prediction and the centre of the rated
  population's target projections; the search is evolutionary, block by block.
- **BossNet-T0** (:func:`bossnet_t0`): the searched architecture, built from the official
  retraining configuration.

Shared pieces reused: :class:`~graphkit.extras.nas.space.SearchSpace` (the space),
:func:`~graphkit.extras._core.attention.scaled_dot_product` (the attention product),
:class:`~graphkit.extras._core.blocks.SqueezeExcite` (BossNet-T0's SE) and
:class:`~graphkit.extras.nas.searchers.Trial` (search history).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.attention import scaled_dot_product
from graphkit.extras._core.blocks import SqueezeExcite
from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.modules import module_mode
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.searchers import Trial
from graphkit.extras.nas.space import Choice, SearchSpace

_PAPER = (
    "BossNAS: Exploring Hybrid CNN-transformers with Block-wisely Self-supervised Neural "
    "Architecture Search"
)
#: The two HyTra candidate operations.
HYTRA_OPS = ("resconv", "resatt")
#: A HyTra path: per layer, ``(level, op)``.
HyTraPath = list[tuple[int, str]]


# ----------------------------------------------------------------------------------------
# search space
# ----------------------------------------------------------------------------------------
class HyTraSpace(SearchSpace):
    r"""The HyTra fabric: per layer a scale level (never shallower than the last) and an op.

    A configuration nests one layer inside the previous one, because a layer's levels depend
    on the last layer's: ``{"level0": 0, "layer0": {"op0": "resatt", "level1": 1,
    "layer1": {"op1": "resconv"}}}``. :meth:`to_path` and :meth:`from_path` convert to and
    from the flat ``[(level, op), ...]`` form.

    Args:
        levels (int): scale levels :math:`K` of the fabric. (default: ``4``)
        layers (int): layers :math:`L` of the chain. (default: ``4``)
        start_level (int): the level of the input; the first layer may stay or go deeper.
            (default: ``0``)
        max_step (int, optional): the most levels one layer may go down; ``1`` is the paper's
            stay-or-downsample fabric, ``None`` allows any jump. (default: ``1``)
        ops (Sequence[str] or Mapping[int, Sequence[str]]): candidate ops, at every level or
            per level. (default: :data:`HYTRA_OPS`)
        name (str): the space's name. (default: ``"hytra"``)
    """

    def __init__(
        self,
        levels: int = 4,
        layers: int = 4,
        start_level: int = 0,
        max_step: int | None = 1,
        ops: Sequence[str] | Mapping[int, Sequence[str]] = HYTRA_OPS,
        name: str = "hytra",
    ) -> None:
        check_positive(levels=levels, layers=layers)
        if not 0 <= start_level < levels:
            raise ValueError(f"start_level must lie in [0, {levels}), got {start_level}")
        if max_step is not None:
            check_positive(max_step=max_step)
        if isinstance(ops, Mapping):
            if set(ops) != set(range(levels)):
                raise ValueError(f"ops per level must name every level 0..{levels - 1}")
            per_level = {lvl: tuple(ops[lvl]) for lvl in range(levels)}
        else:
            per_level = {lvl: tuple(ops) for lvl in range(levels)}
        for lvl, names in per_level.items():
            if not names:
                raise ValueError(f"level {lvl} has no candidate op")
        self.levels = levels
        self.layers = layers
        self.start_level = start_level
        self.max_step = max_step
        self.ops = per_level
        super().__init__(name, self._layer(0, start_level))

    def next_levels(self, previous: int) -> tuple[int, ...]:
        """The levels a layer may take after one at level ``previous``."""
        if self.max_step is None:
            return tuple(range(previous, self.levels))
        top = min(self.levels, previous + self.max_step + 1)
        return tuple(range(previous, top))

    def _layer(self, i: int, previous: int) -> list[Choice]:
        branches = {}
        for lvl in self.next_levels(previous):
            children: list[Choice | SearchSpace] = [Choice(f"op{i}", self.ops[lvl])]
            if i + 1 < self.layers:
                children.extend(self._layer(i + 1, lvl))
            branches[lvl] = SearchSpace(f"layer{i}", children)
        return [Choice(f"level{i}", tuple(branches), branches=branches)]

    def closed_form_size(self) -> int:
        """The path count from the formulas above (only when every level has ``n`` ops)."""
        counts = {len(names) for names in self.ops.values()}
        if len(counts) != 1:
            raise ValueError("the closed form needs the same number of ops at every level")
        n, depth, room = counts.pop(), self.layers, self.levels - 1 - self.start_level
        if self.max_step is None:
            return n**depth * math.comb(depth + room, depth)
        if self.max_step != 1:
            raise ValueError("the closed form covers max_step=1 and max_step=None")
        return n**depth * sum(math.comb(depth, d) for d in range(min(depth, room) + 1))

    def to_path(self, cfg: Mapping[str, Any]) -> HyTraPath:
        """The flat ``[(level, op), ...]`` of a configuration."""
        self.validate(cfg)
        path: HyTraPath = []
        node: Mapping[str, Any] = cfg
        for i in range(self.layers):
            level = node[f"level{i}"]
            node = node[f"layer{i}"]
            path.append((level, node[f"op{i}"]))
        return path

    def from_path(self, path: Sequence[tuple[int, str]]) -> dict[str, Any]:
        """The configuration of a flat path (raises if the path leaves the space)."""
        if len(path) != self.layers:
            raise ValueError(f"a path of this space has {self.layers} layers, got {len(path)}")
        cfg: dict[str, Any] = {}
        node = cfg
        for i, (level, op) in enumerate(path):
            node[f"level{i}"] = level
            node[f"layer{i}"] = {f"op{i}": op}
            node = node[f"layer{i}"]
        self.validate(cfg)
        return cfg

    def __repr__(self) -> str:
        return (
            f"HyTraSpace(levels={self.levels}, layers={self.layers}, start_level="
            f"{self.start_level}, max_step={self.max_step}, size={self.size()})"
        )


# ----------------------------------------------------------------------------------------
# candidate operations
# ----------------------------------------------------------------------------------------
def _shortcut(
    in_channels: int, out_channels: int, stride: int, avg_down: bool, act_layer: type[nn.Module]
) -> nn.Module:
    """ResNet-D (average-pool, then 1×1) or strided-conv shortcut, as the official ops."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if avg_down:
        pool: nn.Module = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
            if stride == 2
            else nn.Identity()
        )
        return nn.Sequential(
            pool, nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
    kernel = 3 if stride == 2 else 1
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        act_layer(),
    )


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")


class ResConv(nn.Module):
    r"""HyTra's convolutional candidate: a ResNet bottleneck whose first 1×1 convolution is
    followed by a depthwise 3×3 (stride ``stride``, with bias), the official "PEG".

    .. math::
        y = \sigma\big(\mathrm{SE}(\mathrm{BN}(W_3\,\sigma(\mathrm{BN}(W_{3\times3}\,
            \sigma(\mathrm{BN}(\mathrm{DW}(W_1 x))))))) + \mathrm{shortcut}(x)\big)

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): 1 or 2. (default: ``1``)
        mid_channels (int, optional): bottleneck width; ``None`` gives ``out_channels // 4``.
            (default: ``None``)
        avg_down (bool): ResNet-D shortcut (average pool + 1×1). (default: ``True``)
        se (bool): squeeze-excite on the output, reduced to ``max(C // 16, 8)``.
            (default: ``False``)
        act_layer (type): activation. (default: :class:`~torch.nn.ReLU`)

    Shapes:
        - input :math:`(B, C_{in}, H, W)`; output :math:`(B, C_{out}, \lceil H/s \rceil,
          \lceil W/s \rceil)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        mid_channels: int | None = None,
        avg_down: bool = True,
        se: bool = False,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        mid = out_channels // 4 if mid_channels is None else mid_channels
        check_positive(in_channels=in_channels, out_channels=out_channels, mid_channels=mid)
        _check_stride(stride)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.shortcut = _shortcut(in_channels, out_channels, stride, avg_down, act_layer)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.peg = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se = (
            SqueezeExcite(out_channels, rd_channels=max(out_channels // 16, 8)) if se else None
        )
        self.act = act_layer()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan-out) convolutions, unit BN, and a zero last BN scale, so that a
        fresh block starts as its shortcut (the official ``zero_init_last_bn``)."""
        _init_convs(self)
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        y = self.act(self.bn1(self.peg(self.conv1(x))))
        y = self.act(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.se is not None:
            y = self.se(y)
        return self.act(y + self.shortcut(x))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ResAtt(nn.Module):
    r"""HyTra's attention candidate: a bottleneck with global multi-head self-attention
    (BoTNet-style), position given by a depthwise 3×3 convolution (the official "PEG").

    .. math::
        u = \mathrm{BN}(\mathrm{DW}(W_1 x)),\quad
        y = \sigma\big(\mathrm{BN}(W_o\,\sigma(\mathrm{BN}(\mathrm{MHSA}(\sigma(u)))))
            + \mathrm{shortcut}(x)\big)

    with :math:`\mathrm{MHSA}` of ``heads`` heads of width ``head_dim``, q/k/v from one 1×1
    convolution without bias, no output projection (the 1×1 :math:`W_o` follows the BN).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): 1 or 2 (the depthwise convolution strides). (default: ``1``)
        heads (int): attention heads. (default: ``4``)
        head_dim (int): width per head. (default: ``64``)
        attn_in (int, optional): channels entering attention; ``None`` gives
            ``heads * head_dim``. (default: ``None``)
        avg_down (bool): ResNet-D shortcut. (default: ``True``)
        act_layer (type): activation. (default: :class:`~torch.nn.ReLU`)

    Shapes:
        - input :math:`(B, C_{in}, H, W)`; output :math:`(B, C_{out}, \lceil H/s \rceil,
          \lceil W/s \rceil)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        heads: int = 4,
        head_dim: int = 64,
        attn_in: int | None = None,
        avg_down: bool = True,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        attn_in = heads * head_dim if attn_in is None else attn_in
        check_positive(
            in_channels=in_channels, out_channels=out_channels, heads=heads, head_dim=head_dim,
            attn_in=attn_in,
        )
        _check_stride(stride)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.shortcut = _shortcut(in_channels, out_channels, stride, avg_down, act_layer)
        self.proj = nn.Conv2d(in_channels, attn_in, 1, bias=False)
        self.peg = nn.Conv2d(attn_in, attn_in, 3, stride, 1, groups=attn_in)
        self.bn_in = nn.BatchNorm2d(attn_in)
        self.qkv = nn.Conv2d(attn_in, 3 * inner, 1, bias=False)
        self.bn_attn = nn.BatchNorm2d(inner)
        self.out = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.bn_out = nn.BatchNorm2d(out_channels)
        self.act = act_layer()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As :meth:`ResConv.reset_parameters`: the last BN scale starts at zero."""
        _init_convs(self)
        nn.init.zeros_(self.bn_out.weight)

    def _attention(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        q, k, v = (
            t.reshape(b, self.heads, self.head_dim, h * w).transpose(-2, -1)
            for t in self.qkv(x).chunk(3, dim=1)
        )
        out = scaled_dot_product(q, k, v, self.head_dim**-0.5)  # (b, heads, hw, d)
        return out.transpose(-2, -1).reshape(b, self.heads * self.head_dim, h, w)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        u = self.bn_in(self.peg(self.proj(x)))
        y = self.act(self.bn_attn(self._attention(self.act(u))))
        y = self.bn_out(self.out(y))
        return self.act(y + self.shortcut(x))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
            f"heads={self.heads}, head_dim={self.head_dim}"
        )


def _init_convs(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------------------
# supernet block
# ----------------------------------------------------------------------------------------
class HyTraSupernet(nn.Module):
    r"""One block of the HyTra supernet: the candidates of :class:`HyTraSpace` with weights
    shared by every path through the same ``(layer, level in, level out, op)``.

    A layer that moves from level :math:`l` to :math:`l + 1` strides by 2 and widens to
    ``widths[l + 1]``; the paper's fabric (``max_step=1``) is the one supported here.

    Args:
        in_channels (int): channels of the block's input (at ``start_level``).
        widths (Sequence[int]): output channels per level (length ``levels``).
        layers (int): layers of the block. (default: ``4``)
        start_level (int): the input's level. (default: ``0``)
        heads (Sequence[int], optional): attention heads per level; ``None`` gives
            ``[1, 2, 4, 8, ...]``. (default: ``None``)
        head_dim (int): width per attention head. (default: ``64``)
        act_layer (type): activation of every op. (default: :class:`~torch.nn.ReLU`)

    Shapes:
        - input :math:`(B, C_{in}, H, W)`; output :math:`(B, \mathrm{widths}[l_L], H / 2^{l_L -
          s}, W / 2^{l_L - s})` for the active path's last level :math:`l_L`.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        layers: int = 4,
        start_level: int = 0,
        heads: Sequence[int] | None = None,
        head_dim: int = 64,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        heads = tuple(2**lvl for lvl in range(len(widths))) if heads is None else tuple(heads)
        if len(heads) != len(widths):
            raise ValueError(f"heads has {len(heads)} entries for {len(widths)} levels")
        check_positive(in_channels=in_channels, head_dim=head_dim)
        self.space = HyTraSpace(len(widths), layers, start_level, max_step=1)
        self.in_channels, self.widths = in_channels, widths
        self.candidates = nn.ModuleDict()
        reachable = {start_level}
        for i in range(layers):
            nxt = set()
            for l_in in sorted(reachable):
                # layer 0 reads the block input; later layers read widths[l_in]
                c_in = in_channels if i == 0 else widths[l_in]
                for l_out in self.space.next_levels(l_in):
                    stride = 2 ** (l_out - l_in)
                    self.candidates[_key(i, l_in, l_out, "resconv")] = ResConv(
                        c_in, widths[l_out], stride, act_layer=act_layer
                    )
                    self.candidates[_key(i, l_in, l_out, "resatt")] = ResAtt(
                        c_in, widths[l_out], stride, heads[l_out], head_dim, act_layer=act_layer
                    )
                    nxt.add(l_out)
            reachable = nxt
        self.active: list[str] = self._keys(self.space.to_path(self.space.sample(0)))

    def _keys(self, path: HyTraPath) -> list[str]:
        keys, previous = [], self.space.start_level
        for i, (level, op) in enumerate(path):
            keys.append(_key(i, previous, level, op))
            previous = level
        return keys

    def set_active(self, cfg: Mapping[str, Any]) -> None:
        """Run the path ``cfg`` (a :class:`HyTraSpace` configuration) from now on."""
        self.active = self._keys(self.space.to_path(cfg))

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        for key in self.active:
            x = self.candidates[key](x)
        return x

    def extract(self, cfg: Mapping[str, Any]) -> nn.Sequential:
        """The path ``cfg`` as a standalone :class:`~torch.nn.Sequential` of copied ops."""
        keys = self._keys(self.space.to_path(cfg))
        return nn.Sequential(*(copy.deepcopy(self.candidates[k]) for k in keys))

    def out_channels(self, cfg: Mapping[str, Any]) -> int:
        """Channels of the output under ``cfg``."""
        return self.widths[self.space.to_path(cfg)[-1][0]]

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, widths={self.widths}, space={self.space}"


def _key(i: int, l_in: int, l_out: int, op: str) -> str:
    return f"l{i}_{l_in}to{l_out}_{op}"


# ----------------------------------------------------------------------------------------
# ensemble bootstrapping
# ----------------------------------------------------------------------------------------
def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """BYOL's projector / predictor: Linear → BN → ReLU → Linear."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
    )


def ensemble_bootstrapping_loss(
    online: Sequence[tuple[Tensor, Tensor]], target: Sequence[tuple[Tensor, Tensor]]
) -> Tensor:
    r"""The loss of the equations above for ``|P|`` sampled paths.

    Args:
        online (Sequence[tuple[Tensor, Tensor]]): per path, the online predictions of views 1
            and 2, each :math:`(B, D)`.
        target (Sequence[tuple[Tensor, Tensor]]): per path, the target projections of views 1
            and 2 (no gradient needed), each :math:`(B, D)`.

    Returns:
        The scalar loss, in :math:`[0, 8]`; zero when every prediction points at the centre.
    """
    if not online or len(online) != len(target):
        raise ValueError(
            f"need the same positive number of online and target paths, got {len(online)} "
            f"and {len(target)}"
        )
    shapes = {t.shape for pair in (*online, *target) for t in pair}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every prediction and projection must share one (B, D) shape: {shapes}")
    centre1 = torch.stack([F.normalize(z1, dim=-1) for z1, _ in target]).mean(0)
    centre2 = torch.stack([F.normalize(z2, dim=-1) for _, z2 in target]).mean(0)
    loss = online[0][0].new_zeros(())
    for q1, q2 in online:
        loss = loss + (2 - 2 * F.cosine_similarity(q1, centre2.detach(), dim=-1)).mean()
        loss = loss + (2 - 2 * F.cosine_similarity(q2, centre1.detach(), dim=-1)).mean()
    return loss / len(online)


class EnsembleBootstrappingTrainer(nn.Module):
    r"""Block-wise Siamese training of one :class:`HyTraSupernet` block by ensemble
    bootstrapping (see the module docstring).

    The online branch is ``stem → block → global pool → projector → predictor``; the target
    branch is an EMA copy of ``block → projector`` fed by the same frozen ``stem`` (the blocks
    searched before, or nothing for the first block).

    Args:
        block (HyTraSupernet): the block to train.
        stem (nn.Module, optional): frozen modules before the block. (default: :obj:`None`)
        proj_dim (int): projection width. (default: ``256``)
        hidden (int): hidden width of projector and predictor. (default: ``1024``)
        momentum (float): EMA momentum :math:`m` of the target, in ``[0, 1)``.
            (default: ``0.99``)
        num_paths (int): paths sampled per step (the ensemble size). (default: ``4``)
        seed (int, optional): seed of the path sampler. (default: :obj:`None`)
    """

    def __init__(
        self,
        block: HyTraSupernet,
        stem: nn.Module | None = None,
        proj_dim: int = 256,
        hidden: int = 1024,
        momentum: float = 0.99,
        num_paths: int = 4,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(block, HyTraSupernet):
            raise TypeError(f"block must be a HyTraSupernet, got {type(block).__name__}")
        check_positive(proj_dim=proj_dim, hidden=hidden, num_paths=num_paths)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.stem = stem if stem is not None else nn.Identity()
        self.stem.requires_grad_(False)
        self.block = block
        widest = max(block.widths)
        # one projector input for every path: narrower outputs are zero-padded to the widest
        self.projector = _mlp(widest, hidden, proj_dim)
        self.predictor = _mlp(proj_dim, hidden, proj_dim)
        self.target_block = copy.deepcopy(block).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.momentum = momentum
        self.num_paths = num_paths
        self.rng = random.Random(seed)

    def sample_paths(self) -> list[dict[str, Any]]:
        """``num_paths`` configurations of the block's space, uniform per decision."""
        return [self.block.space.sample(self.rng) for _ in range(self.num_paths)]

    def _embed(self, block: HyTraSupernet, x: Tensor) -> Tensor:
        y = block(x).mean(dim=(2, 3))
        return F.pad(y, (0, max(self.block.widths) - y.size(1)))

    def forward(
        self, view1: Tensor, view2: Tensor, paths: Sequence[Mapping[str, Any]] | None = None
    ) -> Tensor:
        """The ensemble-bootstrapping loss of two views under ``paths`` (sampled if ``None``).

        Views are :math:`(B, C, H, W)`, shared by every path, or :math:`(|P|, B, C, H, W)`, one
        pair of augmentations per path (the official multi-view setting).
        """
        if view1.shape != view2.shape:
            raise ValueError(f"the two views differ in shape: {view1.shape} vs {view2.shape}")
        paths = self.sample_paths() if paths is None else list(paths)
        if not paths:
            raise ValueError("no paths to train")
        if view1.dim() == 5:
            if view1.size(0) != len(paths):
                raise ValueError(
                    f"per-path views: {view1.size(0)} view pairs for {len(paths)} paths"
                )
            pairs = list(zip(view1.unbind(0), view2.unbind(0)))
        else:
            pairs = [(view1, view2)] * len(paths)
        online, target = [], []
        for cfg, (v1, v2) in zip(paths, pairs):
            with torch.no_grad():
                h1, h2 = self.stem(v1), self.stem(v2)
            self.block.set_active(cfg)
            self.target_block.set_active(cfg)
            online.append(
                tuple(self.predictor(self.projector(self._embed(self.block, h))) for h in (h1, h2))
            )
            with torch.no_grad():
                target.append(
                    tuple(
                        self.target_projector(self._embed(self.target_block, h)) for h in (h1, h2)
                    )
                )
        return ensemble_bootstrapping_loss(online, target)

    @torch.no_grad()
    def update_target(self) -> None:
        r""":math:`\xi \leftarrow m\xi + (1-m)\theta` for the parameters of block and
        projector; the target's BN statistics stay its own (as the official momentum update)."""
        pairs = ((self.target_block, self.block), (self.target_projector, self.projector))
        for tgt, src in pairs:
            for pt, ps in zip(tgt.parameters(), src.parameters()):
                pt.mul_(self.momentum).add_(ps.detach(), alpha=1.0 - self.momentum)

    def step(self, view1: Tensor, view2: Tensor, optimizer: torch.optim.Optimizer) -> float:
        """One optimisation step on sampled paths, then the EMA update; returns the loss."""
        self.train()
        loss = self(view1, view2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.update_target()
        return float(loss.detach())

    @torch.no_grad()
    def rate(
        self, view1: Tensor, view2: Tensor, paths: Sequence[Mapping[str, Any]]
    ) -> Tensor:
        r"""Population-centre ratings of ``paths`` on two views, :math:`(|P|,)`, higher is
        better: minus the ensemble-bootstrapping loss of each path's online prediction
        against the centre of all ``paths``' target projections (the official validation
        rating).

        Batch-norm layers use the statistics of the rated batch (the official code
        recalibrates them per path); every buffer is restored afterwards.
        """
        if view1.shape != view2.shape:
            raise ValueError(f"the two views differ in shape: {view1.shape} vs {view2.shape}")
        if not paths:
            raise ValueError("no paths to rate")
        saved = {name: buf.clone() for name, buf in self.named_buffers()}
        try:
            with module_mode(True, self):  # batch statistics, as in training
                h1, h2 = self.stem(view1), self.stem(view2)
                q1, q2, z1, z2 = [], [], [], []
                for cfg in paths:
                    self.block.set_active(cfg)
                    self.target_block.set_active(cfg)
                    q1.append(self.predictor(self.projector(self._embed(self.block, h1))))
                    q2.append(self.predictor(self.projector(self._embed(self.block, h2))))
                    z1.append(self.target_projector(self._embed(self.target_block, h1)))
                    z2.append(self.target_projector(self._embed(self.target_block, h2)))
                stack = torch.stack
                return population_center_rating(stack(q1), stack(z2)) + population_center_rating(
                    stack(q2), stack(z1)
                )
        finally:
            for name, buf in self.named_buffers():
                buf.copy_(saved[name])


# ----------------------------------------------------------------------------------------
# population-centre rating and search
# ----------------------------------------------------------------------------------------
def population_center_rating(outputs: Tensor, targets: Tensor | None = None) -> Tensor:
    r"""Ratings of :math:`P` candidates from their outputs on one batch:

    .. math::
        c_b = \frac{1}{P}\sum_p \frac{t_{p,b}}{\lVert t_{p,b} \rVert},\qquad
        r_p = -\frac{1}{B}\sum_b \big(2 - 2\cos(y_{p,b}, c_b)\big),

    the BYOL loss of each candidate against the population centre, negated.

    Args:
        outputs (Tensor): the candidates' outputs :math:`y` (online predictions),
            :math:`(P, B, D)`.
        targets (Tensor, optional): what the centre is made of (target projections), same
            shape; ``None`` uses ``outputs``. (default: :obj:`None`)

    Returns:
        Tensor :math:`(P,)`, in :math:`[-4, 0]`; higher is better (closer to the centre).
    """
    targets = outputs if targets is None else targets
    if outputs.dim() != 3 or outputs.size(0) < 1 or targets.shape != outputs.shape:
        raise ValueError(
            "outputs and targets must share one (P, B, D) shape with P >= 1, got "
            f"{tuple(outputs.shape)} and {tuple(targets.shape)}"
        )
    if not (torch.isfinite(outputs).all() and torch.isfinite(targets).all()):
        raise ValueError("outputs or targets hold NaN or infinite values")
    centre = F.normalize(targets, dim=-1).mean(0, keepdim=True)
    return -(2 - 2 * F.cosine_similarity(outputs, centre.expand_as(outputs), dim=-1)).mean(-1)


def _mutate(space: SearchSpace, cfg: Mapping[str, Any], rate: float, rng: random.Random) -> dict:
    """Keep each active decision of ``cfg`` with probability ``1 - rate``; a decision whose
    old value no longer applies (another branch was taken) is drawn afresh."""

    def decide(path: str, choice: Choice) -> int:
        if rng.random() >= rate:
            # a decision of a branch cfg did not take has no old value to keep
            with contextlib.suppress(KeyError, ValueError):
                return choice.index(space.value_at(cfg, path))
        return rng.randrange(len(choice))

    return space.build(decide)


def _key_of(space: SearchSpace, cfg: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(space.encode(cfg).nonzero().flatten().tolist())


def _unique(space: SearchSpace, cfgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, seen = [], set()
    for cfg in cfgs:
        key = _key_of(space, cfg)
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def population_center_search(
    space: SearchSpace,
    rate: Callable[[Sequence[Mapping[str, Any]]], Tensor],
    population: int = 16,
    generations: int = 10,
    mutation_rate: float = 0.25,
    seed: int | None = None,
) -> tuple[dict[str, Any], list[Trial]]:
    """Evolutionary search of one block ranked by :func:`population_center_rating`.

    Each generation rates the population together with as many distinct mutated children
    (duplicates would pull the centre onto one architecture), centred on all of them, and
    keeps the best ``population``. The final population is rated once more
    and its best member returned.

    Args:
        space (SearchSpace): the block's space (e.g. :class:`HyTraSpace`).
        rate (callable): ``rate(cfgs) -> (P,)`` ratings of the candidates rated together as
            one population, e.g. ``lambda cfgs: trainer.rate(v1, v2, cfgs)``
            (:meth:`EnsembleBootstrappingTrainer.rate`) or :func:`population_center_rating` of
            their outputs.
        population (int): population size. (default: ``16``)
        generations (int): generations. (default: ``10``)
        mutation_rate (float): per-decision mutation probability, in ``(0, 1]``.
            (default: ``0.25``)
        seed (int, optional): seed. (default: :obj:`None`)

    Returns:
        The best configuration and the history of every rating made (one :class:`Trial` per
        rated candidate; ``step`` is the generation).
    """
    check_positive(population=population, generations=generations)
    if not 0.0 < mutation_rate <= 1.0:
        raise ValueError(f"mutation_rate must lie in (0, 1], got {mutation_rate}")
    rng = random.Random(seed)
    members = [space.sample(rng) for _ in range(population)]
    history: list[Trial] = []

    def rate_all(cfgs: list[dict[str, Any]], step: int) -> list[float]:
        scores = torch.as_tensor(rate(cfgs)).flatten().tolist()
        if len(scores) != len(cfgs):
            raise ValueError(f"rate gave {len(scores)} ratings for {len(cfgs)} candidates")
        if not all(math.isfinite(v) for v in scores):
            raise ValueError(f"rate gave non-finite ratings {scores}")
        history.extend(Trial(c, s, step) for c, s in zip(cfgs, scores))
        return scores

    members = _unique(space, members)
    for gen in range(generations):
        # distinct candidates only: copies of one architecture would pull the centre onto it
        pool, seen = list(members), {_key_of(space, c) for c in members}
        for _ in range(10 * population):
            if len(pool) == 2 * len(members):
                break
            child = _mutate(space, rng.choice(members), mutation_rate, rng)
            if _key_of(space, child) not in seen:
                seen.add(_key_of(space, child))
                pool.append(child)
        scores = rate_all(pool, gen)
        order = sorted(range(len(pool)), key=lambda i: -scores[i])
        members = [pool[i] for i in order[:population]]
    final = rate_all(members, generations)
    return members[max(range(len(members)), key=lambda i: final[i])], history


# ----------------------------------------------------------------------------------------
# BossNet (the searched architectures)
# ----------------------------------------------------------------------------------------
#: BossNet-T0's searched ops per stage (official ``bossnet_T0`` encoding; 1 = ResConv,
#: 0 = ResAtt), stages at strides 4, 8, 16, 32.
BOSSNET_T0 = ((1,), (1,), (1, 1, 1, 0, 1), (0, 0, 0, 1, 0, 0, 0, 0, 0))


class BossNet(nn.Module):
    r"""A searched HyTra network: a ResNet stem, four stages of ResConv / ResAtt ops, a
    linear classifier (official retraining model ``BossNet``).

    Stage :math:`k` has ``4 * planes[k]`` output channels (planes 64, 128, 256, 512),
    bottleneck width ``planes[k]``, attention with ``heads[k]`` heads of width 64; the first
    op of stages 2 to 4 strides by 2 (stage 4 by ``last_stride``).

    Args:
        encoding (Sequence[Sequence[int]]): per stage, 1 (ResConv) or 0 (ResAtt) per layer.
            (default: :data:`BOSSNET_T0`)
        num_classes (int): classes. (default: ``1000``)
        in_channels (int): image channels. (default: ``3``)
        se (bool): squeeze-excite in the ResConv ops. (default: ``True``)
        act_layer (type): activation. (default: :class:`~torch.nn.SiLU`)
        last_stride (int): stride of the last stage (2, or 1 for BossNet-T1). (default: ``2``)

    Shapes:
        - input :math:`(B, C_{in}, H, W)`; output :math:`(B, \mathrm{num\_classes})`.
    """

    planes = (64, 128, 256, 512)
    heads = (1, 2, 4, 8)

    def __init__(
        self,
        encoding: Sequence[Sequence[int]] = BOSSNET_T0,
        num_classes: int = 1000,
        in_channels: int = 3,
        se: bool = True,
        act_layer: type[nn.Module] = nn.SiLU,
        last_stride: int = 2,
    ) -> None:
        super().__init__()
        check_positive(num_classes=num_classes, in_channels=in_channels)
        if len(encoding) != 4 or any(len(s) == 0 or set(s) - {0, 1} for s in encoding):
            raise ValueError(f"encoding needs 4 non-empty stages of 0/1 entries, got {encoding}")
        _check_stride(last_stride)
        self.in_channels = in_channels
        self.encoding = tuple(tuple(s) for s in encoding)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            act_layer(),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, c_in = [], 64
        for k, (planes, heads, ops) in enumerate(zip(self.planes, self.heads, self.encoding)):
            c_out, layers = 4 * planes, []
            for j, op in enumerate(ops):
                stride = (1 if k == 0 else last_stride if k == 3 else 2) if j == 0 else 1
                layers.append(
                    ResConv(c_in, c_out, stride, planes, se=se, act_layer=act_layer)
                    if op == 1
                    else ResAtt(c_in, c_out, stride, heads, 64, act_layer=act_layer)
                )
                c_in = c_out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, num_classes)
        _init_convs(self.stem)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        return self.fc(self.stages(self.stem(x)).mean(dim=(2, 3)))


@register_model("bossnet_t0", family="nas", paper=_PAPER)
def bossnet_t0(num_classes: int = 1000, **kwargs: Any) -> BossNet:
    """BossNet-T0 (SiLU, SE in ResConv), official ``bossnet_T0`` configuration."""
    return BossNet(BOSSNET_T0, num_classes, **kwargs)


@register_model("bossnet_t1", family="nas", paper=_PAPER)
def bossnet_t1(num_classes: int = 1000, **kwargs: Any) -> BossNet:
    """BossNet-T1: BossNet-T0 with a stride-1 last stage (official ``bossnet_T1``)."""
    return BossNet(BOSSNET_T0, num_classes, last_stride=1, **kwargs)


@register_model("bossnet_t0_nose", family="nas", paper=_PAPER)
def bossnet_t0_nose(num_classes: int = 1000, **kwargs: Any) -> BossNet:
    """BossNet-T0 without SE, with ReLU (official ``bossnet_T0_nose``)."""
    return BossNet(BOSSNET_T0, num_classes, se=False, act_layer=nn.ReLU, **kwargs)
