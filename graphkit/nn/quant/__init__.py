"""Quantised GNN layers and the LPGNAS search (`Learned Low Precision Graph Neural Networks
<https://arxiv.org/abs/2009.09232>`_, Zhao et al., EuroMLSys 2021).

* :mod:`~graphkit.nn.quant.quantizer`: fixed-point formats and the STE quantiser.
* :mod:`~graphkit.nn.quant.formats`: default formats of weights, activations, coefficients.
* :class:`QLinear`, :class:`QGCNConv`, :class:`QSAGEConv`, :class:`QGATConv`: layers that
  quantise weights and activations separately.
* :class:`QuantGNN`: a stack of them with exact size accounting in bits.
* :func:`export_integer`, :func:`integer_forward`: integer codes and integer inference.
* :func:`search`, :class:`Supernet`, :func:`derive`: the LPGNAS search.
"""

from graphkit.nn.quant.formats import act_format, coef_format, weight_format
from graphkit.nn.quant.gat import QGATConv
from graphkit.nn.quant.gcn import QGCNConv
from graphkit.nn.quant.integer import IntegerGNN, export_integer, integer_forward
from graphkit.nn.quant.linear import QLinear
from graphkit.nn.quant.model import LayerSpec, QuantGNN, uniform_specs
from graphkit.nn.quant.quantizer import FixedPointQuantizer, QFormat, fixed_point_quantize
from graphkit.nn.quant.sage import QSAGEConv
from graphkit.nn.quant.search import SearchResult, SearchSpace, Supernet, derive, search

__all__ = [
    "QFormat", "fixed_point_quantize", "FixedPointQuantizer",
    "weight_format", "act_format", "coef_format",
    "QLinear", "QGCNConv", "QSAGEConv", "QGATConv",
    "LayerSpec", "QuantGNN", "uniform_specs",
    "IntegerGNN", "export_integer", "integer_forward",
    "SearchSpace", "Supernet", "SearchResult", "search", "derive",
]
