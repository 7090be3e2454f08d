"""Message-passing layers, one per file."""

from graphkit.nn.conv.dagnn_prop import DAGNNProp
from graphkit.nn.conv.degree_power_gcn import DegreePowerGCNConv, degree_power_norm
from graphkit.nn.conv.graphnas_conv import GRAPHNAS_AGGREGATIONS, GRAPHNAS_ATTENTIONS, GraphNASConv
from graphkit.nn.conv.hgnn_conv import HGNNConv
from graphkit.nn.conv.hgnnp_conv import HGNNPConv
from graphkit.nn.conv.hop_attention import HopAttention

__all__: list[str] = []
__all__ += ["DegreePowerGCNConv", "degree_power_norm"]
__all__ += ["DAGNNProp", "HopAttention"]
__all__ += ["HGNNConv", "HGNNPConv"]
__all__ += ["GraphNASConv", "GRAPHNAS_ATTENTIONS", "GRAPHNAS_AGGREGATIONS"]
