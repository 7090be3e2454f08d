"""Supervised local learning, plain and with the Momentum Auxiliary Network (MAN).

From `Momentum Auxiliary Network for Supervised Local Learning
<https://arxiv.org/abs/2407.05623>`_ (Su, Cai, Zhu, He, Xu, Guan and Si, ECCV 2024; official
code JunhaoSu0/MAN). A sequential network is cut into :math:`K` gradient-isolated blocks
:math:`f_1, \\dots, f_K`. Block :math:`j < K` is trained only by its local loss

.. math::
    \\mathcal{L}_j = \\ell\\big(a_j(h_j), y\\big), \\qquad h_j = f_j(\\mathrm{sg}(h_{j-1}))

through an auxiliary network :math:`a_j` (:math:`\\mathrm{sg}` stops the gradient, so no gradient
crosses a block border); the last block is trained by the task loss. Block outputs are freed
block by block, so the peak activation memory is that of one block, not of the whole net.

Plain local learning (``aux="plain"``) uses a small head :math:`a_j = g_j`. MAN
(``aux="man"``) puts in front of that head a copy of the *next* block's first layer
:math:`u_{j+1}`, whose parameters follow the real layer by an exponential moving average after
every step,

.. math::
    \\bar\\theta_{j+1} \\leftarrow m\\,\\bar\\theta_{j+1} + (1 - m)\\,\\theta_{j+1},

plus, with ``learnable_bias=True``, a trainable copy :math:`b_j` of the same layer that absorbs
the mismatch between the features block :math:`j` produces and those the EMA copy expects:
:math:`a_j(h) = g_j\\big(u_{\\bar\\theta_{j+1}}(h) + b_j(h)\\big)` (the official code's ``EMA_Net``
and ``LB``; both start as copies of the layer). Later blocks' knowledge thus reaches earlier
ones without end-to-end backpropagation.

Only parameters are averaged; a buffer of the EMA copy (e.g. batch-norm running statistics) is
its own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.blocks import MLP, ConvNormAct
from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model

PAPER = "Momentum Auxiliary Network for Supervised Local Learning"

LossFn = Callable[[Tensor, Tensor], Tensor]


def local_head(feature_shape: Sequence[int], num_classes: int, width: int = 64) -> nn.Module:
    """A small classifier head for one block's features (the "1 conv, 2 fc" head of the paper).

    Args:
        feature_shape: one sample's feature shape, ``(C, H, W)`` or ``(D,)``.
        num_classes: number of classes, positive.
        width: channels of the convolution and hidden width of the MLP (default: ``64``).

    Shapes:
        - input: ``(B, *feature_shape)``
        - output: ``(B, num_classes)``
    """
    check_positive(num_classes=num_classes, width=width)
    shape = tuple(int(s) for s in feature_shape)
    if len(shape) == 1:
        return MLP(shape[0], width, num_classes, act_layer=nn.ReLU)
    if len(shape) == 3:
        return nn.Sequential(
            ConvNormAct(shape[0], width, 3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            MLP(width, width, num_classes, act_layer=nn.ReLU),
        )
    raise ValueError(f"feature_shape must be (C, H, W) or (D,), got {shape}")


def _first_layer(block: nn.Sequential) -> nn.Module:
    return block[0]


@register_model("man", family="training", paper=PAPER)
class MANLocalTrainer(nn.Module):
    """Block-wise local training of an ``nn.Sequential``, with MAN or plain auxiliary nets.

    Args:
        model: the network, an ``nn.Sequential`` whose last layer outputs the logits.
        splits: the indices where blocks start, strictly increasing in ``(0, len(model))``;
            ``K = len(splits) + 1`` blocks.
        heads: one classifier head per block but the last, mapping that block's auxiliary
            features to logits (for MAN: the output of the next block's first layer; for plain:
            the block's output). ``None`` builds :func:`local_head` heads, which needs
            ``num_classes`` and ``example_input`` (default: ``None``).
        aux: ``"man"`` or ``"plain"`` (default: ``"man"``).
        momentum: :math:`m` of the EMA, in ``[0, 1)`` (default: ``0.99``).
        learnable_bias: add the trainable copy :math:`b_j` (MAN only) (default: ``True``).
        loss_fn: the local and final loss (default: cross-entropy).
        num_classes: classes of the default heads (default: ``None``).
        example_input: a batch used once, without gradients and in eval mode, to size the
            default heads (default: ``None``).

    The EMA copies have ``requires_grad=False``; an optimizer over :meth:`parameters` never
    updates them.

    Shapes:
        - :meth:`forward`: the model's end-to-end output (inference).
        - :meth:`step`: ``K`` local losses, the last one the task loss.
    """

    def __init__(
        self,
        model: nn.Sequential,
        splits: Sequence[int],
        heads: Sequence[nn.Module] | None = None,
        aux: str = "man",
        momentum: float = 0.99,
        learnable_bias: bool = True,
        loss_fn: LossFn = F.cross_entropy,
        num_classes: int | None = None,
        example_input: Tensor | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
        cuts = [int(s) for s in splits]
        if not cuts or any(b <= a for a, b in zip([0, *cuts], [*cuts, len(model)], strict=True)):
            raise ValueError(
                f"splits must be strictly increasing in (0, {len(model)}) and non-empty, got "
                f"{list(splits)}"
            )
        if aux not in ("man", "plain"):
            raise ValueError(f"aux must be 'man' or 'plain', got {aux!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.model, self.splits, self.aux = model, cuts, aux
        self.momentum, self.loss_fn = momentum, loss_fn
        self.learnable_bias = learnable_bias and aux == "man"
        bounds = [0, *cuts, len(model)]
        self.blocks = [model[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        n_aux = len(self.blocks) - 1
        if aux == "man":
            nxt = [_first_layer(self.blocks[j + 1]) for j in range(n_aux)]
            self.ema = nn.ModuleList(copy.deepcopy(layer) for layer in nxt)
            for p in self.ema.parameters():
                p.requires_grad_(False)
            self.bias_net = (
                nn.ModuleList(copy.deepcopy(layer) for layer in nxt)
                if self.learnable_bias else None
            )
        else:
            self.ema, self.bias_net = None, None
        if heads is None:
            if num_classes is None or example_input is None:
                raise ValueError("give heads, or num_classes and example_input for default heads")
            heads = [local_head(s, num_classes) for s in self._aux_feature_shapes(example_input)]
        if len(heads) != n_aux:
            raise ValueError(f"need {n_aux} heads (one per block but the last), got {len(heads)}")
        self.heads = nn.ModuleList(heads)

    @torch.no_grad()
    def _aux_feature_shapes(self, x: Tensor) -> list[tuple[int, ...]]:
        with eval_mode(self):
            shapes, h = [], x
            for j, block in enumerate(self.blocks[:-1]):
                h = block(h)
                shapes.append(tuple((self.ema[j](h) if self.ema is not None else h).shape[1:]))
        return shapes

    def aux_features(self, j: int, h: Tensor) -> Tensor:
        """What head ``j`` sees of block ``j``'s output ``h``."""
        if self.ema is None:
            return h
        z = self.ema[j](h)
        return z + self.bias_net[j](h) if self.bias_net is not None else z

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def local_losses(self, x: Tensor, y: Tensor) -> list[Tensor]:
        """The ``K`` losses of one batch, each block fed its predecessor's detached output.

        Every graph stays alive until the caller backpropagates; :meth:`step` instead
        backpropagates block by block, which is what bounds the memory.
        """
        return list(self._losses(x, y, backward=False))

    def _losses(self, x: Tensor, y: Tensor, backward: bool):
        h = x
        last = len(self.blocks) - 1
        for j, block in enumerate(self.blocks):
            h = block(h.detach())  # the gradient stops at every block border
            out = h if j == last else self.heads[j](self.aux_features(j, h))
            loss = self.loss_fn(out, y)
            if backward:
                loss.backward()
                loss = loss.detach()
            yield loss

    def step(self, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer | None = None
             ) -> list[Tensor]:
        """One training step: local backward passes, the optimizer step, the EMA update.

        Args:
            x: a batch of inputs.
            y: its targets.
            optimizer: zeroed before and stepped after the backward passes; ``None`` leaves
                the gradients to the caller (the EMA is still updated).

        Returns:
            The ``K`` detached losses.
        """
        if optimizer is not None:
            optimizer.zero_grad()
        losses = list(self._losses(x, y, backward=True))
        if optimizer is not None:
            optimizer.step()
        self.update_ema()
        return losses

    @torch.no_grad()
    def update_ema(self) -> None:
        """Average each next block's first layer into its EMA copy (the formula above)."""
        if self.ema is None:
            return
        m = self.momentum
        for j, ema in enumerate(self.ema):
            src = _first_layer(self.blocks[j + 1])
            for p_ema, p in zip(ema.parameters(), src.parameters(), strict=True):
                p_ema.mul_(m).add_(p.detach(), alpha=1.0 - m)

    def extra_repr(self) -> str:
        return (
            f"blocks={len(self.blocks)}, splits={self.splits}, aux={self.aux!r}, "
            f"momentum={self.momentum}, learnable_bias={self.learnable_bias}"
        )
