"""Two-layer hypergraph neural networks: the HGNN and HGNN+ teachers of LightHGNN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphkit.nn.conv.hgnn_conv import HGNNConv
from graphkit.nn.conv.hgnnp_conv import HGNNPConv

__all__ = ["HGNN", "HGNNP"]


class HGNN(torch.nn.Module):
    r"""The two-layer HGNN of `"Hypergraph Neural Networks"
    <https://arxiv.org/abs/1809.09401>`_ (Feng et al., AAAI 2019):

    .. math::
        \mathbf{Z} = \mathcal{L}\,\mathrm{dropout}\big(\mathrm{ReLU}(\mathcal{L}\mathbf{X}
        \mathbf{\Theta}_1)\big)\mathbf{\Theta}_2, \qquad
        \mathcal{L} = \mathbf{D}_v^{-1/2}\mathbf{H}\mathbf{W}\mathbf{D}_e^{-1}\mathbf{H}^{\top}
        \mathbf{D}_v^{-1/2}

    (biases omitted), as in DHG's ``HGNN`` without batch normalisation: dropout acts on the
    hidden layer only.

    Args:
        in_channels (int): Size of each input sample.
        hidden_channels (int): Size of the hidden layer. (LightHGNN: 32)
        out_channels (int): Number of classes.
        dropout (float, optional): Dropout on the hidden layer. (default: :obj:`0.5`)
        cached (bool, optional): Cache the normalisation (fixed hypergraph). (default:
            :obj:`False`)
    """

    conv_cls: type[HGNNConv] = HGNNConv

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        dropout: float = 0.5,
        cached: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dropout = dropout
        self.conv1 = self.conv_cls(in_channels, hidden_channels, cached=cached)
        self.conv2 = self.conv_cls(hidden_channels, out_channels, cached=cached)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.conv1.reset_parameters()
        self.conv2.reset_parameters()

    def reset_cache(self) -> None:
        """Forget the cached normalisation of both layers."""
        self.conv1.reset_cache()
        self.conv2.reset_cache()

    def embed(
        self,
        x: Tensor,
        hyperedge_index: Tensor,
        hyperedge_weight: Tensor | None = None,
        num_hyperedges: int | None = None,
    ) -> Tensor:
        """The hidden representation :math:`\\mathrm{ReLU}(\\mathcal{L}\\mathbf{X}\\Theta_1)`."""
        return F.relu(self.conv1(x, hyperedge_index, hyperedge_weight, num_hyperedges))

    def forward(
        self,
        x: Tensor,
        hyperedge_index: Tensor,
        hyperedge_weight: Tensor | None = None,
        num_hyperedges: int | None = None,
    ) -> Tensor:
        h = self.embed(x, hyperedge_index, hyperedge_weight, num_hyperedges)
        h = F.dropout(h, p=self.dropout, training=self.training)
        return self.conv2(h, hyperedge_index, hyperedge_weight, num_hyperedges)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv1.in_channels}, "
                f"{self.conv1.out_channels}, {self.conv2.out_channels}, dropout={self.dropout})")


class HGNNP(HGNN):
    r"""The two-layer HGNN+ of `"HGNN+: General Hypergraph Neural Networks"
    <https://arxiv.org/abs/2203.12835>`_ (Gao et al., TPAMI 2022): :class:`HGNN` with the
    two-stage mean convolution :class:`~graphkit.nn.conv.HGNNPConv`,

    .. math::
        \mathbf{Z} = \mathcal{L}\,\mathrm{dropout}\big(\mathrm{ReLU}(\mathcal{L}\mathbf{X}
        \mathbf{\Theta}_1)\big)\mathbf{\Theta}_2, \qquad
        \mathcal{L} = \mathbf{D}_v^{-1}\mathbf{H}\mathbf{W}\mathbf{D}_e^{-1}\mathbf{H}^{\top}

    (biases omitted).

    Args: as :class:`HGNN`.
    """

    conv_cls = HGNNPConv
