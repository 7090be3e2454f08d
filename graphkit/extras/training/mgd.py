"""Multi-granularity distillation (MGD) for lightweight semi-supervised segmentation.

From `Multi-Granularity Distillation Scheme Towards Lightweight Semi-Supervised Semantic
Segmentation <https://arxiv.org/abs/2208.10169>`_ (Qin, Wu, Li, Xiao, Zheng and Wang; official
code JayQine/MGD-SSSS). A light student learns from two structurally complementary, frozen
teachers on labelled and unlabelled images at three granularities. With student logits
:math:`s`, features :math:`f`, teacher logits :math:`t_k` and features :math:`g_k`
(all logits ``(B, C, H, W)``):

.. math::
    \\mathcal{L}_{img} &= \\sum_b \\sum_c
        \\big| \\bar s_{bc} - \\bar t_{2,bc} \\big|,
        \\qquad \\bar z_{bc} = \\tfrac{1}{HW} \\textstyle\\sum_{hw} z_{bchw} \\\\
    \\mathcal{L}_{reg} &= \\mathrm{MSE}\\big(A(P f), A(P g_1)\\big),
        \\qquad A(z)_{ij} = \\cos(z_{:,i}, z_{:,j}) \\\\
    \\mathcal{L}_{pix} &= \\sum_k \\ell_{pix}(s, t_k)

* image level, semantic-sensitive: the class distribution of each image (its average-pooled
  logits) matches the second teacher's, L1;
* region level, content-aware: :math:`P` average-pools the features to a
  ``region_grid x region_grid`` grid of regions, and the cosine affinities between regions
  match the first teacher's (:func:`~graphkit.extras.training.distill.affinity_loss`, so the
  widths may differ);
* pixel level, consistency: every pixel's prediction agrees with each teacher's.
  ``pixel="soft"`` (default) uses :func:`~graphkit.extras.training.distill.kd_kl` per pixel, so
  every loss is exactly 0 when the student's outputs equal the teachers';
  ``pixel="hard"`` is the official code's cross-entropy against the teacher's arg-max
  pseudo-label (which is not 0 at equality).

The assignment of teachers to the image and region terms follows the official training
script (region: first teacher, image: second), and so do the default weights and reductions
(``lambda_1 = 0.002`` on the image term, summed over batch and classes; ``lambda_2 = 100`` on
the region term, a mean; the official VOC configs). The official script also CutMix-mixes the
unlabelled images and keeps fine-tuning one teacher; here the teachers are frozen and mixing
is left to the data pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.training.distill import affinity_loss, kd_kl

PAPER = (
    "Multi-Granularity Distillation Scheme Towards Lightweight Semi-Supervised Semantic "
    "Segmentation"
)

#: A segmentation model's output: ``(features (B, D, h, w), logits (B, C, H, W))``.
SegOutput = tuple[Tensor, Tensor]


def _check_output(out: SegOutput, who: str) -> tuple[Tensor, Tensor]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(f"{who} must return (features, logits), got {type(out).__name__}")
    feats, logits = out
    if feats.dim() != 4 or logits.dim() != 4:
        raise ValueError(
            f"{who} features and logits must be (B, *, H, W), got {tuple(feats.shape)} and "
            f"{tuple(logits.shape)}"
        )
    return feats, logits


class MGDLoss(nn.Module):
    """The image-, region- and pixel-level distillation terms and their weighted sum.

    Args:
        image_w: weight of the image-level semantic-sensitive loss (default: ``0.002``, the
            official ``lambda_1``; the term is a sum over the batch, so scale it with the batch).
        region_w: weight of the region-level content-aware loss (default: ``100.0``, the
            official ``lambda_2``).
        pixel_w: weight of the pixel-level consistency loss (default: ``1.0``).
        region_grid: the features are pooled to ``region_grid x region_grid`` regions
            (default: ``7``, the official value).
        pixel: ``"soft"`` (per-pixel KL at temperature ``T``) or ``"hard"`` (official:
            cross-entropy against the teacher's arg-max) (default: ``"soft"``).
        T: temperature of the soft pixel loss (default: ``1.0``).

    Shapes:
        - student: ``(features (B, D, h, w), logits (B, C, H, W))``.
        - teachers: one or two such pairs, the logits of the student's shape; the features may
          differ in width and size. With one teacher it plays both roles.
        - output: a dict of scalars ``image``, ``region``, ``pixel`` (unweighted) and
          ``total`` (weighted sum).
    """

    def __init__(
        self,
        image_w: float = 0.002,
        region_w: float = 100.0,
        pixel_w: float = 1.0,
        region_grid: int = 7,
        pixel: str = "soft",
        T: float = 1.0,
    ) -> None:
        super().__init__()
        for name, w in (("image_w", image_w), ("region_w", region_w), ("pixel_w", pixel_w)):
            if not w >= 0 or w == float("inf"):
                raise ValueError(f"{name} must be a finite non-negative weight, got {w}")
        check_positive(region_grid=region_grid)
        if pixel not in ("soft", "hard"):
            raise ValueError(f"pixel must be 'soft' or 'hard', got {pixel!r}")
        if not T > 0:
            raise ValueError(f"temperature T must be positive, got {T}")
        self.image_w, self.region_w, self.pixel_w = image_w, region_w, pixel_w
        self.region_grid, self.pixel, self.T = region_grid, pixel, T

    def image_loss(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """L1 between per-image class distributions (average-pooled logits), batch sum."""
        s = student_logits.mean(dim=(2, 3))
        t = teacher_logits.detach().mean(dim=(2, 3))
        return (s - t).abs().sum()

    def region_loss(self, student_features: Tensor, teacher_features: Tensor) -> Tensor:
        """MSE between the region-to-region cosine affinities of pooled features."""
        g = self.region_grid
        return affinity_loss(
            F.adaptive_avg_pool2d(student_features, g), F.adaptive_avg_pool2d(teacher_features, g)
        )

    def pixel_loss(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """Per-pixel agreement with one teacher (soft KL or hard pseudo-label CE)."""
        if self.pixel == "soft":
            return kd_kl(student_logits, teacher_logits, self.T)
        return F.cross_entropy(student_logits, teacher_logits.detach().argmax(dim=1))

    def forward(self, student: SegOutput, teachers: Sequence[SegOutput]) -> dict[str, Tensor]:
        s_feat, s_logits = _check_output(student, "student")
        if not 1 <= len(teachers) <= 2:
            raise ValueError(f"MGD takes one or two teachers, got {len(teachers)}")
        outs = [_check_output(t, f"teacher {k}") for k, t in enumerate(teachers)]
        for k, (_, t_logits) in enumerate(outs):
            if t_logits.shape != s_logits.shape:
                raise ValueError(
                    f"teacher {k} logits {tuple(t_logits.shape)} differ from the student's "
                    f"{tuple(s_logits.shape)}"
                )
        image = self.image_loss(s_logits, outs[-1][1])
        region = self.region_loss(s_feat, outs[0][0])
        pixel = sum(self.pixel_loss(s_logits, t_logits) for _, t_logits in outs)
        total = self.image_w * image + self.region_w * region + self.pixel_w * pixel
        return {"image": image, "region": region, "pixel": pixel, "total": total}

    def extra_repr(self) -> str:
        return (
            f"image_w={self.image_w}, region_w={self.region_w}, pixel_w={self.pixel_w}, "
            f"region_grid={self.region_grid}, pixel={self.pixel!r}, T={self.T}"
        )


@register_model("mgd", family="training", paper=PAPER)
class MGDTrainer(nn.Module):
    """A student trained with labels plus :class:`MGDLoss` from frozen teachers.

    .. math::
        \\mathcal{L} = \\mathrm{CE}(s(x_l), y_l) + \\mathcal{L}_{MGD}\\big([x_l; x_u]\\big)

    Args:
        student: maps images to ``(features, logits)``.
        teachers: one or two models of the same output convention; frozen (no gradient, eval
            mode). The first gives the region-level target, the last the image-level one.
        loss: the distillation loss (default: ``MGDLoss()``).
        sup_w: weight of the supervised cross-entropy (default: ``1.0``).
        ignore_index: label of unlabelled pixels in ``y_l`` (default: ``255``).

    Shapes:
        - ``x_l``: ``(B_l, 3, H, W)`` labelled images, ``y_l``: ``(B_l, H, W)`` class indices;
          ``x_u``: ``(B_u, 3, H, W)`` unlabelled images (optional).
        - :meth:`forward`: the student's logits.
    """

    def __init__(
        self,
        student: nn.Module,
        teachers: Sequence[nn.Module],
        loss: MGDLoss | None = None,
        sup_w: float = 1.0,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        if not 1 <= len(teachers) <= 2:
            raise ValueError(f"MGD takes one or two teachers, got {len(teachers)}")
        if not sup_w >= 0:
            raise ValueError(f"sup_w must be non-negative, got {sup_w}")
        self.student = student
        self.teachers = nn.ModuleList(teachers)
        for p in self.teachers.parameters():
            p.requires_grad_(False)
        self.mgd = loss if loss is not None else MGDLoss()
        self.sup_w, self.ignore_index = sup_w, ignore_index

    def forward(self, x: Tensor) -> Tensor:
        return _check_output(self.student(x), "student")[1]

    def losses(self, x_l: Tensor, y_l: Tensor, x_u: Tensor | None = None) -> dict[str, Tensor]:
        """Supervised CE on the labelled batch and MGD on labelled and unlabelled images."""
        x = x_l if x_u is None else torch.cat([x_l, x_u])
        s_feat, s_logits = _check_output(self.student(x), "student")
        with torch.no_grad():
            for t in self.teachers:
                t.eval()
            t_outs = [_check_output(t(x), "teacher") for t in self.teachers]
        sup_logits = s_logits[: x_l.shape[0]]
        if y_l.shape != (sup_logits.shape[0], *sup_logits.shape[2:]):
            raise ValueError(
                f"labels must be (B, H, W) = {(sup_logits.shape[0], *sup_logits.shape[2:])}, "
                f"got {tuple(y_l.shape)}"
            )
        sup = F.cross_entropy(sup_logits, y_l, ignore_index=self.ignore_index)
        out = self.mgd((s_feat, s_logits), t_outs)
        out["sup"] = sup
        out["total"] = self.sup_w * sup + out["total"]
        return out

    def step(self, x_l: Tensor, y_l: Tensor, x_u: Tensor | None,
             optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
        """One optimizer step on the total loss; returns the detached terms."""
        optimizer.zero_grad()
        out = self.losses(x_l, y_l, x_u)
        out["total"].backward()
        optimizer.step()
        return {k: v.detach() for k, v in out.items()}

    def extra_repr(self) -> str:
        return f"teachers={len(self.teachers)}, sup_w={self.sup_w}"
