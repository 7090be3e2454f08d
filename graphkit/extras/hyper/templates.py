r"""Template-mixing layers and MixtureGrowth: growing a network by recombining its templates.

From `"MixtureGrowth: Growing Neural Networks by Recombining Learned Parameters"
<https://arxiv.org/abs/2311.04251>`_ (Pham, Teterwak, Nelson and Plummer, WACV 2024; official
code chaudatascience/mixturegrowth). Every layer's weight is a grid of blocks, and each block
is a linear combination of the parameter templates of a :class:`TemplateBank`,

.. math::
    \mathbf{W}_{ij} = \sum_{t=1}^{T} \alpha_{ij,t} \, \mathbf{T}_t .

Growing a layer's width by a factor :math:`f` enlarges the grid :math:`f`-fold along each grown
dimension: the trained blocks keep their place (top-left) and their coefficients, and every new
block gets a new coefficient vector over the same, already trained templates. By default (the
official ``orthogonal`` setting) a new vector is the unit vector orthogonal to the coefficient
vectors the layer already uses (the last right-singular vector of their stack), times
``scale``. The templates are shared by all blocks of a layer, old and new, and a bank may be
passed to several layers of the same block shape to share it across layers (the paper's
ImageNet "bank" variant).

The official code (``ensemble_growth_type="diag"``) grows from two seed networks trained with
separate template sets; :meth:`MixtureGrowth.grow` is the one-seed case, where all blocks of a
layer draw on one template set.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model

__all__ = ["MixtureGrowth", "TemplateBank", "TemplateConv2d", "TemplateLinear", "template_mlp"]

_PAPER = "MixtureGrowth: Growing Neural Networks by Recombining Learned Parameters"
_INITS = ("new_coeffs", "zero", "random_coeffs")


class TemplateBank(nn.Module):
    r"""``n_templates`` trainable tensors of one shape, mixed linearly into weights.

    Args:
        n_templates (int): Number of templates :math:`T`.
        shape (Sequence[int]): Shape of each template, the block shape of the layers that use
            the bank: ``(out, in)`` or ``(out, in, kh, kw)``.

    Shapes:
        - **templates:** :math:`(T, *shape)`
    """

    def __init__(self, n_templates: int, shape: Sequence[int]) -> None:
        super().__init__()
        if n_templates <= 0:
            raise ValueError(f"n_templates must be positive, got {n_templates}")
        check_positive(n_templates=n_templates)
        # a fractional size was truncated (a 2.5-wide block became 2 wide)
        check_positive(**{f"shape[{i}]": s for i, s in enumerate(shape)})
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2 or any(s <= 0 for s in shape):
            raise ValueError(f"shape must have >= 2 positive sizes (out, in, ...), got {shape}")
        self.n_templates = n_templates
        self.shape = shape
        self.templates = nn.Parameter(torch.empty(n_templates, *shape))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # each template on the scale of a Kaiming-initialised block, so a unit-norm
        # coefficient vector gives a weight on that scale too
        for t in range(self.n_templates):
            nn.init.kaiming_normal_(self.templates.data[t], nonlinearity="relu")

    def combine(self, coeffs: Tensor) -> Tensor:
        r""":math:`\sum_t \alpha_t \mathbf{T}_t` for ``coeffs`` :math:`\alpha` of shape ``(T,)``."""
        if coeffs.shape != (self.n_templates,):
            raise ValueError(
                f"coefficients must have shape ({self.n_templates},), got {tuple(coeffs.shape)}"
            )
        return torch.tensordot(coeffs, self.templates, dims=1)

    def extra_repr(self) -> str:
        return f"n_templates={self.n_templates}, shape={self.shape}"


class _TemplateLayer(nn.Module):
    """A weight made of a grid of blocks, each a mix of one bank's templates."""

    def __init__(
        self,
        block_shape: tuple[int, ...],
        n_templates: int,
        bank: TemplateBank | None,
        bias: bool,
        grow_in: bool,
        grow_out: bool,
    ) -> None:
        super().__init__()
        if bank is None:
            bank = TemplateBank(n_templates, block_shape)
        elif bank.shape != block_shape:
            raise ValueError(f"the bank's template shape {bank.shape} is not {block_shape}")
        self.banks = nn.ModuleList([bank])
        self.grow_in = grow_in
        self.grow_out = grow_out
        # grid of bank indices, row-major; coefficient vectors in the same order
        self.block_bank: list[list[int]] = [[0]]
        self.coeffs = nn.ParameterList([nn.Parameter(torch.empty(bank.n_templates))])
        self.bias = nn.Parameter(torch.empty(block_shape[0])) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Unit-norm random coefficients (the official orthogonal init of one row), zero bias.

        The banks are left alone: they may be shared with other layers.
        """
        for c in self.coeffs:
            nn.init.orthogonal_(c.data.view(1, -1))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def block_shape(self) -> tuple[int, ...]:
        return self.banks[0].shape

    @property
    def grid(self) -> tuple[int, int]:
        """Blocks along the output and the input dimension."""
        return len(self.block_bank), len(self.block_bank[0])

    def block(self, i: int, j: int) -> Tensor:
        """Block ``(i, j)`` of the weight."""
        rows, cols = self.grid
        if not (0 <= i < rows and 0 <= j < cols):
            raise IndexError(f"block ({i}, {j}) outside the {rows} x {cols} grid")
        return self.banks[self.block_bank[i][j]].combine(self.coeffs[i * cols + j])

    @property
    def weight(self) -> Tensor:
        rows, cols = self.grid
        # block by block, always with the same op on the same shapes, so a block's values do
        # not depend on the grid around it (growth keeps the old block bit-exactly)
        return torch.cat(
            [torch.cat([self.block(i, j) for j in range(cols)], dim=1) for i in range(rows)],
            dim=0,
        )

    @torch.no_grad()
    def grow(
        self,
        factor: int = 2,
        init: str = "new_coeffs",
        scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        """Enlarges the grid ``factor``-fold along each dimension marked to grow."""
        if not isinstance(factor, int) or factor < 2:
            raise ValueError(f"factor must be an integer >= 2, got {factor!r}")
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale}")
        rows, cols = self.grid
        new_rows = rows * (factor if self.grow_out else 1)
        new_cols = cols * (factor if self.grow_in else 1)
        used = [
            [
                self.coeffs[i * cols + j].detach()
                for i in range(rows)
                for j in range(cols)
                if self.block_bank[i][j] == b
            ]
            for b in range(len(self.banks))
        ]
        grid: list[list[int]] = []
        coeffs: list[nn.Parameter] = []
        for i in range(new_rows):
            grid.append([])
            for j in range(new_cols):
                if i < rows and j < cols:  # a trained block: same place, same coefficients
                    grid[i].append(self.block_bank[i][j])
                    coeffs.append(self.coeffs[i * cols + j])
                    continue
                b = self.block_bank[i % rows][j % cols]
                c = self._new_coeffs(used[b], init, scale, generator)
                used[b].append(c)
                grid[i].append(b)
                coeffs.append(nn.Parameter(c))
        self.block_bank = grid
        self.coeffs = nn.ParameterList(coeffs)
        if self.bias is not None and new_rows > rows:
            extra = self.bias.new_zeros(self.block_shape[0] * (new_rows - rows))
            self.bias = nn.Parameter(torch.cat([self.bias.detach(), extra]))

    @torch.no_grad()
    def merge(self, other: _TemplateLayer, init: str, scale: float) -> None:
        """Places ``other``'s block (and template set) diagonally after this one's."""
        if (self.bias is None) != (other.bias is None):
            raise ValueError("one seed's layer has a bias and the other's has not")
        self.banks.append(other.banks[0])
        rows = 2 if self.grow_out else 1
        cols = 2 if self.grow_in else 1
        seeds = [self.coeffs[0], other.coeffs[0]]
        if rows == 1 or cols == 1:  # side by side: no new blocks
            self.block_bank = [[0], [1]] if rows == 2 else [[0, 1]]
            self.coeffs = nn.ParameterList(seeds)
        else:
            used = [[seeds[0].detach()], [seeds[1].detach()]]
            new = {}
            for i, j in ((0, 1), (1, 0)):  # an off-diagonal block mixes its row's templates
                c = self._new_coeffs(used[i], init, scale, None)
                used[i].append(c)
                new[i, j] = nn.Parameter(c)
            self.block_bank = [[0, 0], [1, 1]]
            self.coeffs = nn.ParameterList([seeds[0], new[0, 1], new[1, 0], seeds[1]])
        if self.bias is not None:
            if rows == 2:
                self.bias = nn.Parameter(torch.cat([self.bias.detach(), other.bias.detach()]))
            else:
                self.bias = nn.Parameter(self.bias.detach() + other.bias.detach())

    @staticmethod
    def _new_coeffs(
        used: list[Tensor], init: str, scale: float, generator: torch.Generator | None
    ) -> Tensor:
        ref = used[0]
        if init == "zero":
            return torch.zeros_like(ref)
        if init == "random_coeffs":
            c = torch.randn(ref.shape, generator=generator, dtype=ref.dtype).to(ref.device)
            return c / c.norm() * scale
        # the direction least used so far: orthogonal to every vector while fewer than T
        vh = torch.linalg.svd(torch.stack(used), full_matrices=True).Vh
        return vh[-1].clone() * scale

    def extra_repr(self) -> str:
        rows, cols = self.grid
        return (
            f"grid={rows}x{cols}, block={self.block_shape}, "
            f"n_templates={self.banks[0].n_templates}, bias={self.bias is not None}"
        )


class TemplateLinear(_TemplateLayer):
    r"""A linear layer whose weight is a grid of template mixtures (see the module docstring).

    Args:
        in_features (int): Input size of the (initial) layer, the block's input size.
        out_features (int): Output size of the (initial) layer, the block's output size.
        n_templates (int, optional): Templates of a new bank. (default: ``2``, as the
            official ``num_templates_each_set``)
        bias (bool, optional): Add a bias (zero-initialised; new units get zero bias on
            growth). (default: :obj:`True`)
        bank (TemplateBank, optional): A bank of shape ``(out_features, in_features)`` to
            share with other layers; a new one when :obj:`None`. (default: :obj:`None`)
        grow_in (bool, optional): Whether growth widens the input (:obj:`False` for the
            network's first layer). (default: :obj:`True`)
        grow_out (bool, optional): Whether growth widens the output (:obj:`False` for the
            classifier). (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(*, F_{in} \cdot g_{in})`
        - **output:** :math:`(*, F_{out} \cdot g_{out})` for a grid of
          :math:`g_{out} \times g_{in}` blocks
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_templates: int = 2,
        bias: bool = True,
        bank: TemplateBank | None = None,
        grow_in: bool = True,
        grow_out: bool = True,
    ) -> None:
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"sizes must be positive, got {in_features}, {out_features}")
        check_positive(in_features=in_features, out_features=out_features)
        super().__init__((out_features, in_features), n_templates, bank, bias, grow_in, grow_out)

    @property
    def in_features(self) -> int:
        return self.block_shape[1] * self.grid[1]

    @property
    def out_features(self) -> int:
        return self.block_shape[0] * self.grid[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got {x.shape[-1]}")
        return F.linear(x, self.weight, self.bias)


class TemplateConv2d(_TemplateLayer):
    r"""A 2-D convolution whose kernel is a grid of template mixtures along the output and
    input channels (see the module docstring).

    Args:
        in_channels (int): Input channels of the (initial) layer, the block's input channels.
        out_channels (int): Output channels of the (initial) layer.
        kernel_size (int): Square kernel size.
        stride (int, optional): Stride. (default: ``1``)
        padding (int, optional): Zero padding. (default: ``0``)
        n_templates (int, optional): Templates of a new bank. (default: ``2``)
        bias (bool, optional): Add a bias. (default: :obj:`False`, as the official layers)
        bank (TemplateBank, optional): A bank of shape
            ``(out_channels, in_channels, k, k)`` to share. (default: :obj:`None`)
        grow_in (bool, optional): Whether growth widens the input (:obj:`False` for the
            stem). (default: :obj:`True`)
        grow_out (bool, optional): Whether growth widens the output. (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(N, C_{in} \cdot g_{in}, H, W)`
        - **output:** :math:`(N, C_{out} \cdot g_{out}, H', W')`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        n_templates: int = 2,
        bias: bool = False,
        bank: TemplateBank | None = None,
        grow_in: bool = True,
        grow_out: bool = True,
    ) -> None:
        if min(in_channels, out_channels, kernel_size, stride) <= 0 or padding < 0:
            raise ValueError(
                "channels, kernel_size and stride must be positive and padding >= 0, got "
                f"{in_channels}, {out_channels}, {kernel_size}, {stride}, {padding}"
            )
        check_positive(in_channels=in_channels, out_channels=out_channels,
                       kernel_size=kernel_size, stride=stride)
        if isinstance(padding, bool) or int(padding) != padding:
            raise ValueError(f"padding must be an integer, got {padding!r}")
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        super().__init__(shape, n_templates, bank, bias, grow_in, grow_out)
        self.stride = stride
        self.padding = padding

    @property
    def in_channels(self) -> int:
        return self.block_shape[1] * self.grid[1]

    @property
    def out_channels(self) -> int:
        return self.block_shape[0] * self.grid[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MixtureGrowth:
    """Grows every template layer of a model (the module docstring gives the rule)."""

    @staticmethod
    def template_layers(model: nn.Module) -> list[_TemplateLayer]:
        """The model's :class:`TemplateLinear` and :class:`TemplateConv2d` layers, in order."""
        return [m for m in model.modules() if isinstance(m, _TemplateLayer)]

    @staticmethod
    def grow(
        model: nn.Module,
        factor: int = 2,
        init: str = "new_coeffs",
        scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> nn.Module:
        """Widens ``model`` in place by ``factor`` and returns it.

        Each template layer's grid grows along the dimensions it is marked to grow; trained
        blocks, templates and biases are kept bit-exactly. Layers without templates
        (normalisation, plain linear) are not resized.

        Args:
            model (torch.nn.Module): A model built of template layers.
            factor (int, optional): Width multiplier. (default: ``2``)
            init (str, optional): Coefficients of the new blocks: ``"new_coeffs"`` (unit
                vectors orthogonal to the ones in use, times ``scale``; the paper's method),
                ``"random_coeffs"`` (random unit vectors times ``scale``) or ``"zero"`` (new
                blocks start at zero, so the old units compute what they did before).
                (default: ``"new_coeffs"``)
            scale (float, optional): Norm of the new coefficient vectors. (default: ``1.0``,
                the official ``coefs_noise_growing``)
            generator (torch.Generator, optional): Randomness for ``"random_coeffs"``.
                (default: :obj:`None`)
        """
        layers = MixtureGrowth.template_layers(model)
        if not layers:
            raise ValueError("model has no TemplateLinear or TemplateConv2d layers to grow")
        for layer in layers:
            layer.grow(factor, init, scale, generator)
        return model

    @staticmethod
    def combine(
        seed_a: nn.Module, seed_b: nn.Module, init: str = "new_coeffs", scale: float = 1.0
    ) -> nn.Module:
        """The official two-seed growth (``ensemble_growth_type="diag"``): a model twice as
        wide whose weights hold ``seed_a``'s blocks top-left and ``seed_b``'s bottom-right.

        The seeds have the same architecture, are not grown yet, and keep separate template
        sets; the off-diagonal blocks are new mixtures of the templates of their row's seed
        (``init`` and ``scale`` as in :meth:`grow`; ``"random_coeffs"`` is not offered). A layer
        that does not grow its output (the classifier) sets the two seeds side by side and adds
        their biases, so with ``init="zero"`` the combined model computes
        ``seed_a(x) + seed_b(x)``. Neither seed is modified.
        """
        if init not in ("new_coeffs", "zero"):
            raise ValueError(f"combine's init must be 'new_coeffs' or 'zero', got {init!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale}")
        grown, other = copy.deepcopy(seed_a), copy.deepcopy(seed_b)
        layers_a = MixtureGrowth.template_layers(grown)
        layers_b = MixtureGrowth.template_layers(other)
        if not layers_a or len(layers_a) != len(layers_b):
            raise ValueError("the seeds must have the same, non-zero number of template layers")
        pairs = list(zip(layers_a, layers_b, strict=True))
        for la, lb in pairs:
            if la.grid != (1, 1) or lb.grid != (1, 1):
                raise ValueError("combine takes seeds that have not been grown yet")
            flags_a = (la.block_shape, la.grow_in, la.grow_out)
            if flags_a != (lb.block_shape, lb.grow_in, lb.grow_out):
                raise ValueError("the seeds' template layers differ in shape or growth flags")
        for la, lb in pairs:
            la.merge(lb, init, scale)
        return grown


@register_model("mixturegrowth", family="hypernetwork", paper=_PAPER)
def template_mlp(
    in_features: int = 2,
    hidden: int = 16,
    out_features: int = 3,
    depth: int = 2,
    n_templates: int = 2,
) -> nn.Sequential:
    """A ReLU MLP of template layers, ready for :meth:`MixtureGrowth.grow`.

    The first layer does not widen its input and the last does not widen its output, so a
    grown model keeps the input and output sizes.

    Args:
        in_features (int, optional): Input size. (default: ``2``)
        hidden (int, optional): Hidden width before growth. (default: ``16``)
        out_features (int, optional): Output size. (default: ``3``)
        depth (int, optional): Number of hidden layers. (default: ``2``)
        n_templates (int, optional): Templates per layer. (default: ``2``)
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    check_positive(depth=depth)
    sizes = [in_features, *([hidden] * depth), out_features]
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = k == len(sizes) - 2
        layers.append(TemplateLinear(a, b, n_templates, grow_in=k > 0, grow_out=not last))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
