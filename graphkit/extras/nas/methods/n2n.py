r"""N2N learning: compress a teacher network by two policy-gradient stages, layer removal then
layer shrinkage, with students trained by distillation.

From `N2N Learning: Network to Network Compression via Policy Gradient Reinforcement Learning
<https://arxiv.org/abs/1709.06030>`_ (official code: ``anubhavashok/N2N``).

- **Removal:** a bidirectional LSTM reads one descriptor per teacher layer and outputs a
  keep/remove decision for each (:class:`RemovalPolicy`).
- **Shrinkage:** on the reduced network, an autoregressive LSTM picks a width ratio per
  remaining layer (:class:`~graphkit.extras.nas.searchers.ReinforceSearch` over one
  :class:`~graphkit.extras.nas.space.Choice` per layer).
- **Reward** (:func:`n2n_reward`), with :math:`C = 1 - |\theta_s| / |\theta_t|`:

  .. math::
      R = C (2 - C) \cdot \frac{A_s}{A_t},

  :math:`-1` for an invalid student, and with a size limit the annealed constraint of the
  official code (:func:`constrained_reward`).
- **Policy update:** REINFORCE, :math:`\nabla J \approx (R - b) \nabla \log \pi(a_{1:T})`,
  with a moving-average baseline :math:`b`.

Students are plain CNNs (:class:`PlainNet`) rebuilt from the reduced layer list: a removed
layer's successor takes the previous kept layer's width as input, so every action keeps the
shapes compatible without adapters; global pooling makes the classifier independent of the
strides kept. Each student is trained by matching the teacher's logits (MSE, as the official
``trainTeacherStudent``; or :func:`~graphkit.extras.training.distill.kd_kl`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_image, check_positive
from graphkit.extras._core.counting import count_params
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.searchers import ReinforceSearch, Trial
from graphkit.extras.nas.space import Choice, SearchSpace
from graphkit.extras.training.distill import kd_kl

__all__ = [
    "N2NCompressor",
    "N2NResult",
    "LayerSpec",
    "PlainNet",
    "RemovalPolicy",
    "SHRINK_RATIOS",
    "constrained_reward",
    "layer_features",
    "n2n_reward",
    "n2n_toy_teacher",
]

#: Width ratios of the shrinkage stage: the official lookup's distinct values (it lists 0.5
#: five times, which only tilts the initial policy towards 0.5).
SHRINK_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


# --------------------------------------------------------------------------- reward


def n2n_reward(
    student_acc: float | None,
    student_params: int,
    teacher_acc: float,
    teacher_params: int,
) -> float:
    r"""N2N's reward :math:`R = C(2 - C) \cdot A_s / A_t`, :math:`C = 1 - |\theta_s|/|\theta_t|`.

    ``student_acc=None`` marks an invalid student: :math:`R = -1`. The compression term
    :math:`C(2 - C)` rises steeply at first and flattens near :math:`C = 1` (e.g. 0.75 at
    :math:`C = 0.5`, 0.99 at :math:`C = 0.9`), so accuracy decides among highly compressed
    students.
    """
    if student_acc is None:
        return -1.0
    if not teacher_acc > 0 or teacher_params < 1:
        raise ValueError(
            f"teacher accuracy must be positive and its size >= 1, got {teacher_acc}, "
            f"{teacher_params}"
        )
    if not 0 <= student_acc <= 1 or math.isnan(student_acc) or student_params < 0:
        raise ValueError(
            f"student accuracy lies in [0, 1] and its size is >= 0, got {student_acc}, "
            f"{student_params}"
        )
    c = 1.0 - student_params / teacher_params
    return c * (2.0 - c) * (student_acc / teacher_acc)


def constrained_reward(
    reward: float, size: int, size_limit: int, iteration: int, max_iteration: int = 15
) -> float:
    r"""The official code's size constraint, annealed over the first ``max_iteration`` epochs.

    With :math:`\epsilon = \max(0, 1 - t / t_{max})^4`, a student larger than the limit gets
    :math:`(\epsilon - 1) + \epsilon R` (so :math:`-1` once :math:`t \ge t_{max}`); one within
    the limit keeps :math:`R`. The official ``getEpsilon`` clips after the fourth power,
    ``min(1, max(0, (1 - t / t_max) ** 4))``, which rises again after :math:`t_{max}` (back to
    1 at :math:`2 t_{max}`); clipping the base first keeps the intended annealing. Both agree
    for :math:`t \le t_{max}`.
    """
    if iteration < 0 or max_iteration < 1:
        raise ValueError(
            f"need iteration >= 0 and max_iteration >= 1, got {iteration}, {max_iteration}"
        )
    if size <= size_limit:
        return reward
    eps = max(0.0, 1.0 - iteration / max_iteration) ** 4
    return (eps - 1.0) + eps * reward


# --------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer: ``kind`` ``"conv"`` (conv-BN-ReLU) or ``"fc"`` (linear-ReLU)."""

    kind: str
    width: int
    kernel: int = 3
    stride: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "fc"):
            raise ValueError(f"layer kind must be 'conv' or 'fc', got {self.kind!r}")
        check_positive(width=self.width, kernel=self.kernel, stride=self.stride)
        if self.kind == "conv" and self.kernel % 2 == 0:
            raise ValueError(f"conv kernels are odd, got {self.kernel}")


class PlainNet(nn.Module):
    r"""A plain CNN from a layer list: convs, global average pooling, fully connected layers
    and a linear classifier.

    Args:
        in_channels (int): image channels.
        layers (Sequence[LayerSpec]): the hidden layers, every conv before every fc (may be
            empty: then the classifier reads the pooled image).
        num_classes (int): classes.

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`
        - **output:** :math:`(N, \mathrm{classes})`
    """

    def __init__(self, in_channels: int, layers: Sequence[LayerSpec], num_classes: int) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, num_classes=num_classes)
        self.specs = tuple(layers)
        kinds = [s.kind for s in self.specs]
        if "fc" in kinds and "conv" in kinds[kinds.index("fc") :]:
            raise ValueError(f"every conv must come before every fc, got {kinds}")
        self.in_channels = in_channels
        convs, fcs = [], []
        width = in_channels
        for s in self.specs:
            if s.kind == "conv":
                convs.append(
                    nn.Sequential(
                        nn.Conv2d(width, s.width, s.kernel, s.stride, s.kernel // 2, bias=False),
                        nn.BatchNorm2d(s.width),
                        nn.ReLU(),
                    )
                )
            else:
                fcs.append(nn.Sequential(nn.Linear(width, s.width), nn.ReLU()))
            width = s.width
        self.convs = nn.Sequential(*convs)
        self.fcs = nn.Sequential(*fcs)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_channels, type(self).__name__)
        h = F.adaptive_avg_pool2d(self.convs(x), 1).flatten(1)
        return self.classifier(self.fcs(h))

    def extra_repr(self) -> str:
        return ", ".join(f"{s.kind}{s.width}" for s in self.specs) or "no hidden layers"


def n2n_toy_teacher(in_channels: int = 3, num_classes: int = 4, width: int = 32) -> PlainNet:
    """The toy teacher of the tests: six hidden layers (five convs, one fc)."""
    check_positive(width=width)
    layers = [
        LayerSpec("conv", width),
        LayerSpec("conv", width, stride=2),
        LayerSpec("conv", 2 * width),
        LayerSpec("conv", 2 * width, stride=2),
        LayerSpec("conv", 2 * width),
        LayerSpec("fc", 2 * width),
    ]
    return PlainNet(in_channels, layers, num_classes)


def layer_features(specs: Sequence[LayerSpec]) -> Tensor:
    """One descriptor per layer, as the official controller input: (is conv, kernel, stride,
    padding, width), scaled to about [0, 1] (kernel / 7, stride / 2, padding / 3, width / max).
    """
    if not specs:
        raise ValueError("no layers to describe")
    widest = max(s.width for s in specs)
    rows = [
        [float(s.kind == "conv"), s.kernel / 7, s.stride / 2, (s.kernel // 2) / 3, s.width / widest]
        for s in specs
    ]
    return torch.tensor(rows)


# --------------------------------------------------------------------------- removal policy


class RemovalPolicy(nn.Module):
    r"""N2N's layer-removal policy: a bidirectional LSTM over the layer descriptors and a
    keep/remove softmax per layer, :math:`\pi(a_t \mid x_{1:T}) = \mathrm{softmax}(W h_t)`.

    Defaults follow the official script: 2 LSTM layers of 30 units per direction, 5 input
    features.

    Args:
        features (int): descriptor size (default: ``5``).
        hidden (int): LSTM units per direction (default: ``30``).
        num_layers (int): LSTM layers (default: ``2``).
    """

    def __init__(self, features: int = 5, hidden: int = 30, num_layers: int = 2) -> None:
        super().__init__()
        check_positive(features=features, hidden=hidden, num_layers=num_layers)
        self.lstm = nn.LSTM(features, hidden, num_layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 2)  # index 1 = remove
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lstm.reset_parameters()
        self.head.reset_parameters()

    def log_probs(self, features: Tensor) -> Tensor:
        """Per-layer ``(keep, remove)`` log-probabilities, shape ``(L, 2)``."""
        if features.dim() != 2 or features.size(1) != self.lstm.input_size:
            raise ValueError(
                f"features must be (layers, {self.lstm.input_size}), got {tuple(features.shape)}"
            )
        out, _ = self.lstm(features.unsqueeze(0))
        return F.log_softmax(self.head(out[0]), dim=-1)

    def sample(self, features: Tensor, generator: torch.Generator | None = None) -> list[bool]:
        """Draw one remove decision per layer."""
        with torch.no_grad():
            p = self.log_probs(features).exp().cpu()
        return [bool(torch.multinomial(row, 1, generator=generator)) for row in p]

    def log_prob(self, features: Tensor, remove: Sequence[bool]) -> Tensor:
        """Summed log-probability of the decisions ``remove``."""
        logp = self.log_probs(features)
        if len(remove) != logp.size(0):
            raise ValueError(f"{len(remove)} decisions for {logp.size(0)} layers")
        idx = torch.tensor([int(bool(r)) for r in remove], device=logp.device)
        return logp.gather(1, idx[:, None]).sum()


# --------------------------------------------------------------------------- compressor


@dataclass(frozen=True)
class N2NResult:
    """The best student found: its layers, trained network, accuracy, size and reward."""

    specs: tuple[LayerSpec, ...]
    student: PlainNet | None
    accuracy: float | None
    params: int
    reward: float

    @property
    def valid(self) -> bool:
        return self.student is not None


Batch = tuple[Tensor, Tensor]


@register_model(
    "n2n",
    family="nas",
    paper="N2N Learning: Network to Network Compression via Policy Gradient Reinforcement Learning",
)
class N2NCompressor:
    r"""Two-stage policy-gradient compression of a :class:`PlainNet` teacher.

    :meth:`remove` trains the :class:`RemovalPolicy` for ``episodes`` rollouts,
    :meth:`shrink` trains a :class:`ReinforceSearch` over :data:`SHRINK_RATIOS` on the best
    reduced network, :meth:`compress` runs both. Each rollout builds a student, trains it for
    ``student_epochs`` passes over ``train`` by distillation from the teacher, measures its
    accuracy on ``val`` and scores it with :func:`n2n_reward` (cached per architecture, as the
    official code does). Removing every hidden layer is an invalid action (reward :math:`-1`).

    Args:
        teacher (PlainNet): the trained network to compress (kept frozen).
        train (tuple[Tensor, Tensor]): ``(x, y)`` to distil students on.
        val (tuple[Tensor, Tensor]): ``(x, y)`` on which accuracies are measured.
        reward (str | Callable): ``"paper"`` (:func:`n2n_reward`) or
            ``fn(acc, params, teacher_acc, teacher_params) -> float`` (default: ``"paper"``).
        size_limit (int, optional): a parameter budget, enforced by
            :func:`constrained_reward` (default: :obj:`None`).
        distill (str): ``"mse"`` on logits (official code) or ``"kl"`` (:func:`kd_kl`, T=4)
            (default: ``"mse"``).
        student_epochs (int): passes over ``train`` per student (default: ``5``, official).
        student_lr (float): student SGD (Nesterov, momentum 0.9, weight decay 5e-4) learning
            rate (default: ``0.0005``, official; small toys need more).
        batch_size (int): student batch size (default: ``64``).
        removal_lr (float): Adam rate of the removal policy (default: ``0.003``, official).
        shrink_lr (float): Adam rate of the shrinkage policy (default: ``0.1``, official).
        baseline_decay (float): moving-average factor of the baseline (default: ``0.9``).
        seed (int): seeds policies, samples and student training (default: ``0``).
    """

    def __init__(
        self,
        teacher: PlainNet,
        train: Batch,
        val: Batch,
        reward: str | Callable[[float | None, int, float, int], float] = "paper",
        size_limit: int | None = None,
        distill: str = "mse",
        student_epochs: int = 5,
        student_lr: float = 0.0005,
        batch_size: int = 64,
        removal_lr: float = 0.003,
        shrink_lr: float = 0.1,
        baseline_decay: float = 0.9,
        seed: int = 0,
    ) -> None:
        if not isinstance(teacher, PlainNet):
            raise TypeError(f"teacher must be a PlainNet, got {type(teacher).__name__}")
        if not teacher.specs:
            raise ValueError("the teacher has no hidden layers to compress")
        if reward != "paper" and not callable(reward):
            raise ValueError(f"reward must be 'paper' or a callable, got {reward!r}")
        if distill not in ("mse", "kl"):
            raise ValueError(f"distill must be 'mse' or 'kl', got {distill!r}")
        check_positive(student_epochs=student_epochs, batch_size=batch_size)
        if not all(lr > 0 and math.isfinite(lr) for lr in (student_lr, removal_lr, shrink_lr)):
            raise ValueError("learning rates must be positive and finite, got "
                             f"{student_lr}, {removal_lr}, {shrink_lr}")
        if size_limit is not None:
            check_positive(size_limit=size_limit)
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {baseline_decay}")
        for name, (x, y) in (("train", train), ("val", val)):
            check_image(x, teacher.in_channels, f"N2NCompressor {name} data")
            if y.shape != (x.size(0),):
                raise ValueError(f"{name} labels must have shape ({x.size(0)},)")
            # NaN images distilled NaN students; float, negative or too large labels were
            # compared as they were (a misleading "zero validation accuracy" at best)
            if x.size(0) == 0:
                raise ValueError(f"{name} data is empty")
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"{name} images hold NaN or infinite values")
            if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
                raise ValueError(f"{name} labels must be integer class ids, got dtype {y.dtype}")
            classes = teacher.classifier.out_features
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= classes:
                raise ValueError(f"{name} labels hold class {lo if lo < 0 else hi}, out of "
                                 f"range for the teacher's {classes} classes")
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.train_data, self.val_data = train, val
        self.reward_fn = n2n_reward if reward == "paper" else reward
        self.size_limit = size_limit
        self.distill = distill
        self.student_epochs, self.student_lr, self.batch_size = (
            student_epochs,
            student_lr,
            batch_size,
        )
        self.shrink_lr, self.baseline_decay, self.seed = shrink_lr, baseline_decay, seed
        self.num_classes = teacher.classifier.out_features
        self.teacher_params = count_params(teacher)
        self.teacher_acc = self.accuracy(teacher)
        if not self.teacher_acc > 0:
            raise ValueError("the teacher has zero validation accuracy: nothing to keep")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.removal_policy = RemovalPolicy()
        self.removal_optimizer = torch.optim.Adam(self.removal_policy.parameters(), lr=removal_lr)
        self.generator = torch.Generator().manual_seed(seed)
        self._cache: dict[tuple[LayerSpec, ...], N2NResult] = {}

    # ---------------------------------------------------------------- students

    @torch.no_grad()
    def accuracy(self, model: nn.Module) -> float:
        """Top-1 accuracy of ``model`` on the validation data."""
        model.eval()
        x, y = self.val_data
        return float((model(x).argmax(1) == y).float().mean())

    def train_student(self, student: PlainNet) -> PlainNet:
        """Distil the teacher into ``student`` (SGD, official hyper-parameters but the lr)."""
        x, _ = self.train_data
        with torch.no_grad():
            target = self.teacher(x)
        opt = torch.optim.SGD(
            student.parameters(), lr=self.student_lr, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        g = torch.Generator().manual_seed(self.seed)
        student.train()
        for _ in range(self.student_epochs):
            order = torch.randperm(x.size(0), generator=g).to(x.device)
            for start in range(0, x.size(0), self.batch_size):
                idx = order[start : start + self.batch_size]
                out = student(x[idx])
                loss = (
                    F.mse_loss(out, target[idx])
                    if self.distill == "mse"
                    else kd_kl(out, target[idx])
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
        return student.eval()

    def evaluate(self, specs: Sequence[LayerSpec], iteration: int = 0) -> N2NResult:
        """Build, distil and score the student with hidden layers ``specs``."""
        specs = tuple(specs)
        if specs not in self._cache:
            if not specs:  # nothing left but the classifier on pooled pixels
                result = N2NResult(specs, None, None, 0, self.reward_fn(None, 0, 1.0, 1))
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    student = PlainNet(self.teacher.in_channels, specs, self.num_classes)
                student.to(next(self.teacher.parameters()).device)
                self.train_student(student)
                acc = self.accuracy(student)
                params = count_params(student)
                r = self.reward_fn(acc, params, self.teacher_acc, self.teacher_params)
                result = N2NResult(specs, student, acc, params, r)
            self._cache[specs] = result
        result = self._cache[specs]
        if self.size_limit is not None and result.valid:
            r = constrained_reward(result.reward, result.params, self.size_limit, iteration)
            result = replace(result, reward=r)
        return result

    # ---------------------------------------------------------------- stages

    def remove(self, episodes: int) -> tuple[N2NResult, list[Trial]]:
        """Stage 1: REINFORCE the removal policy for ``episodes`` rollouts.

        Returns the best student and the history (``cfg = {"remove": decisions}``).
        """
        check_positive(episodes=episodes)
        specs = self.teacher.specs
        features = layer_features(specs)
        history: list[Trial] = []
        baseline: float | None = None
        best: N2NResult | None = None
        for step in range(episodes):
            remove = self.removal_policy.sample(features, self.generator)
            result = self.evaluate([s for s, r in zip(specs, remove) if not r], step)
            baseline = result.reward if baseline is None else baseline
            loss = -(result.reward - baseline) * self.removal_policy.log_prob(features, remove)
            self.removal_optimizer.zero_grad()
            loss.backward()
            self.removal_optimizer.step()
            baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * result.reward
            history.append(Trial({"remove": remove}, result.reward, step))
            if best is None or result.reward > best.reward:
                best = result
        assert best is not None
        return best, history

    def shrink_space(self, specs: Sequence[LayerSpec]) -> SearchSpace:
        """One width-ratio choice per layer of ``specs``."""
        if not specs:
            raise ValueError("no layers to shrink")
        return SearchSpace(
            "shrink", [Choice(f"layer{i}", SHRINK_RATIOS) for i in range(len(specs))]
        )

    @staticmethod
    def shrunk(specs: Sequence[LayerSpec], cfg: dict[str, Any]) -> tuple[LayerSpec, ...]:
        """``specs`` with each width scaled by its ratio (rounded, at least 1)."""
        return tuple(
            replace(s, width=max(1, round(s.width * cfg[f"layer{i}"]))) for i, s in enumerate(specs)
        )

    def shrink(self, specs: Sequence[LayerSpec], episodes: int) -> tuple[N2NResult, list[Trial]]:
        """Stage 2: REINFORCE an autoregressive LSTM over per-layer width ratios."""
        check_positive(episodes=episodes)
        specs = tuple(specs)
        searcher = ReinforceSearch(
            self.shrink_space(specs),
            hidden=30,
            lr=self.shrink_lr,
            baseline_decay=self.baseline_decay,
            seed=self.seed,
        )
        results: list[N2NResult] = []

        def score(cfg: dict[str, Any]) -> float:
            results.append(self.evaluate(self.shrunk(specs, cfg), len(results)))
            return results[-1].reward

        history = searcher.run(score, episodes)
        return max(results, key=lambda r: r.reward), history

    def compress(self, removal_episodes: int, shrink_episodes: int) -> N2NResult:
        """Both stages; the best of the reduced and the shrunk students."""
        reduced, _ = self.remove(removal_episodes)
        if not reduced.valid:
            return reduced
        shrunk, _ = self.shrink(reduced.specs, shrink_episodes)
        return shrunk if shrunk.reward > reduced.reward else reduced
