"""Build a scheme by name: ``bp``, ``ff-la``, ``ff-vn``, ``sf``, ``sf-top2loss``, ``sf-top2input``.

Node classification supports all six; link prediction supports ``sf`` (layer-wise dot-product
BCE, ``GNN_FL`` of the official code) and ``bp``.
"""

from __future__ import annotations

from torch import nn

from graphkit.train.forward.backprop import BackpropNode
from graphkit.train.forward.base import NodeScheme
from graphkit.train.forward.link import BackpropLink, ForwardLink
from graphkit.train.forward.node_ff import FFLabelAppending, FFVirtualNodes
from graphkit.train.forward.node_sf import SingleForward
from graphkit.train.forward.node_topdown import SFTop2Input, SFTop2Loss

__all__ = ["LINK_SCHEMES", "NODE_SCHEMES", "SCHEMES", "link_model", "node_model"]

NODE_SCHEMES: dict[str, type[NodeScheme]] = {
    "bp": BackpropNode,
    "ff-la": FFLabelAppending,
    "ff-vn": FFVirtualNodes,
    "sf": SingleForward,
    "sf-top2loss": SFTop2Loss,
    "sf-top2input": SFTop2Input,
}
LINK_SCHEMES: dict[str, type[nn.Module]] = {"bp": BackpropLink, "sf": ForwardLink}
SCHEMES = tuple(NODE_SCHEMES)


def node_model(scheme: str, model: str, in_channels: int, hidden_channels: int,
               num_classes: int, num_layers: int = 4, **kwargs) -> NodeScheme:
    """A node-classification scheme (see :data:`NODE_SCHEMES`)."""
    if scheme not in NODE_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {tuple(NODE_SCHEMES)}")
    return NODE_SCHEMES[scheme](model, in_channels, hidden_channels, num_classes, num_layers,
                                **kwargs)


def link_model(scheme: str, model: str, in_channels: int, hidden_channels: int,
               num_layers: int = 4) -> nn.Module:
    """A link-prediction scheme (see :data:`LINK_SCHEMES`)."""
    if scheme not in LINK_SCHEMES:
        raise ValueError(f"scheme {scheme!r} is not available for link prediction; expected "
                         f"one of {tuple(LINK_SCHEMES)}")
    return LINK_SCHEMES[scheme](model, in_channels, hidden_channels, num_layers)
