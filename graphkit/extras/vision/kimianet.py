"""KimiaNet: a DenseNet-121 trained on histopathology, used as a 1024-d feature extractor.

`Fine-Tuning and Training of DenseNet for Histopathology Image Representation Using TCGA
Diagnostic Slides <https://arxiv.org/abs/2101.07903>`_ (Riasatian et al., Medical Image
Analysis 2021). The topology is DenseNet-121 (`Densely Connected Convolutional Networks
<https://arxiv.org/abs/1608.06993>`_); module names follow ``torchvision.models.densenet121``
so its state dicts load unchanged; the released KimiaNet weights (a Keras file) convert with
:func:`convert_kimianet_keras`. Weights are never downloaded: pass ``pretrained_path`` to a
file you have.
"""

from __future__ import annotations

import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_image
from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model

_PAPER = (
    "Fine-Tuning and Training of DenseNet for Histopathology Image Representation Using "
    "TCGA Diagnostic Slides"
)

#: BatchNorm epsilon of the Keras DenseNet the released KimiaNet weights were trained with.
KERAS_BN_EPS = 1.001e-5


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1×1 (to ``bn_size * growth``) then BN-ReLU-Conv3×3 (to ``growth``)."""

    def __init__(self, in_channels: int, growth: int, bn_size: int, eps: float) -> None:
        super().__init__()
        mid = bn_size * growth
        self.norm1 = nn.BatchNorm2d(in_channels, eps=eps)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(mid, eps=eps)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, growth, 3, padding=1, bias=False)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = torch.cat(features, dim=1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each fed the concatenation of all earlier outputs."""

    def __init__(
        self, num_layers: int, in_channels: int, growth: int, bn_size: int, eps: float
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(in_channels + i * growth, growth, bn_size, eps)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, dim=1)


class _Transition(nn.Sequential):
    """BN-ReLU-Conv1×1 (compression) then 2×2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class KimiaNet(nn.Module):
    r"""KimiaNet: DenseNet-121 features, a global-average-pooled 1024-d representation and a
    linear head over the 30 TCGA primary diagnoses.

    DenseNet-121: a 7×7 stride-2 conv to 64 channels, BN-ReLU, 3×3 stride-2 max-pool, then
    dense blocks of 6, 12, 24, 16 layers with growth rate :math:`k = 32` and bottleneck
    width :math:`4k`, separated by transitions that halve the channels (compression 0.5)
    and the resolution; a final BN. Layer :math:`\ell` of a block computes

    .. math::
        x_\ell = H_\ell([x_0, x_1, \dots, x_{\ell-1}])

    with :math:`H_\ell` = BN-ReLU-Conv1×1-BN-ReLU-Conv3×3. The representation is
    :math:`\mathrm{GAP}(\mathrm{ReLU}(\text{features}(x))) \in \mathbb{R}^{1024}`; the paper
    extracts it from 1000×1000 patches at 20× magnification.

    Args:
        num_classes (int): head outputs; ``0`` for no head (``forward`` returns the
            1024-d features). (default: ``30``)
        pretrained_path (str or os.PathLike, optional): a local file holding a state dict
            (see :meth:`load_pretrained`); never downloaded. (default: ``None``)
        in_channels (int): image channels. (default: ``3``)
        bn_eps (float): BatchNorm epsilon; the Keras value of the released weights.
            (default: ``1.001e-5``)

    Shapes:
        - input: :math:`(B, C_{in}, H, W)` with :math:`H, W \ge 32`
        - output: :math:`(B, \text{num\_classes})`, or :math:`(B, 1024)` without a head.
    """

    growth_rate = 32
    block_config = (6, 12, 24, 16)
    num_init_features = 64
    bn_size = 4

    def __init__(
        self,
        num_classes: int = 30,
        pretrained_path: str | os.PathLike[str] | None = None,
        in_channels: int = 3,
        bn_eps: float = KERAS_BN_EPS,
    ) -> None:
        super().__init__()
        if num_classes < 0 or in_channels <= 0 or not bn_eps > 0:
            raise ValueError(
                "num_classes must be >= 0, in_channels and bn_eps > 0, got "
                f"{num_classes}, {in_channels}, {bn_eps}"
            )
        self.in_channels = in_channels
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(in_channels, self.num_init_features, 7, 2, 3, bias=False),
            norm0=nn.BatchNorm2d(self.num_init_features, eps=bn_eps),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        width = self.num_init_features
        for i, n in enumerate(self.block_config):
            layers[f"denseblock{i + 1}"] = _DenseBlock(
                n, width, self.growth_rate, self.bn_size, bn_eps
            )
            width += n * self.growth_rate
            if i < len(self.block_config) - 1:
                layers[f"transition{i + 1}"] = _Transition(width, width // 2, bn_eps)
                width //= 2
        layers["norm5"] = nn.BatchNorm2d(width, eps=bn_eps)
        self.features = nn.Sequential(layers)
        self.num_features = width
        self.classifier = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()
        if pretrained_path is not None:
            self.load_pretrained(pretrained_path)

    def reset_parameters(self) -> None:
        """torchvision's DenseNet initialisation: Kaiming-normal convs, unit BN, zero bias."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
            elif isinstance(m, nn.Linear):
                m.reset_parameters()
                nn.init.zeros_(m.bias)

    def load_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Load a state dict saved with :func:`torch.save` at ``path`` (a local file).

        Accepted: this model's own state dict; a ``{"state_dict": ...}`` checkpoint; or the
        features alone, with or without the ``features.`` prefix (e.g.
        ``torchvision.models.densenet121().features.state_dict()``), which leaves the head
        as initialised. Every feature tensor must be present with the right shape.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"KimiaNet weights file not found: {path!r} (weights are never downloaded; "
                "pass the path of a state dict saved with torch.save)"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            raise ValueError(
                f"{path!r} is not a state dict saved with torch.save (torch.load failed: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__})"
            ) from err
        if isinstance(state, Mapping) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, Mapping):
            raise ValueError(f"{path!r} does not hold a state dict (got {type(state).__name__})")
        if not any(k.startswith(("features.", "classifier.")) for k in state):
            state = {f"features.{k}": v for k, v in state.items()}
        own = self.state_dict()
        unexpected = sorted(k for k in state if k not in own)
        missing = sorted(k for k in own if k.startswith("features.") and k not in state)
        if unexpected or missing:
            raise ValueError(
                f"state dict in {path!r} does not fit KimiaNet: missing {missing[:3]}"
                f"{' ...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
                f"{' ...' if len(unexpected) > 3 else ''}"
            )
        wrong = [
            f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
            for k, v in state.items()
            if v.shape != own[k].shape
        ]
        if wrong:
            raise ValueError(f"shape mismatch loading {path!r} (file vs model): {wrong[:3]}")
        self.load_state_dict(state, strict=False)

    def forward_features(self, x: Tensor, l2_normalize: bool = False) -> Tensor:
        """The 1024-d representation: GAP of the ReLU of the last feature map."""
        check_image(x, self.in_channels, "KimiaNet")
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"KimiaNet needs H, W >= 32 (five halvings), got {tuple(x.shape)}")
        h = torch.relu(self.features(x)).mean(dim=(2, 3))
        return nn.functional.normalize(h, dim=1) if l2_normalize else h

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


@torch.no_grad()
def kimianet_features(model: KimiaNet, x: Tensor, l2_normalize: bool = False) -> Tensor:
    """Eval-mode 1024-d KimiaNet representations of the patches ``x`` (no gradients); the
    model's train/eval mode is restored afterwards."""
    with eval_mode(model):
        return model.forward_features(x, l2_normalize=l2_normalize)


# Keras DenseNet layer name (``/`` read as ``_``) -> module of ``KimiaNet.features``
_KERAS_LAYERS = (
    (re.compile(r"conv1_conv"), "conv0"),
    (re.compile(r"conv1_bn"), "norm0"),
    (re.compile(r"conv(\d)_block(\d+)_0_bn"), "denseblock{0}.denselayer{1}.norm1"),
    (re.compile(r"conv(\d)_block(\d+)_1_conv"), "denseblock{0}.denselayer{1}.conv1"),
    (re.compile(r"conv(\d)_block(\d+)_1_bn"), "denseblock{0}.denselayer{1}.norm2"),
    (re.compile(r"conv(\d)_block(\d+)_2_conv"), "denseblock{0}.denselayer{1}.conv2"),
    (re.compile(r"pool(\d)_bn"), "transition{0}.norm"),
    (re.compile(r"pool(\d)_conv"), "transition{0}.conv"),
    (re.compile(r"bn"), "norm5"),
)
_KERAS_PARAMS = {
    "kernel": "weight",
    "gamma": "weight",
    "beta": "bias",
    "bias": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def _torch_module(layer: str, head: str | None) -> str | None:
    if head is not None and layer == head:
        return "classifier"
    name = layer.replace("/", "_")
    for pattern, target in _KERAS_LAYERS:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        groups: tuple[Any, ...] = match.groups()
        if groups:  # Keras numbers dense blocks conv2..conv5 and transitions pool2..pool4
            groups = (int(groups[0]) - 1, *groups[1:])
        return "features." + target.format(*groups)
    return None


def keras_densenet121_to_state_dict(
    weights: Mapping[str, Any], head: str | None = None
) -> dict[str, Tensor]:
    """Map the weights of a Keras ``DenseNet121`` to a :class:`KimiaNet` state dict.

    ``weights`` maps Keras weight names (``"conv1/conv/kernel:0"``,
    ``"conv2_block1_0_bn/gamma"``, ...; the ``/``-separated tf.keras 2 names and the
    ``_``-separated Keras 3 names both work) to arrays. Conv kernels go from Keras
    :math:`(k_h, k_w, C_{in}, C_{out})` to torch :math:`(C_{out}, C_{in}, k_h, k_w)`, a dense
    kernel is transposed, BN ``gamma/beta/moving_mean/moving_variance`` become
    ``weight/bias/running_mean/running_var``. ``head`` names a Dense layer to load as the
    classifier. Every other weight must belong to DenseNet-121, and every feature tensor
    must be present.
    """
    state: dict[str, Tensor] = {}
    unknown = []
    for key, value in weights.items():
        layer, _, param = key.rpartition("/")
        param = param.split(":")[0]
        module = _torch_module(layer, head)
        if module is None or param not in _KERAS_PARAMS:
            unknown.append(key)
            continue
        t = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"Keras weight {key!r} holds NaN or infinite values")
        if param == "kernel":
            t = t.permute(3, 2, 0, 1) if t.dim() == 4 else t.t()
        state[f"{module}.{_KERAS_PARAMS[param]}"] = t.contiguous()
    if unknown:
        raise ValueError(
            f"weights not in a Keras DenseNet-121 (pass head= for a classifier): {unknown[:3]}"
            f"{' ...' if len(unknown) > 3 else ''}"
        )
    expected = {
        k for k in KimiaNet(num_classes=0).state_dict() if not k.endswith("num_batches_tracked")
    }
    if head is not None and not any(k.startswith("classifier.") for k in state):
        raise ValueError(f"head={head!r} names no layer of the Keras weights")
    missing = sorted(expected - set(state))
    if missing:
        raise ValueError(
            f"Keras weights lack {len(missing)} DenseNet-121 tensors, e.g. {missing[:3]}"
        )
    return state


def convert_kimianet_keras(
    h5_path: str | os.PathLike[str], head: str | None = None
) -> dict[str, Tensor]:
    """Read a Keras (HDF5, tf.keras 2 format) DenseNet-121 / KimiaNet weights file into a
    :class:`KimiaNet` state dict (see :func:`keras_densenet121_to_state_dict`); save it with
    :func:`torch.save` and pass the file as ``pretrained_path``. Needs ``h5py``."""
    from graphkit.typing import require

    require("h5py")
    import h5py

    path = os.fspath(h5_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Keras weights file not found: {path!r}")
    weights: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path!r} is not a Keras HDF5 weights file (no 'layer_names')")
        for layer in root.attrs["layer_names"]:
            group = root[layer.decode() if isinstance(layer, bytes) else layer]
            for name in group.attrs.get("weight_names", []):
                name = name.decode() if isinstance(name, bytes) else name
                weights[name] = np.asarray(group[name])
    return keras_densenet121_to_state_dict(weights, head=head)


@register_model("kimianet", family="backbone", paper=_PAPER)
def kimianet(**kwargs: Any) -> KimiaNet:
    """KimiaNet (see :class:`KimiaNet`)."""
    return KimiaNet(**kwargs)
