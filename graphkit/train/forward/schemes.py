"""Build a scheme by name: ``bp``, ``ff-la``, ``ff-vn``, ``sf``, ``sf-top2loss``, ``sf-top2input``.

Both tasks support all six. For links: ``sf`` is layer-wise dot-product BCE (``GNN_FL`` of the
official code), ``sf-top2input`` its top-down version (``GNN_FL-CE-TopDown``), ``sf-top2loss``
graphkit's link version of the node scheme, and ``ff-la`` / ``ff-vn`` both the FF-goodness
learner (``GNN_FL`` with its FF loss: a link task has no labels to append or class nodes to
link, so the split's negative pairs are the negatives of both).
"""

from __future__ import annotations

from torch import nn

from graphkit.train.forward.backprop import BackpropNode
from graphkit.train.forward.base import NodeScheme
from graphkit.train.forward.link import BackpropLink, FFLink, ForwardLink
from graphkit.train.forward.link_topdown import LinkTop2Input, LinkTop2Loss
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
LINK_SCHEMES: dict[str, type[nn.Module]] = {
    "bp": BackpropLink,
    "ff-la": FFLink,
    "ff-vn": FFLink,
    "sf": ForwardLink,
    "sf-top2loss": LinkTop2Loss,
    "sf-top2input": LinkTop2Input,
}
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
