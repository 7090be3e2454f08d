"""Hyperspherical embeddings: a normalised-softmax head, its loss, and prototype classification.

From `Hyperspherical embedding for novel class classification
<https://arxiv.org/abs/2102.03243>`_ (Pereira, Joly, Valduriez and Porto). Embeddings and class
weights are L2-normalised, so a class score is a cosine; training with a softmax over scaled
cosines (no pairs or triplets to sample) clusters each class around a direction on the sphere.
Classes never seen in training are then recognised by the nearest class prototype, the
normalised mean of a few labelled embeddings:

.. math::
    \\ell(x, y) = -\\log \\frac{e^{s(\\cos\\theta_y - m)}}
        {e^{s(\\cos\\theta_y - m)} + \\sum_{j \\ne y} e^{s \\cos\\theta_j}},
    \\qquad \\cos\\theta_j = \\frac{w_j^\\top f(x)}{\\|w_j\\| \\|f(x)\\|}

with scale :math:`s` and additive cosine margin :math:`m` (``m = 0``: plain normalised softmax).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.modules import resize_buffers_to
from graphkit.extras._core.registry import register_model

PAPER = "Hyperspherical embedding for novel class classification"


@register_model("hyperspherical", family="training", paper=PAPER)
class HypersphericalHead(nn.Module):
    """Cosine classifier: :math:`\\cos\\theta_j` between the embedding and class weight ``j``.

    Args:
        in_features: embedding width, positive.
        num_classes: number of training classes, positive.

    Shapes:
        - input: ``(B, in_features)``
        - output: ``(B, num_classes)`` cosines in ``[-1, 1]`` (scale them in the loss).
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 1:
            raise ValueError(
                f"in_features and num_classes must be positive, got {in_features}, {num_classes}"
            )
        self.in_features, self.num_classes = in_features, num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"input must be (B, {self.in_features}), got {tuple(x.shape)}")
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).t()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


class NormalizedSoftmaxLoss(nn.Module):
    """Cross-entropy over scaled cosines, the target's cosine lowered by ``margin``.

    Args:
        scale: :math:`s > 0`; logits lie in ``[-s(1 + m), s]`` (default: ``16.0``).
        margin: additive cosine margin :math:`m \\in [0, 1)` (default: ``0.0``).

    Shapes:
        - cosines: ``(B, C)`` in ``[-1, 1]``, e.g. from :class:`HypersphericalHead`.
        - target: ``(B,)`` class indices.
        - output: scalar (batch mean).
    """

    def __init__(self, scale: float = 16.0, margin: float = 0.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must lie in [0, 1), got {margin}")
        self.scale, self.margin = float(scale), float(margin)

    def logits(self, cosines: Tensor, target: Tensor | None = None) -> Tensor:
        """``scale * cosines``, minus ``scale * margin`` on each target class when given."""
        if cosines.dim() != 2:
            raise ValueError(f"cosines must be (B, C), got shape {tuple(cosines.shape)}")
        if target is None or self.margin == 0.0:
            return self.scale * cosines
        return self.scale * (cosines - self.margin * F.one_hot(target, cosines.shape[1]))

    def forward(self, cosines: Tensor, target: Tensor) -> Tensor:
        if target.shape != cosines.shape[:1]:
            raise ValueError(
                f"target must be ({cosines.shape[0]},), got shape {tuple(target.shape)}"
            )
        if target.dtype.is_floating_point or target.dtype == torch.bool:  # metadata only
            raise ValueError(f"target must hold integer class indices, got {target.dtype}")
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= cosines.shape[1]):
            raise ValueError(f"target classes must lie in [0, {cosines.shape[1]})")
        if cosines.detach().abs().max() > 1 + 1e-5:
            raise ValueError("cosines must lie in [-1, 1]; pass the head's output, not logits")
        return F.cross_entropy(self.logits(cosines, target), target)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, margin={self.margin}"


class PrototypeClassifier(nn.Module):
    """Nearest-prototype (cosine) classifier for classes seen only through a few examples.

    :meth:`fit` sets each class's prototype to the normalised mean of its normalised
    embeddings; :meth:`forward` returns the cosine of each embedding with each prototype.

    Shapes:
        - :meth:`fit`: ``embeddings (S, D)``, ``labels (S,)`` in ``[0, C)``, each class present.
        - :meth:`forward`: ``(B, D)`` -> ``(B, C)`` cosines; :meth:`predict`: ``(B,)``.
    """

    prototypes: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("prototypes", torch.zeros(0, 0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        resize_buffers_to(self, state_dict, prefix, ("prototypes",))  # sized by fit / store
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def fit(self, embeddings: Tensor, labels: Tensor) -> PrototypeClassifier:
        if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"need embeddings (S, D) and labels (S,), got {tuple(embeddings.shape)} and "
                f"{tuple(labels.shape)}"
            )
        if labels.dtype == torch.bool:  # bincount has no boolean kernel
            raise ValueError("labels must be non-negative integers, got a boolean tensor")
        if labels.dtype.is_floating_point or labels.numel() == 0 or int(labels.min()) < 0:
            raise ValueError("labels must be non-negative integers, at least one")
        if not bool(torch.isfinite(embeddings).all()):
            raise ValueError("embeddings contain NaN or infinite values")
        counts = torch.bincount(labels)
        if bool((counts == 0).any()):
            raise ValueError("labels must use every class 0 .. C-1 at least once")
        unit = F.normalize(embeddings, dim=1)
        sums = torch.zeros(counts.numel(), unit.shape[1], dtype=unit.dtype, device=unit.device)
        sums.index_add_(0, labels, unit)
        self.prototypes = F.normalize(sums, dim=1)
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.prototypes.numel() == 0:
            raise RuntimeError("no prototypes; call fit(embeddings, labels) first")
        if x.dim() != 2 or x.shape[1] != self.prototypes.shape[1]:
            raise ValueError(f"input must be (B, {self.prototypes.shape[1]}), got {tuple(x.shape)}")
        return F.normalize(x, dim=1) @ self.prototypes.t()

    def predict(self, x: Tensor) -> Tensor:
        return self(x).argmax(dim=1)
