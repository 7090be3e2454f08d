r"""DASS: a DARTS search whose parametric candidate ops are sparse during the search.

From `DASS: Differentiable Architecture Search for Sparse Neural Networks
<https://arxiv.org/abs/2207.06968>`_. Architectures found by DARTS for dense networks lose much
accuracy once pruned; DASS adds parametric sparse operations (:class:`SparseConvOp`,
:class:`SparseLinearOp`) to the candidate set and optimises the architecture through the
*masked* supernet, so the mixture weights learn which ops work in the pruned regime.

Every sparse op keeps its weights masked to one ``density`` with the shared mask API
(:mod:`graphkit.extras.sparsity.masks`); :meth:`DASSSearch.step` recomputes each mask by
magnitude after every weight update (:meth:`SparseOp.resparsify`), so each op holds exactly
``round(density * numel)`` weights per layer at every step. Pruned weights get no gradient
through the mask, so a recomputed mask keeps the largest kept weights (no regrowth).
:class:`DASSNetwork` builds the derived genotype with its sparse ops, to be trained pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.mixed import MixedOp, arch_parameters, weight_parameters
from graphkit.extras.sparsity.masks import apply_mask, get_mask, unstructured, update_mask

__all__ = [
    "DARTS_SPARSE_OPS",
    "DASSCell",
    "DASSDerivedCell",
    "DASSGenotype",
    "DASSNetwork",
    "DASSSearch",
    "SparseConvOp",
    "SparseLinearOp",
    "SparseOp",
    "sparse_ops",
]


def _check_density(density: float) -> float:
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    return float(density)


class SparseOp(nn.Module):
    """What the sparse ops share: masked ``Conv``/``Linear`` weights held at one density.

    Subclasses build their layers, then call :meth:`_sparsify` to put a mask on every
    ``Linear`` / ``Conv2d`` weight they own.
    """

    density: float

    def _sparsify(self, density: float) -> None:
        self.density = _check_density(density)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                apply_mask(module)
        self.resparsify()

    def masked_modules(self) -> list[nn.Module]:
        """The layers whose weight is masked."""
        return [m for m in self.modules() if get_mask(m) is not None]

    @torch.no_grad()
    def resparsify(self) -> None:
        """Recompute every mask: keep the ``round(density * numel)`` largest ``|W|``."""
        for module in self.masked_modules():
            latent = module.parametrizations.weight.original
            if torch.isnan(latent).any():
                raise ValueError(f"NaN in the weight of {module}: cannot rank magnitudes")
            update_mask(module, unstructured().select(latent.abs(), self.density))


class SparseConvOp(SparseOp):
    r"""DARTS's ReLU-conv-BN op with masked weights (DASS's ``SparseConv``).

    With ``separable=True`` the conv is a depthwise :math:`k \times k` conv followed by a
    pointwise one (DARTS's ``dil_conv``; stack two for ``sep_conv``); else a full conv.

    Args:
        in_channels (int): input channels :math:`C_{in}`.
        out_channels (int): output channels :math:`C_{out}`.
        kernel_size (int): odd kernel size (default: ``3``).
        stride (int): stride (default: ``1``).
        dilation (int): dilation (default: ``1``).
        separable (bool): depthwise + pointwise instead of one conv (default: :obj:`True`).
        density (float): share of kept weights in each conv, in (0, 1] (default: ``0.1``).
        affine (bool): learnable BatchNorm affine (DARTS searches without, default:
            :obj:`False`).

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, C_{out}, H / s, W / s)`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        separable: bool = True,
        density: float = 0.1,
        affine: bool = False,
    ) -> None:
        super().__init__()
        check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            dilation=dilation,
        )
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.out_channels = in_channels, out_channels
        pad = dilation * (kernel_size - 1) // 2
        convs: list[nn.Module] = []
        if separable:
            convs.append(
                nn.Conv2d(
                    in_channels,
                    in_channels,
                    kernel_size,
                    stride,
                    pad,
                    dilation,
                    groups=in_channels,
                    bias=False,
                )
            )
            convs.append(nn.Conv2d(in_channels, out_channels, 1, bias=False))
        else:
            convs.append(
                nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, dilation, bias=False)
            )
        self.conv = nn.Sequential(*convs)
        self.bn = nn.BatchNorm2d(out_channels, affine=affine)
        self.reset_parameters()
        self._sparsify(density)

    def reset_parameters(self) -> None:
        for conv in self.conv:
            conv.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        return self.bn(self.conv(F.relu(x)))

    def extra_repr(self) -> str:
        return f"density={self.density}"


class SparseLinearOp(SparseOp):
    r"""A masked linear map over the channel dimension (DASS's ``SparseLinear``).

    :math:`y_{n,:,h,w} = (M \odot W)\, x_{n,:,h,w}` followed by BatchNorm: a channel-mixing
    op whose weight is held at ``density``.

    Args:
        in_channels (int): input channels :math:`C_{in}`.
        out_channels (int): output channels :math:`C_{out}`.
        density (float): share of kept weights, in (0, 1] (default: ``0.1``).
        affine (bool): learnable BatchNorm affine (default: :obj:`False`).

    Shapes:
        - **input:** :math:`(N, C_{in})` or :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, C_{out})` or :math:`(N, C_{out}, H, W)`
    """

    def __init__(
        self, in_channels: int, out_channels: int, density: float = 0.1, affine: bool = False
    ) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.linear = nn.Linear(in_channels, out_channels, bias=False)
        self.bn = nn.BatchNorm1d(out_channels, affine=affine)
        self.reset_parameters()
        self._sparsify(density)

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in (2, 4) or x.size(1) != self.in_channels:
            raise ValueError(
                f"SparseLinearOp expects (N, {self.in_channels}) or (N, {self.in_channels}, H, W),"
                f" got {tuple(x.shape)}"
            )
        if x.dim() == 2:
            return self.bn(self.linear(x))
        n, _, h, w = x.shape
        y = self.linear(x.permute(0, 2, 3, 1).reshape(-1, self.in_channels))
        # BatchNorm over every pixel of the batch, as BatchNorm2d would
        y = self.bn(y)
        return y.view(n, h, w, self.out_channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, density={self.density}"


class _Zero(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


class _Pool(nn.Module):
    """DARTS's pooling candidates: 3x3, stride 1, followed by a non-affine BatchNorm."""

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        self.pool: nn.Module = (
            nn.MaxPool2d(3, 1, 1)
            if kind == "max"
            else nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        )
        self.bn = nn.BatchNorm2d(channels, affine=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pool(x))


OpBuilder = Callable[[int, float], nn.Module]

#: The "darts+sparse" candidate set: DARTS's eight ops with every parametric conv sparse,
#: plus the sparse channel-mixing linear op. ``builder(channels, density)``.
DARTS_SPARSE_OPS: dict[str, OpBuilder] = {
    "none": lambda c, d: _Zero(),
    "max_pool_3x3": lambda c, d: _Pool("max", c),
    "avg_pool_3x3": lambda c, d: _Pool("avg", c),
    "skip_connect": lambda c, d: nn.Identity(),
    "sparse_sep_conv_3x3": lambda c, d: nn.Sequential(
        SparseConvOp(c, c, 3, density=d), SparseConvOp(c, c, 3, density=d)
    ),
    "sparse_sep_conv_5x5": lambda c, d: nn.Sequential(
        SparseConvOp(c, c, 5, density=d), SparseConvOp(c, c, 5, density=d)
    ),
    "sparse_dil_conv_3x3": lambda c, d: SparseConvOp(c, c, 3, dilation=2, density=d),
    "sparse_dil_conv_5x5": lambda c, d: SparseConvOp(c, c, 5, dilation=2, density=d),
    "sparse_linear": lambda c, d: SparseLinearOp(c, c, density=d),
}

_SPACES = {"darts+sparse": DARTS_SPARSE_OPS}


def sparse_ops(model: nn.Module) -> list[SparseOp]:
    """Every :class:`SparseOp` inside ``model``."""
    return [m for m in model.modules() if isinstance(m, SparseOp)]


@dataclass(frozen=True)
class DASSGenotype:
    """The derived architecture: per cell, per node, two ``(op name, input state)`` edges.

    State 0 and 1 are the cell's two inputs; state ``i + 2`` is intermediate node ``i``.
    """

    cells: tuple[tuple[tuple[tuple[str, int], ...], ...], ...]

    def validate(self, nodes: int) -> None:
        """Raise ``ValueError`` unless every node has two distinct earlier inputs, no 'none'."""
        for c, cell in enumerate(self.cells):
            if len(cell) != nodes:
                raise ValueError(f"cell {c} has {len(cell)} nodes, expected {nodes}")
            for i, edges in enumerate(cell):
                inputs = [j for _, j in edges]
                if len(edges) != 2 or len(set(inputs)) != 2:
                    raise ValueError(f"cell {c} node {i}: needs two distinct inputs, got {edges}")
                for op, j in edges:
                    if op == "none" or op not in DARTS_SPARSE_OPS or not 0 <= j < i + 2:
                        raise ValueError(f"cell {c} node {i}: invalid edge ({op!r}, {j})")


class _ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class DASSCell(nn.Module):
    r"""A DARTS normal cell whose edges are :class:`MixedOp` over a sparse candidate set.

    Node :math:`i` sums the mixed ops on its edges from every earlier state:
    :math:`s_{i+2} = \sum_{j < i + 2} \bar o_{ij}(s_j)`; the output concatenates the nodes.

    Args:
        c_prev_prev (int): channels of the input from two cells back.
        c_prev (int): channels of the previous cell's output.
        channels (int): channels :math:`C` of every node.
        nodes (int): intermediate nodes (default: ``4``).
        density (float): density of every sparse op (default: ``0.1``).
        ops (dict[str, OpBuilder], optional): the candidate set (default:
            :data:`DARTS_SPARSE_OPS`).

    Shapes:
        - **input:** :math:`(N, C_{pp}, H, W)`, :math:`(N, C_p, H, W)`
        - **output:** :math:`(N, \mathrm{nodes} \cdot C, H, W)`
    """

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        nodes: int = 4,
        density: float = 0.1,
        ops: dict[str, OpBuilder] | None = None,
    ) -> None:
        super().__init__()
        check_positive(c_prev_prev=c_prev_prev, c_prev=c_prev, channels=channels, nodes=nodes)
        ops = DARTS_SPARSE_OPS if ops is None else ops
        self.nodes = nodes
        self.pre0 = _ReLUConvBN(c_prev_prev, channels)
        self.pre1 = _ReLUConvBN(c_prev, channels)
        self.edges = nn.ModuleList(
            MixedOp({name: build(channels, density) for name, build in ops.items()})
            for i in range(nodes)
            for _ in range(i + 2)
        )

    def node_edges(self, i: int) -> list[MixedOp]:
        """The mixed ops entering node ``i``, from state 0 up to state ``i + 1``."""
        start = sum(k + 2 for k in range(i))
        return [self.edges[start + j] for j in range(i + 2)]  # type: ignore[misc]

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(self.nodes):
            states.append(sum(op(h) for op, h in zip(self.node_edges(i), states)))
        return torch.cat(states[2:], dim=1)

    def derive(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        """DARTS's rule: per node, the two inputs of largest non-'none' weight, each with its
        best non-'none' op."""
        cell = []
        for i in range(self.nodes):
            best = []
            for j, op in enumerate(self.node_edges(i)):
                p = op.probs().detach()
                keep = [k for k, name in enumerate(op.names) if name != "none"]
                if not keep:
                    raise ValueError("the candidate set holds only 'none': nothing to derive")
                k = max(keep, key=lambda k: float(p[k]))
                best.append((float(p[k]), op.names[k], j))
            best.sort(key=lambda t: -t[0])
            cell.append(tuple((name, j) for _, name, j in best[:2]))
        return tuple(cell)


@register_model(
    "dass",
    family="nas",
    paper="DASS: Differentiable Architecture Search for Sparse Neural Networks",
)
class DASSSearch(nn.Module):
    r"""The DASS supernet and its first-order bi-level search.

    A stem conv, ``cells`` :class:`DASSCell` (normal cells at one resolution, each with its own
    architecture logits), global pooling and a linear classifier. :meth:`step` takes one
    first-order DARTS step: the logits :math:`\alpha` descend the validation loss of the
    masked supernet (Adam, lr :math:`3\cdot10^{-4}`, weight decay :math:`10^{-3}`), then the
    weights descend the training loss (SGD, momentum 0.9, lr 0.025, weight decay
    :math:`3\cdot10^{-4}`; DARTS's settings), then every sparse op's mask is recomputed at
    ``density`` by magnitude. :meth:`genotype` derives the cells (DARTS's top-2 rule).

    Args:
        space (str): the candidate set; ``"darts+sparse"`` (default).
        density (float): density of every sparse op, in (0, 1] (default: ``0.1``).
        in_channels (int): image channels (default: ``3``).
        channels (int): node channels :math:`C` (default: ``8``).
        cells (int): number of cells (default: ``2``).
        nodes (int): intermediate nodes per cell (default: ``4``).
        num_classes (int): classes (default: ``10``).
        w_lr (float): weight learning rate (default: ``0.025``).
        alpha_lr (float): architecture learning rate (default: ``3e-4``).

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, \mathrm{classes})`
    """

    def __init__(
        self,
        space: str = "darts+sparse",
        density: float = 0.1,
        in_channels: int = 3,
        channels: int = 8,
        cells: int = 2,
        nodes: int = 4,
        num_classes: int = 10,
        w_lr: float = 0.025,
        alpha_lr: float = 3e-4,
    ) -> None:
        super().__init__()
        if space not in _SPACES:
            raise ValueError(f"unknown space {space!r}; choose one of {sorted(_SPACES)}")
        check_positive(
            in_channels=in_channels,
            channels=channels,
            cells=cells,
            nodes=nodes,
            num_classes=num_classes,
        )
        if not (w_lr > 0 and alpha_lr > 0):
            raise ValueError(f"learning rates must be positive, got {w_lr}, {alpha_lr}")
        self.space, self.density, self.nodes = space, _check_density(density), nodes
        self.in_channels = in_channels
        c_stem = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        c_pp, c_p = c_stem, c_stem
        self.cells = nn.ModuleList()
        for _ in range(cells):
            self.cells.append(DASSCell(c_pp, c_p, channels, nodes, self.density, _SPACES[space]))
            c_pp, c_p = c_p, nodes * channels
        self.classifier = nn.Linear(c_p, num_classes)
        self.w_optimizer = torch.optim.SGD(
            weight_parameters(self), lr=w_lr, momentum=0.9, weight_decay=3e-4
        )
        self.alpha_optimizer = torch.optim.Adam(
            arch_parameters(self), lr=alpha_lr, betas=(0.5, 0.999), weight_decay=1e-3
        )

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def sparse_ops(self) -> list[SparseOp]:
        """Every sparse candidate op of the supernet."""
        return sparse_ops(self)

    def step(self, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor]) -> tuple[float, float]:
        """One search step on a ``(x, y)`` training and validation batch.

        Returns ``(train loss, validation loss)``. The architecture update uses the masked
        (sparse) supernet; the weight update is followed by :meth:`SparseOp.resparsify`.
        """
        self.train()
        self.alpha_optimizer.zero_grad()
        val_loss = F.cross_entropy(self(val[0]), val[1])
        val_loss.backward()
        self.alpha_optimizer.step()
        self.w_optimizer.zero_grad()
        train_loss = F.cross_entropy(self(train[0]), train[1])
        train_loss.backward()
        nn.utils.clip_grad_norm_(weight_parameters(self), 5.0)  # DARTS clips at 5
        self.w_optimizer.step()
        for op in self.sparse_ops():
            op.resparsify()
        return train_loss.item(), val_loss.item()

    def search(
        self,
        batches: Sequence[tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]],
    ) -> DASSGenotype:
        """Run :meth:`step` on each ``(train, val)`` pair; return :meth:`genotype`."""
        steps = 0
        for train, val in batches:
            self.step(train, val)
            steps += 1
        if not steps:  # the genotype of the untrained architecture weights is no search result
            raise ValueError("batches is empty: the search needs at least one (train, val) pair")
        return self.genotype()

    def genotype(self) -> DASSGenotype:
        """The derived architecture of every cell."""
        genotype = DASSGenotype(tuple(cell.derive() for cell in self.cells))
        genotype.validate(self.nodes)
        return genotype

    def extra_repr(self) -> str:
        return f"space={self.space!r}, density={self.density}, nodes={self.nodes}"


class DASSDerivedCell(nn.Module):
    r"""A discrete cell of a :class:`DASSGenotype`: each node sums its two chosen ops.

    Args:
        cell (Sequence[Sequence[tuple[str, int]]]): one genotype cell, per node two
            ``(op name, input state)`` edges.
        c_prev_prev (int): channels of the input from two cells back.
        c_prev (int): channels of the previous cell's output.
        channels (int): node channels :math:`C`.
        density (float): density of every sparse op (default: ``0.1``).

    Shapes:
        - **input:** :math:`(N, C_{pp}, H, W)`, :math:`(N, C_p, H, W)`
        - **output:** :math:`(N, \mathrm{nodes} \cdot C, H, W)`
    """

    def __init__(
        self,
        cell: Sequence[Sequence[tuple[str, int]]],
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        density: float = 0.1,
    ) -> None:
        super().__init__()
        DASSGenotype((tuple(tuple(node) for node in cell),)).validate(len(cell))
        check_positive(c_prev_prev=c_prev_prev, c_prev=c_prev, channels=channels)
        self.pre0 = _ReLUConvBN(c_prev_prev, channels)
        self.pre1 = _ReLUConvBN(c_prev, channels)
        self.inputs = [[j for _, j in node] for node in cell]
        self.ops = nn.ModuleList(
            nn.ModuleList(DARTS_SPARSE_OPS[name](channels, density) for name, _ in node)
            for node in cell
        )

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for ops, inputs in zip(self.ops, self.inputs):
            states.append(sum(op(states[j]) for op, j in zip(ops, inputs)))
        return torch.cat(states[2:], dim=1)


class DASSNetwork(nn.Module):
    r"""The network of a derived genotype, its sparse ops at ``density``, ready to train.

    Same macro layout as :class:`DASSSearch` (stem, one cell per genotype cell, pooling,
    classifier); train it with any optimiser and call :meth:`resparsify` after each step to
    keep the sparse ops at their density.

    Args:
        genotype (DASSGenotype): the searched cells.
        density (float): density of every sparse op (default: ``0.1``).
        in_channels (int): image channels (default: ``3``).
        channels (int): node channels :math:`C` (default: ``8``).
        num_classes (int): classes (default: ``10``).

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, \mathrm{classes})`
    """

    def __init__(
        self,
        genotype: DASSGenotype,
        density: float = 0.1,
        in_channels: int = 3,
        channels: int = 8,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if not isinstance(genotype, DASSGenotype):
            raise TypeError(f"genotype must be a DASSGenotype, got {type(genotype).__name__}")
        if not genotype.cells:
            raise ValueError("the genotype has no cells")
        check_positive(in_channels=in_channels, channels=channels, num_classes=num_classes)
        self.in_channels, self.density = in_channels, _check_density(density)
        c_stem = 3 * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        c_pp, c_p = c_stem, c_stem
        self.cells = nn.ModuleList()
        for cell in genotype.cells:
            self.cells.append(DASSDerivedCell(cell, c_pp, c_p, channels, self.density))
            c_pp, c_p = c_p, len(cell) * channels
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def resparsify(self) -> None:
        """Recompute every sparse op's magnitude mask at :attr:`density`."""
        for op in sparse_ops(self):
            op.resparsify()
