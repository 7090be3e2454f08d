"""Models built from graphkit and PyG layers."""

from graphkit.nn.models.air import APPNPAIR, GCNAIR, SGCAIR
from graphkit.nn.models.dagnn import DAGNN
from graphkit.nn.models.gcn import GCN
from graphkit.nn.models.hgnn import HGNN, HGNNP
from graphkit.nn.models.initial_residual_mlp import InitialResidualMLP
from graphkit.nn.models.lighthgnn import LightHGNN
from graphkit.nn.models.link_predictor import GCNLinkPredictor

__all__: list[str] = []
__all__ += ["GCN", "GCNLinkPredictor"]
__all__ += ["DAGNN", "SGCAIR", "APPNPAIR", "GCNAIR", "InitialResidualMLP"]
__all__ += ["HGNN", "HGNNP", "LightHGNN"]
