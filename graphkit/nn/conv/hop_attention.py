"""Node-adaptive softmax hop attention of DGMLP/AIR (Zhang et al., KDD 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Linear

__all__ = ["HopAttention"]

ACTIVATIONS = ("sigmoid", "leaky_relu", "relu", "tanh", "none")


class HopAttention(torch.nn.Module):
    r"""Node-adaptive hop attention from the `"Model Degradation Hinders Deep Graph Neural
    Networks" <https://arxiv.org/abs/2206.04361>`_ paper (AIR, KDD 2022; arXiv version
    `"Evaluating Deep Graph Neural Networks" <https://arxiv.org/abs/2108.00955>`_).

    .. math::
        e_{ik} &= \mathrm{act}\left(\mathbf{w}^{\top}
        [\mathbf{x}^{(0)}_i \,\Vert\, \mathbf{x}^{(k)}_i] + b\right)

        w_{ik} &= \frac{\exp(e_{ik})}{\sum_{l=0}^{K} \exp(e_{il})}

        \mathbf{r}_i &= \sum_{k \in \mathcal{S}} w_{ik} \, \mathbf{x}^{(k)}_i,

    with one :class:`~torch.nn.Linear` ``(2F, 1)`` shared by every hop. The weights are a
    softmax over hops, so they are non-negative and sum to 1 per node (unlike DAGNN's
    independent sigmoid gates). With the sigmoid (the small-dataset scripts) the scores lie in
    :math:`(0, 1)`, so two hops' weights differ by less than a factor :math:`e` and every weight
    lies in :math:`(1/(1+Ke),\ e/(e+K))`: at :math:`K=2` the raw features keep at least 16% of
    the mass, at :math:`K=60` each weight is within a factor :math:`e` of uniform;
    ``"leaky_relu"`` (the OGB scripts) has no such bound.
    :math:`\mathcal{S} = \{0, \ldots, K\}` by default; the official small-dataset scripts sum
    only hops :math:`0, \ldots, K-1` although hop :math:`K` is in the softmax denominator, which
    ``skip_last_hop=True`` reproduces.

    Args:
        channels (int): Feature size :math:`F` of each hop.
        activation (str, optional): Score activation, one of ``"sigmoid"`` (small datasets),
            ``"leaky_relu"`` (OGB scripts, slope ``negative_slope``), ``"relu"``, ``"tanh"``,
            ``"none"``. (default: ``"sigmoid"``)
        att_dropout (float, optional): Dropout on the attention weights during training (OGB
            scripts). (default: ``0``)
        negative_slope (float, optional): Slope of ``leaky_relu``. (default: ``0.2``)
        skip_last_hop (bool, optional): Leave the last hop out of the weighted sum (the
            official code's off-by-one). (default: :obj:`False`)

    Shapes:
        - **input:** stacked hops :math:`(N, K + 1, F)`
        - **output:** combined features :math:`(N, F)`, and with ``return_weights=True``
          also the weights :math:`(N, K + 1)`
    """

    def __init__(
        self,
        channels: int,
        activation: str = "sigmoid",
        att_dropout: float = 0.0,
        negative_slope: float = 0.2,
        skip_last_hop: bool = False,
    ) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not 0.0 <= att_dropout < 1.0:
            raise ValueError(f"att_dropout must be in [0, 1), got {att_dropout}")
        self.channels = channels
        self.activation = activation
        self.att_dropout = att_dropout
        self.negative_slope = negative_slope
        self.skip_last_hop = skip_last_hop
        self.lin = Linear(2 * channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def scores(self, hops: Tensor) -> Tensor:
        """Unnormalised scores :math:`e_{ik}`, shape ``(N, K+1)``."""
        if hops.dim() != 3 or hops.size(-1) != self.channels:
            raise ValueError(f"hops must have shape (num_nodes, num_hops + 1, {self.channels}), "
                             f"got {tuple(hops.shape)}")
        # w^T [x0 || xk] = w0^T x0 + w1^T xk: score x0 once instead of concatenating K+1 copies.
        w0, wk = self.lin.weight[0, : self.channels], self.lin.weight[0, self.channels:]
        e = hops @ wk + (hops[:, 0] @ w0).unsqueeze(-1) + self.lin.bias
        if self.activation == "sigmoid":
            return torch.sigmoid(e)
        if self.activation == "leaky_relu":
            return F.leaky_relu(e, self.negative_slope)
        if self.activation == "relu":
            return F.relu(e)
        if self.activation == "tanh":
            return torch.tanh(e)
        return e

    def weights(self, hops: Tensor) -> Tensor:
        """Softmax hop weights :math:`w_{ik}` (before attention dropout), shape ``(N, K+1)``."""
        return torch.softmax(self.scores(hops), dim=-1)

    def forward(self, hops: Tensor, return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        w = self.weights(hops)
        w_used = F.dropout(w, p=self.att_dropout, training=self.training)
        if self.skip_last_hop:
            if hops.size(1) < 2:
                raise ValueError("skip_last_hop needs at least two hops")
            out = torch.bmm(w_used[:, None, :-1], hops[:, :-1]).squeeze(1)
        else:
            out = torch.bmm(w_used.unsqueeze(1), hops).squeeze(1)
        return (out, w) if return_weights else out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, activation={self.activation!r}, "
                f"skip_last_hop={self.skip_last_hop})")
