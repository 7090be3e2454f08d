r"""Hypernetworks: a network that generates the parameters of a target network.

The base API of the `"A Brief Review of Hypernetworks in Deep Learning"
<https://arxiv.org/abs/2306.06955>`_ review (Chauhan et al., 2023): a hypernetwork
:math:`H_\phi` maps a conditioning input :math:`z` (a task embedding, a data sample or noise)
to the parameters of a target network :math:`F`,

.. math::
    \Theta = H_\phi(z), \qquad \hat{y} = F(x; \Theta),

and only :math:`\phi` is learned: gradients of the target's loss flow through :math:`\Theta`
into the hypernetwork. :class:`HyperNetSpec` records a design along the review's five criteria
(input kind, output strategy, input and output variability, architecture).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model

__all__ = [
    "HyperArchitecture",
    "HyperInput",
    "HyperNetSpec",
    "HyperNetwork",
    "HyperOutput",
    "Variability",
    "mlp_hypernetwork",
]

_REVIEW = "A Brief Review of Hypernetworks in Deep Learning"


class HyperInput(Enum):
    """Criterion 1, what conditions the hypernetwork."""

    TASK = "task-conditioned"
    DATA = "data-conditioned"
    NOISE = "noise-conditioned"


class HyperOutput(Enum):
    """Criterion 2, how the target's parameters are produced."""

    ALL = "all at once"
    MULTIPLE = "multiple heads"
    CHUNK = "chunk-wise"
    COMPONENT = "component-wise"


class Variability(Enum):
    """Criteria 3 and 4: whether the inputs (outputs) are fixed or change with the data."""

    STATIC = "static"
    DYNAMIC = "dynamic"


class HyperArchitecture(Enum):
    """Criterion 5, the hypernetwork's own architecture."""

    MLP = "MLP"
    CNN = "CNN"
    RNN = "RNN"
    ATTENTION = "attention"


@dataclass(frozen=True)
class HyperNetSpec:
    """A hypernetwork design placed along the review's five criteria.

    Args:
        inputs (HyperInput): What the hypernetwork is conditioned on.
        outputs (HyperOutput): How the parameters are generated.
        input_variability (Variability): ``STATIC`` when the conditioning inputs are a fixed
            set (task embeddings), ``DYNAMIC`` when they change with the data.
        output_variability (Variability): ``DYNAMIC`` when the generated parameters change
            in number or shape (a dynamic target architecture), ``STATIC`` otherwise.
        architecture (HyperArchitecture): The hypernetwork's architecture.
    """

    inputs: HyperInput = HyperInput.TASK
    outputs: HyperOutput = HyperOutput.ALL
    input_variability: Variability = Variability.STATIC
    output_variability: Variability = Variability.STATIC
    architecture: HyperArchitecture = HyperArchitecture.MLP

    def __post_init__(self) -> None:
        kinds = (
            ("inputs", HyperInput),
            ("outputs", HyperOutput),
            ("input_variability", Variability),
            ("output_variability", Variability),
            ("architecture", HyperArchitecture),
        )
        for field, kind in kinds:
            if not isinstance(getattr(self, field), kind):
                raise TypeError(f"HyperNetSpec.{field} must be a {kind.__name__}")


_MODES = {
    "all": HyperOutput.ALL,
    "chunk": HyperOutput.CHUNK,
    "component": HyperOutput.COMPONENT,
}


class HyperNetwork(nn.Module):
    r"""Generates every parameter of ``target`` from a conditioning vector and runs the target
    with them through :func:`torch.func.functional_call`.

    The encoder maps the conditioning input to an embedding :math:`e`; the generator maps it
    to parameters, in one of the review's output strategies:

    - ``"all"``: :math:`\text{generator}(e)` has one entry per target parameter
      (:attr:`num_target_params`), cut into the named tensors in registration order.
    - ``"chunk"``: a learned chunk embedding :math:`c_k` per chunk,
      :math:`\text{generator}([e, c_k])` gives ``chunk_size`` values; the chunks are
      concatenated, the tail of the last one dropped, and cut as for ``"all"``.
    - ``"component"``: a learned embedding :math:`c_j` per parameter tensor,
      :math:`\text{generator}([e, c_j])` gives :attr:`max_component_size` values of which the
      first ``numel`` form tensor :math:`j`.

    The target is deep-copied and the copy's parameters are removed (its buffers stay), so
    :meth:`parameters` holds only the hypernetwork's own :math:`\phi`.

    Args:
        target (torch.nn.Module): The target network; only its structure and parameter shapes
            are used.
        encoder (torch.nn.Module): Maps a conditioning vector ``(in_dim,)`` to an embedding
            ``(emb_dim,)``; :class:`torch.nn.Identity` for none.
        generator (torch.nn.Module): Maps ``(n, emb_dim [+ chunk_dim])`` to ``(n, out)`` with
            ``out = num_target_params`` (``"all"``), ``chunk_size`` (``"chunk"``) or
            ``max_component_size`` (``"component"``).
        output_mode (str, optional): ``"all"``, ``"chunk"`` or ``"component"``.
            (default: ``"all"``)
        chunk_size (int, optional): Values per chunk, required for ``"chunk"``.
            (default: :obj:`None`)
        chunk_dim (int, optional): Size of the learned chunk or component embeddings.
            (default: ``8``)
        spec (HyperNetSpec, optional): The design along the review's criteria; its ``outputs``
            must agree with ``output_mode``. (default: task-conditioned static MLP)
        cond_dim (int, optional): Size of the conditioning vector, checked by :meth:`generate`
            so that a wrong width is named instead of failing inside the encoder or generator;
            :obj:`None` leaves it unchecked. (default: :obj:`None`)

    Shapes:
        - **input:** conditioning ``z`` :math:`(d_{in},)`, then the target's own inputs
        - **output:** the target's output
    """

    def __init__(
        self,
        target: nn.Module,
        encoder: nn.Module,
        generator: nn.Module,
        output_mode: str = "all",
        chunk_size: int | None = None,
        chunk_dim: int = 8,
        spec: HyperNetSpec | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__()
        if output_mode not in _MODES:
            raise ValueError(f"output_mode must be one of {sorted(_MODES)}, got {output_mode!r}")
        shapes = {name: tuple(p.shape) for name, p in target.named_parameters()}
        # a tied weight (one tensor under several names) is generated once and used under all
        canonical: dict[int, str] = {}
        self._aliases: dict[str, str] = {}
        for name, p in target.named_parameters(remove_duplicate=False):
            if id(p) in canonical:
                self._aliases[name] = canonical[id(p)]
            else:
                canonical[id(p)] = name
        if not shapes:
            raise ValueError("target has no parameters to generate")
        if output_mode == "chunk" and (chunk_size is None or chunk_size <= 0):
            raise ValueError(f"output_mode='chunk' needs a positive chunk_size, got {chunk_size}")
        if output_mode == "chunk":
            check_positive(chunk_size=chunk_size)
        if output_mode != "all" and chunk_dim <= 0:
            raise ValueError(f"chunk_dim must be positive, got {chunk_dim}")
        if output_mode != "all":
            check_positive(chunk_dim=chunk_dim)
        if cond_dim is not None:
            check_positive(cond_dim=cond_dim)
        self.cond_dim = cond_dim
        spec = spec if spec is not None else HyperNetSpec(outputs=_MODES[output_mode])
        if spec.outputs is not _MODES[output_mode]:
            raise ValueError(
                f"spec.outputs is {spec.outputs.value!r} but output_mode is {output_mode!r}"
            )
        self.output_mode = output_mode
        self.chunk_size = chunk_size
        self.spec = spec
        self.param_shapes: dict[str, tuple[int, ...]] = shapes
        self.num_target_params = sum(math.prod(s) for s in shapes.values())
        self.max_component_size = max(math.prod(s) for s in shapes.values())
        self.target = _strip_parameters(copy.deepcopy(target))
        self.encoder = encoder
        self.generator = generator
        if output_mode == "chunk":
            n_chunks = -(-self.num_target_params // chunk_size)
            self.embeddings = nn.Parameter(torch.empty(n_chunks, chunk_dim))
        elif output_mode == "component":
            self.embeddings = nn.Parameter(torch.empty(len(shapes), chunk_dim))
        else:
            self.register_parameter("embeddings", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draws the chunk/component embeddings (encoder and generator keep their own)."""
        if self.embeddings is not None:
            nn.init.normal_(self.embeddings)

    @property
    def generator_out_features(self) -> int:
        """How many values the generator must give per call in this output mode."""
        if self.output_mode == "all":
            return self.num_target_params
        if self.output_mode == "chunk":
            return int(self.chunk_size)
        return self.max_component_size

    def _encode(self, z: Tensor) -> Tensor:
        if z.dim() != 1:
            raise ValueError(
                f"the conditioning input must be one vector (d,), got {tuple(z.shape)}"
            )
        if self.cond_dim is not None and z.shape[0] != self.cond_dim:
            raise ValueError(f"the conditioning input has {z.shape[0]} entries but the "
                             f"hypernetwork expects cond_dim={self.cond_dim}")
        if not torch.isfinite(z).all():
            raise ValueError("the conditioning input has NaN or infinite entries")
        e = self.encoder(z)
        if e.dim() != 1:
            raise ValueError(f"the encoder must map (d,) to (emb_dim,), got {tuple(e.shape)}")
        return e

    def _run_generator(self, rows: Tensor) -> Tensor:
        out = self.generator(rows)
        want = self.generator_out_features
        if out.dim() != 2 or out.shape != (rows.shape[0], want):
            raise ValueError(
                f"the generator must give ({rows.shape[0]}, {want}) values in output_mode="
                f"{self.output_mode!r}, got {tuple(out.shape)}"
            )
        return out

    def generate(self, z: Tensor) -> dict[str, Tensor]:
        """The target's parameters for conditioning ``z``, as ``{name: tensor}``."""
        e = self._encode(z)
        if self.output_mode == "all":
            flat = self._run_generator(e.unsqueeze(0)).squeeze(0)
            return self._split(flat)
        rows = torch.cat([e.expand(self.embeddings.shape[0], -1), self.embeddings], dim=1)
        out = self._run_generator(rows)
        if self.output_mode == "chunk":
            return self._split(out.reshape(-1)[: self.num_target_params])
        return {
            name: out[j, : math.prod(shape)].view(shape)
            for j, (name, shape) in enumerate(self.param_shapes.items())
        }

    def _split(self, flat: Tensor) -> dict[str, Tensor]:
        sizes = [math.prod(s) for s in self.param_shapes.values()]
        pieces = torch.split(flat, sizes)
        return {
            name: piece.view(shape)
            for (name, shape), piece in zip(self.param_shapes.items(), pieces, strict=True)
        }

    def forward(self, z: Tensor, *args: Any, **kwargs: Any) -> Any:
        """Runs the target on ``args``/``kwargs`` with the parameters generated from ``z``."""
        params = self.generate(z)
        params.update({alias: params[name] for alias, name in self._aliases.items()})
        return functional_call(self.target, params, args, kwargs)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target={self.target.__class__.__name__}, "
            f"num_target_params={self.num_target_params}, output_mode={self.output_mode!r})"
        )


def _strip_parameters(module: nn.Module) -> nn.Module:
    # the generated tensors replace these; keeping them would leave dead, trainable weights
    for name, _ in list(module.named_parameters(remove_duplicate=False)):  # tied copies too
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        del owner._parameters[attr]
        setattr(owner, attr, None)
    return module


def _mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


@register_model("hypernetwork", family="hypernetwork", paper=_REVIEW)
def mlp_hypernetwork(
    target: nn.Module | None = None,
    cond_dim: int = 4,
    hidden: Sequence[int] = (32,),
    output_mode: str = "all",
    chunk_size: int = 32,
    chunk_dim: int = 8,
) -> HyperNetwork:
    """The review's illustrative design: a task-conditioned MLP hypernetwork for ``target``.

    An identity encoder passes the task embedding ``(cond_dim,)`` to an MLP
    generator (``hidden`` sizes, ReLU) sized for ``output_mode``.

    Args:
        target (torch.nn.Module, optional): The target; a ``1 -> 16 -> 1`` tanh MLP
            regressor when :obj:`None`. (default: :obj:`None`)
        cond_dim (int, optional): Size of the task embedding. (default: ``4``)
        hidden (Sequence[int], optional): Hidden sizes of the generator. (default: ``(32,)``)
        output_mode (str, optional): ``"all"``, ``"chunk"`` or ``"component"``.
            (default: ``"all"``)
        chunk_size (int, optional): Values per chunk in ``"chunk"`` mode. (default: ``32``)
        chunk_dim (int, optional): Size of the chunk/component embeddings. (default: ``8``)
    """
    if cond_dim <= 0 or any(h <= 0 for h in hidden):
        raise ValueError(f"cond_dim and hidden sizes must be positive, got {cond_dim}, {hidden}")
    check_positive(cond_dim=cond_dim, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
    if output_mode == "chunk":
        check_positive(chunk_size=chunk_size)
    if output_mode in ("chunk", "component"):
        check_positive(chunk_dim=chunk_dim)
    if target is None:
        target = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
    if output_mode not in _MODES:
        raise ValueError(f"output_mode must be one of {sorted(_MODES)}, got {output_mode!r}")
    n_params = sum(p.numel() for p in target.parameters())
    max_component = max(p.numel() for p in target.parameters())
    in_dim = cond_dim if output_mode == "all" else cond_dim + chunk_dim
    out_dim = {"all": n_params, "chunk": chunk_size, "component": max_component}[output_mode]
    return HyperNetwork(
        target,
        encoder=nn.Identity(),
        generator=_mlp([in_dim, *hidden, out_dim]),
        output_mode=output_mode,
        chunk_size=chunk_size if output_mode == "chunk" else None,
        chunk_dim=chunk_dim,
        cond_dim=cond_dim,
    )
