r"""A linear layer with separately quantised weights and input activations."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from graphkit.nn._checks import check_node_features
from graphkit.nn.quant.quantizer import FULL, QFormat, fixed_point_quantize

__all__ = ["QLinear", "QuantizedLayer", "bias_format", "layer_bias_format", "bias_storage_bits",
           "check_bias_bits", "qmatmul", "dropout"]

#: storage of a bias kept on the accumulator grid (``bias_bits=32``, the earlier accounting)
BIAS_BITS = 32


#: integer bits a bias on the accumulator grid keeps at least (range +-128)
BIAS_INT_BITS = 8


def bias_format(*formats: QFormat) -> QFormat:
    r"""Format of a bias added to an accumulator whose scale is the product of ``formats``:
    31 signed bits stored in a 32-bit word, ``frac_bits`` the sum of theirs but at most
    ``31 - BIAS_INT_BITS`` (wide formats would otherwise leave the bias a range of
    :math:`\pm 2^{-7}`: its step is then a power-of-two multiple of the accumulator's, and
    integer inference shifts it left); full precision if any of them is."""
    if any(f.is_full for f in formats):
        return QFormat.full()
    frac = min(sum(f.frac_bits for f in formats), 31 - BIAS_INT_BITS)
    return QFormat(31 - frac, frac, signed=True)


def check_bias_bits(bias_bits: int | None) -> int | None:
    """``None`` (biases in their layer's weight format, counted at its width: the spec's
    parameters x bits) or ``32`` (biases on the accumulator grid, counted as 32-bit words)."""
    if bias_bits is not None and bias_bits != BIAS_BITS:
        raise ValueError(f"bias_bits must be None (the layer's weight format) or {BIAS_BITS}, "
                         f"got {bias_bits!r}")
    return bias_bits


def layer_bias_format(bias_bits: int | None, weight_format: QFormat,
                      *acc_formats: QFormat) -> QFormat:
    """Format a layer's bias is quantised to: its ``weight_format`` (``bias_bits=None``), or
    the accumulator grid of ``weight_format`` and ``acc_formats`` (``bias_bits=32``; see
    :func:`bias_format`). Either way the bias is an integer code times a power of two that
    divides the accumulator's step, so integer inference adds it exactly after a left shift."""
    if bias_bits is None:
        return weight_format
    return bias_format(weight_format, *acc_formats)


def bias_storage_bits(bias_bits: int | None, weight_format: QFormat) -> int:
    """Bits stored per bias value: the weight width, or 32 (``bias_bits=32``)."""
    return weight_format.bits if bias_bits is None else BIAS_BITS


def coo_features(x: Tensor) -> Tensor:
    """Sparse CSR (CSC, BSR, BSC) features as COO, the sparse layout the quantised layers
    read: quantisation and dropout act on its stored values, and the fake quantiser's
    comparisons and the dropout mask have no CSR kernels. Dense and COO ``x`` pass unchanged."""
    if x.layout in (torch.strided, torch.sparse_coo):
        return x
    return x.to_sparse_coo()


def qmatmul(x: Tensor, weight: Tensor, act_format: QFormat, weight_format: QFormat) -> Tensor:
    """``Q_a(x) @ Q_w(weight).T``; a sparse ``x`` (e.g. bag-of-words features, COO or CSR) has
    its stored values quantised (zero is on every grid) and is multiplied sparsely."""
    w = fixed_point_quantize(weight, weight_format).t()
    x = coo_features(x)
    if x.is_sparse:
        x = x.coalesce()
        xq = torch.sparse_coo_tensor(x.indices(), fixed_point_quantize(x.values(), act_format),
                                     x.shape, check_invariants=False)
        return torch.sparse.mm(xq, w)
    return fixed_point_quantize(x, act_format) @ w


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout that also accepts a sparse ``x`` (dropping stored values; CSR becomes COO)."""
    x = coo_features(x)
    if x.is_sparse:
        if not training or p == 0.0:
            return x
        x = x.coalesce()
        return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape,
                                       check_invariants=False)
    return F.dropout(x, p, training)


class QuantizedLayer(ABC):
    """What every quantised layer shares: its bias's format and addition, and its exact stored
    size. A layer lists its weight tensors in :meth:`weight_tensors` and the formats that scale
    its accumulator in :meth:`accumulator_formats`; it has ``weight_format``, ``act_format``,
    ``bias_bits`` and ``bias`` (``None`` without one)."""

    @abstractmethod
    def weight_tensors(self) -> tuple[Tensor, ...]:
        """Every tensor stored at the weight width, the bias aside."""

    def accumulator_formats(self) -> tuple[QFormat, ...]:
        """The formats whose product scales the accumulator (the weights' aside)."""
        return (self.act_format,)

    @property
    def stored_bias_format(self) -> QFormat:
        """The bias's format (see :func:`layer_bias_format`)."""
        return layer_bias_format(self.bias_bits, self.weight_format, *self.accumulator_formats())

    def add_bias(self, out: Tensor) -> Tensor:
        """``out`` plus the bias quantised to :attr:`stored_bias_format`."""
        if self.bias is None:
            return out
        return out + fixed_point_quantize(self.bias, self.stored_bias_format)

    def size_bits(self) -> int:
        """Stored bits: every weight tensor and the bias at the weight width
        (``bias_bits=32``: the bias as 32-bit words)."""
        bits = sum(w.numel() for w in self.weight_tensors()) * self.weight_format.bits
        if self.bias is not None:
            bits += self.bias.numel() * bias_storage_bits(self.bias_bits, self.weight_format)
        return bits


class QLinear(QuantizedLayer, torch.nn.Module):
    r"""Fake-quantised linear layer of LPGNAS (`Zhao et al., 2020
    <https://arxiv.org/abs/2009.09232>`_):

    .. math::
        \mathbf{y} = Q_a(\mathbf{x})\,Q_w(\mathbf{W})^\top + Q_b(\mathbf{b}).

    :math:`Q_w, Q_a` are fixed-point quantisers with the straight-through estimator
    (:func:`~graphkit.nn.quant.quantizer.fixed_point_quantize`); the bias is quantised with
    :math:`Q_w` and counted at its width (``bias_bits=32``: on the accumulator grid
    :math:`2^{-(f_a + f_w)}`, counted as 32-bit words).

    Args:
        in_channels (int): input size.
        out_channels (int): output size.
        weight_format (QFormat): format of :math:`W`. (default: full precision)
        act_format (QFormat): format of the input :math:`x`. (default: full precision)
        bias (bool): learn an additive bias. (default: :obj:`True`)
        bias_bits (int, optional): ``None``: the bias in the weight format; ``32``: on the
            accumulator grid as 32-bit words. (default: :obj:`None`)

    Shapes:
        input ``[N, in_channels]``, output ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 weight_format: QFormat = FULL, act_format: QFormat = FULL,
                 bias: bool = True, bias_bits: int | None = None) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, got {in_channels}, {out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight_format, self.act_format = weight_format, act_format
        self.bias_bits = check_bias_bits(bias_bits)
        self.weight = Parameter(torch.empty(out_channels, in_channels))
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        torch.nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        return self.add_bias(qmatmul(x, self.weight, self.act_format, self.weight_format))

    def weight_tensors(self) -> tuple[Tensor, ...]:
        return (self.weight,)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"w={self.weight_format}, a={self.act_format})")
