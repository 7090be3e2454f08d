"""AdvMoE: a CNN whose convolution channels are routed experts, trained robustly by alternation.

Paper: `Robust Mixture-of-Expert Training for Convolutional Neural Networks
<https://arxiv.org/abs/2308.10110>`_ (Zhang et al., ICCV 2023; official code:
OPTML-Group/Robust-MoE-CNN).

Each routed convolution splits its output channels into :math:`E` groups (the experts); a
per-layer :class:`~graphkit.extras.moe.router.Router` looks at the pooled layer input and keeps
:math:`k` groups per sample. Only the kept groups are computed, so a routed layer costs
:math:`k/E` of its dense multiply-accumulates. AdvMoE trains routers and experts as a bi-level
problem: each step first updates the routers, then the experts, each on PGD examples made
against the current model, where vanilla adversarial training updates everything jointly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import ConvNormAct
from graphkit.extras._core.checks import check_min_size, check_positive, min_input_size
from graphkit.extras._core.registry import register_model
from graphkit.extras.moe.router import Router, RouterAux
from graphkit.extras.training.adversarial import pgd_attack

PAPER = "Robust Mixture-of-Expert Training for Convolutional Neural Networks"

#: VGG layer lists (CIFAR style, "M" = 2x2 max-pool). The first entry is the dense stem.
BACKBONES: dict[str, tuple[int | str, ...]] = {
    "tiny": (16, "M", 32, "M", 64),
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (
        64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
    ),
}  # fmt: skip


class MoEConv2d(nn.Module):
    r"""A convolution + BatchNorm + ReLU whose output channels form :math:`E` routed experts.

    .. math::
        (w, e) = \mathrm{TopK}_k\bigl(\mathrm{softmax}(W_r\, \mathrm{GAP}(x))\bigr), \qquad
        y_{g} = \begin{cases} k\, w_g\, \mathrm{ReLU}(\mathrm{BN}(W_g * x)) & g \in e \\
        0 & \text{otherwise} \end{cases}

    for channel group :math:`g` with weights :math:`W_g` (``out_channels / E`` filters). The
    factor :math:`k` keeps the scale of a balanced routing (:math:`w_g = 1/k`) at one, and the
    router weights carry the gradient to the router. Only the :math:`k` selected groups are
    convolved (one grouped convolution over the batch), so the layer costs :math:`k/E` of the
    dense convolution plus the router's ``in_channels * E`` MACs per sample. BatchNorm sees the
    skipped groups as zeros, as a dense masked layer would.

    Args:
        in_channels: input channels.
        out_channels: output channels (a multiple of ``experts``).
        experts: number of channel groups :math:`E` (default: 4).
        k: groups kept per sample (default: 2).
        kernel_size: square kernel (default: 3, "same" padding).
        stride: stride (default: 1).

    Shapes:
        input ``(B, in_channels, H, W)`` -> ``(B, out_channels, H', W')``; :attr:`last_indices`
        ``(B, k)`` and :attr:`last_aux` hold the latest routing.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        experts: int = 4,
        k: int = 2,
        kernel_size: int = 3,
        stride: int = 1,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            experts=experts,
            k=k,
            kernel_size=kernel_size,
            stride=stride,
        )
        if out_channels % experts:
            raise ValueError(f"experts={experts} must divide out_channels={out_channels}")
        if k > experts:
            raise ValueError(f"k must lie in [1, experts={experts}], got {k}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.experts, self.k, self.group = experts, k, out_channels // experts
        self.stride, self.padding = stride, (kernel_size - 1) // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.norm = nn.BatchNorm2d(out_channels)
        self.router = Router(in_channels, experts, gate="topk", k=k)
        self.last_indices: Tensor | None = None
        self.last_aux: RouterAux | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.norm.reset_parameters()
        self.router.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        b = x.shape[0]
        weights, indices, aux = self.router(x.mean(dim=(2, 3)))
        self.last_indices, self.last_aux = indices, aux
        # the selected filters of every sample, run as one grouped convolution over the batch
        w = self.weight.view(self.experts, self.group, *self.weight.shape[1:])[indices]
        w = w.reshape(b * self.k * self.group, *self.weight.shape[1:])
        flat = x.reshape(1, b * self.in_channels, *x.shape[2:])
        y = F.conv2d(flat, w, stride=self.stride, padding=self.padding, groups=b)
        y = y.view(b, self.k, self.group, *y.shape[2:])
        full = y.new_zeros(b, self.experts, self.group, *y.shape[3:])
        full = full.index_put((torch.arange(b, device=x.device)[:, None], indices), y)
        out = F.relu(self.norm(full.view(b, self.out_channels, *y.shape[3:])))
        gate = y.new_zeros(b, self.experts).scatter(1, indices, self.k * weights)
        gate = gate.repeat_interleave(self.group, dim=1)
        return out * gate[:, :, None, None]

    @torch.no_grad()
    def active_mask(self) -> Tensor:
        """Boolean ``(B, E)``: the groups the latest forward pass computed."""
        if self.last_indices is None:
            raise RuntimeError("no forward pass has been run yet")
        b = self.last_indices.shape[0]
        mask = torch.zeros(b, self.experts, dtype=torch.bool, device=self.last_indices.device)
        return mask.scatter(1, self.last_indices, True)

    def extra_repr(self) -> str:
        ks = self.weight.shape[-1]
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={ks}, stride={self.stride}, "
            f"experts={self.experts}, k={self.k}"
        )


class MoECNN(nn.Module):
    r"""A VGG-style classifier whose convolutions (after a dense stem) are :class:`MoEConv2d`.

    The layer list follows the CIFAR VGG configurations (``"M"`` a 2x2 max-pool); its first
    convolution stays dense (routing raw pixels buys little), every later one is routed. A
    global average pool and a linear layer give the logits. The paper also routes ResNet-18 /
    WRN / DenseNet; the routed layer is the same.

    Args:
        backbone: a name of :data:`BACKBONES` (``"tiny"``, ``"vgg11"``, ``"vgg16"``) or a
            layer list (default: ``"vgg16"``).
        experts: channel groups per routed layer :math:`E` (default: 4).
        k: groups kept per sample (default: 2).
        in_channels: image channels (default: 3).
        num_classes: classes (default: 10).

    Shapes:
        input ``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``.
    """

    def __init__(
        self,
        backbone: str | Sequence[int | str] = "vgg16",
        experts: int = 4,
        k: int = 2,
        in_channels: int = 3,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        check_positive(experts=experts, k=k, in_channels=in_channels, num_classes=num_classes)
        if isinstance(backbone, str):
            if backbone not in BACKBONES:
                raise ValueError(f"unknown backbone {backbone!r}; choose one of {list(BACKBONES)}")
            backbone = BACKBONES[backbone]
        cfg = list(backbone)
        if not cfg or not isinstance(cfg[0], int):
            raise ValueError(f"backbone must start with a convolution width, got {cfg[:1]}")
        self.in_channels = in_channels
        layers: list[nn.Module] = [ConvNormAct(in_channels, cfg[0])]
        width = cfg[0]
        for item in cfg[1:]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
                layers.append(MoEConv2d(width, item, experts, k))
                width = item
            else:
                raise ValueError(f"backbone entries are positive widths or 'M', got {item!r}")
        self.features = nn.Sequential(*layers)
        self.min_size = min_input_size(self.features.modules())
        self.head = nn.Linear(width, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.features:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.head.reset_parameters()

    def moe_layers(self) -> list[MoEConv2d]:
        return [m for m in self.features if isinstance(m, MoEConv2d)]

    def router_parameters(self) -> Iterator[nn.Parameter]:
        """The routers' parameters (AdvMoE's lower level)."""
        for layer in self.moe_layers():
            yield from layer.router.parameters()

    def expert_parameters(self) -> Iterator[nn.Parameter]:
        """Every other parameter: filters, norms, stem and head (AdvMoE's upper level)."""
        routers = {id(p) for p in self.router_parameters()}
        return (p for p in self.parameters() if id(p) not in routers)

    def balance_loss(self) -> Tensor:
        """Mean Switch load-balancing term of the latest pass over the routed layers."""
        terms = [m.last_aux.balance for m in self.moe_layers() if m.last_aux is not None]
        if not terms:
            raise RuntimeError("no forward pass has been run yet")
        return torch.stack(terms).mean()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        check_min_size(x, self.min_size, "MoECNN")
        return self.head(self.features(x).mean(dim=(2, 3)))


class AdvMoETrainer:
    r"""Robust training of a :class:`MoECNN`: AdvMoE's router/expert alternation or joint AT.

    ``mode="advmoe"`` runs, per batch, the two levels of the paper's bi-level problem:

    .. math::
        \phi \leftarrow \phi - \eta_\phi \nabla_\phi\, \ell(\theta, \phi; x + \delta(\theta,\phi)),
        \qquad
        \theta \leftarrow \theta - \eta_\theta \nabla_\theta\,
        \ell(\theta, \phi; x + \delta(\theta,\phi))

    with router parameters :math:`\phi`, expert (all other) parameters :math:`\theta`, and a
    fresh PGD perturbation :math:`\delta` against the current model before each update.
    ``mode="joint"`` is vanilla adversarial training (Madry et al.): one PGD perturbation and
    one update of all parameters, the paper's baseline.

    Args:
        model: the :class:`MoECNN` (or any module with ``router_parameters()`` and
            ``expert_parameters()``).
        eps: :math:`\ell_\infty` radius (default: 8/255).
        alpha: PGD step (default: 2/255).
        steps: PGD steps per attack (default: 10).
        mode: ``"advmoe"`` or ``"joint"`` (default: ``"advmoe"``).
        lr_router: SGD learning rate of the routers (default: 0.01).
        lr_experts: SGD learning rate of the experts (default: 0.01).
        momentum: SGD momentum (default: 0.9).
        weight_decay: SGD weight decay (default: 5e-4).
        balance_coef: weight of the load-balancing term in the router loss (default: 0).
        clamp: the inputs' valid range for the attack, or ``None`` (default: ``(0, 1)``).
    """

    MODES = ("advmoe", "joint")

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        mode: str = "advmoe",
        lr_router: float = 0.01,
        lr_experts: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        balance_coef: float = 0.0,
        clamp: tuple[float, float] | None = (0.0, 1.0),
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {self.MODES}")
        for name, value in (("lr_router", lr_router), ("lr_experts", lr_experts)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if balance_coef < 0:
            raise ValueError(f"balance_coef must be >= 0, got {balance_coef}")
        for name, value in (("eps", eps), ("alpha", alpha)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if isinstance(steps, bool) or int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        if not (hasattr(model, "router_parameters") and hasattr(model, "expert_parameters")):
            raise TypeError(
                f"model must have router_parameters() and expert_parameters() (a MoECNN), got "
                f"{type(model).__name__}"
            )
        router = list(model.router_parameters())
        if not router:
            raise ValueError("the model has no router parameters to train")
        self.model, self.mode = model, mode
        self.eps, self.alpha, self.steps = eps, alpha, steps
        self.balance_coef = balance_coef
        self.clamp = clamp  # the inputs' valid range for the attack (pgd_attack's clamp)
        sgd: dict[str, Any] = {"momentum": momentum, "weight_decay": weight_decay}
        self.opt_router = torch.optim.SGD(router, lr=lr_router, **sgd)
        self.opt_experts = torch.optim.SGD(list(model.expert_parameters()), lr=lr_experts, **sgd)

    def _attack(self, x: Tensor, y: Tensor) -> Tensor:
        return pgd_attack(self.model, x, y, self.eps, self.alpha, self.steps, clamp=self.clamp)

    def _loss(self, x: Tensor, y: Tensor, with_balance: bool) -> Tensor:
        loss = F.cross_entropy(self.model(x), y)
        if with_balance and self.balance_coef:
            loss = loss + self.balance_coef * self.model.balance_loss()
        return loss

    def step(self, x: Tensor, y: Tensor) -> dict[str, float]:
        """One training step on a batch; returns the adversarial losses it minimised."""
        self.model.train()
        if self.mode == "joint":
            loss = self._loss(self._attack(x, y), y, with_balance=True)
            self.opt_router.zero_grad(set_to_none=True)
            self.opt_experts.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_router.step()
            self.opt_experts.step()
            return {"loss": loss.item()}
        # lower level: routers, on PGD examples against the current model
        loss_r = self._loss(self._attack(x, y), y, with_balance=True)
        self.opt_router.zero_grad(set_to_none=True)
        loss_r.backward()
        self.opt_router.step()
        # upper level: experts, on fresh PGD examples against the updated routing
        loss_e = self._loss(self._attack(x, y), y, with_balance=False)
        self.opt_experts.zero_grad(set_to_none=True)
        loss_e.backward()
        self.opt_experts.step()
        return {"loss_router": loss_r.item(), "loss_experts": loss_e.item()}

    def fit(
        self,
        x: Tensor,
        y: Tensor,
        epochs: int,
        batch_size: int = 64,
        generator: torch.Generator | None = None,
    ) -> list[dict[str, float]]:
        """Shuffled mini-batch training over ``(x, y)`` for ``epochs``; returns step logs."""
        check_positive(epochs=epochs, batch_size=batch_size)
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"x holds no samples, shape {tuple(x.shape)}")
        if y.shape != x.shape[:1]:
            raise ValueError(f"y must be ({x.shape[0]},) labels, one per sample of x, got shape "
                             f"{tuple(y.shape)}")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(f"y must hold integer class labels, got {y.dtype}")
        head = getattr(self.model, "head", None)
        num_classes = head.out_features if isinstance(head, nn.Linear) else None
        low, high = int(y.min()), int(y.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            bad = low if low < 0 else high
            raise ValueError(f"y holds label {bad}, out of range for num_classes={num_classes}")
        logs = []
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=generator).to(x.device)
            for i in range(0, x.shape[0], batch_size):
                idx = order[i : i + batch_size]
                logs.append(self.step(x[idx], y[idx]))
        return logs


@register_model("advmoe", family="moe", paper=PAPER)
def advmoe(backbone: str | Sequence[int | str] = "vgg16", **kwargs: Any) -> MoECNN:
    """The MoE-CNN of AdvMoE on a VGG layer list (see :class:`MoECNN`)."""
    return MoECNN(backbone, **kwargs)
