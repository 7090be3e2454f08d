"""Neural-collapse measures and the predicted geometry of imbalanced MSE training.

From `Neural Collapse in Deep Linear Networks: From Balanced to Imbalanced Data
<https://arxiv.org/abs/2301.00437>`_ (Dang, Tran, Osher, Tran-The, Ho and Nguyen, ICML 2023),
which measures the four properties of `Prevalence of Neural Collapse during the terminal phase
of deep learning training <https://arxiv.org/abs/2008.08186>`_ (Papyan, Han and Donoho).

With class means :math:`\\mu_k`, global mean :math:`\\mu_G`, the matrix
:math:`M = [\\mu_k - \\mu_G]_k` (or :math:`[\\mu_k]_k` uncentred) and classifier :math:`W`:

.. math::
    \\mathrm{NC1} &= \\tfrac{1}{K}\\,\\mathrm{tr}(\\Sigma_W \\Sigma_B^{\\dagger}) \\\\
    \\mathrm{NC2} &= \\Big\\| \\frac{M^\\top M}{\\|M^\\top M\\|_F}
                  - \\frac{G^\\star}{\\|G^\\star\\|_F} \\Big\\|_F \\\\
    \\mathrm{NC3} &= \\Big\\| \\frac{W^\\top}{\\|W\\|_F} - \\frac{M}{\\|M\\|_F} \\Big\\|_F

where :math:`G^\\star = I - \\mathbf{1}\\mathbf{1}^\\top / K` (the simplex ETF's Gram matrix) for
centred means and :math:`G^\\star = I` (an orthogonal frame, the bias-free geometry) for
uncentred ones; NC4 is the share of samples on which the classifier and the nearest class mean
disagree. All four are 0 at exact collapse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from graphkit.extras._core.registry import register_model

PAPER = "Neural Collapse in Deep Linear Networks: From Balanced to Imbalanced Data"


@dataclass(frozen=True)
class NCMetrics:
    """The neural-collapse measures of one set of features (floats, 0 at exact collapse).

    ``nc2_equinorm`` is the coefficient of variation of the class-mean norms and
    ``nc2_equiangular`` the standard deviation of their pairwise cosines; ``nc2`` (see the
    module docstring) combines both with the angle the target frame prescribes.
    """

    nc1: float
    nc2: float
    nc2_equinorm: float
    nc2_equiangular: float
    nc3: float
    nc4: float


def _class_means(features: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    counts = torch.bincount(labels, minlength=num_classes)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"every class needs at least one sample; classes {missing} have none")
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, labels, features)
    return sums / counts.unsqueeze(1).to(features.dtype), counts


@register_model("neural_collapse", family="analysis", paper=PAPER)
@torch.no_grad()
def nc_metrics(
    features: Tensor,
    labels: Tensor,
    W: Tensor,
    bias: Tensor | None = None,
    center: bool = True,
) -> NCMetrics:
    """NC1 to NC4 of last-layer ``features`` under the linear classifier ``W`` (and ``bias``).

    Args:
        features: shape ``(N, d)``, finite.
        labels: shape ``(N,)``, integers in ``[0, K)`` with every class present.
        W: classifier weight, shape ``(K, d)``.
        bias: classifier bias, shape ``(K,)``, used by NC4 only (default: ``None``).
        center: measure NC2/NC3 on globally centred class means against a simplex ETF (the
            geometry with a bias, Papyan et al.); ``False`` uses the raw means against an
            orthogonal frame, the bias-free MSE geometry of Dang et al. (default: ``True``).

    Returns:
        :class:`NCMetrics`. Computed in float64.
    """
    if features.dim() != 2:
        raise ValueError(f"features must be (N, d), got shape {tuple(features.shape)}")
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"labels must be ({features.shape[0]},) to match features, got {tuple(labels.shape)}"
        )
    if W.dim() != 2 or W.shape[1] != features.shape[1]:
        raise ValueError(f"W must be (K, {features.shape[1]}), got shape {tuple(W.shape)}")
    K = W.shape[0]
    if K < 2:
        raise ValueError("neural collapse needs at least 2 classes")
    if bias is not None and bias.shape != (K,):
        raise ValueError(f"bias must be ({K},), got shape {tuple(bias.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= K):
        raise ValueError(f"labels must lie in [0, {K}) (W has {K} rows)")
    if not bool(torch.isfinite(features).all()) or not bool(torch.isfinite(W).all()):
        raise ValueError("features and W must be finite (found NaN or inf)")

    H, Wd = features.double(), W.double()
    means, _ = _class_means(H, labels, K)
    global_mean = H.mean(dim=0)
    centred = means - global_mean  # (K, d)

    # NC1: within-class scatter against between-class scatter
    within = H - means[labels]
    sigma_w = within.t() @ within / H.shape[0]
    sigma_b = centred.t() @ centred / K
    nc1 = torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)).item() / K

    M = centred if center else means
    norms = M.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError("a class mean is zero (or equals the global mean); NC2 is undefined")
    gram = M @ M.t()
    eye = torch.eye(K, dtype=gram.dtype, device=gram.device)
    target = eye - 1.0 / K if center else eye
    nc2 = (gram / gram.norm() - target / target.norm()).norm().item()
    equinorm = (norms.std() / norms.mean()).item()
    cos = gram / (norms[:, None] * norms[None, :])
    off = ~torch.eye(K, dtype=torch.bool, device=gram.device)
    equiangular = cos[off].std().item()

    nc3 = (Wd / Wd.norm() - M / M.norm()).norm().item()

    scores = H @ Wd.t()
    if bias is not None:
        scores = scores + bias.double()
    ncc = torch.cdist(H, means).argmin(dim=1)
    nc4 = (scores.argmax(dim=1) != ncc).double().mean().item()
    return NCMetrics(nc1, nc2, equinorm, equiangular, nc3, nc4)


@dataclass(frozen=True)
class ImbalancedGeometry:
    """Predicted global minimiser of the bias-free MSE unconstrained-features model.

    Class means ``h_k`` and classifier rows ``w_k`` are mutually orthogonal across classes,
    ``w_k`` parallel to ``h_k``; ``scales[k] = w_k . h_k`` (the fitted target, below 1); a
    class whose scale is 0 has collapsed to the origin (minority collapse).
    """

    scales: Tensor
    feature_norms: Tensor
    classifier_norms: Tensor


def imbalanced_mse_geometry(
    n_per_class: list[int] | Tensor, weight_decay_w: float, weight_decay_h: float
) -> ImbalancedGeometry:
    """Closed-form geometry of the bias-free MSE unconstrained-features model on imbalanced data.

    The model (the paper's plain UFM) is

    .. math::
        \\min_{W, H}\\; \\frac{1}{2N}\\|WH - Y\\|_F^2 + \\frac{\\lambda_W}{2}\\|W\\|_F^2
        + \\frac{\\lambda_H}{2}\\|H\\|_F^2,

    with ``H`` holding one free feature per sample (``n_k`` in class ``k``, ``N`` in all) and
    feature dimension at least ``K``. At the global minimum every sample of class ``k`` sits on
    its mean ``h_k``, the ``h_k`` are orthogonal, ``w_k \\parallel h_k``, and (splitting the
    per-class loss over the product :math:`p_k = \\|w_k\\|\\|h_k\\|` by the AM-GM inequality)

    .. math::
        p_k = \\max\\Big(0,\\; 1 - N\\sqrt{\\lambda_W\\lambda_H / n_k}\\Big),\\quad
        \\|h_k\\|^2 = p_k\\sqrt{\\frac{\\lambda_W}{\\lambda_H n_k}},\\quad
        \\|w_k\\|^2 = p_k\\sqrt{\\frac{\\lambda_H n_k}{\\lambda_W}}.

    So classifier norms grow with the class size, and a class with
    :math:`n_k \\le N^2 \\lambda_W \\lambda_H` collapses to zero.

    Args:
        n_per_class: samples per class, positive integers (length ``K >= 2``).
        weight_decay_w: :math:`\\lambda_W > 0`.
        weight_decay_h: :math:`\\lambda_H > 0`.
    """
    n = torch.as_tensor(n_per_class, dtype=torch.float64).flatten()
    if n.numel() < 2 or bool((n <= 0).any()) or bool((n != n.round()).any()):
        raise ValueError(f"n_per_class must be >= 2 positive integers, got {n_per_class}")
    if not (0 < weight_decay_w < math.inf and 0 < weight_decay_h < math.inf):
        raise ValueError(
            f"weight decays must be positive, got {weight_decay_w} and {weight_decay_h}"
        )
    N = n.sum()
    scales = (1.0 - N * torch.sqrt(weight_decay_w * weight_decay_h / n)).clamp_min(0.0)
    feature_sq = scales * torch.sqrt(weight_decay_w / (weight_decay_h * n))
    classifier_sq = scales * torch.sqrt(weight_decay_h * n / weight_decay_w)
    return ImbalancedGeometry(scales, feature_sq.sqrt(), classifier_sq.sqrt())
