r"""Integer export of a :class:`~graphkit.nn.quant.model.QuantGNN` and integer inference.

Every fake-quantised tensor of a fixed-point model is an integer code times a power of two, so
a layer is computed exactly on ``int64`` codes (:math:`2^{-S}` tracked as the exponent ``S``):

.. math::
    \mathrm{acc} = \sum_j c_{ij}\,(x_j W^\top) + (x W_s^\top) \ll f_c + b \ll (S - f_b),
    \qquad S = f_a + f_w + f_c,

where the bias codes :math:`b` are stored in the weight format (:math:`f_b = f_w`, shift
:math:`f_a + f_c`) or, with ``bias_bits=32``, on the accumulator grid (:math:`f_b = S`),

then ReLU is ``max(acc, 0)`` and the next layer's input is requantised with the rounding of
the fake quantiser, :math:`\lfloor \mathrm{acc}\, 2^{f' - S} + 1/2 \rfloor =
(\mathrm{acc} + 2^{s-1}) \gg s` with :math:`s = S - f'`, then clamped. Only the network input
is quantised from floats. Supported: GCN and SAGE layers, ReLU or identity activations, all
formats fixed-point (GAT's softmax and other activations are not integer arithmetic).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphkit.data.validation import check_edge_index, check_features
from graphkit.nn._checks import check_node_features
from graphkit.nn.quant.linear import QLinear, bias_storage_bits
from graphkit.nn.quant.model import QuantGNN
from graphkit.nn.quant.quantizer import QFormat, quantize_to_int

__all__ = ["IntegerLayer", "IntegerGNN", "export_integer", "integer_forward"]


@dataclass
class IntegerLayer:
    """One exported layer: integer codes and their formats (value = code * 2**-frac_bits);
    ``bias_bits`` is the stored width of a bias code."""

    conv: str
    act: str
    weight_format: QFormat
    act_format: QFormat
    coef_format: QFormat
    weights: dict[str, Tensor]
    bias: Tensor | None
    skip: Tensor | None
    layer: torch.nn.Module
    bias_format: QFormat
    bias_bits: int

    @property
    def acc_frac_bits(self) -> int:
        """Exponent ``S`` of the accumulator: ``f_a + f_w + f_c``."""
        return self.act_format.frac_bits + self.weight_format.frac_bits + \
            self.coef_format.frac_bits

    @property
    def bias_shift(self) -> int:
        """Left shift that puts the bias codes on the accumulator grid: ``S - f_b >= 0``."""
        return self.acc_frac_bits - self.bias_format.frac_bits


@dataclass
class IntegerGNN:
    """An exported model: a list of :class:`IntegerLayer`."""

    layers: list[IntegerLayer]

    def size_bits(self) -> int:
        """Bits of the stored codes (weights at their width, biases at their stored width)."""
        total = 0
        for lay in self.layers:
            for w in lay.weights.values():
                total += w.numel() * lay.weight_format.bits
            if lay.skip is not None:
                total += lay.skip.numel() * lay.weight_format.bits
            if lay.bias is not None:
                total += lay.bias.numel() * lay.bias_bits
        return total


def export_integer(model: QuantGNN) -> IntegerGNN:
    """Integer codes of every weight and bias of ``model`` with their formats.

    Raises:
        ValueError: a layer is GAT, an activation is not ReLU/identity, or a format is full
            precision.
    """
    if not isinstance(model, QuantGNN):
        raise ValueError(f"export_integer needs a QuantGNN, got {type(model).__name__}")
    layers = []
    for spec, conv, skip in zip(model.specs, model.convs, model.skips):
        if spec.conv not in ("gcn", "sage"):
            raise ValueError(f"integer export supports gcn and sage layers, got {spec.conv!r} "
                             "(its softmax is not integer arithmetic)")
        if spec.act not in ("relu", "identity"):
            raise ValueError(f"integer export supports relu and identity activations, got "
                             f"{spec.act!r}")
        fw, fa, fc = conv.weight_format, conv.act_format, conv.coef_format
        if fw.is_full or fa.is_full or fc.is_full:
            raise ValueError("integer export needs fixed-point weight, activation and "
                             f"coefficient formats, got w={fw}, a={fa}, c={fc}")
        names = ("weight",) if spec.conv == "gcn" else ("weight_l", "weight_r")
        with torch.no_grad():
            weights = {n: quantize_to_int(getattr(conv, n), fw, name=n) for n in names}
            fb = conv.stored_bias_format
            bias = None if conv.bias is None else quantize_to_int(conv.bias, fb, name="bias")
            skip_w = quantize_to_int(skip.weight, fw, name="skip weight") \
                if isinstance(skip, QLinear) else None
        lay = IntegerLayer(spec.conv, spec.act, fw, fa, fc, weights, bias, skip_w, conv, fb,
                           bias_storage_bits(conv.bias_bits, fw))
        if lay.bias_shift < 0:  # cannot happen with the formats of QuantGNN's layers
            raise ValueError(f"bias format {fb} is finer than the accumulator's step "
                             f"2^-{lay.acc_frac_bits}")
        layers.append(lay)
    return IntegerGNN(layers)


def _requantize(acc: Tensor, frac: int, fmt: QFormat) -> Tensor:
    """Codes of ``acc * 2**-frac`` in ``fmt`` (round half up, clamp), in integers only."""
    s = frac - fmt.frac_bits
    if s > 0:
        out = (acc + (1 << (s - 1))) >> s
    else:
        out = acc << (-s)
    return out.clamp(fmt.qmin, fmt.qmax)


def _int_matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` of ``int64`` matrices, exactly. CUDA has no integer matrix product: there the
    product runs in float64, exact while every partial sum stays below :math:`2^{53}` (checked)."""
    if a.device.type == "cpu":
        return a @ b
    if a.numel() and b.numel():
        bound = int(a.abs().max()) * int(b.abs().max()) * a.size(1)
        if bound >= 2**53:
            raise ValueError(f"the integer product may reach {bound}, beyond float64's exact "
                             f"integers on {a.device}; run integer_forward on the CPU")
    return torch.round(a.double() @ b.double()).to(torch.int64)


def integer_forward(model: IntegerGNN, x: Tensor, edge_index: Tensor) -> tuple[Tensor, int]:
    """Run ``model`` on integer codes; returns the last accumulator (``int64``) and its
    exponent ``S`` (logits = ``acc * 2**-S``). The edge coefficients come from each layer's
    own (quantised) normalisation, converted to codes.

    Raises:
        ValueError: ``model`` has no layers; ``x`` is not ``[N, in_channels]`` or holds NaN or
            infinite values; ``edge_index`` is not ``[2, E]`` integer node ids below ``N``.
    """
    if not model.layers:
        raise ValueError("the integer model has no layers")
    if isinstance(x, Tensor) and x.layout != torch.strided:
        x = x.to_dense()  # sparse features (bag of words) as the fake-quantised model takes them
    check_features(x)
    check_node_features(x, model.layers[0].layer.in_channels)
    num_nodes = x.size(0)
    edge_index = check_edge_index(edge_index, num_nodes)  # a negative id would wrap around
    codes = quantize_to_int(x, model.layers[0].act_format)
    src, dst = edge_index
    acc, frac = codes, 0
    for i, lay in enumerate(model.layers):
        if i > 0:
            codes = _requantize(acc, frac, lay.act_format)
        fc = lay.coef_format.frac_bits
        with torch.no_grad():
            if lay.conv == "gcn":
                ei, coef = lay.layer.coefficients(edge_index, num_nodes, torch.float64)
                c = torch.round(coef * 2.0 ** fc).to(torch.int64)
                h = _int_matmul(codes, lay.weights["weight"].t())
                acc = torch.zeros(num_nodes, h.size(1), dtype=torch.int64, device=h.device)
                acc.index_add_(0, ei[1], c.view(-1, 1) * h[ei[0]])
            else:
                coef = lay.layer.coefficients(edge_index, num_nodes, torch.float64)
                c = torch.round(coef * 2.0 ** fc).to(torch.int64)
                agg = torch.zeros(num_nodes, codes.size(1), dtype=torch.int64,
                                  device=codes.device)
                agg.index_add_(0, dst, c.view(-1, 1) * codes[src])
                acc = _int_matmul(agg, lay.weights["weight_l"].t()) + \
                    (_int_matmul(codes, lay.weights["weight_r"].t()) << fc)
        if lay.skip is not None:
            acc = acc + (_int_matmul(codes, lay.skip.t()) << fc)
        if lay.bias is not None:
            acc = acc + (lay.bias << lay.bias_shift)
        if lay.act == "relu":
            acc = acc.clamp(min=0)
        frac = lay.acc_frac_bits
    return acc, frac
