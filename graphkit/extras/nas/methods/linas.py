r"""NSGA-II and LINAS: multi-objective sub-network search over a :class:`SearchSpace`.

LINAS (Lightweight Iterative NAS) is the search of DyNAS-T, from `A Hardware-Aware Framework for
Accelerating Neural Architecture Search Across Modalities <https://arxiv.org/abs/2205.10358>`_
(official code: `IntelLabs/DyNAS-T <https://github.com/IntelLabs/DyNAS-T>`_). It searches a
trained super-network's sub-networks without fine-tuning, spending the expensive *true*
evaluations (validation accuracy, measured latency) only where cheap predictors point:

1. evaluate a random population for real;
2. fit one predictor per objective (:mod:`graphkit.extras.nas.predictors`) on the one-hot
   encodings of everything evaluated so far;
3. run NSGA-II for many generations on the *predicted* objectives;
4. evaluate the final predicted population for real (skipping configurations already
   evaluated) and go back to 2 until the true-evaluation budget is spent.

:class:`NSGA2Search` is the plain baseline that evaluates every individual for real. Both
maximise every objective and share ``run(evaluate, budget) -> history``, with ``evaluate(cfg)``
returning one value per objective and ``budget`` counting true evaluations; the history's
Pareto front and :func:`~graphkit.extras.nas.predictors.hypervolume` compare them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
from graphkit.extras.nas.predictors import (
    Predictor,
    crowding_distance,
    make_predictor,
    non_dominated_sort,
    pareto_mask,
)
from graphkit.extras.nas.searchers import Searcher
from graphkit.extras.nas.space import Choice, SearchSpace

Objectives = Callable[[dict[str, Any]], Sequence[float]]


@dataclass(frozen=True)
class MOTrial:
    """One true evaluation: the configuration, its objective values, and its order (0-based)."""

    cfg: dict[str, Any]
    scores: tuple[float, ...]
    step: int


def pareto_front(history: Sequence[MOTrial]) -> list[MOTrial]:
    """The non-dominated trials of a history (all objectives maximised)."""
    if not history:
        raise ValueError("empty history: no front")
    lengths = sorted({len(t.scores) for t in history})
    if len(lengths) > 1:  # was torch.tensor's "expected sequence of length ..."
        raise ValueError(f"the trials have different numbers of objectives: {lengths}")
    mask = pareto_mask(torch.tensor([t.scores for t in history], dtype=torch.float64))
    return [t for t, keep in zip(history, mask.tolist(), strict=True) if keep]


@dataclass(frozen=True)
class _Individual:
    """A configuration with its decisions (choice path -> option index) in build order.

    The decisions name the configuration uniquely (``key``) and give its one-hot encoding
    without walking the space again, which dominates the cost of predictor-driven search.
    """

    cfg: dict[str, Any]
    genes: dict[str, int]

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(self.genes.values())


def _build(space: SearchSpace, decide: Callable[[str, Choice], int]) -> _Individual:
    genes: dict[str, int] = {}

    def record(path: str, choice: Choice) -> int:
        genes[path] = decide(path, choice)
        return genes[path]

    return _Individual(space.build(record), genes)


def _sample(space: SearchSpace, rng: random.Random) -> _Individual:
    return _build(space, lambda _path, choice: rng.randrange(len(choice)))


def _offsets(space: SearchSpace) -> dict[str, int]:
    """Start of each choice's one-hot segment, by choice path."""
    return {path: space.segment(path).start for path, _ in space.choices()}


def _encode(
    individuals: Sequence[_Individual], offsets: Mapping[str, int], num_features: int
) -> torch.Tensor:
    """The :meth:`SearchSpace.encode` vectors of ``individuals``, ``(n, num_features)``."""
    rows, cols = [], []
    for row, ind in enumerate(individuals):
        rows += [row] * len(ind.genes)
        cols += [offsets[path] + i for path, i in ind.genes.items()]
    out = torch.zeros(len(individuals), num_features)
    out[rows, cols] = 1.0
    return out


def _survivors(scores: torch.Tensor, k: int) -> list[int]:
    """NSGA-II environmental selection: whole fronts, the last one cut by crowding distance."""
    chosen: list[int] = []
    for front in non_dominated_sort(scores):
        if len(chosen) + len(front) <= k:
            chosen += front
            continue
        crowd = crowding_distance(scores[front])
        order = torch.argsort(-crowd, stable=True).tolist()
        chosen += [front[i] for i in order[: k - len(chosen)]]
        break
    return chosen


def _rank_and_crowding(scores: torch.Tensor) -> tuple[list[int], list[float]]:
    rank = [0] * scores.shape[0]
    crowd = [0.0] * scores.shape[0]
    for r, front in enumerate(non_dominated_sort(scores)):
        for i, d in zip(front, crowding_distance(scores[front]).tolist(), strict=True):
            rank[i], crowd[i] = r, d
    return rank, crowd


class _Variation:
    """Tournament selection, uniform crossover and per-decision mutation on configurations.

    Genes are the active choices of :meth:`SearchSpace.build`; a gene missing from both parents
    (a branch neither opened) is drawn uniformly.
    """

    def __init__(self, space: SearchSpace, crossover: float, mutation: float | None) -> None:
        self.space = space
        self.crossover = crossover
        if mutation is None:  # one expected mutation per configuration
            mutation = 1.0 / max(1, sum(1 for _ in space.choices()))
        self.mutation = mutation

    def child(self, a: _Individual, b: _Individual, rng: random.Random) -> _Individual:
        cross = rng.random() < self.crossover

        def decide(path: str, choice: Choice) -> int:
            genes = [a.genes.get(path), b.genes.get(path)]
            gene = genes[rng.random() < 0.5] if cross else genes[0]
            if gene is None:
                gene = next((g for g in genes if g is not None), None)
            if gene is None or rng.random() < self.mutation:
                gene = rng.randrange(len(choice))
            return gene

        return _build(self.space, decide)

    @staticmethod
    def tournament(rank: list[int], crowd: list[float], rng: random.Random) -> int:
        i, j = rng.randrange(len(rank)), rng.randrange(len(rank))
        if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]):
            return i
        return j


def nsga2(
    space: SearchSpace,
    objectives: Callable[[list[_Individual]], torch.Tensor],
    population: list[_Individual],
    generations: int,
    rng: random.Random,
    variation: _Variation,
    max_new: int | None = None,
    seen: set[tuple[int, ...]] | None = None,
) -> tuple[list[_Individual], torch.Tensor, list[_Individual], torch.Tensor]:
    """Run NSGA-II from ``population``; ``objectives(individuals) -> (n, m)`` scores a batch.

    Offspring already in ``seen`` (or met earlier in the run) are redrawn, so evaluations are
    spent on new configurations; the run stops after ``generations`` or once ``max_new``
    offspring were scored. Returns the final population and its scores, and every individual
    scored during the run (the initial population included) with its scores.
    """
    seen = set() if seen is None else seen
    size = len(population)
    scores = objectives(population)
    archive, archive_scores = list(population), [scores]
    seen |= {ind.key for ind in population}
    budget = math.inf if max_new is None else max_new
    for _ in range(generations):
        if budget <= 0:
            break
        rank, crowd = _rank_and_crowding(scores)
        offspring: list[_Individual] = []
        while len(offspring) < min(size, budget):
            for _attempt in range(20):
                a = population[variation.tournament(rank, crowd, rng)]
                b = population[variation.tournament(rank, crowd, rng)]
                child = variation.child(a, b, rng)
                if child.key not in seen:
                    break
            else:
                child = _sample(space, rng)
                if child.key in seen:
                    break  # the space is (nearly) exhausted around the population
            seen.add(child.key)
            offspring.append(child)
        if not offspring:
            break
        budget -= len(offspring)
        off_scores = objectives(offspring)
        archive += offspring
        archive_scores.append(off_scores)
        merged = population + offspring
        merged_scores = torch.cat([scores, off_scores])
        keep = _survivors(merged_scores, size)
        population = [merged[i] for i in keep]
        scores = merged_scores[keep]
    return population, scores, archive, torch.cat(archive_scores)


def _initial(space: SearchSpace, n: int, rng: random.Random) -> list[_Individual]:
    """``n`` distinct random configurations (fewer if the space is smaller)."""
    out: dict[tuple[int, ...], _Individual] = {}
    for _ in range(20 * n):
        if len(out) == n:
            break
        ind = _sample(space, rng)
        out.setdefault(ind.key, ind)
    return list(out.values())


class _MultiObjectiveSearch(Searcher):
    """Shared pieces: objective checking and the history of true evaluations."""

    def __init__(
        self,
        space: SearchSpace,
        evaluators: Objectives | Sequence[Callable[[dict[str, Any]], float]] | None,
        population: int,
        crossover: float,
        mutation: float | None,
        seed: int | None,
    ) -> None:
        super().__init__(space)
        check_positive(population=population)
        if population < 2:
            raise ValueError(f"population must be at least 2, got {population}")
        if not 0.0 <= crossover <= 1.0 or (mutation is not None and not 0.0 <= mutation <= 1.0):
            raise ValueError(
                f"crossover and mutation are probabilities, got {crossover}, {mutation}"
            )
        if evaluators is not None and not callable(evaluators):
            evaluators = list(evaluators)
            if not evaluators or not all(callable(f) for f in evaluators):
                raise TypeError("evaluators must be a callable or a sequence of callables")
        self.evaluators = evaluators
        self.population = population
        self.variation = _Variation(space, crossover, mutation)
        self.rng = random.Random(seed)
        self.seed = seed

    def ask(self) -> dict[str, Any]:
        """A random configuration (batches of proposals are driven by :meth:`run`)."""
        return self.space.sample(self.rng)

    def _objective_fn(self, evaluate: Objectives | None) -> Objectives:
        if evaluate is not None:
            return evaluate
        if self.evaluators is None:
            raise ValueError("pass evaluate to run() or evaluators to the constructor")
        if callable(self.evaluators):
            return self.evaluators
        fns = self.evaluators
        return lambda cfg: [f(cfg) for f in fns]

    @staticmethod
    def _true(
        evaluate: Objectives, history: list[MOTrial], batch: list[_Individual]
    ) -> torch.Tensor:
        rows = []
        for ind in batch:
            values = tuple(float(v) for v in evaluate(ind.cfg))
            if not values or not all(math.isfinite(v) for v in values):
                raise ValueError(f"evaluate returned {values} for {ind.cfg}: need finite values")
            if history and len(values) != len(history[0].scores):
                raise ValueError("evaluate returned a different number of objectives")
            history.append(MOTrial(ind.cfg, values, len(history)))
            rows.append(values)
        return torch.tensor(rows, dtype=torch.float64)


class NSGA2Search(_MultiObjectiveSearch):
    r"""NSGA-II (`A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II
    <https://doi.org/10.1109/4235.996017>`_) on true evaluations: binary tournaments on
    (front rank, crowding distance), uniform crossover and per-decision mutation, and elitist
    survival of the best ``population`` of parents and offspring by non-dominated sorting
    and crowding distance. Every configuration is evaluated once.

    Args:
        space (SearchSpace): where to search.
        evaluators (callable or sequence of callables, optional): ``cfg -> objectives`` or one
            ``cfg -> float`` per objective, all maximised; or pass ``evaluate`` to :meth:`run`.
        population (int): population size (default: ``50``).
        crossover (float): probability that a child mixes both parents (default: ``0.9``).
        mutation (float, optional): per-decision resampling probability (default: one over
            the number of choices of the space).
        seed (int, optional): seeds sampling and variation (default: :obj:`None`).
    """

    def __init__(
        self,
        space: SearchSpace,
        evaluators: Objectives | Sequence[Callable[[dict[str, Any]], float]] | None = None,
        population: int = 50,
        crossover: float = 0.9,
        mutation: float | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(space, evaluators, population, crossover, mutation, seed)

    def run(self, evaluate: Objectives | None = None, budget: int = 500) -> list[MOTrial]:
        """Evolve until ``budget`` true evaluations are spent; returns their history."""
        check_positive(budget=budget)
        fn = self._objective_fn(evaluate)
        history: list[MOTrial] = []
        start = _initial(self.space, min(self.population, budget), self.rng)
        nsga2(
            self.space,
            lambda batch: self._true(fn, history, batch),
            start,
            generations=budget,  # bounded by max_new
            rng=self.rng,
            variation=self.variation,
            max_new=budget - len(start),
        )
        return history


@register_model(
    "linas",
    family="nas",
    paper="A Hardware-Aware Framework for Accelerating Neural Architecture Search Across "
    "Modalities",
)
class LINASSearch(_MultiObjectiveSearch):
    r"""LINAS: NSGA-II on per-objective predictors, retrained after each batch of true
    evaluations (see the module docstring for the loop).

    Args:
        space (SearchSpace): where to search.
        evaluators (callable or sequence of callables, optional): as in :class:`NSGA2Search`.
        predictors (str, Predictor or sequence): ``"ridge"``, ``"mlp"``, a :class:`Predictor`,
            or one per objective; refitted every iteration (default: ``"ridge"``).
        population (int): NSGA-II population, also the size of each batch of true evaluations,
            as in DyNAS-T (default: ``50``).
        generations (int): NSGA-II generations on the predictors per iteration
            (default: ``100``).
        crossover (float): as in :class:`NSGA2Search` (default: ``0.9``).
        mutation (float, optional): as in :class:`NSGA2Search`.
        seed (int, optional): seeds sampling, variation and MLP predictors (default:
            :obj:`None`).
    """

    def __init__(
        self,
        space: SearchSpace,
        evaluators: Objectives | Sequence[Callable[[dict[str, Any]], float]] | None = None,
        predictors: str | Predictor | Sequence[str | Predictor] = "ridge",
        population: int = 50,
        generations: int = 100,
        crossover: float = 0.9,
        mutation: float | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(space, evaluators, population, crossover, mutation, seed)
        check_positive(generations=generations)
        self.generations = generations
        specs = [predictors] if isinstance(predictors, str | Predictor) else list(predictors)
        for spec in specs:
            make_predictor(spec)  # fail early on an unknown name
        self.predictors = specs
        self.fitted: list[Predictor] = []
        self._offsets = _offsets(space)

    def _fit(self, evaluated: list[_Individual], history: list[MOTrial]) -> list[Predictor]:
        m = len(history[0].scores)
        specs = self.predictors * m if len(self.predictors) == 1 else self.predictors
        if len(specs) != m:
            raise ValueError(f"{len(specs)} predictors for {m} objectives")
        x = _encode(evaluated, self._offsets, self.space.num_features)
        y = torch.tensor([t.scores for t in history], dtype=x.dtype)
        fitted = []
        for k, spec in enumerate(specs):
            seed = None if self.seed is None else self.seed + k
            # a given Predictor instance is refitted in place (shared if given once)
            fitted.append(make_predictor(spec, seed).fit(x, y[:, k]))
        return fitted

    def _predicted(self, batch: list[_Individual]) -> torch.Tensor:
        x = _encode(batch, self._offsets, self.space.num_features)
        return torch.stack([p.predict(x) for p in self.fitted], dim=1).double()

    def run(self, evaluate: Objectives | None = None, budget: int = 500) -> list[MOTrial]:
        """Iterate fit-search-evaluate until ``budget`` true evaluations are spent."""
        check_positive(budget=budget)
        fn = self._objective_fn(evaluate)
        history: list[MOTrial] = []
        evaluated: list[_Individual] = []
        batch = _initial(self.space, min(self.population, budget), self.rng)
        while batch:
            self._true(fn, history, batch)
            evaluated += batch
            left = budget - len(history)
            if left <= 0:
                break
            self.fitted = self._fit(evaluated, history)
            # the inner search starts from the best evaluated configurations
            true_scores = torch.tensor([t.scores for t in history], dtype=torch.float64)
            start = [evaluated[i] for i in _survivors(true_scores, self.population)]
            done = {ind.key for ind in evaluated}
            final, final_scores, archive, archive_scores = nsga2(
                self.space,
                self._predicted,
                start,
                self.generations,
                self.rng,
                self.variation,
                seen=set(done),
            )
            # validate the predicted final population first, then the best of the archive
            order = [final[i] for i in _survivors(final_scores, len(final))]
            order += [archive[i] for i in _survivors(archive_scores, len(archive))]
            batch, keys = [], set()
            for ind in order:
                if ind.key in done or ind.key in keys:
                    continue
                batch.append(ind)
                keys.add(ind.key)
                if len(batch) == min(self.population, left):
                    break
        return history
