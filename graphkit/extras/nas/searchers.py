r"""Searchers over a :class:`~.space.SearchSpace`, all behind ``run(evaluate, budget)``.

A searcher proposes configurations (:meth:`Searcher.ask`), learns from their scores
(:meth:`Searcher.tell`), and :meth:`Searcher.run` loops the two for ``budget`` evaluations,
returning the history. Scores are maximised (pass ``-loss`` to minimise).

- :class:`RandomSearch`: uniform per-decision sampling, the usual NAS baseline.
- :class:`ReinforceSearch`: an LSTM controller trained with REINFORCE, after `Neural
  Architecture Search with Reinforcement Learning <https://arxiv.org/abs/1611.01578>`_ (the
  kind of recurrent controller NASNet, EAS and N2N use in their own action spaces):

  .. math::
      \nabla_\theta J \approx (R - b)\, \nabla_\theta \log \pi_\theta(a_{1:T}),
      \qquad b \leftarrow \beta b + (1 - \beta) R .

:class:`EASController` is EAS's meta-controller, whose actions are Net2Net transformations
(:mod:`graphkit.extras.nas.net2net`) rather than points of a search space.
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.registry import register_model
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
        check_positive(hidden=hidden)
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be positive and finite, got {temperature}")
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
        if not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"lr must be positive and finite, got {lr}")
        # a non-finite weight turned the controller's weights to NaN after the first step
        if not math.isfinite(entropy_weight):
            raise ValueError(f"entropy_weight must be a finite number, got {entropy_weight}")
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.controller = self._build_controller(hidden)
        else:
            self.generator.seed()
            self.controller = self._build_controller(hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.baseline: float | None = None

    def ask(self) -> dict[str, Any]:
        with torch.no_grad():
            cfg, _, _ = self.controller.sample(self.generator)
        return cfg

    def _build_controller(self, hidden: int) -> nn.Module:
        return LSTMController(self.space, hidden)

    def tell(self, cfg: Mapping[str, Any], score: float) -> None:
        self._reinforce(score, self.controller.log_prob(cfg))

    def _reinforce(self, score: float, policy: tuple[Tensor, Tensor] | None) -> None:
        """One Adam step on the policy loss of ``policy = (log_prob, entropy)`` (skipped when
        ``None``), then the baseline update."""
        if self.baseline is None:
            self.baseline = score
        if policy is not None:
            log_prob, entropy = policy
            loss = -(score - self.baseline) * log_prob - self.entropy_weight * entropy
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * score


class WiderAction(NamedTuple):
    """EAS Net2Wider actor's output: one widen-or-not decision per layer token."""

    decisions: list[bool]
    log_prob: Tensor
    entropy: Tensor


class DeeperAction(NamedTuple):
    """EAS Net2Deeper actor's output: insert after layer ``layer`` of block ``block``.

    ``position`` is that layer's index in the token sequence; ``kernel_size`` is :obj:`None`
    when the layer is fully connected (the kernel decision is then not taken).
    """

    block: int
    layer: int
    position: int
    kernel_size: int | None
    log_prob: Tensor
    entropy: Tensor


def _parse_token(token: str) -> tuple[str, int | None, int | None]:
    parts = token.split("-")
    if parts[0] == "conv" and len(parts) == 3 and all(p.isdigit() for p in parts[1:]):
        return "conv", int(parts[1]), int(parts[2])
    if parts[0] == "fc" and len(parts) == 2 and parts[1].isdigit():
        return "fc", int(parts[1]), None
    if token == "pool":
        return "pool", None, None
    raise ValueError(
        f"layer tokens are 'conv-<filters>-<kernel>', 'fc-<units>' or 'pool', got {token!r}"
    )


@register_model(
    "eas", family="nas", paper="Efficient Architecture Search by Network Transformation"
)
class EASController(nn.Module):
    r"""EAS's meta-controller: a network encoder and two actors choosing Net2Net actions.

    From `Efficient Architecture Search by Network Transformation
    <https://arxiv.org/abs/1707.04873>`_. A network is described by its layer tokens
    (``"conv-<filters>-<kernel>"``, ``"fc-<units>"``, ``"pool"``; pools split it into blocks).

    - **encoder:** token embedding and a one-layer bidirectional LSTM giving a hidden state
      :math:`h_i` per layer;
    - **Net2Wider actor:** a shared sigmoid classifier per layer, :math:`p_i =
      \sigma(w^\top h_i + b)`, "widen layer :math:`i`?"; layers that may not widen (pools, the
      output layer, layers at the largest width) are masked out;
    - **Net2Deeper actor:** an LSTM cell started from the encoder's final state makes three
      decisions in turn, each fed the embedding of the previous one: the block, the layer
      within that block (masked to the block's length) after which an identity layer is
      inserted, and that layer's kernel size (only for a convolution).

    Trained with REINFORCE on the summed log-probabilities of an episode's actions; the
    defaults follow the official search script (embedding 16, 50 LSTM units per direction,
    5 blocks, 10 layers per block, kernels {1, 3, 5}). Apply the actions with
    :func:`graphkit.extras.nas.net2net.apply_wider` / :func:`~.net2net.apply_deeper`.

    Args:
        vocabulary (Sequence[str], optional): the layer tokens the encoder knows (default: the
            official script's, :meth:`vocabulary_for` of filters 4, 8, ..., 40 and units 8,
            16, ..., 80).
        kernel_sizes (Sequence[int]): kernel sizes of an inserted conv (default: ``(1, 3, 5)``).
        max_blocks (int): most blocks a network has (default: ``5``).
        max_layers (int): most layers per block (default: ``10``).
        embedding_dim (int): token / decision embedding size (default: ``16``).
        hidden (int): LSTM units per direction (default: ``50``).
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        kernel_sizes: Sequence[int] = (1, 3, 5),
        max_blocks: int = 5,
        max_layers: int = 10,
        embedding_dim: int = 16,
        hidden: int = 50,
    ) -> None:
        super().__init__()
        if vocabulary is None:  # the official CIFAR-10 script's widths
            vocabulary = self.vocabulary_for(range(4, 44, 4), range(8, 88, 8), kernel_sizes)
        vocabulary = list(dict.fromkeys(vocabulary))
        for token in vocabulary:
            _parse_token(token)
        if not vocabulary or min(max_blocks, max_layers, embedding_dim, hidden) < 1:
            raise ValueError("vocabulary and all sizes must be non-empty / positive")
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel sizes must be odd and positive, got {kernel_sizes}")
        self.vocabulary = {t: i for i, t in enumerate(vocabulary)}
        self.kernel_sizes = tuple(kernel_sizes)
        self.max_blocks, self.max_layers = max_blocks, max_layers
        self.embed = nn.Embedding(len(vocabulary), embedding_dim)
        self.encoder = nn.LSTM(embedding_dim, hidden, batch_first=True, bidirectional=True)
        self.wider_head = nn.Linear(2 * hidden, 1)
        self.deeper_cell = nn.LSTMCell(embedding_dim, 2 * hidden)
        self.deeper_inputs = nn.ModuleList(
            nn.Embedding(n, embedding_dim) for n in (1, max_blocks, max_layers)
        )
        self.deeper_heads = nn.ModuleList(
            nn.Linear(2 * hidden, n) for n in (max_blocks, max_layers, len(self.kernel_sizes))
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-0.1, 0.1) weights; embeddings of unit variance (uniform(-√3, √3))."""
        for module in (self.encoder, self.wider_head, self.deeper_cell, *self.deeper_heads):
            for p in module.parameters():
                nn.init.uniform_(p, -0.1, 0.1)
        for emb in (self.embed, *self.deeper_inputs):
            nn.init.uniform_(emb.weight, -math.sqrt(3), math.sqrt(3))

    @staticmethod
    def vocabulary_for(
        filters: Sequence[int], units: Sequence[int], kernel_sizes: Sequence[int] = (1, 3, 5)
    ) -> list[str]:
        """All tokens of convs with ``filters`` × ``kernel_sizes``, fcs with ``units``, pool."""
        tokens = [f"conv-{f}-{k}" for f in filters for k in kernel_sizes]
        return tokens + [f"fc-{u}" for u in units] + ["pool"]

    def encode(self, tokens: Sequence[str]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Per-layer states ``(L, 2 * hidden)`` and the final ``(h, c)``, each ``(1, 2 * hidden)``.

        The final state joins the forward direction's last step and the backward one's first.
        """
        if not tokens:
            raise ValueError("cannot encode an empty network description")
        unknown = [t for t in tokens if t not in self.vocabulary]
        if unknown:
            raise ValueError(f"tokens outside the controller's vocabulary: {unknown[:5]}")
        device = self.embed.weight.device
        ids = torch.tensor([[self.vocabulary[t] for t in tokens]], device=device)
        out, (h, c) = self.encoder(self.embed(ids))
        return out[0], (h.transpose(0, 1).reshape(1, -1), c.transpose(0, 1).reshape(1, -1))

    def wider(
        self,
        tokens: Sequence[str],
        widenable: Sequence[bool],
        decisions: Sequence[bool] | None = None,
        generator: torch.Generator | None = None,
    ) -> WiderAction:
        """Sample (or, given ``decisions``, score) one Net2Wider action over all layers."""
        if len(widenable) != len(tokens):
            raise ValueError(f"widenable has {len(widenable)} entries for {len(tokens)} layers")
        states, _ = self.encode(tokens)
        p = torch.sigmoid(self.wider_head(states)[:, 0])
        mask = torch.tensor(list(map(bool, widenable)), device=p.device)
        if decisions is None:
            draw = torch.rand(len(tokens), generator=generator).to(p.device) < p.detach()
        else:
            if len(decisions) != len(tokens):
                raise ValueError(f"{len(decisions)} decisions for {len(tokens)} layers")
            draw = torch.tensor(list(map(bool, decisions)), device=p.device)
            if (draw & ~mask).any():
                raise ValueError("a decision widens a layer that may not be widened")
        draw = draw & mask
        eps = torch.finfo(p.dtype).tiny
        logp = torch.where(draw, p.clamp_min(eps).log(), (1 - p).clamp_min(eps).log())
        ent = -(p * p.clamp_min(eps).log() + (1 - p) * (1 - p).clamp_min(eps).log())
        zero = torch.zeros_like(p)
        return WiderAction(
            draw.tolist(), torch.where(mask, logp, zero).sum(), torch.where(mask, ent, zero).sum()
        )

    def _blocks(self, tokens: Sequence[str]) -> list[list[int]]:
        blocks: list[list[int]] = [[]]
        for i, token in enumerate(tokens):
            if _parse_token(token)[0] == "pool":
                blocks.append([])
            else:
                blocks[-1].append(i)
        if len(blocks) > self.max_blocks or max(map(len, blocks)) > self.max_layers:
            raise ValueError(
                f"network has {len(blocks)} blocks of up to {max(map(len, blocks))} layers; "
                f"the controller handles {self.max_blocks} blocks of {self.max_layers}"
            )
        return blocks

    def deeper(
        self,
        tokens: Sequence[str],
        action: tuple[int, int, int | None] | None = None,
        generator: torch.Generator | None = None,
    ) -> DeeperAction:
        """Sample (or, given ``(block, layer, kernel_size)``, score) one Net2Deeper action."""
        blocks = self._blocks(tokens)
        if tokens and not any(blocks):
            raise ValueError("the network has no conv or fc layer after which to insert one")
        _, state = self.encode(tokens)
        device = state[0].device
        log_prob = state[0].new_zeros(())
        entropy = state[0].new_zeros(())
        choice = torch.zeros(1, dtype=torch.long, device=device)
        picks: list[int] = []
        for step in range(3):
            state = self.deeper_cell(self.deeper_inputs[step](choice), state)
            logits = self.deeper_heads[step](state[0])[0]
            if step == 0:
                valid = torch.tensor(
                    [b < len(blocks) and bool(blocks[b]) for b in range(self.max_blocks)]
                )
            elif step == 1:
                valid = torch.arange(self.max_layers) < len(blocks[picks[0]])
            else:
                if _parse_token(tokens[blocks[picks[0]][picks[1]]])[0] == "fc":
                    break  # a fully connected layer has no kernel to choose
                valid = torch.ones(len(self.kernel_sizes), dtype=torch.bool)
            logp = F.log_softmax(logits.masked_fill(~valid.to(device), float("-inf")), dim=0)
            if action is None:
                i = int(torch.multinomial(logp.detach().exp().cpu(), 1, generator=generator))
            else:
                want = action[step]
                if step == 2:  # the kernel decision is given as a size
                    i = self.kernel_sizes.index(want) if want in self.kernel_sizes else -1
                else:
                    i = want
                if not (isinstance(i, int) and 0 <= i < len(valid) and bool(valid[i])):
                    raise ValueError(f"invalid deeper decision {want!r} at step {step}")
            picks.append(i)
            p = logp.exp()
            log_prob = log_prob + logp[i]
            entropy = entropy - (p * logp.masked_fill(~valid.to(device), 0.0)).sum()
            choice = torch.tensor([i], device=device)
        block, layer = picks[0], picks[1]
        kernel = self.kernel_sizes[picks[2]] if len(picks) == 3 else None
        return DeeperAction(block, layer, blocks[block][layer], kernel, log_prob, entropy)

    def extra_repr(self) -> str:
        return (
            f"vocabulary={len(self.vocabulary)}, kernel_sizes={self.kernel_sizes}, "
            f"max_blocks={self.max_blocks}, max_layers={self.max_layers}"
        )
