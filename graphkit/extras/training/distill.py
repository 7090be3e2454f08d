"""Knowledge-distillation losses shared by the catalogue's distilling entries.

Written once and reused by in-place KD (OFA, DεpS), KD after search (TAS), multi-granularity
distillation (MGD), multi-teacher distillation (Knowledge Concentration), student training
(N2N) and semantic supervision (A-SDM).

* :func:`kd_kl` is the soft-target loss of `Distilling the Knowledge in a Neural Network
  <https://arxiv.org/abs/1503.02531>`_ (Hinton, Vinyals and Dean):

  .. math::
      \\mathcal{L}_{KD} = T^2 \\cdot \\frac{1}{B} \\sum_b
      \\mathrm{KL}\\big(\\mathrm{softmax}(t_b / T) \\,\\|\\, \\mathrm{softmax}(s_b / T)\\big)

  the :math:`T^2` keeps its gradient scale independent of the temperature.
* :func:`feature_mse` matches intermediate features (FitNets-style hints).
* :func:`affinity_loss` matches pairwise-similarity (affinity) matrices, so student and teacher
  may have different channel counts.
* :func:`multi_teacher_kd` distils several specialist teachers, each on its own slice of the
  student's classes (`Knowledge Concentration <https://arxiv.org/abs/1711.07607>`_).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

ClassSlice = slice | Sequence[int] | Tensor


def _check_logits(student: Tensor, teacher: Tensor) -> None:
    if student.dim() < 2:
        raise ValueError(f"logits must be (batch, classes, ...), got shape {tuple(student.shape)}")
    if student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student.shape)} vs "
            f"{tuple(teacher.shape)}"
        )


def kd_kl(student_logits: Tensor, teacher_logits: Tensor, T: float = 4.0) -> Tensor:
    """Soft-target distillation loss :math:`T^2\\,\\mathrm{KL}(p_t^T \\| p_s^T)`, batch mean.

    Args:
        student_logits: student's logits, shape ``(B, C)`` or ``(B, C, *)`` (classes on dim 1;
            extra dimensions, e.g. pixels, are averaged over like the batch).
        teacher_logits: teacher's logits, same shape; no gradient flows into them.
        T: softmax temperature, positive (default: ``4.0``).

    Returns:
        A scalar tensor.
    """
    _check_logits(student_logits, teacher_logits)
    if not T > 0:
        raise ValueError(f"temperature T must be positive, got {T}")
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=1)
    p_t = log_p_t.exp()
    # a class the teacher masks (logit -inf) adds 0, not 0 * -inf = NaN, also where the
    # student masks it too
    kl = torch.where(p_t > 0, p_t * (log_p_t - log_p_s), 0.0).sum(dim=1)  # per sample (and pixel)
    return kl.mean() * T * T


def feature_mse(
    student_features: Tensor, teacher_features: Tensor, normalize: bool = False
) -> Tensor:
    """Mean squared error between student and (detached) teacher features.

    Args:
        student_features: shape ``(B, *)``; project it to the teacher's width beforehand when
            the widths differ (an adapter is part of the student, not of the loss).
        teacher_features: same shape.
        normalize: L2-normalise each sample's flattened features first, so only their
            direction is matched (default: ``False``).
    """
    if student_features.shape != teacher_features.shape:
        raise ValueError(
            f"student and teacher features differ in shape: {tuple(student_features.shape)} vs "
            f"{tuple(teacher_features.shape)}; project the student first"
        )
    s, t = student_features, teacher_features.detach()
    if normalize:
        s = F.normalize(s.flatten(1), dim=1)
        t = F.normalize(t.flatten(1), dim=1)
    return F.mse_loss(s, t)


def _affinity(features: Tensor) -> Tensor:
    if features.dim() == 2:  # (B, D): similarity between the samples of the batch
        f = F.normalize(features, dim=1)
        return f @ f.t()
    # (B, C, *spatial): similarity between positions, per sample
    f = F.normalize(features.flatten(2), dim=1)
    return f.transpose(1, 2) @ f


def affinity_loss(student_features: Tensor, teacher_features: Tensor) -> Tensor:
    """MSE between the cosine-affinity matrices of student and (detached) teacher features.

    For ``(B, D)`` features the affinity is between samples (``B x B``); for ``(B, C, *)``
    feature maps it is between spatial positions of each sample (``B x HW x HW``). Channel
    counts may differ; the batch (and spatial sizes) must agree.
    """
    s, t = student_features, teacher_features
    if s.dim() < 2 or s.dim() != t.dim():
        raise ValueError(
            f"features must both be (B, D) or (B, C, *), got {tuple(s.shape)} and {tuple(t.shape)}"
        )
    if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
        raise ValueError(
            "student and teacher features must agree in batch and spatial sizes, got "
            f"{tuple(s.shape)} and {tuple(t.shape)}"
        )
    return F.mse_loss(_affinity(s), _affinity(t.detach()))


def slice_index(cs: ClassSlice, num_classes: int, device: torch.device) -> Tensor:
    """The class indices a :data:`ClassSlice` selects, checked against ``num_classes``."""
    if isinstance(cs, slice):
        idx = torch.arange(num_classes, device=device)[cs]
    else:
        raw = torch.as_tensor(cs, device=device)
        if raw.dtype == torch.bool:  # would be read as the indices 0 and 1
            raise ValueError("a class slice must be a slice or class indices, not a boolean mask")
        if raw.is_floating_point() and not torch.equal(raw, raw.round()):  # would be truncated
            raise ValueError(f"class slice indices must be integers, got {cs}")
        idx = raw.to(torch.long).flatten()
    if idx.numel() == 0:
        raise ValueError("a class slice is empty")
    if idx.unique().numel() != idx.numel():  # a repeated class would enter the softmax twice
        raise ValueError(f"a class slice repeats a class: {cs}")
    if int(idx.min()) < 0 or int(idx.max()) >= num_classes:
        raise ValueError(f"class slice indices must lie in [0, {num_classes}), got {cs}")
    return idx


def multi_teacher_kd(
    student_logits: Tensor,
    teacher_logits: Sequence[Tensor],
    class_slices: Sequence[ClassSlice],
    weights: Sequence[float] | Tensor | None = None,
    T: float = 4.0,
) -> Tensor:
    """Weighted sum of per-teacher :func:`kd_kl`, each on that teacher's slice of classes.

    Teacher ``k`` knows only the classes ``class_slices[k]``; its loss compares its logits with
    the student's logits restricted (and renormalised) to those classes, so the student's
    other logits get no gradient from it.

    Args:
        student_logits: shape ``(B, C)``, over the union of all classes.
        teacher_logits: one tensor per teacher, shape ``(B, |slice_k|)``.
        class_slices: one per teacher: a ``slice`` or a sequence/tensor of class indices.
        weights: one non-negative weight per teacher (default: ``1`` each); may be a tensor,
            e.g. self-paced weights computed each step.
        T: temperature (default: ``4.0``).
    """
    if student_logits.dim() != 2:
        raise ValueError(f"student logits must be (B, C), got {tuple(student_logits.shape)}")
    if len(teacher_logits) != len(class_slices) or not teacher_logits:
        raise ValueError(
            f"need one class slice per teacher, got {len(teacher_logits)} teachers and "
            f"{len(class_slices)} slices"
        )
    n = len(teacher_logits)
    if weights is None:
        w = torch.ones(n, device=student_logits.device, dtype=student_logits.dtype)
    else:
        w = torch.as_tensor(weights, device=student_logits.device, dtype=student_logits.dtype)
        if w.shape != (n,) or bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
            raise ValueError(f"weights must be {n} finite non-negative numbers, got {weights}")
    total = student_logits.new_zeros(())
    for k, (t_logits, cs) in enumerate(zip(teacher_logits, class_slices, strict=True)):
        idx = slice_index(cs, student_logits.shape[1], student_logits.device)
        if t_logits.shape != (student_logits.shape[0], idx.numel()):
            raise ValueError(
                f"teacher {k} logits must be (B, {idx.numel()}) for its class slice, got "
                f"{tuple(t_logits.shape)}"
            )
        total = total + w[k] * kd_kl(student_logits[:, idx], t_logits, T)
    return total
