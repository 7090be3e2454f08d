"""Common vision blocks shared by the catalogue's backbones (spec §3.7).

Each block is small and configurable enough for the entries that reuse it: ``ConvNormAct``
(VoVNet, SimpleNet, every CNN stem), ``SqueezeExcite`` and ``MBConv`` (MOAT, EMOv2,
ProxylessNAS, OFA, RevMBConv U-Net, Fast Sparse ConvNets, DASS), ``DropPath``, ``LayerScale``
and the token ``MLP`` (the transformer-style entries).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_image, check_positive

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[[], nn.Module]


def stage_outputs(x: Tensor, stem: nn.Module, stages: nn.ModuleList) -> list[Tensor]:
    """The output of every stage of a ``stem -> stage 1 -> ... -> stage n`` backbone (the
    feature pyramid a detector or a ``features_only`` model reads)."""
    x = stem(x)
    outs = []
    for stage in stages:
        x = stage(x)
        outs.append(x)
    return outs


class ConvNormAct(nn.Module):
    r"""A 2-D convolution followed by an optional normalisation and an optional activation.

    .. math::
        y = \mathrm{act}(\mathrm{norm}(W * x + b))

    Padding defaults to ``dilation * (kernel_size - 1) // 2`` ("same" for stride 1, odd
    kernels). The convolution has no bias when a normalisation follows (the norm's shift
    replaces it) unless ``bias=True`` is asked for.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): square kernel size. (default: ``3``)
        stride (int): stride. (default: ``1``)
        padding (int, optional): zero padding; ``None`` gives "same" padding.
            (default: ``None``)
        groups (int): convolution groups; ``groups=in_channels`` is depthwise. (default: ``1``)
        dilation (int): dilation. (default: ``1``)
        bias (bool, optional): convolution bias; ``None`` means "only without a norm".
            (default: ``None``)
        norm_layer (callable, optional): builds the norm from the channel count, e.g.
            ``functools.partial(nn.BatchNorm2d, momentum=0.05)``; ``None`` for no norm.
            (default: :class:`torch.nn.BatchNorm2d`)
        act_layer (callable, optional): builds the activation; ``None`` for none.
            (default: :class:`torch.nn.ReLU`)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, H', W')` with the usual convolution arithmetic.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        dilation: int = 1,
        bias: bool | None = None,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer | None = nn.ReLU,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            groups=groups,
            dilation=dilation,
        )
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        elif padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        if bias is None:
            bias = norm_layer is None
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.norm = norm_layer(out_channels) if norm_layer is not None else nn.Identity()
        self.act = act_layer() if act_layer is not None else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        if hasattr(self.norm, "reset_parameters"):
            self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        return self.act(self.norm(self.conv(x)))

    def __repr__(self) -> str:
        c = self.conv
        return (
            f"{type(self).__name__}({c.in_channels}, {c.out_channels}, "
            f"kernel_size={c.kernel_size[0]}, stride={c.stride[0]}, groups={c.groups}, "
            f"norm={type(self.norm).__name__}, act={type(self.act).__name__})"
        )


class SqueezeExcite(nn.Module):
    r"""Channel gating from `Squeeze-and-Excitation Networks <https://arxiv.org/abs/1709.01507>`_.

    .. math::
        s = \sigma\big(W_2\,\delta(W_1\,\mathrm{GAP}(x) + b_1) + b_2\big), \qquad
        y = s \odot x

    with :math:`W_1 \in \mathbb{R}^{r \times C}`, :math:`W_2 \in \mathbb{R}^{C \times r}` as
    1×1 convolutions with bias, :math:`\delta` the activation and :math:`\sigma` the gate.

    Args:
        channels (int): channels :math:`C` of the gated map.
        rd_channels (int, optional): reduced width :math:`r`; ``None`` gives
            ``max(1, round(channels * rd_ratio))``. (default: ``None``)
        rd_ratio (float): reduction ratio used when ``rd_channels`` is ``None``.
            (default: ``0.25``)
        act_layer (callable): the inner activation :math:`\delta`. (default: ReLU)
        gate_layer (callable): the gate :math:`\sigma`. (default: Sigmoid)

    Shapes:
        - input: :math:`(B, C, H, W)`; output: the same.
    """

    def __init__(
        self,
        channels: int,
        rd_channels: int | None = None,
        rd_ratio: float = 0.25,
        act_layer: ActLayer = nn.ReLU,
        gate_layer: ActLayer = nn.Sigmoid,
    ) -> None:
        super().__init__()
        if rd_channels is None:
            if not 0.0 < rd_ratio <= 1.0:
                raise ValueError(f"rd_ratio must lie in (0, 1], got {rd_ratio}")
            rd_channels = max(1, round(channels * rd_ratio))
        check_positive(channels=channels, rd_channels=rd_channels)
        self.channels = channels
        self.reduce = nn.Conv2d(channels, rd_channels, 1)
        self.act = act_layer()
        self.expand = nn.Conv2d(rd_channels, channels, 1)
        self.gate_fn = gate_layer()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reduce.reset_parameters()
        self.expand.reset_parameters()

    def gate(self, x: Tensor) -> Tensor:
        """The per-channel gate :math:`s`, shape ``(B, C, 1, 1)``."""
        check_image(x, self.channels, type(self).__name__)
        s = x.mean(dim=(2, 3), keepdim=True)
        return self.gate_fn(self.expand(self.act(self.reduce(s))))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, rd_channels={self.reduce.out_channels})"


class DropPath(nn.Module):
    r"""Stochastic depth (`Deep Networks with Stochastic Depth
    <https://arxiv.org/abs/1603.09382>`_): drops a residual branch per sample.

    In training each sample's input is zeroed with probability :math:`p` and otherwise kept
    and, with ``scale_by_keep``, divided by :math:`1 - p`, so the expectation is the input.
    In evaluation the module is the identity.

    Args:
        p (float): drop probability in :math:`[0, 1)`. (default: ``0.0``)
        scale_by_keep (bool): divide kept samples by :math:`1 - p`. (default: ``True``)

    Shapes:
        - input: :math:`(B, *)`; output: the same.
    """

    def __init__(self, p: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability p must lie in [0, 1), got {p}")
        self.p = float(p)
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if self.scale_by_keep:
            mask = mask / keep
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerScale(nn.Module):
    r"""Learned per-channel scaling of a residual branch (`Going deeper with Image
    Transformers <https://arxiv.org/abs/2103.17239>`_): :math:`y = \gamma \odot x`.

    Args:
        dim (int): number of channels.
        init_value (float): initial value of every :math:`\gamma_c`. (default: ``1e-5``)
        channel_dim (int): the channel axis: ``-1`` for tokens :math:`(B, N, C)`, ``1`` for
            maps :math:`(B, C, H, W)`. (default: ``-1``)

    Shapes:
        - input: any shape whose ``channel_dim`` has size ``dim``; output: the same.
    """

    def __init__(self, dim: int, init_value: float = 1e-5, channel_dim: int = -1) -> None:
        super().__init__()
        check_positive(dim=dim)
        if channel_dim not in (-1, 1):
            raise ValueError(f"channel_dim must be -1 (tokens) or 1 (maps), got {channel_dim}")
        self.dim = dim
        self.init_value = float(init_value)
        self.channel_dim = channel_dim
        self.gamma = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.gamma, self.init_value)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.size(self.channel_dim) != self.dim:
            raise ValueError(
                f"LayerScale expects size {self.dim} on dim {self.channel_dim}, "
                f"got shape {tuple(x.shape)}"
            )
        if self.channel_dim == -1:
            return x * self.gamma
        return x * self.gamma.view(1, -1, *([1] * (x.dim() - 2)))

    def extra_repr(self) -> str:
        return f"{self.dim}, init_value={self.init_value}, channel_dim={self.channel_dim}"


class MLP(nn.Module):
    r"""The transformer's token MLP: :math:`y = W_2\,\mathrm{drop}(\phi(W_1 x + b_1)) + b_2`,
    followed by dropout, applied to the last dimension.

    Args:
        in_features (int): input width.
        hidden_features (int, optional): hidden width; ``None`` gives ``4 * in_features``.
            (default: ``None``)
        out_features (int, optional): output width; ``None`` gives ``in_features``.
            (default: ``None``)
        act_layer (callable): the activation :math:`\phi`. (default: GELU)
        drop (float): dropout after the activation and after the output. (default: ``0.0``)
        bias (bool): biases of both linear maps. (default: ``True``)

    Shapes:
        - input: :math:`(*, C_{in})`; output: :math:`(*, C_{out})`.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: ActLayer = nn.GELU,
        drop: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden_features = 4 * in_features if hidden_features is None else hidden_features
        out_features = in_features if out_features is None else out_features
        check_positive(
            in_features=in_features, hidden_features=hidden_features, out_features=out_features
        )
        check_fraction("drop", drop)
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.fc1.reset_parameters()
        self.fc2.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.size(-1) != self.fc1.in_features:
            raise ValueError(
                f"MLP expects last dimension {self.fc1.in_features}, got shape {tuple(x.shape)}"
            )
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class MBConv(nn.Module):
    r"""Inverted residual block of `MobileNetV2 <https://arxiv.org/abs/1801.04381>`_, with the
    optional squeeze-excitation of `EfficientNet <https://arxiv.org/abs/1905.11946>`_.

    .. math::
        h = \mathrm{SE}\big(\mathrm{DW}_{k,s}(\mathrm{PW}_{expand}(x))\big), \qquad
        y = \mathrm{PW}_{project}(h) \;\; (+\, x \text{ if } s = 1 \text{ and } C_{in} = C_{out})

    The 1×1 expansion (skipped when ``expand_ratio == 1``) and the depthwise
    :math:`k \times k` convolution are Conv-BN-act; the 1×1 projection is Conv-BN with no
    activation (a linear bottleneck). The residual, with optional :class:`DropPath` on the
    branch, exists only when the stride is 1 and the channel counts agree.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        expand_ratio (float): hidden width = ``round(in_channels * expand_ratio)``; the
            expansion conv exists only when the hidden width differs from ``in_channels``.
            (default: ``4.0``)
        kernel_size (int): odd depthwise kernel size. (default: ``3``)
        stride (int): depthwise stride, 1 or 2. (default: ``1``)
        se_ratio (float): squeeze-excitation width as a share of ``in_channels`` (the
            EfficientNet convention); ``0`` for no SE. (default: ``0.0``)
        act_layer (callable): activation of the expansion, depthwise conv and SE.
            (default: SiLU)
        norm_layer (callable): normalisation. (default: BatchNorm2d)
        drop_path (float): stochastic-depth probability of the residual branch.
            (default: ``0.0``)
        mid_channels (int, optional): overrides the hidden width. (default: ``None``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \lceil H/s \rceil, \lceil W/s \rceil)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: float = 4.0,
        kernel_size: int = 3,
        stride: int = 1,
        se_ratio: float = 0.0,
        act_layer: ActLayer = nn.SiLU,
        norm_layer: NormLayer = nn.BatchNorm2d,
        drop_path: float = 0.0,
        mid_channels: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels)
        if stride not in (1, 2):
            raise ValueError(f"MBConv stride must be 1 or 2, got {stride}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if expand_ratio < 1.0:
            raise ValueError(f"expand_ratio must be >= 1, got {expand_ratio}")
        if not 0.0 <= se_ratio <= 1.0:
            raise ValueError(f"se_ratio must lie in [0, 1], got {se_ratio}")
        if mid_channels is None:
            mid_channels = round(in_channels * expand_ratio)
        check_positive(mid_channels=mid_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.has_residual = stride == 1 and in_channels == out_channels
        if drop_path and not self.has_residual:
            raise ValueError("drop_path needs a residual: stride 1 and in_channels == out_channels")
        self.expand = (
            ConvNormAct(in_channels, mid_channels, 1, norm_layer=norm_layer, act_layer=act_layer)
            if mid_channels != in_channels
            else nn.Identity()
        )
        self.depthwise = ConvNormAct(
            mid_channels,
            mid_channels,
            kernel_size,
            stride=stride,
            groups=mid_channels,
            norm_layer=norm_layer,
            act_layer=act_layer,
        )
        self.se = (
            SqueezeExcite(
                mid_channels, rd_channels=max(1, round(in_channels * se_ratio)), act_layer=act_layer
            )
            if se_ratio > 0
            else nn.Identity()
        )
        self.project = ConvNormAct(
            mid_channels, out_channels, 1, norm_layer=norm_layer, act_layer=None
        )
        self.drop_path = DropPath(drop_path) if self.has_residual else nn.Identity()

    def reset_parameters(self) -> None:
        for m in (self.expand, self.depthwise, self.se, self.project):
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        y = self.project(self.se(self.depthwise(self.expand(x))))
        if self.has_residual:
            y = x + self.drop_path(y)
        return y

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"mid={self.depthwise.out_channels}, "
            f"kernel_size={self.depthwise.conv.kernel_size[0]}, stride={self.stride}, "
            f"se={not isinstance(self.se, nn.Identity)}, residual={self.has_residual})"
        )
