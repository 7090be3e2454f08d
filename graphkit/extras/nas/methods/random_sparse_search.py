r"""Random search over node masks: a neutral baseline for sparse architecture search.

From `Random Search as a Baseline for Sparse Neural Network Architecture Search
<https://arxiv.org/abs/2403.08265>`_. The search space is the *node space* of an
over-parameterised network: a candidate removes a fraction :math:`s` of the units (neurons,
or output channels of a convolution) of every searched layer. All candidates start from the
parent network's initial weights, so the search looks for a better-placed *initialised*
sparse sub-network:

1. draw ``trials`` node masks uniformly at random, each removing exactly
   :math:`\operatorname{round}(s\, n_l)` of the :math:`n_l` units of layer :math:`l`;
2. rate each by a cheap proxy: ``proxy_steps`` training steps from the shared initialisation,
   then a score (``proxy_steps=0`` rates the network at initialisation);
3. keep the best, train it fully, and compare it with a random mask at the same sparsity.

The paper's finding, which :func:`searched_vs_random` lets one check, is that the searched
network is neither better nor faster to train than the random one.

A unit is removed by masking its row of incoming weights and its bias with the shared mask
API (:mod:`graphkit.extras.sparsity.masks`), so its pre-activation is zero; for activations
with :math:`\sigma(0) = 0` (ReLU, GELU, tanh) the unit is then silent. A normalisation layer
right after a searched layer would add its shift back: search the layers that feed an
activation directly.
"""

from __future__ import annotations

import copy
import math
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphkit.extras._core.checks import check_fraction, check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.searchers import Trial, best_trial
from graphkit.extras.sparsity.masks import apply_mask

#: ``step(model, i) -> loss`` computes the training loss of step ``i`` (no backward).
StepFn = Callable[[nn.Module, int], Tensor]
#: ``evaluate(model) -> score``, higher is better (e.g. accuracy or ``-loss``).
EvalFn = Callable[[nn.Module], float]
#: ``optimizer(parameters) -> torch.optim.Optimizer``.
OptimizerFn = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

_SEARCHABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _sgd(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


def removed_count(units: int, sparsity: float) -> int:
    """Units removed from a layer of ``units`` at node sparsity ``sparsity`` (rounded half up);
    at least one unit is always kept."""
    check_positive(units=units)
    check_fraction("sparsity", sparsity)  # NaN failed in int(), a negative one removed -4 units
    removed = int(sparsity * units + 0.5)
    if removed >= units:
        raise ValueError(
            f"sparsity {sparsity} would remove all {units} units of a layer; keep at least one"
        )
    return removed


def train(model: nn.Module, step: StepFn, steps: int, optimizer: OptimizerFn = _sgd) -> nn.Module:
    """Train ``model`` in place for ``steps`` steps of ``step`` (masked weights stay zero)."""
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    steps = int(steps)
    if steps == 0:
        return model
    opt = optimizer(model.parameters())
    model.train()
    for i in range(steps):
        opt.zero_grad()
        loss = step(model, i)
        if not torch.isfinite(loss):
            raise ValueError(f"training loss is {loss.item()} at step {i}")
        loss.backward()
        opt.step()
    return model


@register_model(
    "random_sparse_search",
    family="nas",
    paper="Random Search as a Baseline for Sparse Neural Network Architecture Search",
)
class RandomSparseSearch:
    r"""Random search for a node-sparse sub-network of ``model`` (see the module docstring).

    Args:
        model (nn.Module): the over-parameterised parent; its current weights are the shared
            initialisation (it is never modified: candidates are copies).
        sparsity (float): share :math:`s \in [0, 1)` of units removed in every searched layer.
        trials (int): candidates drawn (default: ``10``).
        proxy_steps (int): training steps of the proxy rating; ``0`` rates at initialisation
            (default: ``20``).
        layers (Sequence[str], optional): names of the ``Linear`` / ``Conv*d`` layers whose
            units are searched (default: all of them but the last, the output layer).
        optimizer (callable): builds the optimiser of a candidate from its parameters
            (default: SGD, lr 0.05, momentum 0.9).
        seed (int, optional): seeds the masks drawn (default: :obj:`None`).
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float,
        trials: int = 10,
        proxy_steps: int = 20,
        layers: Sequence[str] | None = None,
        optimizer: OptimizerFn = _sgd,
        seed: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        check_fraction("sparsity", sparsity)
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ValueError(f"trials must be a positive integer, got {trials!r}")
        if isinstance(proxy_steps, bool) or not isinstance(proxy_steps, int) or proxy_steps < 0:
            raise ValueError(f"proxy_steps must be a non-negative integer, got {proxy_steps!r}")
        modules = dict(model.named_modules())
        if layers is None:
            layers = [n for n, m in modules.items() if isinstance(m, _SEARCHABLE)][:-1]
            if not layers:
                raise ValueError("the model has no hidden Linear / Conv layer to search")
        self.units: dict[str, int] = {}
        for name in layers:
            module = modules.get(name)
            if not isinstance(module, _SEARCHABLE):
                raise ValueError(f"{name!r} is not a Linear / Conv layer of the model")
            self.units[name] = module.weight.shape[0]
            removed_count(self.units[name], sparsity)  # fail now, not mid-search
        self.model = model
        self.sparsity = float(sparsity)
        self.trials = trials
        self.proxy_steps = proxy_steps
        self.optimizer = optimizer
        self.rng = random.Random(seed)

    def sample(self, rng: random.Random | None = None) -> dict[str, tuple[int, ...]]:
        """A random node configuration: the sorted kept units of each searched layer."""
        rng = self.rng if rng is None else rng
        cfg = {}
        for name, n in self.units.items():
            keep = n - removed_count(n, self.sparsity)
            cfg[name] = tuple(sorted(rng.sample(range(n), keep)))
        return cfg

    def build(self, cfg: Mapping[str, Sequence[int]]) -> nn.Module:
        """A copy of the parent with the units ``cfg`` does not keep removed (masked)."""
        if set(cfg) != set(self.units):
            raise ValueError(f"cfg must name exactly the searched layers {list(self.units)}")
        net = copy.deepcopy(self.model)
        modules = dict(net.named_modules())
        for name, kept in cfg.items():
            module = modules[name]
            n = self.units[name]
            node = torch.zeros(n, dtype=torch.bool, device=module.weight.device)
            index = torch.as_tensor(list(kept), dtype=torch.long)
            if index.numel() and (index.min() < 0 or index.max() >= n):
                raise ValueError(f"{name!r}: kept units must lie in [0, {n})")
            node[index.to(node.device)] = True
            if int(node.sum()) != n - removed_count(n, self.sparsity):
                raise ValueError(f"{name!r}: cfg keeps {int(node.sum())} distinct units of {n}")
            shape = (n,) + (1,) * (module.weight.dim() - 1)
            apply_mask(module, "weight", node.view(shape).expand_as(module.weight))
            if module.bias is not None:
                apply_mask(module, "bias", node)
        return net

    def node_masks(self, net: nn.Module) -> dict[str, Tensor]:
        """The boolean unit mask ``(n_l,)`` of each searched layer of a built network: a unit
        counts as kept while any of its incoming weights or its bias may be non-zero."""
        modules = dict(net.named_modules())
        out = {}
        for name in self.units:
            module = modules[name]
            alive = module.weight.detach().flatten(1).ne(0).any(1)
            if module.bias is not None:
                alive = alive | module.bias.detach().ne(0)
            out[name] = alive
        return out

    def run(self, step: StepFn, evaluate: EvalFn) -> list[Trial]:
        """Rate ``trials`` random candidates: ``proxy_steps`` steps of ``step``, then
        ``evaluate``. Returns the history (:class:`~graphkit.extras.nas.searchers.Trial`, whose
        ``cfg`` maps each layer to its kept units); :meth:`best` builds the winner."""
        history = []
        for t in range(self.trials):
            cfg = self.sample()
            net = train(self.build(cfg), step, self.proxy_steps, self.optimizer)
            net.eval()
            with torch.no_grad():
                score = float(evaluate(net))
            if not math.isfinite(score):  # as Searcher.run: an infinite score would always win
                raise ValueError(f"evaluate returned {score} for trial {t}: need a finite score")
            history.append(Trial(cfg, score, t))
        self.history = history
        return history

    def best(self, history: list[Trial] | None = None) -> nn.Module:
        """The best candidate of ``history`` (default: the last :meth:`run`), freshly built at
        the shared initialisation, ready for full training."""
        history = getattr(self, "history", None) if history is None else history
        if not history:
            raise RuntimeError("no search history: call run() first")
        return self.build(best_trial(history).cfg)


def searched_vs_random(
    make_model: Callable[[int], nn.Module],
    sparsity: float,
    step: StepFn,
    evaluate: EvalFn,
    train_steps: int,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    trials: int = 10,
    proxy_steps: int = 20,
    optimizer: OptimizerFn = _sgd,
) -> dict[str, Any]:
    """The paper's experiment: per seed, the searched network and a random one at the same
    sparsity, both from the parent's initialisation and trained ``train_steps`` steps.

    ``make_model(seed)`` builds the parent. Returns the per-seed final scores (``searched``,
    ``random``), their ``difference`` (searched minus random) and its mean and standard
    deviation; the finding to expect is ``|mean| <= 2 * std``.
    """
    if not seeds:
        raise ValueError("seeds is empty: the comparison needs at least one seed")
    searched, rand = [], []
    for seed in seeds:
        search = RandomSparseSearch(
            make_model(seed), sparsity, trials, proxy_steps, optimizer=optimizer, seed=seed
        )
        search.run(step, evaluate)
        winner = train(search.best(), step, train_steps, optimizer).eval()
        # the random baseline draws its mask from an independent stream
        baseline_cfg = search.sample(random.Random(10_000 + seed))
        baseline = train(search.build(baseline_cfg), step, train_steps, optimizer).eval()
        with torch.no_grad():
            searched.append(float(evaluate(winner)))
            rand.append(float(evaluate(baseline)))
    diff = [a - b for a, b in zip(searched, rand, strict=True)]
    return {
        "searched": searched,
        "random": rand,
        "difference": diff,
        "mean": statistics.mean(diff),
        "std": statistics.stdev(diff) if len(diff) > 1 else 0.0,
    }
