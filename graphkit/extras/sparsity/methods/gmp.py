"""Gradual magnitude pruning (Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of
pruning for model compression", https://arxiv.org/abs/1710.01878).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from torch import nn

from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.masks import Granularity, Pruner
from graphkit.extras.sparsity.schedules import CubicSchedule


@register_model(
    "gmp",
    family="pruning",
    paper="To prune, or not to prune: exploring the efficacy of pruning for model compression",
)
class GradualMagnitudePruner(Pruner):
    r"""Prune the smallest-magnitude weights of each layer on the cubic schedule of Zhu & Gupta
    (https://arxiv.org/abs/1710.01878).

    At steps :math:`t = t_0, t_0 + \Delta t, \dots, t_0 + n\Delta t` every masked layer is
    pruned to sparsity

    .. math::
        s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{n\,\Delta t}\right)^3

    keeping its ``round((1 - s_t) * numel)`` largest ``|w|``; training continues in between
    and pruned weights stay zero (their latent is zeroed and they get no gradient). Any layer
    weight works: ``Linear``, ``Conv*d``, or an LSTM's gate matrices named in ``layers`` as
    parameter paths (``"rnn.weight_ih_l0"``, ``"rnn.weight_hh_l0"``).
    Call :meth:`step` once per training step, after the optimiser step.

    Args:
        model: the model to prune.
        s_f: final sparsity.
        t0: first pruning step. (default: ``0``)
        n: number of pruning intervals. (default: ``1``)
        dt: steps between pruning steps. (default: ``1``)
        s_i: initial sparsity. (default: ``0.0``)
        granularity: what is pruned together. (default: single weights)
        allocation: ``"uniform"`` (each layer at :math:`s_t`, the paper's setting) or
            ``"global"``. (default: ``"uniform"``)
        layers: module names or parameter paths to prune. (default: every ``Linear`` /
            ``Conv*d``)
    """

    def __init__(
        self,
        model: nn.Module,
        s_f: float,
        t0: int = 0,
        n: int = 1,
        dt: int = 1,
        s_i: float = 0.0,
        granularity: Granularity | None = None,
        allocation: str = "uniform",
        layers: Iterable[str] | None = None,
    ) -> None:
        super().__init__(model, CubicSchedule(s_f, t0, n, dt, s_i), granularity, allocation, layers)


def small_dense_equivalent(widths: Sequence[int], sparsity: float) -> list[int]:
    """Widths of a dense MLP with as many weights as an MLP of ``widths`` has non-zeros.

    The paper's large-sparse vs small-dense comparison: every hidden width is scaled by one
    factor ``c`` (input and output widths stay), with ``c`` the root of
    ``sum_l (c_l w_l)(c_{l+1} w_{l+1}) = (1 - sparsity) * sum_l w_l w_{l+1}``; widths are then
    rounded (at least 1). Biases are not counted, as they are not pruned.

    Args:
        widths: ``[in, hidden_1, ..., hidden_k, out]`` of the large model (``k >= 1``).
        sparsity: the large model's sparsity.
    """
    fractional = [w for w in widths if not float(w).is_integer()]
    if fractional:
        raise ValueError(f"widths must be integers, got {list(widths)}")
    widths = [int(w) for w in widths]
    if len(widths) < 3 or min(widths) < 1:
        raise ValueError(f"need [in, hidden..., out] widths >= 1 with a hidden layer: {widths}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    # weights(c) = quad * c^2 + lin * c: hidden-hidden products scale by c^2, the two ends by c
    hidden = widths[1:-1]
    quad = sum(a * b for a, b in zip(hidden, hidden[1:], strict=False))
    lin = widths[0] * hidden[0] + hidden[-1] * widths[-1]
    target = (1.0 - sparsity) * (quad + lin)
    if quad == 0:  # a single hidden layer: weights are linear in c
        c = target / lin
    else:
        c = (-lin + math.sqrt(lin * lin + 4 * quad * target)) / (2 * quad)
    return [widths[0], *(max(1, round(c * h)) for h in hidden), widths[-1]]
