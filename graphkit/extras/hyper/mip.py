r"""Magnitude invariant parametrisation (MIP) of a hypernetwork.

From `"Magnitude Invariant Parametrizations Improve Hypernetwork Learning"
<https://arxiv.org/abs/2304.07645>`_ (Ortiz, Guttag and Dalca, ICLR 2024; official code
JJGO/hyperlight). In a plain hypernetwork the scale of the generated weights follows the
scale of the input :math:`\gamma` (exactly so for a bias-free ReLU MLP, which is positively
homogeneous), which slows and destabilises training. MIP makes two changes:

.. math::
    E(\gamma) = \left[\cos\left(\tfrac{\pi}{2}\gamma\right),
                      \sin\left(\tfrac{\pi}{2}\gamma\right)\right],
    \qquad \lVert E(\gamma) \rVert_2 = \sqrt{d} \ \text{ for every } \gamma \in [0, 1]^d,

    \Theta(\gamma) = \Theta_0 + \Delta\Theta\left(E(\gamma)\right),

an input encoding of constant norm and an additive output: independent learnable parameters
:math:`\Theta_0`, initialised as the target's own initial weights, plus a change predicted by
the hypernetwork, whose output layer starts small (Kaiming normal over its fan-out, i.e.
standard deviation :math:`1/\sqrt{|\Theta|}`). As in the official code, :math:`\Theta_0` is the
bias of the generator's output layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.hyper.base import HyperNetSpec, HyperNetwork

__all__ = ["MIPEncoding", "MIPHyperNetwork", "mip_hypernetwork"]

_PAPER = "Magnitude Invariant Parametrizations Improve Hypernetwork Learning"
_ENCODINGS = ("cos_sin", "z_1mz", None)


class MIPEncoding(nn.Module):
    r"""Encodes :math:`\gamma \in [0, 1]^d` as :math:`2d` features.

    ``"cos_sin"`` gives :math:`[\cos(\pi\gamma/2), \sin(\pi\gamma/2)]` (constant L2 norm
    :math:`\sqrt{d}`, MIP's choice); ``"z_1mz"`` gives :math:`[\gamma, 1 - \gamma]` (constant
    L1 norm :math:`d`); :obj:`None` passes :math:`\gamma` unchanged (the default
    parametrisation, any range).

    Args:
        encode (str, optional): ``"cos_sin"``, ``"z_1mz"`` or :obj:`None`.
            (default: ``"cos_sin"``)

    Shapes:
        - **input:** :math:`(*, d)`
        - **output:** :math:`(*, 2d)`, or :math:`(*, d)` for :obj:`None`
    """

    def __init__(self, encode: str | None = "cos_sin") -> None:
        super().__init__()
        if encode not in _ENCODINGS:
            raise ValueError(f"encode must be one of {_ENCODINGS}, got {encode!r}")
        self.encode = encode

    @property
    def multiplier(self) -> int:
        """Output features per input feature."""
        return 1 if self.encode is None else 2

    def forward(self, gamma: Tensor) -> Tensor:
        if self.encode is None:
            return gamma
        if torch.isnan(gamma).any() or (gamma < 0).any() or (gamma > 1).any():
            raise ValueError(
                f"MIP encodes inputs in [0, 1]; got values in [{gamma.min().item():.4g}, "
                f"{gamma.max().item():.4g}] (rescale them, or use encode=None)"
            )
        if self.encode == "cos_sin":
            angle = gamma * (math.pi / 2)
            return torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)
        return torch.cat([gamma, 1 - gamma], dim=-1)

    def extra_repr(self) -> str:
        return f"encode={self.encode!r}"


class MIPHyperNetwork(HyperNetwork):
    r"""A hypernetwork over inputs :math:`\gamma \in [0, 1]^d` with MIP's encoding and
    additive output (see the module docstring).

    The generator is an MLP (LeakyReLU, hidden layers Kaiming normal over the fan-out with zero
    biases, as in the official code) whose output layer has one unit per target parameter.
    With ``encode=None, residual=False`` it is the default parametrisation the paper compares
    against: raw inputs and an output layer with PyTorch's default initialisation that
    predicts the weights themselves.

    Args:
        target (torch.nn.Module): The target network; its current parameter values
            initialise :math:`\Theta_0`.
        in_dim (int): Size :math:`d` of :math:`\gamma`.
        encode (str, optional): Input encoding, ``"cos_sin"``, ``"z_1mz"`` or :obj:`None`.
            (default: ``"cos_sin"``)
        residual (bool, optional): Predict :math:`\Theta_0 + \Delta\Theta` rather than
            :math:`\Theta`. (default: :obj:`True`)
        hidden (Sequence[int], optional): Hidden sizes of the generator.
            (default: ``(16, 32)``)

    Shapes:
        - **input:** :math:`\gamma` :math:`(d,)`, then the target's inputs
        - **output:** the target's output
    """

    def __init__(
        self,
        target: nn.Module,
        in_dim: int,
        encode: str | None = "cos_sin",
        residual: bool = True,
        hidden: Sequence[int] = (16, 32),
    ) -> None:
        if in_dim <= 0:
            raise ValueError(f"in_dim must be positive, got {in_dim}")
        if not hidden or any(h <= 0 for h in hidden):
            raise ValueError(f"hidden must be one or more positive sizes, got {tuple(hidden)}")
        check_positive(in_dim=in_dim, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        encoder = MIPEncoding(encode)
        n_out = sum(p.numel() for p in target.parameters())
        sizes = [in_dim * encoder.multiplier, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.LeakyReLU()]
        layers.append(nn.Linear(sizes[-1], n_out))
        super().__init__(target, encoder, nn.Sequential(*layers), spec=HyperNetSpec())
        self.in_dim = in_dim
        self.residual = residual
        # Theta_0 starts at the target's own initial weights (a sensible init for the target)
        initial = torch.cat([p.detach().reshape(-1) for p in target.parameters()]).clone()
        self.register_buffer("_initial", initial, persistent=False)
        self.reset_parameters()

    @property
    def output_layer(self) -> nn.Linear:
        return self.generator[-1]

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if not hasattr(self, "_initial"):  # called by the base __init__ before set-up ends
            return
        for layer in self.generator[:-1]:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="leaky_relu")
                nn.init.zeros_(layer.bias)
        out = self.output_layer
        if self.residual:
            nn.init.kaiming_normal_(out.weight, mode="fan_out", nonlinearity="linear")
            with torch.no_grad():
                out.bias.copy_(self._initial.to(out.bias.device, out.bias.dtype))
        else:
            out.reset_parameters()

    def independent_parameters(self) -> dict[str, Tensor]:
        r""":math:`\Theta_0` by target parameter name (views of the output layer's bias)."""
        if not self.residual:
            raise ValueError("independent parameters exist only with residual=True")
        return self._split(self.output_layer.bias)

    def generate(self, z: Tensor) -> dict[str, Tensor]:
        if z.dim() != 1 or z.shape[0] != self.in_dim:
            raise ValueError(f"gamma must have shape ({self.in_dim},), got {tuple(z.shape)}")
        return super().generate(z)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target={self.target.__class__.__name__}, "
            f"in_dim={self.in_dim}, encode={self.encoder.encode!r}, residual={self.residual}, "
            f"num_target_params={self.num_target_params})"
        )


@register_model("mip", family="hypernetwork", paper=_PAPER)
def mip_hypernetwork(
    target: nn.Module | None = None,
    in_dim: int = 1,
    encode: str | None = "cos_sin",
    residual: bool = True,
    hidden: Sequence[int] = (16, 32),
) -> MIPHyperNetwork:
    """A :class:`MIPHyperNetwork`; ``target`` defaults to a ``2 -> 16 -> 1`` ReLU MLP."""
    if target is None:
        target = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    return MIPHyperNetwork(target, in_dim, encode=encode, residual=residual, hidden=hidden)
