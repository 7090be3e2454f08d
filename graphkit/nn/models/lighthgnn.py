r"""LightHGNN and LightHGNN+: distilling hypergraph neural networks into MLPs.

`"LightHGNN: Distilling Hypergraph Neural Networks into MLPs for 100x Faster Inference"
<https://arxiv.org/abs/2402.04296>`_ (Feng, Luo, Ying, Gao, ICLR 2024).

A trained hypergraph teacher (:class:`~graphkit.nn.models.HGNN`, :class:`HGNNP`) gives frozen
logits :math:`\mathbf{z}^t`; a two-layer MLP student (:class:`LightHGNN`) sees only the vertex
features and is trained with

.. math::
    \mathcal{L} = \lambda \, \mathcal{L}_{CE} + (1 - \lambda)\big(\mathcal{L}_{KD}
    + \beta\,\mathcal{L}_{HKD}\big),
    \qquad
    \mathcal{L}_{KD} = \frac{1}{N}\sum_{v} \mathrm{KL}\big(\sigma(\mathbf{z}^t_v/\tau)
    \,\|\, \sigma(\mathbf{z}^s_v/\tau)\big)

over all vertices (:func:`distillation_loss`). LightHGNN+ adds the topology-aware term
:math:`\mathcal{L}_{HKD}` (:func:`hyperedge_distillation_loss`): the KL between the teacher's and
the student's mean class distributions over the members of each hyperedge, on hyperedges drawn
each epoch with probability equal to their reliability :math:`r_e`
(:func:`hyperedge_reliability`). The official code uses :math:`\beta = 1` and samples every
hyperedge, singletons included; both are options of :class:`LightHGNNLoss` (a singleton's
KL is its vertex's summand of :math:`\mathcal{L}_{KD}`, so sampling it only reweights that
vertex).

The loss comes in two modes. ``"paper"`` (default) is the KL divergence above.
``"repo"`` reproduces the official code (iMoonLab/LightHGNN), which calls
``F.kl_div(log_q, p, log_target=True)`` with *probabilities* ``p`` as target, so it minimises
:math:`\frac{1}{N}\sum_{v,c} e^{p_{vc}}(p_{vc} - \log q_{vc})` and applies no temperature to
the vertex term; its hyperedge term is ``F.kl_div(log(q_e / tau), p_e / tau, log_target=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from graphkit.data.hypergraph import (
    check_hyperedge_index,
    hyperedge_degree,
    num_hyperedges_of,
    vertex_to_hyperedge,
)
from graphkit.data.splits import per_class_split
from graphkit.data.validation import check_features, check_num_nodes
from graphkit.nn._checks import check_node_features
from graphkit.train import NodeClassificationResult, train_node_classifier

__all__ = [
    "LightHGNN",
    "LightHGNNLoss",
    "distillation_loss",
    "hyperedge_distillation_loss",
    "perturb_features",
    "hyperedge_reliability",
    "topology_score",
    "split_per_class",
    "production_split",
    "distill",
]

_MODES = ("paper", "repo")


class LightHGNN(torch.nn.Module):
    r"""The LightHGNN student of `"LightHGNN: Distilling Hypergraph Neural Networks into MLPs
    for 100x Faster Inference" <https://arxiv.org/abs/2402.04296>`_ (Feng et al., ICLR 2024):
    a two-layer MLP on vertex features only,

    .. math::
        \mathbf{z}_v = \mathbf{W}_2\,\mathrm{dropout}\Big(\mathrm{BN}\big(\mathrm{ReLU}
        (\mathbf{W}_1\mathbf{x}_v + \mathbf{b}_1)\big)\Big) + \mathbf{b}_2,

    as the official code's student, DHG's ``MLP([in, hid])`` followed by ``Linear(hid, C)``:
    DHG's ``MLP`` defaults to ``use_bn=True``, so its hidden layer is Linear, ReLU,
    ``BatchNorm1d``, Dropout, in that order (the batch is the full vertex set; eval mode uses
    the running statistics). ``batch_norm=False`` drops the normalisation. Trained with
    cross-entropy only it is the plain-MLP baseline; trained with :func:`distill` it is
    LightHGNN (or LightHGNN+ when hyperedge reliabilities are given).

    Args:
        in_channels (int): Size of each input sample.
        hidden_channels (int): Hidden size. (LightHGNN: 128)
        out_channels (int): Number of classes.
        dropout (float, optional): Dropout after the hidden layer. (default: :obj:`0.5`)
        batch_norm (bool, optional): ``BatchNorm1d`` after the hidden ReLU, as DHG's ``MLP``.
            In eval mode its running statistics are folded into :math:`\mathbf{W}_2,
            \mathbf{b}_2`, so inference is two matrix products, as without it.
            (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(N, F_{in})`
        - **output:** :math:`(N, C)` logits
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 dropout: float = 0.5, batch_norm: bool = True) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dropout = dropout
        self.lin1 = torch.nn.Linear(in_channels, hidden_channels)
        self.norm = torch.nn.BatchNorm1d(hidden_channels) if batch_norm else None
        self.lin2 = torch.nn.Linear(hidden_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()
        self.lin2.reset_parameters()

    def embed(self, x: Tensor) -> Tensor:
        """The hidden representation :math:`\\mathrm{BN}(\\mathrm{ReLU}(\\mathbf{W}_1
        \\mathbf{x} + \\mathbf{b}_1))` (the official ``get_emb=True`` output; without
        ``batch_norm`` no BN)."""
        check_node_features(x, self.lin1.in_features)
        h = F.relu(self.lin1(x))
        return h if self.norm is None else self.norm(h)

    def forward(self, x: Tensor) -> Tensor:
        check_node_features(x, self.lin1.in_features)
        norm = self.norm
        if (norm is not None and not self.training and not norm.training
                and norm.running_var is not None):
            # In eval mode BN is the affine map h * a + c (and dropout the identity): folding
            # it into lin2 (a C x hidden rescale) saves a pass over the N x hidden activations,
            # about a quarter of the student's inference time on a CPU, and changes the logits
            # only by round-off.
            scale = torch.rsqrt(norm.running_var + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight
            shift = -norm.running_mean * scale
            if norm.bias is not None:
                shift = shift + norm.bias
            weight = self.lin2.weight * scale
            return F.linear(F.relu(self.lin1(x)), weight, self.lin2.bias + self.lin2.weight @ shift)
        h = F.dropout(self.embed(x), p=self.dropout, training=self.training)
        return self.lin2(h)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.lin1.in_features}, {self.lin1.out_features}, "
                f"{self.lin2.out_features}, dropout={self.dropout}, "
                f"batch_norm={self.norm is not None})")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"loss mode must be one of {_MODES}, got {mode!r}")


def _check_tau(tau: float) -> None:
    if not tau > 0:
        raise ValueError(f"temperature tau must be positive, got {tau}")


def _check_pair(student: Tensor, teacher: Tensor) -> None:
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher logits must have the same shape [N, C], got "
            f"{list(student.shape)} and {list(teacher.shape)}"
        )


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, tau: float = 1.0,
                      mode: str = "paper") -> Tensor:
    r"""Vertex-level soft-label distillation loss, averaged over the rows.

    ``"paper"``: :math:`\frac{1}{N}\sum_v \mathrm{KL}(\sigma(\mathbf{z}^t_v/\tau) \,\|\,
    \sigma(\mathbf{z}^s_v/\tau))`. ``"repo"``: the official code's
    ``F.kl_div(log_softmax(z_s), softmax(z_t), reduction="batchmean", log_target=True)``
    (no temperature; see the module docstring).
    """
    _check_mode(mode)
    _check_tau(tau)
    _check_pair(student_logits, teacher_logits)
    if mode == "paper":
        log_q = F.log_softmax(student_logits / tau, dim=-1)
        log_p = F.log_softmax(teacher_logits / tau, dim=-1)
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return F.kl_div(F.log_softmax(student_logits, dim=-1), F.softmax(teacher_logits, dim=-1),
                    reduction="batchmean", log_target=True)


def hyperedge_distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    hyperedge_index: Tensor,
    num_hyperedges: int | None = None,
    hyperedge_mask: Tensor | None = None,
    tau: float = 1.0,
    mode: str = "paper",
) -> Tensor:
    r"""LightHGNN+'s topology-aware distillation loss on (a sample of) the hyperedges.

    The hyperedge-level distributions are the member means of the vertex distributions,
    :math:`\mathbf{p}_e = \frac{1}{|e|}\sum_{v\in e}\sigma(\mathbf{z}^t_v)` and likewise
    :math:`\mathbf{q}_e` for the student; the loss is their KL divergence averaged over the
    hyperedges in the boolean ``[M]`` ``hyperedge_mask`` (all when ``None``):
    ``"paper"`` :math:`\frac{1}{|E'|}\sum_{e\in E'}\mathrm{KL}(\mathbf{p}_e\|\mathbf{q}_e)`
    with :math:`\sigma(\cdot/\tau)`; ``"repo"`` the official
    ``F.kl_div(log(q_e / tau), p_e / tau, reduction="batchmean", log_target=True)``.
    Empty hyperedges (ids without members: gaps in the ids, or ``num_hyperedges`` above the
    largest id) have no mean distribution and are left out, selected or not, so the average
    is over the non-empty hyperedges in ``hyperedge_mask``. No such hyperedge gives 0.
    """
    _check_mode(mode)
    _check_tau(tau)
    _check_pair(student_logits, teacher_logits)
    hyperedge_index = check_hyperedge_index(hyperedge_index, student_logits.size(0),
                                            num_hyperedges)
    return _hyperedge_kd(student_logits, teacher_logits, hyperedge_index, num_hyperedges,
                         hyperedge_mask, tau, mode)


def _hyperedge_kd(student_logits: Tensor, teacher_logits: Tensor, hyperedge_index: Tensor,
                  num_hyperedges: int | None, hyperedge_mask: Tensor | None, tau: float,
                  mode: str) -> Tensor:
    """The unchecked core of :func:`hyperedge_distillation_loss` (LightHGNNLoss checks the
    hypergraph once, not at every step)."""
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    if mode == "paper":
        q = F.softmax(student_logits / tau, dim=-1)
        p = F.softmax(teacher_logits / tau, dim=-1)
    else:
        q, p = F.softmax(student_logits, dim=-1), F.softmax(teacher_logits, dim=-1)
    q_e = vertex_to_hyperedge(q, hyperedge_index, m)
    p_e = vertex_to_hyperedge(p, hyperedge_index, m)
    # an empty hyperedge's mean is all zeros: log 0 = -inf in "repo" mode, and a zero KL
    # that dilutes the average in "paper" mode; as topology_score, leave it out
    keep = torch.zeros(m, dtype=torch.bool, device=q_e.device)
    keep[hyperedge_index[1]] = True
    if hyperedge_mask is not None:
        if hyperedge_mask.dtype != torch.bool:  # an integer 0/1 mask would index hyperedges
            raise ValueError(f"hyperedge_mask must be a boolean mask, got dtype "
                             f"{hyperedge_mask.dtype}")
        if hyperedge_mask.shape != (m,):
            raise ValueError(f"hyperedge_mask must have shape [{m}], got "
                             f"{list(hyperedge_mask.shape)}")
        keep &= hyperedge_mask.to(keep.device)
    q_e, p_e = q_e[keep], p_e[keep]
    if q_e.size(0) == 0:
        return student_logits.sum() * 0.0
    if mode == "paper":
        eps = torch.finfo(q_e.dtype).tiny
        return F.kl_div(q_e.clamp_min(eps).log(), p_e, reduction="batchmean")
    return F.kl_div(torch.log(q_e / tau), p_e / tau, reduction="batchmean", log_target=True)


def perturb_features(x: Tensor, noise_level: float = 1.0,
                     generator: torch.Generator | None = None) -> Tensor:
    r"""LightHGNN+'s multiplicative feature noise :math:`\mathbf{X}\odot(\epsilon + 1)\,\rho`,
    :math:`\epsilon \sim \mathcal{N}(0, 1)` elementwise, :math:`\rho` = ``noise_level``."""
    if noise_level < 0:
        raise ValueError(f"noise_level must be non-negative, got {noise_level}")
    # drawn where the generator lives (a CPU generator with CUDA features, as for a split)
    where = x.device if generator is None else generator.device
    eps = torch.randn(x.shape, generator=generator, device=where, dtype=x.dtype).to(x.device)
    return x * (eps + 1.0) * noise_level


def _entropy(logits: Tensor) -> Tensor:
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1, keepdim=True)


def hyperedge_reliability(
    clean_logits: Tensor,
    noisy_logits: Tensor,
    hyperedge_index: Tensor,
    num_hyperedges: int | None = None,
) -> Tensor:
    r"""Reliability of each hyperedge from the teacher's stability under feature noise.

    With :math:`H(v)` the entropy of the teacher's prediction for vertex :math:`v` and
    :math:`H_e = \frac{1}{|e|}\sum_{v\in e} H(v)`,

    .. math::
        \delta_e = \big|H_e^{\text{noisy}} - H_e^{\text{clean}}\big|, \qquad
        r_e = 1 - \frac{\delta_e}{\max_{e'} \delta_{e'}} \in [0, 1].

    The least stable hyperedge gets 0. When every :math:`\delta_e = 0` (the teacher is
    unaffected) all hyperedges get 1 instead of dividing by zero.

    Returns:
        ``[M]`` reliabilities.
    """
    _check_pair(clean_logits, noisy_logits)
    check_features(clean_logits, name="clean_logits")
    check_features(noisy_logits, name="noisy_logits")
    hyperedge_index = check_hyperedge_index(hyperedge_index, clean_logits.size(0), num_hyperedges)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    h_clean = vertex_to_hyperedge(_entropy(clean_logits), hyperedge_index, m)
    h_noisy = vertex_to_hyperedge(_entropy(noisy_logits), hyperedge_index, m)
    delta = (h_noisy - h_clean).abs().view(-1)
    top = delta.max() if delta.numel() else delta.new_zeros(())
    if float(top) == 0.0:
        return torch.ones_like(delta)
    return (1.0 - delta / top).clamp(0.0, 1.0)


def topology_score(embedding: Tensor, hyperedge_index: Tensor,
                   num_hyperedges: int | None = None) -> float:
    r"""LightHGNN's over-smoothing diagnostic: the mean over hyperedges of the mean L2
    distance between member embeddings and the hyperedge's mean embedding,
    :math:`\frac{1}{M}\sum_e \frac{1}{|e|}\sum_{v\in e}\|\mathbf{h}_v - \bar{\mathbf{h}}_e\|_2`.
    """
    if embedding.dim() != 2:  # a 1-D one ended in a torch_geometric scatter error
        raise ValueError(f"embedding must be [N, d], got shape {list(embedding.shape)}")
    hyperedge_index = check_hyperedge_index(hyperedge_index, embedding.size(0), num_hyperedges)
    m = num_hyperedges_of(hyperedge_index, num_hyperedges)
    v, e = hyperedge_index
    mean = vertex_to_hyperedge(embedding, hyperedge_index, m)
    dist = (embedding[v] - mean[e]).norm(dim=-1)
    per_edge = scatter(dist, e, dim=0, dim_size=m, reduce="mean")
    present = torch.zeros(m, dtype=torch.bool, device=embedding.device)
    present[e] = True
    return float(per_edge[present].mean()) if bool(present.any()) else 0.0


def split_per_class(y: Tensor, num_train: int = 20, num_val: int = 100,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Random split with ``num_train`` and ``num_val`` vertices of every class; the rest test.

    This is DHG's ``split_by_num`` used by the LightHGNN code (20 / 100 per class). A class
    with fewer than ``num_train + num_val`` vertices raises a ``ValueError``.

    Returns:
        ``(train_mask, val_mask, test_mask)`` bool tensors.
    """
    if isinstance(num_train, int) and num_train < 1:
        raise ValueError(f"need num_train >= 1, got {num_train}")
    return per_class_split(y, num_train, num_val, generator)


@dataclass
class ProductionSplit:
    """The production (GLNN-style) setting: which vertices are observed during training.

    Attributes:
        observed: ``[N_obs]`` original ids of the observed vertices (train, val, then the
            observed test vertices); the observed sub-hypergraph is numbered in this order.
        test_ind: ``[N]`` mask of the unseen (inductive) test vertices.
        test_tran: ``[N]`` mask of the observed (transductive) test vertices.
    """

    observed: Tensor
    test_ind: Tensor
    test_tran: Tensor


def production_split(train_mask: Tensor, val_mask: Tensor, test_mask: Tensor,
                     ind_ratio: float = 0.9,
                     generator: torch.Generator | None = None) -> ProductionSplit:
    """Hide ``ind_ratio`` of the test vertices (and their incidences) during training.

    As the official ``product_split``: the test vertices are shuffled, the first
    ``int(ind_ratio * n_test)`` become inductive (unseen); the observed set is train, val and
    the remaining test vertices. The three masks are boolean ``[N]`` tensors.
    """
    if not 0.0 <= ind_ratio <= 1.0:
        raise ValueError(f"ind_ratio must lie in [0, 1], got {ind_ratio}")
    masks = {"train_mask": train_mask, "val_mask": val_mask, "test_mask": test_mask}
    for name, mask in masks.items():
        # index tensors would be combined bitwise into nonsense without an error
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 1:
            what = (f"dtype {mask.dtype} and shape {list(mask.shape)}"
                    if isinstance(mask, Tensor) else type(mask).__name__)
            raise ValueError(f"{name} must be a 1-D boolean mask over the vertices, got {what}")
    if len({mask.numel() for mask in masks.values()}) > 1:
        raise ValueError("train_mask, val_mask and test_mask must have one length N, got "
                         + ", ".join(str(mask.numel()) for mask in masks.values()))
    if bool((train_mask & val_mask).any() | (train_mask & test_mask).any()
            | (val_mask & test_mask).any()):
        raise ValueError("train, val and test masks overlap")
    test_idx = test_mask.nonzero().view(-1)
    perm = torch.randperm(test_idx.numel(), generator=generator).to(test_idx.device)
    num_ind = int(test_idx.numel() * ind_ratio)
    ind, tran = test_idx[perm[:num_ind]], test_idx[perm[num_ind:]]
    observed = torch.cat([train_mask.nonzero().view(-1), val_mask.nonzero().view(-1), tran])
    test_ind = torch.zeros_like(test_mask)
    test_ind[ind] = True
    test_tran = torch.zeros_like(test_mask)
    test_tran[tran] = True
    return ProductionSplit(observed, test_ind, test_tran)


class LightHGNNLoss:
    r"""The student's training objective :math:`\lambda\mathcal{L}_{CE} + (1-\lambda)
    (\mathcal{L}_{KD} + \beta\,\mathcal{L}_{HKD})` as a ``train_loss_fn(scores, data)`` for
    :func:`graphkit.train.train_node_classifier`.

    The distillation terms cover every vertex (``scores`` of all vertices, as the official
    code); the cross-entropy covers the labelled vertices ``data.train_mask`` with labels
    ``data.y``. The hyperedge term is present when ``reliability`` is given (LightHGNN+): each
    call draws a fresh hyperedge sample :math:`\text{mask}_e \sim \text{Bernoulli}(r_e)`.

    Args:
        teacher_logits (Tensor): ``[N, C]`` frozen teacher logits.
        lamb (float): weight :math:`\lambda` of the label loss. (default: :obj:`0.0`, the
            official configuration: pure distillation)
        tau (float): temperature :math:`\tau`. (default: :obj:`1.0`)
        mode (str): ``"paper"`` or ``"repo"`` (see the module docstring).
        hyperedge_index, num_hyperedges: the hypergraph the teacher saw (LightHGNN+).
        reliability (Tensor, optional): ``[M]`` hyperedge reliabilities in :math:`[0, 1]`
            (:func:`hyperedge_reliability`); ``None`` for LightHGNN.
        generator (torch.Generator, optional): for the hyperedge sampling.
        hyperedge_weight (float): weight :math:`\beta \ge 0` of the hyperedge term.
            (default: :obj:`1.0`, the official code)
        singletons (bool): whether single-vertex hyperedges can be sampled; ``False`` gives
            them reliability 0. (default: :obj:`True`, the official code)
    """

    def __init__(self, teacher_logits: Tensor, lamb: float = 0.0, tau: float = 1.0,
                 mode: str = "paper", hyperedge_index: Tensor | None = None,
                 num_hyperedges: int | None = None, reliability: Tensor | None = None,
                 generator: torch.Generator | None = None, hyperedge_weight: float = 1.0,
                 singletons: bool = True) -> None:
        _check_mode(mode)
        _check_tau(tau)
        check_features(teacher_logits, name="teacher_logits")
        if not 0.0 <= lamb <= 1.0:
            raise ValueError(f"lamb must lie in [0, 1], got {lamb}")
        if not hyperedge_weight >= 0.0:
            raise ValueError(f"hyperedge_weight must be non-negative, got {hyperedge_weight}")
        if reliability is not None:
            if hyperedge_index is None:
                raise ValueError("LightHGNN+ (reliability given) needs hyperedge_index")
            hyperedge_index = check_hyperedge_index(hyperedge_index, teacher_logits.size(0),
                                                    num_hyperedges)
            m = num_hyperedges_of(hyperedge_index, num_hyperedges)
            if reliability.shape != (m,):
                raise ValueError(f"reliability must have one value per hyperedge [{m}], got "
                                 f"{list(reliability.shape)}")
            # checked here: torch.bernoulli refuses these only at the first training step
            if not reliability.is_floating_point():
                raise ValueError(f"reliability must hold floating-point probabilities, got "
                                 f"dtype {reliability.dtype}")
            if not bool(((reliability >= 0) & (reliability <= 1)).all()):  # NaN fails too
                bad = reliability[~((reliability >= 0) & (reliability <= 1))][0]
                raise ValueError(f"reliability must lie in [0, 1], got {float(bad)}")
            if not singletons:
                size = hyperedge_degree(hyperedge_index, m).to(reliability.device)
                reliability = reliability * (size > 1).to(reliability.dtype)
        self.hyperedge_weight, self.singletons = hyperedge_weight, singletons
        self.teacher_logits = teacher_logits.detach()
        self.lamb, self.tau, self.mode = lamb, tau, mode
        self.hyperedge_index = hyperedge_index
        self.num_hyperedges = num_hyperedges
        self.reliability = reliability
        self.generator = generator

    def __call__(self, scores: Tensor, data: Data) -> Tensor:
        if (scores.dim() == 2 and scores.size(0) == self.teacher_logits.size(0)
                and scores.size(1) != self.teacher_logits.size(1)):
            raise ValueError(f"the student's class count ({scores.size(1)}) differs from the "
                             f"teacher's ({self.teacher_logits.size(1)}): scores "
                             f"{list(scores.shape)}, teacher_logits "
                             f"{list(self.teacher_logits.shape)}")
        if scores.shape != self.teacher_logits.shape:
            raise ValueError(f"scores must cover every vertex like the teacher logits "
                             f"{list(self.teacher_logits.shape)}, got {list(scores.shape)}")
        t = self.teacher_logits.to(scores.device)
        kd = distillation_loss(scores, t, self.tau, self.mode)
        if self.reliability is not None:
            where = scores.device if self.generator is None else self.generator.device
            mask = torch.bernoulli(self.reliability.to(where),
                                   generator=self.generator).bool().to(scores.device)
            kd = kd + self.hyperedge_weight * _hyperedge_kd(
                scores, t, self.hyperedge_index, self.num_hyperedges, mask, self.tau, self.mode)
        if self.lamb == 0.0:
            return kd
        train = data.train_mask
        ce = F.cross_entropy(scores[train], data.y[train])
        return self.lamb * ce + (1.0 - self.lamb) * kd


def distill(
    student: LightHGNN,
    x: Tensor,
    y: Tensor,
    teacher_logits: Tensor,
    train_mask: Tensor,
    val_mask: Tensor,
    test_mask: Tensor | None = None,
    *,
    hyperedge_index: Tensor | None = None,
    num_hyperedges: int | None = None,
    reliability: Tensor | None = None,
    lamb: float = 0.0,
    tau: float = 1.0,
    mode: str = "paper",
    hyperedge_weight: float = 1.0,
    singletons: bool = True,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    device: str | torch.device = "cpu",
    generator: torch.Generator | None = None,
) -> NodeClassificationResult:
    """Train ``student`` by distillation with :func:`graphkit.train.train_node_classifier`.

    LightHGNN when ``reliability`` is ``None``, LightHGNN+ otherwise (pass the hypergraph the
    teacher saw). The best-validation-accuracy epoch (first strict maximum) is restored, as in
    the official code (Adam, lr 0.01, weight decay 5e-4, 200 epochs, :math:`\\lambda = 0`).
    The objective (:class:`LightHGNNLoss`) is the loop's ``train_loss_fn``: it sees every
    vertex, while the reported accuracies are on ``train_mask`` / ``val_mask`` / ``test_mask``.
    ``hyperedge_weight`` and ``singletons`` are LightHGNN+'s :class:`LightHGNNLoss` options;
    ``generator`` (a CPU one serves any device) draws its hyperedge samples.
    """
    loss = LightHGNNLoss(teacher_logits, lamb, tau, mode, hyperedge_index, num_hyperedges,
                         reliability, generator=generator, hyperedge_weight=hyperedge_weight,
                         singletons=singletons)
    check_num_nodes(x.size(0), teacher_logits, name="teacher_logits")
    data = Data(x=x, y=y, train_mask=train_mask, val_mask=val_mask, num_nodes=x.size(0))
    if test_mask is not None:
        data.test_mask = test_mask
    return train_node_classifier(student, data, lr=lr, weight_decay=weight_decay, epochs=epochs,
                                 selection="val_acc", device=device,
                                 forward=lambda model, d: model(d.x), train_loss_fn=loss)
