r"""The building block of forward learning: row L2 normalisation, then a PyG convolution, then ReLU.

`Forward Learning of Graph Neural Networks <https://arxiv.org/abs/2403.11004>`_ (Park et al.,
ICLR 2024) feeds every layer the *direction* of the previous layer's output only:

.. math::
    \mathbf{H}^{(l)} = \mathrm{ReLU}\big(\mathrm{conv}_l(\hat{\mathbf{H}}^{(l-1)},
    \mathcal{E})\big), \qquad
    \hat{\mathbf{h}}_i = \mathbf{h}_i / (\lVert \mathbf{h}_i \rVert_2 + 10^{-8}),

so that a layer cannot read the "goodness" (squared norm) its predecessor was trained to encode.
"""

from __future__ import annotations

import inspect
import warnings

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import coalesce, to_torch_csr_tensor

__all__ = [
    "ADJACENCIES", "MODELS", "SPARSE_ADJACENCY_MODELS", "SPARSE_DENSITY", "SPARSE_INPUT_MODELS",
    "ForwardLayer", "check_adjacency", "handoff", "handoff_rows", "l2_normalize_rows",
    "make_conv", "propagation_input", "sparse_if_mostly_zero",
]

#: convolution names accepted by :func:`make_conv`
MODELS = ("gcn", "sage", "gat")
#: convolutions that transform their input before propagating it, so a sparse input works
SPARSE_INPUT_MODELS = ("gcn", "gat")
#: how a scheme hands the graph to its convolutions (see :func:`propagation_input`)
ADJACENCIES = ("edges", "sparse")
#: convolutions that propagate over a sparse adjacency with one sparse-matrix product
SPARSE_ADJACENCY_MODELS = ("gcn", "sage")
#: an input with fewer non-zero entries than this fraction is passed on as sparse CSR
SPARSE_DENSITY = 0.2


def l2_normalize_rows(x: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Divide every row by its L2 norm plus ``eps``:
    :math:`x_i / (\lVert x_i \rVert_2 + \epsilon)`.

    All-zero rows stay zero.
    """
    if x.dim() != 2:
        raise ValueError(f"expected a 2-D feature matrix, got shape {tuple(x.shape)}")
    if x.layout != torch.strided:
        raise ValueError(f"row L2 normalisation needs a dense feature matrix, got a {x.layout} "
                         f"tensor; pass it dense (x.to_dense()) or turn normalisation off")
    return x / (x.norm(p=2, dim=1, keepdim=True) + eps)


def sparse_if_mostly_zero(x: Tensor) -> Tensor:
    """``x`` as a sparse CSR matrix when fewer than :data:`SPARSE_DENSITY` of its entries are
    non-zero (bag-of-words features), otherwise ``x`` unchanged."""
    if x.layout != torch.strided or x.dim() != 2:
        return x
    if int(torch.count_nonzero(x)) >= SPARSE_DENSITY * x.numel():
        return x
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return x.to_sparse_csr()


def handoff(h: Tensor) -> Tensor:
    """What a layer receives from the one below: the detached, row-L2-normalised output.

    Detaching cuts every autograd path between layers; normalising once per frozen input (rather
    than inside every training step) keeps no normalised copy in the autograd graph.
    """
    return l2_normalize_rows(h.detach())


def handoff_rows(blocks: list[Tensor] | tuple[Tensor, ...], sparse: bool = False,
                 normalize: bool = True, chunk_elements: int = 2**20) -> Tensor:
    """``handoff(torch.cat(blocks))`` (``normalize=False``: ``torch.cat(blocks)`` detached),
    then :func:`sparse_if_mostly_zero` when ``sparse``, built a few rows at a time.

    The result is the only full-size tensor allocated: no concatenated copy, no unnormalised
    one, and no ``N x F`` mask when converting to sparse (each chunk of about
    ``chunk_elements`` entries is normalised, and converted, on its own). Row normalisation is
    row-local, so the values are those of the one-shot expression.
    """
    if not blocks:
        raise ValueError("handoff_rows needs at least one block")
    width = blocks[0].size(1)
    if any(b.dim() != 2 or b.size(1) != width for b in blocks):
        raise ValueError("blocks must be 2-D with the same number of columns")
    step = max(1, chunk_elements // max(width, 1))

    def chunks():
        for b in blocks:
            b = b.detach()
            for start in range(0, b.size(0), step):
                yield b[start:start + step]

    rows = sum(b.size(0) for b in blocks)
    if sparse:
        nonzero = sum(int(torch.count_nonzero(c)) for c in chunks())
        sparse = nonzero < SPARSE_DENSITY * rows * width
    first = blocks[0]
    if not sparse and not normalize and len(blocks) == 1:
        return first.detach()  # nothing to build
    if not sparse:
        out = torch.empty(rows, width, dtype=first.dtype, device=first.device)
        start = 0
        for c in chunks():
            out[start:start + c.size(0)] = l2_normalize_rows(c) if normalize else c
            start += c.size(0)
        return out
    crows, cols, vals, offset = [first.new_zeros(1, dtype=torch.long)], [], [], 0
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        for c in chunks():
            part = (l2_normalize_rows(c) if normalize else c).to_sparse_csr()
            crows.append(part.crow_indices()[1:] + offset)
            cols.append(part.col_indices())
            vals.append(part.values())
            offset += part.values().numel()
        return torch.sparse_csr_tensor(torch.cat(crows), torch.cat(cols), torch.cat(vals),
                                       (rows, width))


def propagation_input(edge_index: Tensor, num_nodes: int, adjacency: str = "edges",
                      dtype: torch.dtype | None = None) -> Tensor:
    """What the convolutions are called with: ``edge_index`` itself (``"edges"``: PyG's
    per-edge messages, an :math:`|\\mathcal{E}| \\times F` tensor per step) or, built once, the
    transposed adjacency as a ``torch.sparse_csr`` matrix (``"sparse"``: one sparse-matrix
    product per propagation, no per-edge tensor; for :data:`SPARSE_ADJACENCY_MODELS`). The
    convolution computes the same function either way, on a graph without self-loops and
    repeated edges: ``"sparse"`` refuses others (a CSR matrix holds a repeated edge once, and
    GCN's sparse normalisation adds a self-loop where the edge list keeps the one given).
    ``dtype``: of the sparse matrix's values, the model's (default: torch's default dtype)."""
    if adjacency == "edges":
        return edge_index
    if adjacency == "sparse":
        loops = int((edge_index[0] == edge_index[1]).sum())
        repeats = edge_index.size(1) - coalesce(edge_index, num_nodes=num_nodes).size(1)
        if loops or repeats:
            raise ValueError(f"adjacency='sparse' needs a graph without self-loops and repeated "
                             f"edges, got {loops} self-loop(s) and {repeats} repeated edge(s): "
                             "use adjacency='edges', or remove them")
        ones = torch.ones(edge_index.size(1), dtype=dtype or torch.get_default_dtype(),
                          device=edge_index.device)  # a float64 model: float64 products
        return to_torch_csr_tensor(edge_index.flip(0), ones, size=(num_nodes, num_nodes))
    raise ValueError(f"adjacency must be one of {ADJACENCIES}, got {adjacency!r}")


def check_adjacency(model: str, adjacency: str) -> None:
    """Raise ``ValueError`` for an unknown ``adjacency`` or one ``model`` cannot use."""
    if adjacency not in ADJACENCIES:
        raise ValueError(f"adjacency must be one of {ADJACENCIES}, got {adjacency!r}")
    if adjacency == "sparse" and model not in SPARSE_ADJACENCY_MODELS:
        raise ValueError(f"adjacency='sparse' needs one of {SPARSE_ADJACENCY_MODELS}, "
                         f"got {model!r}")


def make_conv(model: str, in_channels: int, out_channels: int) -> MessagePassing:
    """The convolution of the official code for ``model``.

    ``"gcn"``: :class:`~torch_geometric.nn.GCNConv`; ``"sage"``: mean-aggregation
    :class:`~torch_geometric.nn.SAGEConv`; ``"gat"``: :class:`~torch_geometric.nn.GATConv` with 4
    concatenated heads of width ``out_channels / 4``.

    Raises:
        ValueError: unknown ``model``, non-positive sizes, or a GAT width not divisible by 4.
    """
    if in_channels <= 0 or out_channels <= 0:
        raise ValueError(f"channel sizes must be positive, got {in_channels}, {out_channels}")
    if model == "gcn":
        return GCNConv(in_channels, out_channels)
    if model == "sage":
        return SAGEConv(in_channels, out_channels, aggr="mean")
    if model == "gat":
        if out_channels % 4:
            raise ValueError(f"gat needs out_channels divisible by 4 heads, got {out_channels}")
        return GATConv(in_channels, out_channels // 4, heads=4, concat=True)
    raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")


class ForwardLayer(nn.Module):
    r"""One locally trained layer:
    :math:`\mathrm{ReLU}(\mathrm{conv}(\hat{\mathbf{X}}, \mathcal{E}))`.

    Args:
        conv (MessagePassing): any layer called as ``conv(x, edge_index)``.
        normalize (bool): L2-normalise the input rows first. (default: :obj:`True`)
        act (bool): apply ReLU to the output. (default: :obj:`True`)
        sparse_input (bool): pass a mostly-zero input that needs no gradient (bag-of-words
            features) to the convolution as a sparse CSR matrix; the result is the same, the
            first linear map much cheaper. Only for convolutions that apply their linear map
            before propagating (:data:`SPARSE_INPUT_MODELS`), and only on the CPU (on a GPU the
            dense product is cheap and the input stays dense). (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, optional edge weights :math:`(|\mathcal{E}|,)`
        - **output:** :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(self, conv: nn.Module, normalize: bool = True, act: bool = True,
                 sparse_input: bool = False) -> None:
        super().__init__()
        if not isinstance(conv, nn.Module) or not callable(getattr(conv, "reset_parameters",
                                                                    None)):
            raise TypeError(f"ForwardLayer needs a graph convolution (an nn.Module with "
                            f"reset_parameters(), called as conv(x, edge_index), e.g. a PyG "
                            f"MessagePassing layer), got {type(conv).__name__}")
        signature = inspect.signature(conv.forward)
        try:
            signature.bind(None, None)
        except TypeError:
            raise TypeError(f"{type(conv).__name__}.forward cannot be called as "
                            f"conv(x, edge_index)") from None
        #: whether the convolution takes edge weights (passed by keyword: positionally they
        #: would land in SAGEConv's `size` or GATConv's `edge_attr`)
        self.takes_edge_weight = "edge_weight" in signature.parameters
        self.conv = conv
        self.normalize = normalize
        self.act = act
        self.sparse_input = sparse_input
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def prepare(self, x: Tensor) -> Tensor:
        """What the convolution is called with: ``x`` L2-normalised (``normalize``) and, where
        ``sparse_input`` applies, as sparse CSR. A caller that feeds the same input to several
        calls prepares it once and passes ``prepared=True``."""
        if self.normalize:
            x = l2_normalize_rows(x)
        if self.sparse_input and x.device.type == "cpu" and not x.requires_grad:
            x = sparse_if_mostly_zero(x)
        return x

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                prepared: bool = False) -> Tensor:
        """``edge_weight``, where given, is passed on to a convolution whose ``forward`` takes
        ``edge_weight`` (another refuses it); ``prepared``: ``x``
        is already the output of :meth:`prepare`. The shapes of ``x`` and ``edge_index`` are
        checked (metadata only: no device sync)."""
        # imported here: graphkit.nn's package imports graphkit.train (a cycle at import time)
        from graphkit.nn._checks import check_edge_index_layout, check_node_features

        in_channels = getattr(self.conv, "in_channels", -1)
        check_node_features(x, in_channels if isinstance(in_channels, int) else -1)
        check_edge_index_layout(edge_index)
        if not prepared:
            x = self.prepare(x)
        if edge_weight is None:
            out = self.conv(x, edge_index)
        elif self.takes_edge_weight:
            out = self.conv(x, edge_index, edge_weight=edge_weight)
        else:
            raise ValueError(f"{type(self.conv).__name__} takes no edge weights")
        return out.relu() if self.act else out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.conv}, normalize={self.normalize}, act={self.act})"
