r"""Searchers over a :class:`~.space.SearchSpace`, all behind ``run(evaluate, budget)``.

A searcher proposes configurations (:meth:`Searcher.ask`), learns from their scores
(:meth:`Searcher.tell`), and :meth:`Searcher.run` loops the two for ``budget`` evaluations,
returning the history. Scores are maximised (pass ``-loss`` to minimise).

- :class:`RandomSearch`: uniform per-decision sampling, the baseline every NAS paper compares
  with (and the method of "Random Search and Reproducibility for NAS").
- :class:`ReinforceSearch`: an LSTM controller trained with REINFORCE, after `Neural
  Architecture Search with Reinforcement Learning <https://arxiv.org/abs/1611.01578>`_ (the
  controller of NASNet, and of EAS and N2N in their own action spaces):

  .. math::
      \nabla_\theta J \approx (R - b)\, \nabla_\theta \log \pi_\theta(a_{1:T}),
      \qquad b \leftarrow \beta b + (1 - \beta) R .
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras.nas.space import Choice, SearchSpace


@dataclass(frozen=True)
class Trial:
    """One evaluation: the configuration, its score, and when it was made (0-based)."""

    cfg: dict[str, Any]
    score: float
    step: int


def best_trial(history: list[Trial]) -> Trial:
    """The trial of highest score (the earliest among ties)."""
    if not history:
        raise ValueError("empty history: no trial to pick")
    return max(history, key=lambda t: (t.score, -t.step))


class Searcher(abc.ABC):
    """The shared interface: ``run(evaluate, budget) -> history`` over ``space``.

    Args:
        space (SearchSpace): where to search.
    """

    def __init__(self, space: SearchSpace) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        self.space = space

    @abc.abstractmethod
    def ask(self) -> dict[str, Any]:
        """The next configuration to evaluate."""

    def tell(self, cfg: Mapping[str, Any], score: float) -> None:  # noqa: B027 - optional hook
        """Learn from the score of ``cfg`` (random search ignores it)."""

    def run(self, evaluate: Callable[[dict[str, Any]], float], budget: int) -> list[Trial]:
        """Evaluate ``budget`` proposals with ``evaluate(cfg) -> score``; return the history."""
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"budget must be a positive integer, got {budget!r}")
        history: list[Trial] = []
        for step in range(budget):
            cfg = self.ask()
            score = float(evaluate(cfg))
            if not math.isfinite(score):
                raise ValueError(f"evaluate returned a non-finite score {score} for {cfg}")
            self.tell(cfg, score)
            history.append(Trial(cfg, score, step))
        return history


class RandomSearch(Searcher):
    """Random search: every proposal is :meth:`SearchSpace.sample`.

    Args:
        space (SearchSpace): where to search.
        seed (int, optional): seed of the proposals (default: :obj:`None`).
    """

    def __init__(self, space: SearchSpace, seed: int | None = None) -> None:
        super().__init__(space)
        self.rng = random.Random(seed)

    def ask(self) -> dict[str, Any]:
        return self.space.sample(self.rng)


class LSTMController(nn.Module):
    """An autoregressive policy over a search space: one LSTM step per active choice.

    The choices are taken in :meth:`SearchSpace.build` order; at each step the LSTM cell reads
    the embedding of the previous decision, and the choice's own linear head gives the logits
    of its options, so conditional branches are decided with the history in view.

    Args:
        space (SearchSpace): the space whose configurations it generates.
        hidden (int): LSTM hidden size (default: ``64``).
        temperature (float): divides the logits (default: ``1.0``).
    """

    def __init__(self, space: SearchSpace, hidden: int = 64, temperature: float = 1.0) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be positive, got {hidden}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.space = space
        self.hidden = hidden
        self.temperature = temperature
        self.paths = {path: i for i, (path, _) in enumerate(space.choices())}
        sizes = [len(choice) for _, choice in space.choices()]
        self.cell = nn.LSTMCell(hidden, hidden)
        self.start = nn.Parameter(torch.empty(hidden))
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(k, hidden) for k in sizes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-0.1, 0.1) everywhere, as in the NAS-RL controller."""
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def _walk(
        self, pick: Callable[[str, Choice, Tensor], int]
    ) -> tuple[dict[str, Any], Tensor, Tensor]:
        inp = self.start.unsqueeze(0)
        state: tuple[Tensor, Tensor] | None = None
        log_prob = self.start.new_zeros(())
        entropy = self.start.new_zeros(())

        def decide(path: str, choice: Choice) -> int:
            nonlocal inp, state, log_prob, entropy
            k = self.paths[path]
            state = self.cell(inp, state)
            logp = F.log_softmax(self.heads[k](state[0])[0] / self.temperature, dim=0)
            i = pick(path, choice, logp)
            log_prob = log_prob + logp[i]
            entropy = entropy - (logp.exp() * logp).sum()
            inp = self.embeddings[k](torch.tensor([i], device=logp.device))
            return i

        cfg = self.space.build(decide)
        return cfg, log_prob, entropy

    def sample(
        self, generator: torch.Generator | None = None
    ) -> tuple[dict[str, Any], Tensor, Tensor]:
        """Draw a configuration; returns ``(cfg, log-probability, entropy)`` (summed)."""

        def pick(_path: str, _choice: Choice, logp: Tensor) -> int:
            return int(torch.multinomial(logp.detach().exp().cpu(), 1, generator=generator))

        return self._walk(pick)

    def log_prob(self, cfg: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """``(log-probability, entropy)`` of the decisions that make ``cfg``."""
        self.space.validate(cfg)
        _, logp, ent = self._walk(lambda path, c, _: c.index(self.space.value_at(cfg, path)))
        return logp, ent

    def extra_repr(self) -> str:
        return f"choices={len(self.paths)}, hidden={self.hidden}"


class ReinforceSearch(Searcher):
    r"""REINFORCE over an :class:`LSTMController` with a moving-average baseline.

    Each :meth:`tell` takes one Adam step on
    :math:`-(R - b) \log \pi(\mathrm{cfg}) - w_H H(\pi)`, then updates the baseline
    :math:`b` (initialised to the first reward).

    Args:
        space (SearchSpace): where to search.
        hidden (int): controller hidden size (default: ``64``).
        lr (float): Adam learning rate (default: ``0.0035``).
        baseline_decay (float): :math:`\beta` of the baseline (default: ``0.95``).
        entropy_weight (float): :math:`w_H`, keeps exploring (default: ``0.0``).
        seed (int, optional): seeds the controller's weights and samples (default: :obj:`None`).
    """

    def __init__(
        self,
        space: SearchSpace,
        hidden: int = 64,
        lr: float = 0.0035,
        baseline_decay: float = 0.95,
        entropy_weight: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(space)
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {baseline_decay}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.controller = LSTMController(space, hidden)
        else:
            self.generator.seed()
            self.controller = LSTMController(space, hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.baseline: float | None = None

    def ask(self) -> dict[str, Any]:
        with torch.no_grad():
            cfg, _, _ = self.controller.sample(self.generator)
        return cfg

    def tell(self, cfg: Mapping[str, Any], score: float) -> None:
        if self.baseline is None:
            self.baseline = score
        log_prob, entropy = self.controller.log_prob(cfg)
        loss = -(score - self.baseline) * log_prob - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * score
