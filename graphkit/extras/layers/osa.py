"""One-Shot Aggregation (OSA) module of VoVNet.

`An Energy and GPU-Computation Efficient Backbone Network for Real-Time Object Detection
<https://arxiv.org/abs/1904.09730>`_ (Lee et al., CVPR-W 2019).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct


class OSAModule(nn.Module):
    r"""One-Shot Aggregation: a chain of 3×3 convolutions whose outputs are all concatenated
    once, at the end, with the module input, then fused by a 1×1 convolution.

    .. math::
        h_0 = x, \quad h_i = \mathrm{CBR}_{3\times3}(h_{i-1}) \; (i = 1..L), \qquad
        y = \mathrm{CBR}_{1\times1}\big([h_0, h_1, \dots, h_L]\big) \; (+\, x)

    where CBR is Conv (no bias)-BatchNorm-ReLU. Unlike a dense block, each intermediate
    feature is aggregated only once, so the input width of every 3×3 conv stays constant.
    ``identity=True`` adds the input to the output, as the official code does for every
    module of a stage but the first (it needs ``in_channels == concat_channels``).

    Args:
        in_channels (int): input channels.
        stage_channels (int): width of each 3×3 conv.
        concat_channels (int): output width of the 1×1 aggregation conv.
        num_layers (int): number :math:`L` of 3×3 convs. (default: ``5``)
        identity (bool): add the input to the output. (default: ``False``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{concat}, H, W)`
    """

    def __init__(
        self,
        in_channels: int,
        stage_channels: int,
        concat_channels: int,
        num_layers: int = 5,
        identity: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("stage_channels", stage_channels),
            ("concat_channels", concat_channels),
            ("num_layers", num_layers),
        ):
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if identity and in_channels != concat_channels:
            raise ValueError(
                f"identity needs in_channels == concat_channels, got {in_channels} and "
                f"{concat_channels}"
            )
        self.in_channels = in_channels
        self.stage_channels = stage_channels
        self.concat_channels = concat_channels
        self.identity = identity
        self.layers = nn.ModuleList(
            ConvNormAct(in_channels if i == 0 else stage_channels, stage_channels, 3)
            for i in range(num_layers)
        )
        self.concat = ConvNormAct(in_channels + num_layers * stage_channels, concat_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()
        self.concat.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f"OSAModule expects (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        features = [x]
        h = x
        for layer in self.layers:
            h = layer(h)
            features.append(h)
        y = self.concat(torch.cat(features, dim=1))
        return y + x if self.identity else y

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, stage={self.stage_channels}, "
            f"concat={self.concat_channels}, layers={len(self.layers)}, "
            f"identity={self.identity})"
        )
