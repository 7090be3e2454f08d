"""The supernet protocol of weight-sharing NAS, and a chain supernet that follows it.

A supernet holds the weights of every architecture of a :class:`~.space.SearchSpace`.
``set_active(cfg)`` makes it compute the architecture ``cfg``; ``extract(cfg)`` returns that
architecture as a standalone module whose output equals the supernet's under ``cfg``.
Once-for-All, ProxylessNAS, BossNAS and DyNAS-T all drive their supernets through these calls,
so searchers and predictors work with any of them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from graphkit.extras.nas.space import Choice, SearchSpace


@runtime_checkable
class Supernet(Protocol):
    """What a weight-sharing supernet offers (checked with ``isinstance(net, Supernet)``).

    Attributes:
        space: the :class:`~.space.SearchSpace` of its architectures.
    """

    space: SearchSpace

    def set_active(self, cfg: Mapping[str, Any]) -> None:
        """Compute the architecture ``cfg`` from now on (raises on a cfg outside ``space``)."""
        ...

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the active architecture."""
        ...

    def extract(self, cfg: Mapping[str, Any]) -> nn.Module:
        """A standalone copy of architecture ``cfg``, equal to the supernet under ``cfg``."""
        ...


class ChainSupernet(nn.Module):
    r"""A single-path supernet: a chain of layers, each picking one of its candidate ops.

    The architecture is one candidate per layer, so the space has
    :math:`\prod_l K_l` configurations; ``cfg = {"layer0": "conv3", "layer1": "skip", ...}``.
    Only the active candidate of each layer runs (one-shot, single-path weight sharing, as in
    the layer-wise spaces of ProxylessNAS and OFA); a layer given a single module is fixed and
    has no choice.

    Args:
        layers (Sequence[Mapping[str, nn.Module] | nn.Module]): per layer, the named candidates
            (mapping input to outputs of one shape) or one fixed module.
        name (str): the name of the search space (default: ``"chain"``).

    Shapes:
        - **input:** what the first layer takes
        - **output:** what the last active layer gives
    """

    def __init__(
        self, layers: Sequence[Mapping[str, nn.Module] | nn.Module], name: str = "chain"
    ) -> None:
        super().__init__()
        if not layers:
            raise ValueError("a chain supernet needs at least one layer")
        self.layers = nn.ModuleList()
        choices: list[Choice] = []
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Module):
                layer = {"fixed": layer}
            if not isinstance(layer, Mapping) or not layer:
                raise ValueError(f"layer {i} must be a module or a non-empty mapping of modules")
            self.layers.append(nn.ModuleDict(dict(layer)))
            if len(layer) > 1:
                choices.append(Choice(f"layer{i}", tuple(layer)))
        self.space = SearchSpace(name, choices)
        self.active: list[str] = [next(iter(layer)) for layer in self.layers]

    def _resolve(self, cfg: Mapping[str, Any]) -> list[str]:
        self.space.validate(cfg)
        return [
            cfg[f"layer{i}"] if len(layer) > 1 else next(iter(layer))
            for i, layer in enumerate(self.layers)
        ]

    def set_active(self, cfg: Mapping[str, Any]) -> None:
        """Run the candidates named in ``cfg`` from now on."""
        self.active = self._resolve(cfg)

    def forward(self, x: Tensor) -> Tensor:
        for layer, name in zip(self.layers, self.active):
            x = layer[name](x)
        return x

    def extract(self, cfg: Mapping[str, Any]) -> nn.Sequential:
        """An :class:`~torch.nn.Sequential` of copies of the candidates ``cfg`` names."""
        names = self._resolve(cfg)
        return nn.Sequential(
            *(copy.deepcopy(layer[name]) for layer, name in zip(self.layers, names))
        )

    def extra_repr(self) -> str:
        return f"layers={len(self.layers)}, size={self.space.size()}"
