"""Transformable Architecture Search (Dong and Yang, "Network Pruning via Transformable
Architecture Search", NeurIPS 2019, https://arxiv.org/abs/1905.09717; official code
D-X-Y/NAS-Projects, later D-X-Y/AutoDL-Projects).

TAS prunes a network by searching its width (channels of each layer) and depth (blocks of each
stage) with a differentiable FLOPs cost, then takes the most likely architecture and trains it
with knowledge distillation from the unpruned network. Here the searched network is a CIFAR-style
ResNet (:class:`TASResNet`), the space is a :class:`~graphkit.extras.nas.space.SearchSpace`, and
the distillation loss is the shared :func:`~graphkit.extras.training.distill.kd_kl`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.space import Choice, SearchSpace
from graphkit.extras.training.distill import kd_kl

__all__ = [
    "TASResNet",
    "TASSearch",
    "channel_wise_interpolation",
    "gumbel_select",
    "tas_distill_loss",
    "teacher_copy",
]


def channel_wise_interpolation(x: Tensor, channels: int, mode: str = "pool") -> Tensor:
    r"""Channel-wise interpolation (CWI): resize a ``(B, c, *)`` map to ``channels`` channels.

    ``mode="pool"`` is the paper's and the official code's CWI: output channel :math:`i` of
    :math:`C` is the mean of input channels :math:`[\lfloor ic/C \rfloor, \lceil (i+1)c/C
    \rceil)`, i.e. adaptive average pooling along the channel axis (it averages when shrinking
    and repeats when growing). ``mode="linear"`` instead interpolates linearly between channels,
    with the first and last channels aligned (``np.interp`` on channel positions
    :math:`i (c-1)/(C-1)`).

    Args:
        x: feature map, shape ``(B, c, *)`` with at least one trailing dimension.
        channels: the number of channels :math:`C` wanted, positive.
        mode: ``"pool"`` or ``"linear"``. (default: ``"pool"``)

    Shapes:
        - **input:** ``(B, c, *)``
        - **output:** ``(B, C, *)``; ``x`` itself when ``c == C``
    """
    check_positive(channels=channels)
    if mode not in ("pool", "linear"):
        raise ValueError(f"mode must be 'pool' or 'linear', got {mode!r}")
    if x.dim() < 3 or x.size(1) == 0:
        raise ValueError(f"CWI expects a (B, c, *) map with c >= 1, got shape {tuple(x.shape)}")
    if x.size(1) == channels:
        return x
    rest = x.shape[2:]
    flat = x.reshape(x.size(0), x.size(1), -1).transpose(1, 2)  # (B, positions, c)
    if mode == "pool":
        out = F.adaptive_avg_pool1d(flat, channels)
    else:
        out = F.interpolate(flat, size=channels, mode="linear", align_corners=True)
    return out.transpose(1, 2).reshape(x.size(0), channels, *rest)


def gumbel_select(
    logits: Tensor, tau: float, num: int = 2, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    r"""Sample ``num`` distinct candidates of a categorical and their normalised weights.

    As the official ``select2withP``: the Gumbel-perturbed logits
    :math:`\tilde z = (\log \mathrm{softmax}(z) + g) / \tau` give a distribution from which
    ``num`` indices are drawn without replacement, and the weights are the softmax of
    :math:`\tilde z` over the drawn indices only (so they sum to one and carry the gradient).

    Args:
        logits: the architecture logits of one choice, shape ``(K,)``.
        tau: Gumbel-softmax temperature, positive.
        num: candidates to draw; at most ``K`` are drawn. (default: ``2``)
        generator: optional CPU generator for reproducible draws. (default: ``None``)

    Returns:
        ``(indices, weights)``, each of shape ``(min(num, K),)``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    check_positive(num=num)
    if logits.dim() != 1 or logits.numel() == 0:
        raise ValueError(f"logits must be a non-empty vector, got shape {tuple(logits.shape)}")
    uniform = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
    gumbel = -(-uniform.log()).log()
    perturbed = (logits.log_softmax(0) + gumbel.to(logits.device, logits.dtype)) / tau
    probs = perturbed.detach().softmax(0).cpu().double()
    # the epsilon keeps multinomial valid when the softmax underflows to exact zeros
    index = torch.multinomial(probs + 1e-7, min(num, logits.numel()), generator=generator)
    index = index.to(logits.device)
    return index, perturbed[index].softmax(0)


def _out_size(size: int, stride: int) -> int:
    """Spatial size after a 3x3 (padding 1) or 1x1 (padding 0) convolution of ``stride``."""
    return (size - 1) // stride + 1


class _Block(nn.Module):
    """Basic residual block: 3x3 conv-BN-ReLU, 3x3 conv-BN, shortcut, ReLU."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(mid)
        self.conv_b = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(cout)
        self.shortcut: nn.Sequential | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn_b(self.conv_b(F.relu(self.bn_a(self.conv_a(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + skip)


class TASResNet(nn.Module):
    r"""CIFAR-style ResNet whose width may differ per block: the network TAS searches and prunes.

    Stage :math:`s` has ``depths[s]`` basic blocks on a residual stream of ``widths[s]``
    channels; block :math:`j` of stage :math:`s` has ``mids[s][j]`` channels between its two
    3x3 convolutions. The stem is a 3x3 convolution to ``widths[0]`` channels; every stage after
    the first starts with a stride-2 block whose shortcut is a 1x1 convolution. ResNet-20 is
    ``depths=(3, 3, 3), widths=(16, 32, 64)``.

    Args:
        depths: blocks per stage, each positive. (default: ``(3, 3, 3)``)
        widths: residual-stream channels per stage. (default: ``(16, 32, 64)``)
        num_classes: classifier outputs. (default: ``10``)
        in_channels: image channels. (default: ``3``)
        mids: per stage, the inner width of each block. (default: the stage's width)

    Shapes:
        - **input:** ``(B, in_channels, H, W)``
        - **output:** ``(B, num_classes)``
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 3),
        widths: Sequence[int] = (16, 32, 64),
        num_classes: int = 10,
        in_channels: int = 3,
        mids: Sequence[Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        depths, widths = tuple(int(d) for d in depths), tuple(int(w) for w in widths)
        if not depths or len(depths) != len(widths):
            raise ValueError(f"depths {depths} and widths {widths} must be non-empty, equal length")
        check_positive(num_classes=num_classes, in_channels=in_channels)
        for s, (d, w) in enumerate(zip(depths, widths, strict=True)):
            check_positive(**{f"depths[{s}]": d, f"widths[{s}]": w})
        if mids is None:
            mids = [[w] * d for d, w in zip(depths, widths, strict=True)]
        mids = [tuple(int(m) for m in stage) for stage in mids]
        if [len(m) for m in mids] != list(depths):
            raise ValueError(f"mids must give one width per block, got {mids} for depths {depths}")
        for s, stage in enumerate(mids):
            check_positive(**{f"mids[{s}][{j}]": m for j, m in enumerate(stage)})
        self.depths, self.widths, self.mids = depths, widths, tuple(mids)
        self.num_classes, self.in_channels = int(num_classes), int(in_channels)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        self.stages = nn.ModuleList()
        cin = widths[0]
        for s, (w, stage_mids) in enumerate(zip(widths, mids, strict=True)):
            blocks = [
                _Block(cin if j == 0 else w, m, w, 2 if s > 0 and j == 0 else 1)
                for j, m in enumerate(stage_mids)
            ]
            self.stages.append(nn.Sequential(*blocks))
            cin = w
        self.fc = nn.Linear(widths[-1], num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.Linear):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, "TASResNet")
        x = F.relu(self.stem_bn(self.stem(x)))
        for stage in self.stages:
            x = stage(x)
        return self.fc(x.mean((2, 3)))

    def extra_repr(self) -> str:
        return f"depths={self.depths}, widths={self.widths}, mids={self.mids}"


@register_model(
    "tas", family="pruning", paper="Network Pruning via Transformable Architecture Search"
)
class TASSearch(nn.Module):
    r"""TAS: search the widths and depths of a :class:`TASResNet` under a FLOPs target.

    Every width decision :math:`w` has a categorical distribution
    :math:`p_w = \mathrm{softmax}(\alpha_w)` over the channel counts
    ``round(r * C)`` for ``r`` in ``width_choices`` (:math:`C` its full width), and every
    stage a distribution over its depths. The decisions are one stream width per stage (the
    stem and every convolution that writes the stage's residual stream share it: a residual sum
    needs one width) and one inner width per block. In :meth:`forward` each decision draws two
    candidates with :func:`gumbel_select`; a convolution's candidate of :math:`c` channels is
    the first :math:`c` channels of its full output, aligned to :math:`C` by
    :func:`channel_wise_interpolation`, and the candidates are summed with their weights; a
    stage's output is the weighted sum of the stream after each drawn depth. The expected cost

    .. math::
        \mathbb{E}[F] = \sum_{\text{conv } l} P(l \text{ runs})\,
            \mathbb{E}[c_{in,l}]\,\mathbb{E}[c_{out,l}]\, k_l^2 H_l W_l
            + \mathbb{E}[c_{last}]\cdot \text{classes}

    (MACs, :meth:`expected_flops`) is exact: the decisions are independent and every term
    multiplies two different ones, with :math:`P(\text{block } j \text{ runs}) =
    P(d_s > j)`. The cost loss is :math:`\log \mathbb{E}[F]` when the argmax architecture's
    FLOPs exceed :math:`(1 + t)\,R`, :math:`-\log \mathbb{E}[F]` below :math:`(1 - t)\,R`, else
    zero (:meth:`cost_loss`). After the search, :meth:`argmax_config` and :meth:`extract` give
    the pruned network (first channels of each weight), trained with :func:`tas_distill_loss`
    from the unpruned one.

    Unlike the official code, one BatchNorm of full width serves every candidate of a layer
    (BatchNorm is per channel, so slicing after it equals a BatchNorm of the slice).

    Args:
        model: the unpruned :class:`TASResNet` (its weights are searched in place).
        width_choices: width ratios in ``(0, 1]``; duplicate channel counts are merged.
            (default: ``(0.25, 0.5, 0.75, 1.0)``)
        depth_choices: candidate blocks per stage; a stage takes those within its depth.
            (default: ``(1, 2, 3)``)
        target_flops: :math:`R`, the MACs the pruned network should cost (positive).
        tau: Gumbel-softmax temperature. (default: ``5.0``)
        input_size: the ``(H, W)`` the FLOPs are counted at. (default: ``(32, 32)``)
        cwi_mode: ``"pool"`` or ``"linear"``, see :func:`channel_wise_interpolation`.
            (default: ``"pool"``)

    Shapes:
        - **input:** ``(B, in_channels, H, W)``
        - **output:** ``(B, num_classes)``
    """

    def __init__(
        self,
        model: TASResNet,
        width_choices: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        depth_choices: Sequence[int] = (1, 2, 3),
        target_flops: float = 1.0,
        tau: float = 5.0,
        input_size: tuple[int, int] = (32, 32),
        cwi_mode: str = "pool",
    ) -> None:
        super().__init__()
        if not isinstance(model, TASResNet):
            raise TypeError(f"TASSearch searches a TASResNet, got {type(model).__name__}")
        if not width_choices or any(not 0.0 < float(r) <= 1.0 for r in width_choices):
            raise ValueError(f"width_choices must be ratios in (0, 1], got {width_choices}")
        if not depth_choices or any(int(d) != d or d < 1 for d in depth_choices):
            raise ValueError(f"depth_choices must be positive integers, got {depth_choices}")
        if not float(target_flops) > 0:
            raise ValueError(f"target_flops must be positive, got {target_flops}")
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau}")
        check_positive(height=input_size[0], width=input_size[1])
        if cwi_mode not in ("pool", "linear"):
            raise ValueError(f"cwi_mode must be 'pool' or 'linear', got {cwi_mode!r}")
        self.model = model
        self.target_flops, self.tau = float(target_flops), float(tau)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.cwi_mode = cwi_mode

        def counts(full: int) -> tuple[int, ...]:
            return tuple(sorted({max(1, round(float(r) * full)) for r in width_choices}))

        choices = []
        for s, (depth, width) in enumerate(zip(model.depths, model.widths, strict=True)):
            choices.append(Choice(f"stream{s}", counts(width)))
            choices += [Choice(f"mid{s}_{j}", counts(m)) for j, m in enumerate(model.mids[s])]
            depths = tuple(sorted({int(d) for d in depth_choices if d <= depth}))
            if not depths:
                raise ValueError(f"no depth choice fits stage {s} of depth {depth}")
            choices.append(Choice(f"depth{s}", depths))
        self.space = SearchSpace("tas", choices)
        self.arch = nn.ParameterDict(
            {name: nn.Parameter(torch.empty(len(c))) for name, c in self.space.choices()}
        )
        self.generator: torch.Generator | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Architecture logits from :math:`\\mathcal{N}(0, 0.01^2)`, as the official code: the
        small noise breaks the ties, so the argmax architecture changes one decision at a time."""
        for logits in self.arch.values():
            nn.init.normal_(logits, 0.0, 0.01)

    # -- the space and its costs -------------------------------------------------------------

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture logits :math:`\\alpha` (searched on validation data)."""
        return list(self.arch.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network's weights (trained on training data)."""
        return list(self.model.parameters())

    def probabilities(self) -> dict[str, Tensor]:
        """:math:`p = \\mathrm{softmax}(\\alpha)` of every decision."""
        return {name: logits.softmax(0) for name, logits in self.arch.items()}

    def _cost(self, value: Callable[[str], Any], runs: Callable[[int, int], Any]) -> Any:
        """MACs of the net given each decision's (expected) value and P(block j of s runs)."""
        m = self.model
        h, w = self.input_size
        total = m.in_channels * value("stream0") * 9 * h * w
        cin = "stream0"
        for s in range(len(m.depths)):
            for j in range(m.depths[s]):
                stride = 2 if s > 0 and j == 0 else 1
                h, w = _out_size(h, stride), _out_size(w, stride)
                mid, out = value(f"mid{s}_{j}"), value(f"stream{s}")
                src = value(cin if j == 0 else f"stream{s}")
                block = src * mid * 9 * h * w + mid * out * 9 * h * w
                if j == 0 and s > 0:
                    block = block + src * out * h * w
                total = total + runs(s, j) * block
            cin = f"stream{s}"
        return total + value(cin) * m.num_classes

    def flops(self, cfg: Mapping[str, Any]) -> int:
        """MACs of architecture ``cfg`` (equal to ``count_macs(self.extract(cfg))``)."""
        self.space.validate(cfg)
        return int(self._cost(lambda k: cfg[k], lambda s, j: int(j < cfg[f"depth{s}"])))

    def expected_flops(self) -> Tensor:
        """:math:`\\mathbb{E}[F]` under the current distributions, differentiable in
        :math:`\\alpha`."""
        probs = self.probabilities()
        options = {name: c.options for name, c in self.space.choices()}

        def mean(name: str) -> Tensor:
            return (probs[name] * probs[name].new_tensor(options[name])).sum()

        def runs(s: int, j: int) -> Tensor:
            keep = probs[name := f"depth{s}"].new_tensor([d > j for d in options[name]])
            return (probs[name] * keep).sum()

        return self._cost(mean, runs)

    def argmax_config(self) -> dict[str, Any]:
        """The most likely architecture: the argmax of every decision."""
        return {name: c.options[int(self.arch[name].argmax())] for name, c in self.space.choices()}

    def cost_loss(self, tolerance: float = 0.05) -> Tensor:
        """The FLOPs cost loss of the paper, with the target band :math:`(1 \\pm t) R`."""
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"tolerance must lie in [0, 1), got {tolerance}")
        expected = self.expected_flops()
        current = self.flops(self.argmax_config())
        if current > (1.0 + tolerance) * self.target_flops:
            return expected.log()
        if current < (1.0 - tolerance) * self.target_flops:
            return -expected.log()
        return expected * 0.0

    # -- search forward ------------------------------------------------------------------------

    def _draw(self) -> dict[str, tuple[list[int], Tensor]]:
        drawn = {}
        for name, choice in self.space.choices():
            index, weights = gumbel_select(self.arch[name], self.tau, 2, self.generator)
            drawn[name] = ([choice.options[int(i)] for i in index], weights)
        return drawn

    def _mix(self, y: Tensor, drawn: tuple[list[int], Tensor]) -> Tensor:
        """Weighted sum of the drawn widths of ``y`` (full width), each CWI-aligned back."""
        sizes, weights = drawn
        full = y.size(1)
        parts = [
            channel_wise_interpolation(y[:, :c], full, self.cwi_mode) * wt
            for c, wt in zip(sizes, weights, strict=True)
        ]
        return torch.stack(parts).sum(0)

    def forward(self, x: Tensor) -> Tensor:
        m = self.model
        check_image(x, m.in_channels, "TASSearch")
        drawn = self._draw()
        x = F.relu(self._mix(m.stem_bn(m.stem(x)), drawn["stream0"]))
        for s, stage in enumerate(m.stages):
            stream = drawn[f"stream{s}"]
            depths, depth_weights = drawn[f"depth{s}"]
            outs = {}
            for j in range(max(depths)):
                block = stage[j]
                mid = F.relu(self._mix(block.bn_a(block.conv_a(x)), drawn[f"mid{s}_{j}"]))
                out = self._mix(block.bn_b(block.conv_b(mid)), stream)
                skip = x if block.shortcut is None else self._mix(block.shortcut(x), stream)
                x = F.relu(out + skip)
                outs[j + 1] = x
            x = sum(wt * outs[d] for d, wt in zip(depths, depth_weights, strict=True))
        return m.fc(x.mean((2, 3)))

    # -- the pruned network --------------------------------------------------------------------

    @torch.no_grad()
    def extract(self, cfg: Mapping[str, Any] | None = None) -> TASResNet:
        """A standalone pruned :class:`TASResNet` of ``cfg`` (default: :meth:`argmax_config`)
        holding the first channels of every searched weight (to be trained with KD)."""
        cfg = self.argmax_config() if cfg is None else dict(cfg)
        self.space.validate(cfg)
        m = self.model
        depths = [cfg[f"depth{s}"] for s in range(len(m.depths))]
        widths = [cfg[f"stream{s}"] for s in range(len(m.depths))]
        mids = [[cfg[f"mid{s}_{j}"] for j in range(d)] for s, d in enumerate(depths)]
        net = TASResNet(depths, widths, m.num_classes, m.in_channels, mids).to(
            m.fc.weight.device, m.fc.weight.dtype
        )
        _copy_conv(net.stem, m.stem)
        _copy_bn(net.stem_bn, m.stem_bn)
        for small, big in zip(net.stages, m.stages, strict=True):
            for sb, bb in zip(small, big, strict=False):  # the first d blocks
                for name in ("conv_a", "conv_b"):
                    _copy_conv(getattr(sb, name), getattr(bb, name))
                for name in ("bn_a", "bn_b"):
                    _copy_bn(getattr(sb, name), getattr(bb, name))
                if sb.shortcut is not None:
                    _copy_conv(sb.shortcut[0], bb.shortcut[0])
                    _copy_bn(sb.shortcut[1], bb.shortcut[1])
        net.fc.weight.copy_(m.fc.weight[:, : net.fc.in_features])
        net.fc.bias.copy_(m.fc.bias)
        return net

    def extra_repr(self) -> str:
        return (
            f"space_size={self.space.size()}, target_flops={self.target_flops:,.0f}, "
            f"tau={self.tau}, cwi_mode={self.cwi_mode!r}"
        )


def _copy_conv(small: nn.Conv2d, big: nn.Conv2d) -> None:
    small.weight.copy_(big.weight[: small.out_channels, : small.in_channels])


def _copy_bn(small: nn.BatchNorm2d, big: nn.BatchNorm2d) -> None:
    n = small.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(small, name).copy_(getattr(big, name)[:n])
    small.num_batches_tracked.copy_(big.num_batches_tracked)


def tas_distill_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    T: float = 4.0,
    alpha: float = 0.9,
) -> Tensor:
    r"""Loss of the pruned network after the search: :math:`(1-\alpha)\,\mathrm{CE}(s, y)
    + \alpha\, T^2\,\mathrm{KL}(p_t^T \| p_s^T)` with the shared
    :func:`~graphkit.extras.training.distill.kd_kl` (teacher: the unpruned network).

    Args:
        student_logits: the pruned network's logits, shape ``(B, C)``.
        teacher_logits: the unpruned network's logits, shape ``(B, C)`` (no gradient).
        targets: class indices, shape ``(B,)``.
        T: distillation temperature. (default: ``4.0``)
        alpha: weight of the distillation term in ``[0, 1]``. (default: ``0.9``)
    """
    if not 0.0 <= alpha <= 1.0 or math.isnan(alpha):
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    kd = kd_kl(student_logits, teacher_logits, T)
    return (1.0 - alpha) * F.cross_entropy(student_logits, targets) + alpha * kd


def teacher_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of the unpruned ``model`` to distil from (take it before the search)."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
