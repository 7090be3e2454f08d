r"""NASNet-A and its cell search space.

From `Learning Transferable Architectures for Scalable Image Recognition
<https://arxiv.org/abs/1707.07012>`_. A network is a stem followed by three stacks of ``N``
*normal* cells separated by *reduction* cells (stride 2, filters doubled). A cell has ``B = 5``
blocks; block ``b`` picks two hidden states among the cell's two inputs and the earlier blocks'
outputs, applies one operation to each and adds the results:

.. math::
    h_{b+2} = \mathrm{op}^{L}_b\big(h_{i_b}\big) + \mathrm{op}^{R}_b\big(h_{j_b}\big),
    \qquad i_b, j_b \in \{0, \dots, b + 1\},

where :math:`h_0` is the previous cell's output and :math:`h_1` the one before (projected to the
cell's width and resolution). The cell's output concatenates the listed states. "N @ F" names a
network with ``N`` normal cells per stack and ``F`` penultimate filters (``F = 24 f``: six
concatenated states of ``4 f`` channels after two doublings of the base width ``f``).

The wiring follows the official TF-slim ``nasnet.py`` / ``nasnet_utils.py`` (ReLU-conv-BN
order, stacked separable convolutions, factorised reductions, no conv biases, BN with
:math:`\epsilon = 10^{-3}`); the auxiliary head is not built.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graphkit.extras._core.blocks import DropPath
from graphkit.extras._core.checks import check_fraction, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.space import Choice, SearchSpace

#: The 13 candidate operations of the NASNet search space (TF-slim names where they exist).
NASNET_OPERATIONS: tuple[str, ...] = (
    "none",  # identity
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dilated_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "separable_3x3_2",
    "separable_5x5_2",
    "separable_7x7_2",
)

# TF-slim's BatchNorm: decay 0.9997 (PyTorch momentum = 1 - decay), epsilon 1e-3
_BatchNorm = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=3e-4)


@dataclass(frozen=True)
class CellGenotype:
    """One cell: ``2B`` operations and their input states, and the states concatenated.

    Block ``b`` uses ``operations[2b]`` on state ``inputs[2b]`` and ``operations[2b + 1]`` on
    ``inputs[2b + 1]``; states 0 and 1 are the cell inputs, state ``b + 2`` is block ``b``.
    """

    operations: tuple[str, ...]
    inputs: tuple[int, ...]
    concat: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.operations) != len(self.inputs) or not self.operations or len(self.inputs) % 2:
            raise ValueError("a cell needs an even, equal number (2B > 0) of operations and inputs")
        unknown = [op for op in self.operations if op not in NASNET_OPERATIONS]
        if unknown:
            raise ValueError(f"unknown operations {unknown}; choose from {NASNET_OPERATIONS}")
        for k, i in enumerate(self.inputs):
            if not 0 <= i < k // 2 + 2:
                raise ValueError(f"input {k} of the cell reads state {i}, not yet computed")
        states = self.num_blocks + 2
        if not self.concat or any(not 0 <= s < states for s in self.concat):
            raise ValueError(f"concat must name states in [0, {states}), got {self.concat}")

    @property
    def num_blocks(self) -> int:
        return len(self.operations) // 2


@dataclass(frozen=True)
class NASNetGenotype:
    """A normal and a reduction cell."""

    normal: CellGenotype
    reduction: CellGenotype


#: NASNet-A, the published cells (TF-slim ``NasNetANormalCell`` / ``NasNetAReductionCell``;
#: its ``used_hiddenstates`` flags turned into the list of concatenated states).
NASNET_A = NASNetGenotype(
    normal=CellGenotype(
        operations=(
            "separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2",
            "avg_pool_3x3", "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none",
        ),
        inputs=(0, 1, 1, 1, 0, 1, 1, 1, 0, 0),
        concat=(1, 2, 3, 4, 5, 6),
    ),
    reduction=CellGenotype(
        operations=(
            "separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2",
            "avg_pool_3x3", "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2",
            "max_pool_3x3",
        ),
        inputs=(0, 1, 0, 1, 0, 1, 3, 2, 2, 0),
        concat=(3, 4, 5, 6),
    ),
)  # fmt: skip


class ScheduledDropPath(DropPath):
    r"""Drop path whose probability grows linearly over training (NASNet's regulariser).

    .. math::
        p(t) = p \cdot r \cdot \min\!\left(1, \frac{t}{T}\right),

    with :math:`r` the depth ratio of the cell (TF-slim's "v3" schedule uses
    :math:`r = (\text{cell} + 1) / \text{cells}`; ``1`` for the plain schedule). Kept samples
    are divided by :math:`1 - p(t)`; evaluation is the identity. Call :meth:`set_step` as
    training advances.

    Args:
        p (float): the final drop probability :math:`p`, in :math:`[0, 1)`. (default: ``0.0``)
        total_steps (int): :math:`T`, the steps over which the rate ramps up. (default: ``1``)
        layer_ratio (float): :math:`r \in [0, 1]`. (default: ``1.0``)

    Shapes:
        - input: :math:`(B, *)`; output: the same.
    """

    def __init__(self, p: float = 0.0, total_steps: int = 1, layer_ratio: float = 1.0) -> None:
        super().__init__(0.0)
        check_fraction("p", p)
        check_positive(total_steps=total_steps)
        if not 0.0 <= layer_ratio <= 1.0:
            raise ValueError(f"layer_ratio must lie in [0, 1], got {layer_ratio}")
        self.final_p = float(p)
        self.total_steps = int(total_steps)
        self.layer_ratio = float(layer_ratio)
        self.step = 0

    def rate(self, step: int) -> float:
        """:math:`p(t)` at ``step`` (clamped at the end of the ramp)."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        return self.final_p * self.layer_ratio * min(1.0, step / self.total_steps)

    def set_step(self, step: int) -> None:
        """Move the schedule to ``step``: the drop probability becomes :meth:`rate` (step)."""
        self.p = self.rate(step)
        self.step = int(step)

    def extra_repr(self) -> str:
        return (
            f"p={self.p:.4g}, final_p={self.final_p}, total_steps={self.total_steps}, "
            f"layer_ratio={self.layer_ratio:.4g}"
        )


def _relu_conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        _BatchNorm(c_out),
    )


class _SeparableStack(nn.Sequential):
    """TF-slim ``separable_KxK_2``: twice ReLU, depthwise K×K, pointwise 1×1, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        layers: list[nn.Module] = []
        for c, s in ((c_in, stride), (c_out, 1)):
            layers += [
                nn.ReLU(),
                nn.Conv2d(c, c, kernel, s, kernel // 2, groups=c, bias=False),
                nn.Conv2d(c, c_out, 1, bias=False),
                _BatchNorm(c_out),
            ]
        super().__init__(*layers)


class _FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two strided 1×1 paths, the second shifted
    by one pixel, concatenated and normalised (TF-slim ``factorized_reduction``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        if c_out < 2:
            raise ValueError(f"a factorised reduction needs 2 or more output channels, got {c_out}")
        self.path1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.path2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, bias=False)
        self.bn = _BatchNorm(c_out)

    def forward(self, x: Tensor) -> Tensor:
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(
            torch.cat([self.path1(x[:, :, ::2, ::2]), self.path2(shifted[:, :, ::2, ::2])], 1)
        )


def _operation(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """``name`` mapping ``c_in`` channels to ``c_out`` with ``stride`` (TF-slim semantics:
    pools and the identity get a 1×1 projection only where the shape demands one)."""
    if name == "none":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return _relu_conv_bn(c_in, c_out, 1, stride)
    if "pool" in name:
        k = int(name[-1])
        pool: nn.Module
        if name.startswith("avg"):
            pool = nn.AvgPool2d(k, stride, k // 2, count_include_pad=False)
        else:
            pool = nn.MaxPool2d(k, stride, k // 2)
        if c_in == c_out:
            return pool
        return nn.Sequential(pool, nn.Conv2d(c_in, c_out, 1, bias=False), _BatchNorm(c_out))
    if name.startswith("separable"):
        return _SeparableStack(c_in, c_out, int(name.split("_")[1][0]), stride)
    if name in ("conv_1x1", "conv_3x3"):
        return _relu_conv_bn(c_in, c_out, int(name[-1]), stride)
    if name == "dilated_3x3":
        return nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, stride, padding=2, dilation=2, bias=False),
            _BatchNorm(c_out),
        )
    k = int(name[-1])  # conv_1xk_kx1: a 1×k then a k×1 convolution
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, (1, k), (1, stride), (0, k // 2), bias=False),
        nn.Conv2d(c_out, c_out, (k, 1), (stride, 1), (k // 2, 0), bias=False),
        _BatchNorm(c_out),
    )


class NASNetCell(nn.Module):
    r"""One NASNet cell (normal or reduction) wired by a :class:`CellGenotype`.

    The current input is projected by ReLU-1×1 conv-BN to ``filters`` channels (state 0); the
    previous cell's output (state 1) is brought to the same shape by a factorised reduction
    (larger resolution) or ReLU-1×1 conv-BN (other width). In a reduction cell operations on
    states 0 and 1 have stride 2. Operations other than the identity end in a
    :class:`ScheduledDropPath`.

    Args:
        genotype (CellGenotype): the wiring.
        in_channels (int): channels of the current input.
        prev_channels (int, optional): channels of the previous output; :obj:`None` when there
            is none (the first stem cell, whose state 1 is its raw input).
        filters (int): width of every state.
        reduction (bool): stride 2 on the cell inputs. (default: ``False``)
        prev_larger (bool): the previous output has twice the resolution. (default: ``False``)
        drop_path (ScheduledDropPath settings): ``(p, total_steps, layer_ratio)``.
            (default: ``(0.0, 1, 1.0)``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)` and the previous output (or :obj:`None`).
        - output: :math:`(B, |\text{concat}| \cdot F, H', W')`, :math:`H' = \lceil H/2 \rceil`
          in a reduction cell.
    """

    def __init__(
        self,
        genotype: CellGenotype,
        in_channels: int,
        prev_channels: int | None,
        filters: int,
        reduction: bool = False,
        prev_larger: bool = False,
        drop_path: tuple[float, int, float] = (0.0, 1, 1.0),
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, filters=filters)
        self.genotype = genotype
        self.reduction = reduction
        self.filters = filters
        self.preprocess0 = _relu_conv_bn(in_channels, filters)
        self.preprocess1: nn.Module | None
        if prev_channels is None:
            self.preprocess1, c1 = None, in_channels
        elif prev_larger:
            self.preprocess1 = nn.Sequential(nn.ReLU(), _FactorizedReduce(prev_channels, filters))
            c1 = filters
        elif prev_channels != filters:
            self.preprocess1, c1 = _relu_conv_bn(prev_channels, filters), filters
        else:
            self.preprocess1, c1 = nn.Identity(), filters
        channels = [filters, c1] + [filters] * genotype.num_blocks
        self.ops = nn.ModuleList()
        for name, i in zip(genotype.operations, genotype.inputs, strict=True):
            stride = 2 if reduction and i < 2 else 1
            op = _operation(name, channels[i], filters, stride)
            if name != "none":
                op = nn.Sequential(op, ScheduledDropPath(*drop_path))
            self.ops.append(op)
        # concatenated cell inputs of a reduction cell (or a raw state 1) need the output shape
        self.fix = nn.ModuleDict()
        for s in genotype.concat:
            if s < 2 and reduction:
                self.fix[str(s)] = _FactorizedReduce(channels[s], filters)
            elif channels[s] != filters:
                self.fix[str(s)] = nn.Sequential(
                    nn.Conv2d(channels[s], filters, 1, bias=False), _BatchNorm(filters)
                )
        self.out_channels = len(genotype.concat) * filters

    def forward(self, x: Tensor, prev: Tensor | None) -> Tensor:
        if (prev is None) != (self.preprocess1 is None):
            raise ValueError("this cell was built with(out) a previous input; pass it accordingly")
        states = [self.preprocess0(x), x if self.preprocess1 is None else self.preprocess1(prev)]
        for b in range(self.genotype.num_blocks):
            i, j = self.genotype.inputs[2 * b], self.genotype.inputs[2 * b + 1]
            states.append(self.ops[2 * b](states[i]) + self.ops[2 * b + 1](states[j]))
        out = [self.fix[str(s)](states[s]) if str(s) in self.fix else states[s]
               for s in self.genotype.concat]  # fmt: skip
        return torch.cat(out, dim=1)

    def extra_repr(self) -> str:
        kind = "reduction" if self.reduction else "normal"
        return f"{kind}, filters={self.filters}, out_channels={self.out_channels}"


@dataclass(frozen=True)
class _Variant:
    stem: str  # "cifar" or "imagenet"
    stem_multiplier: float
    drop_path: float  # final drop probability (1 - TF drop_path_keep_prob)
    dropout: float  # before the classifier (1 - dense_dropout_keep_prob)
    skip_reduction_input: bool
    total_steps: int


# TF-slim cifar_config / mobile_imagenet_config / large_imagenet_config
_FAMILIES = {
    "cifar": _Variant("cifar", 3.0, 0.4, 0.0, False, 937_500),
    "mobile": _Variant("imagenet", 1.0, 0.0, 0.5, False, 250_000),
    "large": _Variant("imagenet", 3.0, 0.3, 0.5, True, 250_000),
}


class NASNetA(nn.Module):
    r"""NASNet-A "N @ F" (`Learning Transferable Architectures for Scalable Image Recognition
    <https://arxiv.org/abs/1707.07012>`_).

    ``variant`` is ``"<family>_<N>@<F>"`` with family ``cifar`` (3×3 stem conv of ``3f``
    channels), ``mobile`` or ``large`` (stride-2 3×3 stem conv of 32 / 96 channels and two
    reduction cells of width ``f/4``, ``f/2``); ``f = F / 24`` (with another genotype the last
    width is ``4f`` times its number of concatenated states). The published models are
    ``cifar_6@768``, ``mobile_4@1056`` and ``large_6@4032``. Then three stacks of ``N`` normal
    cells (widths ``f``, ``2f``, ``4f``) with a reduction cell before the second and the third;
    ReLU, global average pooling, dropout and a linear classifier. Hyper-parameters per family
    (stem multiplier, drop-path and dropout rates, the ``large`` model's
    skip-reduction-input wiring) follow TF-slim's configs; no auxiliary head.

    Args:
        variant (str): see above. (default: ``"mobile_4@1056"``)
        num_classes (int): classifier outputs; ``0`` returns the pooled features.
            (default: ``1000``)
        genotype (NASNetGenotype): the cells. (default: :data:`NASNET_A`)
        in_channels (int): image channels. (default: ``3``)
        drop_path (float, optional): final ScheduledDropPath probability (default: the
            family's, 0.4 / 0.0 / 0.3).
        total_steps (int, optional): steps of the drop-path ramp (default: the family's).
        dropout (float, optional): before the classifier (default: 0.0 / 0.5 / 0.5).

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`; output: :math:`(B, \text{num\_classes})` or
          :math:`(B, F)`.
    """

    def __init__(
        self,
        variant: str = "mobile_4@1056",
        num_classes: int = 1000,
        genotype: NASNetGenotype = NASNET_A,
        in_channels: int = 3,
        drop_path: float | None = None,
        total_steps: int | None = None,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        match = re.fullmatch(r"(cifar|mobile|large)_(\d+)@(\d+)", variant)
        if match is None:
            raise ValueError(
                f"variant must look like 'mobile_4@1056' (family cifar/mobile/large), got "
                f"{variant!r}"
            )
        family, n, penultimate = match[1], int(match[2]), int(match[3])
        check_positive(num_cells=n, penultimate_filters=penultimate, in_channels=in_channels)
        if penultimate % 24:
            raise ValueError(f"penultimate filters F must be a multiple of 24, got {penultimate}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be non-negative, got {num_classes}")
        cfg = _FAMILIES[family]
        if cfg.stem == "imagenet" and penultimate < 96:  # the stem cells have width f/4
            raise ValueError(f"{family} models need F at least 96 (f / 4 >= 1), got {penultimate}")
        drop_path = cfg.drop_path if drop_path is None else check_fraction("drop_path", drop_path)
        dropout = cfg.dropout if dropout is None else check_fraction("dropout", dropout)
        total_steps = cfg.total_steps if total_steps is None else total_steps
        check_positive(total_steps=total_steps)
        self.variant, self.genotype = variant, genotype
        f = penultimate // 24

        if cfg.stem == "cifar":
            c_stem = int(f * cfg.stem_multiplier)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), _BatchNorm(c_stem)
            )
        else:
            c_stem = int(32 * cfg.stem_multiplier)
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c_stem, 3, stride=2, bias=False), _BatchNorm(c_stem)
            )

        # outputs[k] = (channels, resolution level), as TF-slim's cell_outputs: [None, stem]
        outputs: list[tuple[int, int] | None] = [None, (c_stem, 0)]
        self.cells = nn.ModuleList()
        self._wiring: list[tuple[int, int | None]] = []  # (input index, previous index)
        total_cells = 3 * n + 2 + (2 if cfg.stem == "imagenet" else 0)

        def add(reduction: bool, filters: int, prev: int) -> None:
            cur = len(outputs) - 1
            prev_out = outputs[prev]
            c_in, level = outputs[cur]  # type: ignore[misc]
            cell = NASNetCell(
                genotype.reduction if reduction else genotype.normal,
                c_in,
                None if prev_out is None else prev_out[0],
                filters,
                reduction=reduction,
                prev_larger=prev_out is not None and prev_out[1] < level,
                # TF-slim's "v3" drop path: deeper cells drop more; stem cells count
                drop_path=(drop_path, total_steps, (len(self.cells) + 1) / total_cells),
            )
            self.cells.append(cell)
            self._wiring.append((cur, None if prev_out is None else prev))
            outputs.append((cell.out_channels, level + int(reduction)))

        if cfg.stem == "imagenet":  # two reduction cells of widths f/4 and f/2
            add(True, int(f * 0.25), len(outputs) - 2)
            add(True, int(f * 0.5), len(outputs) - 2)
        scaling = 1
        for cell in range(3 * n):
            before = len(outputs) - 2
            if cell in (n, 2 * n):  # TF-slim calc_reduction_layers(3N, 2)
                scaling *= 2
                add(True, f * scaling, len(outputs) - 2)
            # skip_reduction_layer_input: the cell after a reduction reads the output from
            # before the reduction's input, not the reduction's input
            add(False, f * scaling, before if cfg.skip_reduction_input else len(outputs) - 2)
        self.num_features = outputs[-1][0]  # type: ignore[index]
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convolutions, unit BN, a small normal classifier with zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.01)
            nn.init.zeros_(self.classifier.bias)

    def set_step(self, step: int) -> None:
        """Advance every :class:`ScheduledDropPath` of the network to training step ``step``."""
        for m in self.modules():
            if isinstance(m, ScheduledDropPath):
                m.set_step(step)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last cell's output, :math:`(B, F, H/32, W/32)` (ImageNet) or ``H/4`` (CIFAR)."""
        if x.dim() != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        c_in = self.stem[0].in_channels
        if x.size(1) != c_in:  # was the stem convolution's bare channel error
            raise ValueError(f"NASNetA expects {c_in} input channels, got {x.size(1)}")
        outputs: list[Tensor | None] = [None, self.stem(x)]
        for cell, (cur, prev) in zip(self.cells, self._wiring, strict=True):
            outputs.append(cell(outputs[cur], None if prev is None else outputs[prev]))
        return outputs[-1]  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.forward_features(x)).mean(dim=(2, 3))
        x = self.dropout(x)
        return x if self.classifier is None else self.classifier(x)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, num_features={self.num_features}"


class NASNetSearchSpace(SearchSpace):
    r"""The NASNet cell search space as a :class:`~graphkit.extras.nas.space.SearchSpace`.

    Two cells (``normal``, ``reduction``) of ``num_blocks`` blocks; block ``b`` makes four
    decisions in the controller's order: ``input_left``, ``input_right`` (a state index in
    :math:`\{0, \dots, b + 1\}`) and ``op_left``, ``op_right`` (one of ``operations``). Blocks
    combine by addition, and the block outputs no block reads are concatenated. Hence

    .. math::
        |\mathcal{S}| = \Big(\prod_{b=0}^{B-1} (b + 2)^2\, |\mathcal{O}|^2\Big)^2 .

    A configuration turns into a network through :meth:`genotype` and
    :class:`NASNetA` (``genotype=...``); searchers of :mod:`graphkit.extras.nas.searchers`
    (e.g. :class:`~graphkit.extras.nas.searchers.ReinforceSearch`) search it.

    Args:
        num_blocks (int): :math:`B`. (default: ``5``)
        operations (Sequence[str]): the candidates, a subset of :data:`NASNET_OPERATIONS`.
            (default: all 13)
    """

    def __init__(self, num_blocks: int = 5, operations: Sequence[str] = NASNET_OPERATIONS) -> None:
        check_positive(num_blocks=num_blocks)
        operations = tuple(operations)
        unknown = [op for op in operations if op not in NASNET_OPERATIONS]
        if unknown or not operations:
            raise ValueError(f"operations must be among {NASNET_OPERATIONS}, got {unknown}")

        def cell(name: str) -> SearchSpace:
            blocks = [
                SearchSpace(
                    f"block{b}",
                    [
                        Choice("input_left", range(b + 2)),
                        Choice("input_right", range(b + 2)),
                        Choice("op_left", operations),
                        Choice("op_right", operations),
                    ],
                )
                for b in range(num_blocks)
            ]
            return SearchSpace(name, blocks)

        super().__init__("nasnet", [cell("normal"), cell("reduction")])
        self.num_blocks = num_blocks
        self.operations = operations

    def genotype(self, cfg: dict) -> NASNetGenotype:
        """The :class:`NASNetGenotype` of configuration ``cfg``."""
        self.validate(cfg)

        def cell(c: dict) -> CellGenotype:
            ops: list[str] = []
            inputs: list[int] = []
            for b in range(self.num_blocks):
                block = c[f"block{b}"]
                inputs += [block["input_left"], block["input_right"]]
                ops += [block["op_left"], block["op_right"]]
            read = set(inputs)
            concat = tuple(s for s in range(2, self.num_blocks + 2) if s not in read)
            return CellGenotype(tuple(ops), tuple(inputs), concat)

        return NASNetGenotype(cell(cfg["normal"]), cell(cfg["reduction"]))


_PAPER = "Learning Transferable Architectures for Scalable Image Recognition"


@register_model("nasnet_a_cifar", family="nas", paper=_PAPER)
def nasnet_a_cifar(num_classes: int = 10, **kwargs) -> NASNetA:
    """NASNet-A (6 @ 768) for 32×32 images."""
    return NASNetA("cifar_6@768", num_classes=num_classes, **kwargs)


@register_model("nasnet_a_mobile", family="nas", paper=_PAPER)
def nasnet_a_mobile(num_classes: int = 1000, **kwargs) -> NASNetA:
    """NASNet-A Mobile (4 @ 1056), 224×224 ImageNet."""
    return NASNetA("mobile_4@1056", num_classes=num_classes, **kwargs)


@register_model("nasnet_a_large", family="nas", paper=_PAPER)
def nasnet_a_large(num_classes: int = 1000, **kwargs) -> NASNetA:
    """NASNet-A Large (6 @ 4032), 331×331 ImageNet."""
    return NASNetA("large_6@4032", num_classes=num_classes, **kwargs)
