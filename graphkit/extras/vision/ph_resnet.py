"""PH-ResNet: the CIFAR-style ResNet with every convolution a PHC layer.

From `PHNNs: Lightweight Neural Networks via Parameterized Hypercomplex Convolutions
<https://arxiv.org/abs/2110.04176>`_ (Grassucci, Zhang, Comminiello, IEEE TNNLS 2022); the
configuration follows the official ``eleGAN23/HyperNets``
(``image-classification/models/phc/phcresnet.py``): a 3x3 stem at stride 1, four stages
of 64/128/256/512 planes (60/120/240/516 in the official "Large" variant), BasicBlock for
depths 18/34 and Bottleneck with expansion 4 for 50/101/152, global average pooling and a
real-valued linear head. Each convolution (stem and projection shortcuts included) is a
:class:`~graphkit.extras.layers.phc.PHConv2d` without bias (BatchNorm follows), so the
network holds about ``1/n`` of a ResNet's weights; with ``n = 1`` it is the real ResNet plus
one scalar per convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from graphkit.extras._core.registry import register_model
from graphkit.extras.layers.phc import PHConv2d

__all__ = ["PHBasicBlock", "PHBottleneck", "PHResNet", "ph_resnet"]

_PAPER = "PHNNs: Lightweight Neural Networks via Parameterized Hypercomplex Convolutions"

#: blocks per stage for each depth, as in the ResNet paper
_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
           152: (3, 8, 36, 3)}


def _shortcut(in_planes: int, out_planes: int, stride: int, n: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(
        PHConv2d(in_planes, out_planes, 1, n=n, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class PHBasicBlock(nn.Module):
    """Two 3x3 PHC convolutions with BatchNorm, ReLU and a residual (expansion 1).

    Args:
        in_planes: input channels, divisible by ``n``.
        planes: output channels, divisible by ``n``.
        stride: stride of the first convolution and the shortcut (default: ``1``).
        n: hypercomplex dimension (default: ``4``).

    Shapes:
        input ``(N, in_planes, H, W)``, output ``(N, planes, H / stride, W / stride)``.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, n: int = 4) -> None:
        super().__init__()
        self.conv1 = PHConv2d(in_planes, planes, 3, n=n, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = PHConv2d(planes, planes, 3, n=n, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes, stride, n)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PHBottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 PHC convolutions with a residual (expansion 4).

    Args:
        in_planes: input channels, divisible by ``n``.
        planes: bottleneck width (output is ``4 * planes``), divisible by ``n``.
        stride: stride of the 3x3 convolution and the shortcut (default: ``1``).
        n: hypercomplex dimension (default: ``4``).

    Shapes:
        input ``(N, in_planes, H, W)``, output ``(N, 4 * planes, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, n: int = 4) -> None:
        super().__init__()
        out_planes = self.expansion * planes
        self.conv1 = PHConv2d(in_planes, planes, 1, n=n, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = PHConv2d(planes, planes, 3, n=n, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = PHConv2d(planes, out_planes, 1, n=n, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _shortcut(in_planes, out_planes, stride, n)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class PHResNet(nn.Module):
    """A CIFAR-style ResNet built from PHC convolutions (module docstring).

    Args:
        depth: one of 18, 34, 50, 101, 152.
        n: hypercomplex dimension, dividing ``in_channels`` and 64 (default: ``4``).
        in_channels: input channels; the official code feeds RGB plus a fourth channel to
            use ``n = 4``, and ``n = 3`` takes plain RGB (default: ``4``).
        num_classes: outputs of the linear head (default: ``10``).
        widths: planes of the four stages, the first also the stem's; each divisible by
            ``n``. The official "Large" variant uses ``(60, 120, 240, 516)``, divisible by
            both 3 and 4 (default: ``(64, 128, 256, 512)``).

    Shapes:
        input ``(N, in_channels, H, W)``, output ``(N, num_classes)``.
    """

    def __init__(
        self,
        depth: int,
        n: int = 4,
        in_channels: int = 4,
        num_classes: int = 10,
        widths: Sequence[int] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths must be four positive ints, got {widths!r}")
        if depth not in _DEPTHS:
            raise ValueError(f"depth must be one of {sorted(_DEPTHS)}, got {depth!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        block = PHBasicBlock if depth < 50 else PHBottleneck
        self.depth, self.n, self.in_channels = depth, n, in_channels
        self.stem = nn.Sequential(
            PHConv2d(in_channels, widths[0], 3, n=n, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, in_planes = [], widths[0]
        for i, (planes, blocks) in enumerate(zip(widths, _DEPTHS[depth])):
            layers = []
            for j in range(blocks):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(block(in_planes, planes, stride, n))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)  # the official 4x4 average pool on 32x32 input
        self.head = nn.Linear(in_planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PHResNet expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        out = self.pool(self.stages(self.stem(x))).flatten(1)
        return self.head(out)


@register_model("ph_resnet", family="backbone", paper=_PAPER)
def ph_resnet(
    depth: int = 18,
    n: int = 4,
    in_channels: int = 4,
    num_classes: int = 10,
    widths: Sequence[int] = (64, 128, 256, 512),
) -> PHResNet:
    """Build a :class:`PHResNet` of ``depth`` (18, 34, 50, 101, 152) with PHC dimension ``n``."""
    return PHResNet(depth, n=n, in_channels=in_channels, num_classes=num_classes, widths=widths)
