r"""Elastic layers of Once-for-All: kernel size, width and depth chosen at run time.

From `Once-for-All: Train One Network and Specialize it for Efficient Deployment
<https://arxiv.org/abs/1908.09791>`_. One set of weights serves every sub-network:

- **elastic kernel** (:class:`ElasticDepthwiseConv2d`): the largest kernel is stored; a
  smaller kernel is the centre of the next larger one passed through a learned
  :math:`k^2 \times k^2` transformation (initialised to the identity), applied in a chain
  7 → 5 → 3, so :math:`W_3 = \mathrm{crop}_3\big(\mathrm{crop}_5(W_7)\, M_{7\to5}^{\top}\big)
  M_{5\to3}^{\top}` (one matrix per kernel pair, shared by all channels);
- **elastic width** (:class:`ElasticPointConv2d`, :class:`ElasticBatchNorm2d`): the first
  channels are kept, so :meth:`ElasticMBConv.sort_channels_` first orders the hidden channels
  by importance (L1 norm of their outgoing weights);
- **elastic depth** (:class:`ElasticDepth`): the first :math:`d` blocks of a unit run.

Every elastic module has ``set_active(...)`` and ``extract()``, which returns a standalone
module of plain layers (an :class:`~graphkit.extras._core.blocks.MBConv` for a block) equal
to the elastic one under its active setting.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import MBConv
from graphkit.extras._core.checks import check_positive


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never 10% below it (MobileNet)."""
    if divisor < 1:
        raise ValueError(f"divisor must be positive, got {divisor}")
    if not (value >= 0 and math.isfinite(value)):  # NaN failed in int(), -5 gave 8
        raise ValueError(f"value must be a finite number >= 0, got {value}")
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


class ElasticDepthwiseConv2d(nn.Module):
    r"""A depthwise convolution whose kernel size and channel count are chosen per call.

    Stores the :math:`K_{max} \times K_{max}` kernels and, for each pair of consecutive
    sizes :math:`k' > k`, a matrix :math:`M_{k' \to k}` (:math:`k^2 \times k^2`, identity at
    init) turning the centre :math:`k \times k` of the size-:math:`k'` kernel into the
    size-:math:`k` kernel. The input's channel count selects the first channels.

    Args:
        channels (int): the largest number of channels.
        kernel_sizes (Sequence[int]): odd kernel sizes offered (default: ``(3, 5, 7)``).
        stride (int): stride (default: ``1``).

    Shapes:
        - **input:** :math:`(N, C, H, W)` with :math:`C \le` ``channels``
        - **output:** :math:`(N, C, \lceil H/s \rceil, \lceil W/s \rceil)`
    """

    def __init__(
        self, channels: int, kernel_sizes: Sequence[int] = (3, 5, 7), stride: int = 1
    ) -> None:
        super().__init__()
        sizes = sorted(set(kernel_sizes))
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ValueError(f"kernel sizes must be odd positive integers, got {kernel_sizes}")
        if channels < 1 or stride < 1:
            raise ValueError(f"channels and stride must be positive, got {channels}, {stride}")
        check_positive(channels=channels, stride=stride)
        self.channels = channels
        self.kernel_sizes = tuple(sizes)
        self.stride = stride
        k = sizes[-1]
        self.weight = nn.Parameter(torch.empty(channels, 1, k, k))
        # transforms[i] maps kernel_sizes[i + 1] -> kernel_sizes[i]
        self.transforms = nn.ParameterList(
            nn.Parameter(torch.empty(s * s, s * s)) for s in sizes[:-1]
        )
        self.active_kernel_size = k
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        with torch.no_grad():
            for m in self.transforms:
                m.copy_(torch.eye(m.shape[0]))

    def set_active(self, kernel_size: int) -> None:
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"kernel size {kernel_size} is not one of {self.kernel_sizes}")
        self.active_kernel_size = kernel_size

    def kernel(self, kernel_size: int | None = None, channels: int | None = None) -> Tensor:
        """The ``(channels, 1, k, k)`` kernel of size ``k`` (default: the active one)."""
        k = self.active_kernel_size if kernel_size is None else kernel_size
        if k not in self.kernel_sizes:
            raise ValueError(f"kernel size {k} is not one of {self.kernel_sizes}")
        c = self.channels if channels is None else channels
        w = self.weight[:c]
        for i in range(len(self.kernel_sizes) - 1, 0, -1):
            src, dst = self.kernel_sizes[i], self.kernel_sizes[i - 1]
            if src <= k:
                break
            lo = (src - dst) // 2
            centre = w[:, :, lo : lo + dst, lo : lo + dst].reshape(c, dst * dst)
            w = F.linear(centre, self.transforms[i - 1]).reshape(c, 1, dst, dst)
        return w

    def forward(self, x: Tensor) -> Tensor:
        c = x.size(1)
        if x.dim() != 4 or c > self.channels:
            raise ValueError(
                f"expected (N, C<={self.channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        k = self.active_kernel_size
        return F.conv2d(x, self.kernel(k, c), None, self.stride, k // 2, 1, c)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, kernel_sizes={self.kernel_sizes}, stride={self.stride}, "
            f"active={self.active_kernel_size}"
        )


class ElasticPointConv2d(nn.Module):
    r"""A 1×1 convolution (no bias) using the first input and output channels.

    Args:
        in_channels (int): the largest number of input channels.
        out_channels (int): the largest number of output channels.

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`, :math:`C_{in} \le` ``in_channels``
        - **output:** :math:`(N, C_{out}, H, W)` with :math:`C_{out}` = ``active_out_channels``
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channel counts must be positive, got {in_channels}, {out_channels}")
        check_positive(in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1))
        self.active_out_channels = out_channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def set_active(self, out_channels: int) -> None:
        if not 1 <= out_channels <= self.out_channels:
            raise ValueError(
                f"out_channels must lie in [1, {self.out_channels}], got {out_channels}"
            )
        self.active_out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) > self.in_channels:
            raise ValueError(
                f"expected (N, C<={self.in_channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        return F.conv2d(x, self.weight[: self.active_out_channels, : x.size(1)])

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, active={self.active_out_channels}"


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d that normalises the first ``C`` features for a ``C``-channel input.

    Running statistics of the unused channels are left untouched.
    """

    def forward(self, x: Tensor) -> Tensor:
        c = x.size(1)
        if x.dim() != 4 or c > self.num_features:
            raise ValueError(
                f"expected (N, C<={self.num_features}, H, W) input, got shape {tuple(x.shape)}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        mean = self.running_mean[:c] if self.running_mean is not None else None
        var = self.running_var[:c] if self.running_var is not None else None
        weight = self.weight[:c] if self.weight is not None else None
        bias = self.bias[:c] if self.bias is not None else None
        # slices are views: batch_norm updates the first c running statistics in place
        return F.batch_norm(x, mean, var, weight, bias, use_batch, factor, self.eps)


class ElasticMBConv(nn.Module):
    r"""An inverted residual block with elastic kernel size and expand ratio (OFA's unit layer).

    1×1 expansion to ``make_divisible(in_channels * e)`` channels, BN, activation; elastic
    depthwise :math:`k \times k`, BN, activation; 1×1 projection, BN; a residual when the
    stride is 1 and the channel counts agree. Shrinking the expand ratio keeps the first
    hidden channels (sort them with :meth:`sort_channels_`).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_sizes (Sequence[int]): depthwise kernel sizes (default: ``(3, 5, 7)``).
        expand_ratios (Sequence[float]): expand ratios, each > 1 (default: ``(3, 4, 6)``).
        stride (int): depthwise stride (default: ``1``).
        act_layer (Callable[[], nn.Module]): activation (default: :class:`~torch.nn.ReLU6`).
        divisor (int): hidden widths are multiples of it (default: ``8``).

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, C_{out}, \lceil H/s \rceil, \lceil W/s \rceil)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        expand_ratios: Sequence[float] = (3, 4, 6),
        stride: int = 1,
        act_layer: Callable[[], nn.Module] = nn.ReLU6,
        divisor: int = 8,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        ratios = tuple(sorted(set(expand_ratios)))
        if not ratios or not all(r > 1 and math.isfinite(r) for r in ratios):
            raise ValueError(f"expand ratios must be > 1, got {expand_ratios}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.expand_ratios = ratios
        self.divisor = divisor
        self.act_layer = act_layer
        if any(self.mid_channels(e) == in_channels for e in ratios):
            raise ValueError("every expand ratio must widen the block (hidden != in_channels)")
        mid = self.mid_channels(ratios[-1])
        self.expand = ElasticPointConv2d(in_channels, mid)
        self.expand_bn = ElasticBatchNorm2d(mid)
        self.expand_act = act_layer()
        self.depthwise = ElasticDepthwiseConv2d(mid, kernel_sizes, stride)
        self.depthwise_bn = ElasticBatchNorm2d(mid)
        self.depthwise_act = act_layer()
        self.project = ElasticPointConv2d(mid, out_channels)
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.has_residual = stride == 1 and in_channels == out_channels
        self.kernel_sizes = self.depthwise.kernel_sizes
        self.active_expand_ratio = ratios[-1]

    def reset_parameters(self) -> None:
        for m in (self.expand, self.expand_bn, self.depthwise, self.depthwise_bn, self.project):
            m.reset_parameters()
        self.project_bn.reset_parameters()

    def mid_channels(self, expand_ratio: float | None = None) -> int:
        """Hidden width at ``expand_ratio`` (default: the active one)."""
        e = self.active_expand_ratio if expand_ratio is None else expand_ratio
        return make_divisible(round(self.in_channels * e), self.divisor)

    def set_active(self, kernel_size: int | None = None, expand_ratio: float | None = None) -> None:
        """Choose the kernel size and / or the expand ratio to run with."""
        if kernel_size is not None:
            self.depthwise.set_active(kernel_size)
        if expand_ratio is not None:
            if expand_ratio not in self.expand_ratios:
                raise ValueError(f"expand ratio {expand_ratio} is not one of {self.expand_ratios}")
            self.active_expand_ratio = expand_ratio
            self.expand.set_active(self.mid_channels())

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f"expected (N, {self.in_channels}, H, W) input, got shape {tuple(x.shape)}"
            )
        h = self.expand_act(self.expand_bn(self.expand(x)))
        h = self.depthwise_act(self.depthwise_bn(self.depthwise(h)))
        y = self.project_bn(self.project(h))
        return x + y if self.has_residual else y

    @torch.no_grad()
    def sort_channels_(self) -> Tensor:
        """Reorder the hidden channels by importance, most important first, in place.

        Importance is the L1 norm of a channel's projection weights. The permutation is
        applied to every tensor indexed by the hidden channel, so the full-width block computes
        the same function. Returns the permutation.
        """
        importance = self.project.weight.abs().sum(dim=(0, 2, 3))
        order = torch.argsort(importance, descending=True, stable=True)
        self.expand.weight.copy_(self.expand.weight[order])
        self.depthwise.weight.copy_(self.depthwise.weight[order])
        self.project.weight.copy_(self.project.weight[:, order])
        for bn in (self.expand_bn, self.depthwise_bn):
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                if t is not None:
                    t.copy_(t[order])
        return order

    @torch.no_grad()
    def extract(self) -> MBConv:
        """The active block as a standalone :class:`~graphkit.extras._core.blocks.MBConv`."""
        k, mid = self.depthwise.active_kernel_size, self.mid_channels()
        ref = self.expand.weight
        out = MBConv(
            self.in_channels,
            self.out_channels,
            kernel_size=k,
            stride=self.stride,
            act_layer=self.act_layer,
            mid_channels=mid,
        ).to(device=ref.device, dtype=ref.dtype)
        out.expand.conv.weight.copy_(self.expand.weight[:mid])
        out.depthwise.conv.weight.copy_(self.depthwise.kernel(k, mid))
        out.project.conv.weight.copy_(self.project.weight[:, :mid])
        pairs = (
            (out.expand.norm, self.expand_bn, mid),
            (out.depthwise.norm, self.depthwise_bn, mid),
            (out.project.norm, self.project_bn, self.out_channels),
        )
        for dst, src, c in pairs:
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(dst, name).copy_(getattr(src, name)[:c])
            dst.num_batches_tracked.copy_(src.num_batches_tracked)
            dst.eps, dst.momentum = src.eps, src.momentum
        return out.train(self.training)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_sizes={self.kernel_sizes}, "
            f"expand_ratios={self.expand_ratios}, stride={self.stride}, "
            f"active=(k={self.depthwise.active_kernel_size}, e={self.active_expand_ratio})"
        )


class ElasticDepth(nn.Module):
    """A unit of blocks of which the first ``d`` run (OFA's elastic depth).

    Args:
        blocks (Sequence[nn.Module]): the blocks, in order.
        depths (Sequence[int], optional): allowed depths (default: ``1 .. len(blocks)``).

    Shapes:
        - **input / output:** those of the blocks
    """

    def __init__(self, blocks: Sequence[nn.Module], depths: Sequence[int] | None = None) -> None:
        super().__init__()
        if not blocks:
            raise ValueError("an elastic unit needs at least one block")
        self.blocks = nn.ModuleList(blocks)
        depths = tuple(sorted(set(depths))) if depths is not None else None
        self.depths = depths or tuple(range(1, len(self.blocks) + 1))
        if min(self.depths) < 1 or max(self.depths) > len(self.blocks):
            raise ValueError(f"depths must lie in [1, {len(self.blocks)}], got {self.depths}")
        self.active_depth = self.depths[-1]

    def set_active(self, depth: int) -> None:
        if depth not in self.depths:
            raise ValueError(f"depth {depth} is not one of {self.depths}")
        self.active_depth = depth

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks[: self.active_depth]:
            x = block(x)
        return x

    def extract(self) -> nn.Sequential:
        """The first ``active_depth`` blocks, each extracted if it is elastic."""
        return nn.Sequential(
            *(
                b.extract() if hasattr(b, "extract") else copy.deepcopy(b)
                for b in self.blocks[: self.active_depth]
            )
        )

    def extra_repr(self) -> str:
        return f"depths={self.depths}, active={self.active_depth}"
