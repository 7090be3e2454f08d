"""SimpleNet: a plain 13-layer stack of 3×3 Conv-BN-ReLU, max-pools and one classifier.

`Lets Keep it simple, Using simple architectures to outperform deeper and more complex
architectures <https://arxiv.org/abs/1608.06037>`_ (Hasanpour et al., 2016). Layouts, stride
modes and layer order follow the official PyTorch code (Coderx7/SimpleNet_Pytorch), so its
released state dicts have the same keys and shapes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct
from graphkit.extras._core.checks import check_image, check_min_size, min_input_size
from graphkit.extras._core.registry import register_model

_PAPER = (
    "Lets Keep it simple, Using simple architectures to outperform deeper and more complex "
    "architectures"
)


@dataclass(frozen=True)
class _Layer:
    """One entry of a layout: a conv of ``width`` (``None``: a 2×2 max-pool)."""

    width: int | None
    kernel: int = 3
    dropout_slot: bool = True  # the official code puts no dropout after a conv before a pool


def _c(width: int, kernel: int = 3, dropout_slot: bool = True) -> _Layer:
    return _Layer(width, kernel, dropout_slot)


_P = _Layer(None)


#: The official layouts. ``imagenet_5m`` is the paper's ImageNet SimpleNetV1 (5.7M), and
#: ``imagenet_9m`` its wider variant.
# fmt: off
LAYOUTS: dict[str, tuple[_Layer, ...]] = {
    "cifar_310k": (
        _c(64), _c(32), _c(32), _c(32, dropout_slot=False), _P,
        _c(32), _c(32), _c(64, dropout_slot=False), _P,
        _c(64), _c(64, dropout_slot=False), _P,
        _c(128), _c(256, 1), _c(64, 1, dropout_slot=False), _P,
        _c(64, dropout_slot=False),
    ),
    "cifar_460k": (
        _c(32), _c(32), _c(32), _c(64, dropout_slot=False), _P,
        _c(64), _c(64), _c(64, dropout_slot=False), _P,
        _c(64), _c(64, dropout_slot=False), _P,
        _c(96), _c(96, 1), _c(96, 1, dropout_slot=False), _P,
        _c(100, dropout_slot=False),
    ),
    "cifar_5m": (
        _c(64), _c(128), _c(128), _c(128, dropout_slot=False), _P,
        _c(128), _c(128), _c(256, dropout_slot=False), _P,
        _c(256), _c(256, dropout_slot=False), _P,
        _c(512), _c(2048, 1), _c(256, 1, dropout_slot=False), _P,
        _c(256, dropout_slot=False),
    ),
    "imagenet_5m": (
        _c(64), _c(128), _c(128), _c(128), _c(128), _c(128), _P,
        _c(256), _c(256), _c(256), _c(512), _P,
        _c(2048, 1), _c(256, 1), _c(256),
    ),
    "imagenet_9m": (
        _c(128), _c(192), _c(192), _c(192), _c(192), _c(192), _P,
        _c(320), _c(320), _c(320), _c(640), _P,
        _c(2560, 1), _c(320, 1), _c(320),
    ),
}
# fmt: on

#: Stride "modes" of the official code: layer index -> stride, overriding the default (1 for
#: convs, 2 for pools). Mode 0 (CIFAR) changes nothing; larger modes downsample 224² inputs
#: later, and cost more.
STRIDE_MODES: dict[int, dict[int, int]] = {
    0: {},
    1: {0: 2, 1: 2, 2: 2},
    2: {0: 2, 1: 2, 2: 1, 3: 2},
    3: {0: 2, 1: 2, 2: 1, 3: 1, 4: 2},
    4: {0: 2, 1: 1, 2: 2, 3: 1, 4: 2, 5: 1},
}


class SimpleNet(nn.Module):
    r"""SimpleNet: Conv(bias)-BN-ReLU layers and 2×2 max-pools, global max-pooling, one FC.

    Every conv has bias, padding 1 (the 1×1 ones too, as in the official code, which widens
    the map by two pixels) and BatchNorm with momentum 0.05; conv weights are Xavier-uniform
    with the ReLU gain. Layouts (``k1`` a 1×1 conv, ``P`` a max-pool)::

        cifar_5m    64,128,128,128,P,128,128,256,P,256,256,P,512,2048k1,256k1,P,256
        cifar_310k  64,32,32,32,P,32,32,64,P,64,64,P,128,256k1,64k1,P,64
        cifar_460k  32,32,32,64,P,64,64,64,P,64,64,P,96,96k1,96k1,P,100
        imagenet_5m 64,128,128,128,128,128,P,256,256,256,512,P,2048k1,256k1,256
        imagenet_9m 128,192,192,192,192,192,P,320,320,320,640,P,2560k1,320k1,320

    A :class:`~torch.nn.Dropout2d` follows every pool and every conv except those right
    before a pool in the CIFAR layouts (the official module order, so official state dicts
    load); its rate is 0 unless ``drop_rates`` sets it.

    Args:
        variant (str): one of :data:`LAYOUTS`. (default: ``"cifar_5m"``)
        num_classes (int): classifier outputs. (default: ``10``)
        in_channels (int): image channels. (default: ``3``)
        scale (float): width multiplier; each width becomes ``round(width * scale)``
            (the official 1.5M and 3M ImageNet models use 0.5 and 0.75). (default: ``1.0``)
        mode (int, optional): stride mode, a key of :data:`STRIDE_MODES`; ``None`` gives 0
            for CIFAR layouts and 2 for ImageNet ones. (default: ``None``)
        drop_rates (dict, optional): ``{layer index: rate}`` for the dropout after that
            layer (pools count as layers). (default: ``None``)
        head_dropout (float): dropout on the pooled features. (default: ``0.0``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, \text{num\_classes})`
    """

    def __init__(
        self,
        variant: str = "cifar_5m",
        num_classes: int = 10,
        in_channels: int = 3,
        scale: float = 1.0,
        mode: int | None = None,
        drop_rates: dict[int, float] | None = None,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if variant not in LAYOUTS:
            raise ValueError(
                f"unknown SimpleNet variant {variant!r}; choose one of {list(LAYOUTS)}"
            )
        if mode is None:
            mode = 0 if variant.startswith("cifar") else 2
        if mode not in STRIDE_MODES:
            raise ValueError(f"stride mode must be one of {list(STRIDE_MODES)}, got {mode}")
        if num_classes <= 0 or in_channels <= 0 or not scale > 0:
            raise ValueError(
                "num_classes, in_channels and scale must be positive, got "
                f"{num_classes}, {in_channels}, {scale}"
            )
        layout = LAYOUTS[variant]
        drop_rates = dict(drop_rates or {})
        bad = {i: p for i, p in drop_rates.items() if not 0 <= i < len(layout) or not 0 <= p < 1}
        if bad:
            raise ValueError(
                f"drop_rates needs layer indices in [0, {len(layout)}) and rates in [0, 1), "
                f"got {bad}"
            )
        if not 0.0 <= head_dropout < 1.0:
            raise ValueError(f"head_dropout must lie in [0, 1), got {head_dropout}")
        self.variant = variant
        self.mode = mode
        self.in_channels = in_channels
        norm = functools.partial(nn.BatchNorm2d, eps=1e-5, momentum=0.05)
        strides = STRIDE_MODES[mode]
        layers: list[nn.Module] = []
        width = in_channels
        for idx, layer in enumerate(layout):
            stride = strides.get(idx, 2 if layer.width is None else 1)
            rate = float(drop_rates.get(idx, 0.0))
            if layer.width is None:
                layers += [nn.MaxPool2d(2, stride=stride), nn.Dropout2d(rate)]
                continue
            out = round(layer.width * scale)
            block = ConvNormAct(
                width, out, layer.kernel, stride=stride, padding=1, bias=True, norm_layer=norm
            )
            # unpack into the flat official order: conv, bn, relu[, dropout]
            layers += [block.conv, block.norm, block.act]
            if layer.dropout_slot:
                layers.append(nn.Dropout2d(rate))
            width = out
        self.features = nn.Sequential(*layers)
        self.min_size = min_input_size(self.features)
        self.head_dropout = nn.Dropout(head_dropout)
        self.classifier = nn.Linear(width, num_classes)
        self.num_features = width
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: Xavier-uniform convs (ReLU gain), PyTorch defaults."""
        gain = nn.init.calculate_gain("relu")
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
                nn.init.xavier_uniform_(m.weight, gain=gain)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
        self.classifier.reset_parameters()

    def forward_features(self, x: Tensor) -> Tensor:
        """Globally max-pooled features, shape ``(B, num_features)``."""
        check_image(x, self.in_channels, "SimpleNet")
        check_min_size(x, self.min_size, f"SimpleNet {self.variant} (stride mode {self.mode})")
        return torch.amax(self.features(x), dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.head_dropout(self.forward_features(x)))


def _builder(variant: str, num_classes: int) -> Any:
    def build(**kwargs: Any) -> SimpleNet:
        kwargs.setdefault("num_classes", num_classes)
        return SimpleNet(variant, **kwargs)

    build.__name__ = f"simplenet_{variant}"
    build.__doc__ = f"SimpleNet ``{variant}`` (see :class:`SimpleNet`)."
    return register_model(f"simplenet_{variant}", family="backbone", paper=_PAPER)(build)


simplenet_cifar_5m = _builder("cifar_5m", 10)
simplenet_cifar_310k = _builder("cifar_310k", 10)
simplenet_cifar_460k = _builder("cifar_460k", 10)
simplenet_imagenet_5m = _builder("imagenet_5m", 1000)
simplenet_imagenet_9m = _builder("imagenet_9m", 1000)
