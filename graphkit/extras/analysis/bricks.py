"""Bricks of a foundation model: task-selective FFN neurons and a library of LoRA bricks.

From `Configurable Foundation Models: Building LLMs from a Modular Perspective
<https://arxiv.org/abs/2409.02877>`_ (Xiao et al., 2024), a survey whose analysis finds that
feed-forward neurons of trained transformers form functional partitions ("emergent bricks")
and that adapter "customised bricks" can be retrieved, merged and grown. This module measures
the first and manages the second:

* :func:`neuron_specialization`: per-sample activations of FFN neurons on each task's data,
  and each neuron's specialisation, the AUC of its activation for "this task vs the rest";
* :func:`partition_neurons`: co-activation clusters (spectral clustering of the neurons'
  activation correlations, shared with :mod:`graphkit.extras.analysis.convergent`);
* :func:`mask_neurons`: a context that silences chosen neurons, for ablations;
* :class:`LoRABrickLibrary`: LoRA bricks with keys, routed by cosine similarity, merged by
  weighted averaging or task arithmetic, grown by adding bricks, applied to a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model
from graphkit.extras.analysis.convergent import spectral_clusters, unit_correlation
from graphkit.metrics import roc_auc

PAPER = "Configurable Foundation Models: Building LLMs from a Modular Perspective"

#: Modules whose outputs count as FFN neurons when none are named.
ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU)


def auc_scores(values: Tensor, positive: Tensor) -> Tensor:
    r"""Per-column ROC AUC of ``values`` for separating ``positive`` rows from the rest.

    .. math:: \mathrm{AUC}_j = P(v_{pj} > v_{nj}) + \tfrac12 P(v_{pj} = v_{nj})

    over positive rows :math:`p` and negative rows :math:`n` (the Mann-Whitney statistic,
    ties counted half), computed with :func:`graphkit.metrics.roc_auc` for each unit.

    Args:
        values: ``(samples, units)``.
        positive: boolean ``(samples,)`` with at least one positive and one negative.

    Returns:
        ``(units,)`` in ``[0, 1]``; 0.5 is chance, 1 a unit firing more on every positive.
    """
    if values.dim() != 2 or positive.shape != values.shape[:1]:
        raise ValueError(
            f"values must be (samples, units) and positive (samples,), got "
            f"{tuple(values.shape)} and {tuple(positive.shape)}"
        )
    if not torch.isfinite(values).all():
        raise ValueError("values contain NaN or infinite entries")
    if positive.dtype != torch.bool:  # bool() read any non-zero label (2, -1, 0.5) as positive
        if not bool(((positive == 0) | (positive == 1)).all()):
            raise ValueError("positive must be boolean or hold only 0 and 1")
    positive = positive.bool()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative sample")
    # one unit at a time through the shared metric (ties counted half, as here)
    scores = [roc_auc(positive, values[:, j]) for j in range(values.shape[1])]
    return torch.tensor(scores, dtype=values.dtype, device=values.device)


@dataclass
class NeuronStats:
    """Activation statistics of FFN neurons over several tasks' samples.

    Attributes:
        names: the hooked modules, in the order their neurons are concatenated.
        sizes: neurons per hooked module.
        activations: ``(samples, neurons)`` activation of each neuron per sample (averaged
            over tokens / positions).
        task: ``(samples,)`` task index of each sample.
        auc: ``(tasks, neurons)`` AUC of each neuron's activation for task ``t`` vs the rest.
    """

    names: list[str]
    sizes: list[int]
    activations: Tensor
    task: Tensor
    auc: Tensor

    @property
    def n_tasks(self) -> int:
        return self.auc.shape[0]

    def selective(self, task: int, threshold: float = 0.9) -> Tensor:
        """Boolean ``(neurons,)``: neurons whose AUC for ``task`` exceeds ``threshold``."""
        if not 0 <= task < self.n_tasks:
            raise IndexError(f"task {task} out of range [0, {self.n_tasks})")
        if not 0 <= threshold <= 1:  # an AUC threshold; NaN selected nothing silently
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        return self.auc[task] > threshold

    def split(self, mask: Tensor) -> dict[str, Tensor]:
        """A mask over all neurons, cut into one index tensor per hooked module."""
        if mask.shape != (sum(self.sizes),):
            raise ValueError(f"mask must have shape ({sum(self.sizes)},), got {tuple(mask.shape)}")
        out, start = {}, 0
        for name, size in zip(self.names, self.sizes, strict=True):
            out[name] = mask[start : start + size].nonzero().flatten()
            start += size
        return out

    def task_means(self) -> Tensor:
        """``(tasks, neurons)``: the mean activation of each neuron on each task."""
        return torch.stack(
            [self.activations[self.task == t].mean(dim=0) for t in range(self.n_tasks)]
        )


def _find_modules(model: nn.Module, modules: Sequence[str] | None) -> dict[str, nn.Module]:
    if modules is None:
        found = {n: m for n, m in model.named_modules() if isinstance(m, ACTIVATIONS)}
        if not found:
            raise ValueError("no activation modules found; name the FFN modules to hook")
        return found
    found = {}
    for name in modules:
        try:
            found[name] = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"model has no submodule {name!r}") from None
    if not found:
        raise ValueError("modules is empty")
    return found


def _default_forward(model: nn.Module, batch: object) -> object:
    return model(batch[0] if isinstance(batch, list | tuple) else batch)


@torch.no_grad()
def neuron_specialization(
    model: nn.Module,
    task_loaders: Sequence[Iterable],
    modules: Sequence[str] | None = None,
    forward: Callable[[nn.Module, object], object] = _default_forward,
) -> NeuronStats:
    """Record FFN neuron activations on every task's data and score their task selectivity.

    The outputs of the hooked modules (default: every activation module of the model, i.e.
    the FFN's hidden nonlinearity) have their neurons on the last dimension; each sample's
    activation is averaged over the other dimensions (tokens, positions). Runs in eval mode.

    Args:
        model: the network.
        task_loaders: one iterable of batches per task (at least two tasks); a batch is the
            model input or a tuple whose first element is.
        modules: names of the modules to hook (default: the activation modules).
        forward: how to run one batch (default: ``model(batch)`` / ``model(batch[0])``).
    """
    if len(task_loaders) < 2:
        raise ValueError(f"need at least two tasks, got {len(task_loaders)}")
    hooked = _find_modules(model, modules)
    current: dict[str, Tensor] = {}

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            if out.dim() < 2:
                raise ValueError(f"{name} output must be (B, ..., neurons), got {out.dim()}-D")
            current[name] = out.reshape(out.shape[0], -1, out.shape[-1]).mean(dim=1).float()

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in hooked.items()]
    rows, tasks = [], []
    try:
        with eval_mode(model):
            for t, loader in enumerate(task_loaders):
                for batch in loader:
                    current.clear()
                    forward(model, batch)
                    missing = [n for n in hooked if n not in current]
                    if missing:
                        raise RuntimeError(f"modules {missing} did not run on task {t}'s batch")
                    acts = torch.cat([current[n] for n in hooked], dim=1)
                    rows.append(acts.cpu())
                    tasks.append(torch.full((acts.shape[0],), t, dtype=torch.long))
    finally:
        for h in handles:
            h.remove()
    task = torch.cat(tasks)
    if any(not (task == t).any() for t in range(len(task_loaders))):
        raise ValueError("every task loader must yield at least one sample")
    activations = torch.cat(rows)
    auc = torch.stack([auc_scores(activations, task == t) for t in range(len(task_loaders))])
    sizes = [current[n].shape[1] for n in hooked]  # the last batch's widths, same for all
    return NeuronStats(list(hooked), sizes, activations, task, auc)


@torch.no_grad()
def partition_neurons(activations: Tensor | NeuronStats, k: int, seed: int = 0) -> Tensor:
    """Co-activation partition: spectral clustering of the neurons' positive correlations.

    Args:
        activations: ``(samples, neurons)`` or a :class:`NeuronStats`.
        k: number of partitions.
        seed: k-means seed (default: 0).

    Returns:
        Long ``(neurons,)`` partition ids in ``[0, k)``.
    """
    if isinstance(activations, NeuronStats):
        activations = activations.activations
    corr = unit_correlation(activations)
    # co-activation only: neurons of rival tasks are anti-correlated, and spectral_clusters'
    # |corr| would put them together
    affinity = ((corr + corr.t()) / 2).clamp_min(0.0)
    return spectral_clusters(affinity, k, seed=seed)


@contextmanager
def mask_neurons(
    model: nn.Module, neurons: Mapping[str, Tensor], value: float = 0.0
) -> Iterator[None]:
    """Within the context, set the given neurons of the named modules' outputs to ``value``.

    Args:
        model: the network.
        neurons: module name -> indices (or boolean mask) over its output's last dimension,
            e.g. ``stats.split(stats.selective(0))``.
        value: what the silenced neurons output (default: 0).
    """
    handles = []

    def make_hook(name: str, index: Tensor) -> Callable:
        # checked once here on the host; the hook compares shapes and Python ints only
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            width = index.shape[-1] if index.dim() else None
        elif index.is_floating_point() or index.is_complex():
            raise ValueError(
                f"neurons[{name!r}] must be integer indices or a boolean mask, got {index.dtype}"
            )
        else:
            if index.numel() and int(index.min()) < 0:
                raise ValueError(f"neurons[{name!r}] holds the negative index {int(index.min())}")
            width = None
        top = int(index.max()) if index.dtype != torch.bool and index.numel() else -1

        def hook(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
            if top >= out.shape[-1] or (width is not None and width != out.shape[-1]):
                bad = f"index {top}" if top >= out.shape[-1] else f"a mask of {width}"
                raise ValueError(
                    f"neurons[{name!r}] names {bad}, but the module's output has "
                    f"{out.shape[-1]} neurons"
                )
            out = out.clone()
            out[..., index.to(out.device)] = value
            return out

        return hook

    try:
        for name, index in neurons.items():
            try:
                module = model.get_submodule(name)
            except AttributeError:
                raise ValueError(f"model has no submodule {name!r}") from None
            handles.append(module.register_forward_hook(make_hook(name, index)))
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class LoRABrick:
    r"""One customised brick: LoRA factors per target weight and a retrieval key.

    The brick adds :math:`\Delta W = s\, B A` to each target weight (``A (r, in)``,
    ``B (out, r)``).
    """

    factors: dict[str, tuple[Tensor, Tensor]]
    key: Tensor
    scale: float = 1.0

    def delta(self) -> dict[str, Tensor]:
        return {name: self.scale * (b @ a) for name, (a, b) in self.factors.items()}


@register_model("configurable_fm_bricks", family="analysis", paper=PAPER)
class LoRABrickLibrary:
    """A library of LoRA bricks: grow it, route queries to bricks, merge and apply them.

    * :meth:`grow` adds a brick (LoRA factors per target weight, a key vector);
    * :meth:`route` picks the ``top_k`` bricks whose keys are most cosine-similar to a query
      embedding, weighted by a softmax of the similarities over temperature ``tau``;
    * :meth:`merge` combines bricks' weight deltas by weighted averaging (weights normalised
      to sum to one) or task arithmetic (weights used as given);
    * :meth:`apply` adds deltas to a model's weights within a context and restores them
      exactly afterwards; :meth:`functional_params` gives them for ``torch.func``.

    Args:
        key_dim: dimension of the brick keys and query embeddings.
    """

    def __init__(self, key_dim: int) -> None:
        if isinstance(key_dim, bool) or int(key_dim) != key_dim or key_dim < 1:
            raise ValueError(f"key_dim must be a positive integer, got {key_dim!r}")
        self.key_dim = key_dim
        self.bricks: dict[str, LoRABrick] = {}

    def __len__(self) -> int:
        return len(self.bricks)

    def __contains__(self, name: str) -> bool:
        return name in self.bricks

    def grow(
        self,
        name: str,
        factors: Mapping[str, tuple[Tensor, Tensor]],
        key: Tensor,
        scale: float = 1.0,
    ) -> LoRABrick:
        """Add a brick; its target shapes must agree with the bricks already present."""
        if name in self.bricks:
            raise ValueError(f"a brick named {name!r} already exists")
        if key.shape != (self.key_dim,) or not torch.isfinite(key).all():
            raise ValueError(
                f"key must be a finite ({self.key_dim},) vector, got {tuple(key.shape)}"
            )
        if not factors:
            raise ValueError("a brick needs at least one target weight")
        if not math.isfinite(scale):
            raise ValueError(f"scale must be finite, got {scale}")
        shapes = self._shapes()
        for target, (a, b) in factors.items():
            if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
                raise ValueError(
                    f"{target}: expected A (r, in) and B (out, r), got {tuple(a.shape)} and "
                    f"{tuple(b.shape)}"
                )
            shape = (b.shape[0], a.shape[1])
            if target in shapes and shapes[target] != shape:
                raise ValueError(f"{target}: delta shape {shape} differs from {shapes[target]}")
        brick = LoRABrick(
            {t: (a.detach(), b.detach()) for t, (a, b) in factors.items()},
            key.detach(),
            float(scale),
        )
        self.bricks[name] = brick
        return brick

    def _shapes(self) -> dict[str, tuple[int, int]]:
        return {
            t: (b.shape[0], a.shape[1])
            for brick in self.bricks.values()
            for t, (a, b) in brick.factors.items()
        }

    def route(self, query: Tensor, top_k: int = 1, tau: float = 0.1) -> tuple[list[str], Tensor]:
        """The ``top_k`` bricks nearest to ``query`` (cosine) and their softmax weights."""
        if not self.bricks:
            raise ValueError("the library is empty")
        if query.shape != (self.key_dim,) or not torch.isfinite(query).all():
            raise ValueError(f"query must be a finite ({self.key_dim},) vector")
        if not 1 <= top_k <= len(self.bricks):
            raise ValueError(f"top_k must lie in [1, {len(self.bricks)}], got {top_k}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        names = list(self.bricks)
        keys = torch.stack([self.bricks[n].key.to(query) for n in names])
        sims = F.cosine_similarity(keys, query[None, :], dim=1)
        top, idx = sims.topk(top_k)
        return [names[i] for i in idx.tolist()], torch.softmax(top / tau, dim=0)

    def merge(
        self,
        names: Sequence[str],
        weights: Sequence[float] | Tensor | None = None,
        mode: str = "average",
    ) -> dict[str, Tensor]:
        """Weight deltas of a combination of bricks.

        ``mode="average"`` normalises ``weights`` (default: uniform) to sum to one, so merging
        identical bricks returns that brick; ``mode="sum"`` is task arithmetic,
        :math:`\\sum_i w_i \\Delta W_i` (default weights: one each). A target missing from a
        brick counts as a zero delta for it.
        """
        if not names:
            raise ValueError("merge needs at least one brick")
        missing = [n for n in names if n not in self.bricks]
        if missing:
            raise KeyError(f"unknown bricks {missing}")
        if mode not in ("average", "sum"):
            raise ValueError(f"mode must be 'average' or 'sum', got {mode!r}")
        w = (
            torch.ones(len(names), dtype=torch.float64)
            if weights is None
            else (torch.as_tensor(weights, dtype=torch.float64).detach().cpu())
        )
        if w.shape != (len(names),) or not torch.isfinite(w).all():
            raise ValueError(f"weights must be {len(names)} finite numbers")
        if mode == "average":
            if w.sum() == 0:
                raise ValueError("average weights must not sum to zero")
            w = w / w.sum()
        out: dict[str, Tensor] = {}
        for name, wi in zip(names, w.tolist(), strict=True):
            for target, delta in self.bricks[name].delta().items():
                out[target] = out[target] + wi * delta if target in out else wi * delta
        return out

    @staticmethod
    def functional_params(model: nn.Module, deltas: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{name: weight + delta}`` for the targets, for :func:`torch.func.functional_call`."""
        params = dict(model.named_parameters())
        out = {}
        for target, delta in deltas.items():
            if target not in params:
                raise ValueError(f"model has no parameter {target!r}")
            if params[target].shape != delta.shape:
                raise ValueError(
                    f"{target}: delta {tuple(delta.shape)} != weight {tuple(params[target].shape)}"
                )
            out[target] = params[target] + delta.to(params[target])
        return out

    @staticmethod
    @contextmanager
    def apply(model: nn.Module, deltas: Mapping[str, Tensor]) -> Iterator[nn.Module]:
        """Within the context the model's target weights include ``deltas`` (restored after)."""
        new = LoRABrickLibrary.functional_params(model, deltas)
        params = dict(model.named_parameters())
        saved = {t: params[t].detach().clone() for t in new}
        try:
            with torch.no_grad():
                for t, value in new.items():
                    params[t].copy_(value)
            yield model
        finally:
            with torch.no_grad():
                for t, value in saved.items():
                    params[t].copy_(value)
