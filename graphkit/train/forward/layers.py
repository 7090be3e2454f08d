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

import warnings

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.nn.conv import MessagePassing

__all__ = [
    "MODELS", "SPARSE_DENSITY", "SPARSE_INPUT_MODELS", "ForwardLayer", "handoff",
    "l2_normalize_rows", "make_conv", "sparse_if_mostly_zero",
]

#: convolution names accepted by :func:`make_conv`
MODELS = ("gcn", "sage", "gat")
#: convolutions that transform their input before propagating it, so a sparse input works
SPARSE_INPUT_MODELS = ("gcn", "gat")
#: an input with fewer non-zero entries than this fraction is passed on as sparse CSR
SPARSE_DENSITY = 0.2


def l2_normalize_rows(x: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Divide every row by its L2 norm plus ``eps``:
    :math:`x_i / (\lVert x_i \rVert_2 + \epsilon)`.

    All-zero rows stay zero.
    """
    if x.dim() != 2:
        raise ValueError(f"expected a 2-D feature matrix, got shape {tuple(x.shape)}")
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
          :math:`(2, |\mathcal{E}|)`
        - **output:** :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(self, conv: nn.Module, normalize: bool = True, act: bool = True,
                 sparse_input: bool = False) -> None:
        super().__init__()
        self.conv = conv
        self.normalize = normalize
        self.act = act
        self.sparse_input = sparse_input
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if self.normalize:
            x = l2_normalize_rows(x)
        if self.sparse_input and x.device.type == "cpu" and not x.requires_grad:
            x = sparse_if_mostly_zero(x)
        out = self.conv(x, edge_index)
        return out.relu() if self.act else out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.conv}, normalize={self.normalize}, act={self.act})"
