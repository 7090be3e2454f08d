"""Knowledge Concentration: many specialist teachers distilled into one student.

From `Knowledge Concentration: Learning 100K Object Classifiers in a Single CNN
<https://arxiv.org/abs/1711.07607>`_ (Gao, Guo, Li and Nevatia). A label space too large for
one network is split into verticals (cars, birds, ...); a specialist is trained per vertical,
then one student over the union of the classes learns from all of them:

.. math::
    \\mathcal{L} = \\mathrm{CE}(s, y) + \\lambda \\sum_k w_k\\, T^2\\,
        \\mathrm{KL}\\big(\\mathrm{softmax}(t_k / T) \\,\\|\\, \\mathrm{softmax}(s_{S_k} / T)\\big)

where :math:`s_{S_k}` are the student's logits restricted to teacher :math:`k`'s class slice
:math:`S_k` (the multi-teacher loss is :func:`~graphkit.extras.training.distill.multi_teacher_kd`).
The self-paced weights :math:`w_k` let the student learn from each teacher at its own pace;
here (the paper gives no closed form we could confirm) they follow the student's running
disagreement with each teacher, :math:`w_k \\propto 1 - \\bar a_k`, where :math:`\\bar a_k` is an
exponential moving average of the share of samples on which the student's top class within
:math:`S_k` equals teacher :math:`k`'s; the weights are renormalised to mean 1, so a teacher
the student already agrees with gets less of the distillation budget.

:class:`StructurallyConnectedLinear` is the paper's capacity expansion with few parameters: a
layer split into ``groups`` blocks, each block of outputs connected only to its own block of
inputs (a block-diagonal weight), so it holds ``1 / groups`` of a dense layer's weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.training.distill import ClassSlice, multi_teacher_kd, slice_index

PAPER = "Knowledge Concentration: Learning 100K Object Classifiers in a Single CNN"


class StructurallyConnectedLinear(nn.Module):
    """Block-diagonal linear layer: output group ``i`` sees only input group ``i``.

    .. math::
        y_{[i]} = W_i\\, x_{[i]} + b_{[i]}, \\qquad i = 1, \\dots, g

    Args:
        in_features: input width, divisible by ``groups``.
        out_features: output width, divisible by ``groups``.
        groups: number of blocks :math:`g` (default: ``1``, a dense layer).
        bias: add a bias of ``out_features`` entries (default: ``True``).

    The weight holds ``in_features * out_features / groups`` entries, ``1 / groups`` of a dense
    layer's.

    Shapes:
        - input: ``(*, in_features)``
        - output: ``(*, out_features)``
    """

    def __init__(
        self, in_features: int, out_features: int, groups: int = 1, bias: bool = True
    ) -> None:
        super().__init__()
        check_positive(in_features=in_features, out_features=out_features, groups=groups)
        if in_features % groups or out_features % groups:
            raise ValueError(
                f"in_features ({in_features}) and out_features ({out_features}) must both be "
                f"divisible by groups ({groups})"
            )
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.weight = nn.Parameter(
            torch.empty(groups, out_features // groups, in_features // groups)
        )
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the same law as nn.Linear, with each output's actual fan-in (in_features / groups)
        bound = 1.0 / math.sqrt(self.in_features // self.groups)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def dense_weight(self) -> Tensor:
        """The equivalent ``(out_features, in_features)`` block-diagonal dense weight."""
        return torch.block_diag(*self.weight.unbind(0))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"input must have last dimension {self.in_features}, got {tuple(x.shape)}"
            )
        lead = x.shape[:-1]
        xg = x.reshape(-1, self.groups, self.in_features // self.groups)
        y = torch.einsum("ngi,goi->ngo", xg, self.weight).reshape(*lead, self.out_features)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )


def _largest_index(cs: ClassSlice) -> int:
    if isinstance(cs, slice):
        if cs.stop is None or cs.stop < 0:
            raise ValueError(f"give num_classes when a class slice has no explicit end: {cs}")
        members = range(*cs.indices(cs.stop))
        if not members:
            raise ValueError(f"a class slice is empty: {cs}")
        return max(members)
    idx = torch.as_tensor(cs)
    if idx.numel() == 0:
        raise ValueError("a class slice is empty")
    return int(idx.max())


@register_model("knowledge_concentration", family="training", paper=PAPER)
class KnowledgeConcentration(nn.Module):
    """Multi-teacher, single-student distillation with self-paced teacher weights.

    Args:
        student: maps a batch to logits ``(B, C)`` over all classes.
        specialists: one teacher per vertical; teacher ``k`` maps the batch to logits
            ``(B, |S_k|)`` over its own classes. They are frozen (no gradient, eval mode).
        class_slices: teacher ``k``'s classes in the student's label space: a ``slice`` or a
            sequence of indices each.
        self_paced: weight the teachers by the student's running disagreement with each
            (default: ``True``); ``False`` weights them equally.
        T: distillation temperature, positive (default: ``2.0``).
        kd_weight: :math:`\\lambda`, the weight of the distillation term (default: ``1.0``).
        momentum: momentum of the running agreement :math:`\\bar a_k`, in ``[0, 1)``
            (default: ``0.9``).
        num_classes: size of the student's label space; ``None`` takes one past the largest
            index of the slices (default: ``None``).

    Shapes:
        - input: whatever ``student`` and ``specialists`` take.
        - :meth:`forward`: the student's logits ``(B, C)``.
        - :meth:`loss`: a dict of scalars ``total``, ``ce`` (0 without labels), ``kd``.
    """

    agreement: Tensor

    def __init__(
        self,
        student: nn.Module,
        specialists: Sequence[nn.Module],
        class_slices: Sequence[ClassSlice],
        self_paced: bool = True,
        T: float = 2.0,
        kd_weight: float = 1.0,
        momentum: float = 0.9,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if not specialists or len(specialists) != len(class_slices):
            raise ValueError(
                f"need one class slice per specialist, got {len(specialists)} specialists and "
                f"{len(class_slices)} slices"
            )
        if not T > 0:
            raise ValueError(f"temperature T must be positive, got {T}")
        if not kd_weight >= 0:
            raise ValueError(f"kd_weight must be non-negative, got {kd_weight}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.student = student
        self.specialists = nn.ModuleList(specialists)
        for p in self.specialists.parameters():
            p.requires_grad_(False)
        if num_classes is None:
            num_classes = 1 + max(_largest_index(cs) for cs in class_slices)
        self.num_classes = num_classes
        self.class_slices = list(class_slices)
        # validate the slices now, not at the first batch
        self._index = [slice_index(cs, num_classes, torch.device("cpu")) for cs in class_slices]
        self.self_paced, self.T, self.kd_weight, self.momentum = self_paced, T, kd_weight, momentum
        # the student starts agreeing with nobody, so every teacher starts at weight 1
        self.register_buffer("agreement", torch.zeros(len(specialists)))

    def forward(self, x: Tensor) -> Tensor:
        return self.student(x)

    def teacher_weights(self) -> Tensor:
        """The current per-teacher weights :math:`w_k` (mean 1)."""
        if not self.self_paced:
            return torch.ones_like(self.agreement)
        gap = (1.0 - self.agreement).clamp_min(1e-3)  # a teacher is never dropped entirely
        return gap * (gap.numel() / gap.sum())

    @torch.no_grad()
    def _teacher_logits(self, x: Tensor) -> list[Tensor]:
        outs = []
        for k, teacher in enumerate(self.specialists):
            teacher.eval()
            t = teacher(x)
            if t.dim() != 2 or t.shape[1] != self._index[k].numel():
                raise ValueError(
                    f"specialist {k} must output (B, {self._index[k].numel()}) logits for its "
                    f"class slice, got {tuple(t.shape)}"
                )
            outs.append(t)
        return outs

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """Cross-entropy on labels (when given) plus the weighted multi-teacher loss.

        In training mode the running agreements are updated from this batch, after the weights
        used for it were taken.
        """
        s = self.student(x)
        if s.dim() != 2 or s.shape[1] != self.num_classes:
            raise ValueError(f"student must output (B, {self.num_classes}), got {tuple(s.shape)}")
        t_logits = self._teacher_logits(x)
        w = self.teacher_weights().to(s.dtype)
        kd = multi_teacher_kd(s, t_logits, self.class_slices, weights=w, T=self.T)
        ce = F.cross_entropy(s, y) if y is not None else s.new_zeros(())
        if self.training and self.self_paced:
            with torch.no_grad():
                agree = torch.stack([
                    (s[:, idx.to(s.device)].argmax(1) == t.argmax(1)).float().mean()
                    for idx, t in zip(self._index, t_logits, strict=True)
                ])
                self.agreement.mul_(self.momentum).add_((1.0 - self.momentum) * agree)
        return {"total": ce + self.kd_weight * kd, "ce": ce, "kd": kd}

    def extra_repr(self) -> str:
        return (
            f"teachers={len(self.specialists)}, num_classes={self.num_classes}, "
            f"self_paced={self.self_paced}, T={self.T}, kd_weight={self.kd_weight}"
        )
