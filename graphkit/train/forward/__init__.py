r"""Forward learning of GNNs: every layer trained with its own local loss, no backpropagation
across layers (`Park et al., "Forward Learning of Graph Neural Networks"
<https://arxiv.org/abs/2403.11004>`_, ICLR 2024).

* :class:`LayerwiseTrainer`: per-layer Adam, validation every few epochs, early stopping with
  best-checkpoint restore; :class:`ForwardLayer`: L2-normalised input, a PyG convolution, ReLU.
* Local losses: :func:`ff_loss` (Forward-Forward goodness), :func:`sf_loss` (virtual-node
  cross-entropy), :func:`link_loss` (dot-product BCE), :func:`ff_link_loss` (pair goodness).
* :class:`VirtualClassNodes`: class nodes linked to the training nodes only.
* :func:`frozen_input_forward`: a GCN layer's propagation of its frozen input, computed once;
  :class:`RowSplitForward`: a layer's propagation over the edges into a block of rows only
  (what a local loss on those rows needs).
* Node classification: :class:`FFLabelAppending` (``ff-la``), :class:`FFVirtualNodes`
  (``ff-vn``), :class:`SingleForward` (``sf``), :class:`SFTop2Loss`, :class:`SFTop2Input`, and
  the :class:`BackpropNode` (``bp``) baseline; link prediction: :class:`ForwardLink` (``sf``),
  :class:`LinkTop2Loss`, :class:`LinkTop2Input`, :class:`FFLink` (``ff-la`` and ``ff-vn``) and
  :class:`BackpropLink` (``bp``). :func:`node_model` / :func:`link_model` build them by name.
* :func:`node_split` / :func:`link_split`: the paper's 64/16/20 node and edge splits.
"""

from graphkit.train.forward.augment import AugmentedGraph, VirtualClassNodes, label_matrix
from graphkit.train.forward.backprop import BackpropGNN, BackpropNode
from graphkit.train.forward.base import NodeScheme
from graphkit.train.forward.cache import frozen_input_forward, supports_propagation_cache
from graphkit.train.forward.layers import (
    MODELS,
    ForwardLayer,
    handoff,
    l2_normalize_rows,
    make_conv,
)
from graphkit.train.forward.link import BackpropLink, FFLink, ForwardLink
from graphkit.train.forward.link_topdown import LinkTop2Input, LinkTop2Loss
from graphkit.train.forward.losses import (
    ff_link_logits,
    ff_link_loss,
    ff_loss,
    goodness,
    link_logits,
    link_loss,
    sf_logits,
    sf_loss,
)
from graphkit.train.forward.node_ff import FFLabelAppending, FFVirtualNodes, wrong_classes
from graphkit.train.forward.node_sf import SingleForward
from graphkit.train.forward.node_topdown import SFTop2Input, SFTop2Loss
from graphkit.train.forward.rowsplit import RowSplitForward, supports_row_split
from graphkit.train.forward.schemes import (
    LINK_SCHEMES,
    NODE_SCHEMES,
    SCHEMES,
    link_model,
    node_model,
)
from graphkit.train.forward.splits import link_split, node_split
from graphkit.train.forward.trainer import (
    EarlyStopping,
    LayerwiseTrainer,
    StoppingLog,
    local_step,
)

__all__ = [
    "AugmentedGraph", "VirtualClassNodes", "label_matrix",
    "BackpropGNN", "BackpropNode", "BackpropLink", "FFLink", "ForwardLink", "LinkTop2Input",
    "LinkTop2Loss",
    "NodeScheme", "frozen_input_forward", "supports_propagation_cache",
    "MODELS", "ForwardLayer", "handoff", "l2_normalize_rows", "make_conv",
    "ff_link_logits", "ff_link_loss", "ff_loss", "goodness", "link_logits", "link_loss",
    "sf_logits", "sf_loss",
    "FFLabelAppending", "FFVirtualNodes", "wrong_classes", "SingleForward",
    "SFTop2Input", "SFTop2Loss", "RowSplitForward", "supports_row_split",
    "LINK_SCHEMES", "NODE_SCHEMES", "SCHEMES", "link_model", "node_model",
    "link_split", "node_split",
    "EarlyStopping", "LayerwiseTrainer", "StoppingLog", "local_step",
]
