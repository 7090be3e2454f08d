"""The deep MLP with initial residual connections of DGMLP/AIR (Zhang et al., KDD 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Linear, ModuleList, PReLU

from graphkit.nn._checks import check_node_features

__all__ = ["InitialResidualMLP"]


class InitialResidualMLP(torch.nn.Module):
    r"""A deep MLP whose every hidden layer also sees the first hidden state, from the
    `"Model Degradation Hinders Deep Graph Neural Networks"
    <https://arxiv.org/abs/2206.04361>`_ paper (``FeedForwardNetII`` in the official code).

    .. math::
        \mathbf{h}_0 &= \mathrm{BN}(\mathbf{X}\mathbf{W}_0)\;[+\,\mathbf{X}
        \text{ if } F = h]

        \mathbf{u}_l &= \mathrm{drop}(\mathrm{PReLU}(\mathbf{h}_{l-1})), \qquad
        \mathbf{h}_l = \mathrm{BN}\big((\mathbf{u}_l + \mathbf{h}_0)\mathbf{W}_l\big)
        + \mathbf{u}_l, \quad l = 1, \ldots, L-2

        \mathbf{Y} &= \mathrm{drop}(\mathrm{PReLU}(\mathbf{h}_{L-2}))\,\mathbf{W}_{L-1}.

    With ``initial_residual=False`` the :math:`+\mathbf{h}_0` term is dropped (a plain residual
    MLP, the paper's degradation baseline). ``num_layers=1`` is a single linear layer (the
    logistic regression of the official small-dataset SGC+AIR).

    Args:
        in_channels (int): Input size :math:`F`.
        hidden_channels (int): Hidden width :math:`h`.
        out_channels (int): Output size.
        num_layers (int): Transformation depth :math:`L \ge 1`.
        dropout (float, optional): Dropout after each PReLU. (default: ``0``)
        batch_norm (bool, optional): Batch normalisation in hidden layers. (default: ``True``)
        initial_residual (bool, optional): Add :math:`\mathbf{h}_0` to each hidden layer's
            input. (default: ``True``)

    Shapes:
        - **input:** :math:`(N, F)`
        - **output:** :math:`(N, \text{out})`
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        dropout: float = 0.0,
        batch_norm: bool = True,
        initial_residual: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers (transformation depth) must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.initial_residual = initial_residual
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = ModuleList(Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        n_hidden = num_layers - 1
        self.norms = ModuleList(
            BatchNorm1d(hidden_channels) if batch_norm else torch.nn.Identity()
            for _ in range(n_hidden)
        )
        self.acts = ModuleList(PReLU() for _ in range(n_hidden))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()
        for norm in self.norms:
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()
        for act in self.acts:
            act.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        check_node_features(x, self.in_channels)
        if self.num_layers == 1:
            return self.lins[0](x)
        h = self.norms[0](self.lins[0](x))
        if self.in_channels == self.hidden_channels:
            h = h + x
        h0 = h
        for lin, norm, act in zip(self.lins[1:-1], self.norms[1:], self.acts[:-1]):
            u = F.dropout(act(h), p=self.dropout, training=self.training)
            h = norm(lin(u + h0 if self.initial_residual else u)) + u
        u = F.dropout(self.acts[-1](h), p=self.dropout, training=self.training)
        return self.lins[-1](u)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, num_layers={self.num_layers}, "
                f"initial_residual={self.initial_residual})")
