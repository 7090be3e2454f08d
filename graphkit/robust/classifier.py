"""STABLE's "advanced GCN": a two-layer GCN with degree-power normalisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.nn.conv import DegreePowerGCNConv

__all__ = ["DegreePowerGCN"]


class DegreePowerGCN(torch.nn.Module):
    r"""Two :class:`~graphkit.nn.conv.DegreePowerGCNConv` layers, the classifier of `"Reliable
    Representations Make A Stronger Defender: Unsupervised Structure Refinement for Robust GNN"
    <https://arxiv.org/abs/2207.00012>`_ (Li et al., KDD 2022):

    .. math::
        Z = \tilde{A}_{\alpha}\,\mathrm{dropout}\big(\mathrm{ReLU}(\tilde{A}_{\alpha} X W_1
        + b_1)\big)\,W_2 + b_2.

    Unlike :class:`graphkit.nn.models.GCN`, the input features are not dropped out (the
    official code drops only the hidden layer). The normalised graph is cached after the first
    call (``cached=True``), so use one instance per graph.

    Args:
        in_channels (int): input size (512 for STABLE embeddings).
        hidden_channels (int): hidden size (STABLE uses ``16``, the default of
            :class:`~graphkit.robust.STABLEConfig`).
        out_channels (int): number of classes.
        alpha (float): degree exponent of both layers (default: ``-0.5``, plain GCN).
        dropout (float): dropout on the hidden layer (default: ``0.5``).
        cached (bool): cache the normalised graph (default: ``True``).

    Shapes:
        - **input:** :math:`(N, F)`, edge indices :math:`(2, E)`
        - **output:** logits :math:`(N, C)`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        alpha: float = -0.5,
        dropout: float = 0.5,
        cached: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dropout = dropout
        self.conv1 = DegreePowerGCNConv(in_channels, hidden_channels, alpha, cached=cached)
        self.conv2 = DegreePowerGCNConv(hidden_channels, out_channels, alpha, cached=cached)

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, edge_index)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv1.in_channels}, "
                f"{self.conv1.out_channels}, {self.conv2.out_channels}, "
                f"alpha={self.conv1.alpha}, dropout={self.dropout})")
