"""Dense Hebbian networks: P-body associative memories that store archetypes from examples.

From `Dense Hebbian neural networks: a replica symmetric picture of supervised learning
<https://arxiv.org/abs/2212.00606>`_ (Agliari, Albanese, Alemanno, Alessandrelli, Barra,
Giannotti, Lotito and Pedreschi). ``K`` binary archetypes :math:`\\xi^\\mu \\in \\{\\pm1\\}^N`
are never shown; the network sees ``M`` noisy examples of each,
:math:`\\eta^{\\mu a}_i = \\chi^{\\mu a}_i \\xi^\\mu_i` with
:math:`P(\\chi = +1) = (1 + r)/2` (quality ``r``). Hebbian storage keeps memories
:math:`\\zeta^q` with weights :math:`w_q`:

* supervised: one memory per class, the class average
  :math:`\\bar\\eta^\\mu = \\frac1M\\sum_a \\eta^{\\mu a}`, weight 1;
* unsupervised: every example is its own memory, weight :math:`1/M`.

Each memory is divided by its root mean square (for the class average this estimates the
paper's :math:`\\sqrt{\\mathcal{R}} = \\sqrt{r^2 + (1 - r^2)/M}`), and the energy is

.. math::
    H(\\sigma) = -\\frac{N}{P} \\sum_q w_q\\, m_q(\\sigma)^P,
    \\qquad m_q(\\sigma) = \\frac1N \\sum_i \\zeta^q_i \\sigma_i,

a P-body coupling tensor :math:`J_{i_1 \\dots i_P} \\propto \\sum_q w_q \\zeta^q_{i_1} \\cdots
\\zeta^q_{i_P}` kept factorised. ``P = 2`` is the Hopfield network (capacity
:math:`K \\approx 0.14 N`); larger even ``P`` stores :math:`O(N^{P-1})` archetypes. Retrieval
is Glauber (heat-bath) dynamics on :math:`H`; its quality is the Mattis magnetisation
:math:`m_\\mu = \\frac1N \\sum_i \\xi^\\mu_i \\sigma_i` with the hidden archetypes.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphkit.extras._core.modules import resize_buffers_to
from graphkit.extras._core.registry import register_model

PAPER = "Dense Hebbian neural networks: a replica symmetric picture of supervised learning"


def _check_spins(sigma: Tensor, N: int, name: str = "sigma") -> None:
    if sigma.dim() != 2 or sigma.shape[1] != N:
        raise ValueError(f"{name} must be (batch, {N}), got shape {tuple(sigma.shape)}")
    if not bool(((sigma == 1) | (sigma == -1)).all()):
        raise ValueError(f"{name} must hold only +1 and -1")


def noisy_examples(
    archetypes: Tensor, M: int, r: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``M`` examples of each archetype, each spin kept with probability ``(1 + r) / 2``.

    Args:
        archetypes: ``(K, N)`` of ±1.
        M: examples per archetype, positive.
        r: example quality in ``[0, 1]`` (its expected overlap with the archetype).
        generator: random generator (default: ``None``, the global one).

    Returns:
        ``examples`` ``(K * M, N)`` and their ``labels`` ``(K * M,)``, class by class.
    """
    if archetypes.dim() != 2:
        raise ValueError(f"archetypes must be (K, N), got shape {tuple(archetypes.shape)}")
    _check_spins(archetypes, archetypes.shape[1], "archetypes")
    if isinstance(M, bool) or not float(M).is_integer() or M < 1:
        raise ValueError(f"M must be a positive integer, got {M!r}")
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"quality r must lie in [0, 1], got {r}")
    K, N = archetypes.shape
    keep = torch.rand(K, M, N, generator=generator, device=archetypes.device) < (1.0 + r) / 2
    chi = keep.to(archetypes.dtype) * 2 - 1
    examples = (chi * archetypes.unsqueeze(1)).reshape(K * M, N)
    labels = torch.arange(K, device=archetypes.device).repeat_interleave(M)
    return examples, labels


def hebbian_couplings(
    examples: Tensor, labels: Tensor, supervised: bool = True
) -> tuple[Tensor, Tensor]:
    """Hebbian memories and weights of the factorised P-body couplings.

    Args:
        examples: ``(S, N)`` of ±1.
        labels: ``(S,)`` class of each example, values ``0 .. K-1``, each class present.
        supervised: store each class average with weight 1 (``True``), or every example on
            its own with weight :math:`1/M_k` (``False``; the labels are then only counted,
            giving the paper's per-archetype normalisation) (default: ``True``).

    Returns:
        ``memories`` ``(Q, N)``, each scaled to unit root mean square, and ``weights`` ``(Q,)``.
    """
    if examples.dim() != 2 or examples.shape[0] == 0:
        raise ValueError(f"examples must be a non-empty (S, N), got shape {tuple(examples.shape)}")
    _check_spins(examples, examples.shape[1], "examples")
    x = examples.double()
    if labels.shape != (x.shape[0],) or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be integers of shape ({x.shape[0]},)")
    if int(labels.min()) < 0:
        raise ValueError("labels must be non-negative")
    counts = torch.bincount(labels)
    if bool((counts == 0).any()):
        raise ValueError("labels must use every class 0 .. K-1 at least once")
    if supervised:
        sums = torch.zeros(counts.numel(), x.shape[1], dtype=x.dtype, device=x.device)
        sums.index_add_(0, labels, x)
        memories = sums / counts.unsqueeze(1).to(x.dtype)
        weights = torch.ones(counts.numel(), dtype=x.dtype, device=x.device)
    else:
        memories = x
        weights = 1.0 / counts[labels].to(x.dtype)
    rms = memories.pow(2).mean(dim=1, keepdim=True).sqrt()
    if bool((rms == 0).any()):
        raise ValueError("a class average is all zeros (its examples cancel out); cannot store it")
    return memories / rms, weights


def mattis_magnetization(sigma: Tensor, archetypes: Tensor) -> Tensor:
    """Overlaps :math:`\\frac1N \\sum_i \\xi^\\mu_i \\sigma_i`, shape ``(batch, K)``."""
    if sigma.dim() != 2 or archetypes.dim() != 2 or sigma.shape[1] != archetypes.shape[1]:
        raise ValueError(
            f"sigma (batch, N) and archetypes (K, N) must share N, got {tuple(sigma.shape)} "
            f"and {tuple(archetypes.shape)}"
        )
    return sigma.double() @ archetypes.double().t() / sigma.shape[1]


def _energy_from_overlaps(m: Tensor, weights: Tensor, N: int, P: int) -> Tensor:
    return -(N / P) * (m.pow(P) * weights).sum(dim=-1)


@torch.no_grad()
def glauber_dynamics(
    memories: Tensor,
    weights: Tensor,
    sigma: Tensor,
    P: int,
    beta: float = math.inf,
    sweeps: int = 10,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Asynchronous Glauber dynamics on the dense Hebbian energy, ``sweeps`` passes.

    Each pass visits the ``N`` spins in a random order; spin ``i`` becomes ``+1`` with
    probability :math:`(1 + \\tanh(\\beta h_i))/2`, where
    :math:`2 h_i = H(\\sigma_i = -1) - H(\\sigma_i = +1)` is computed exactly from the
    overlaps. At ``beta = inf`` the update is :math:`\\mathrm{sign}(h_i)` (a tie keeps the
    spin). A batch of states runs in parallel; it stops early once a zero-temperature pass
    changes nothing.

    Args:
        memories: ``(Q, N)`` from :func:`hebbian_couplings`.
        weights: ``(Q,)``.
        sigma: initial states ``(batch, N)`` of ±1 (not modified).
        P: interaction order, an integer ``>= 2``.
        beta: inverse temperature, positive (default: ``inf``).
        sweeps: number of passes (default: ``10``).
        generator: random generator for the order and the heat-bath draws (default: ``None``).

    Returns:
        Final states ``(batch, N)``, float64.
    """
    Q, N = memories.shape
    _check_spins(sigma, N)
    if weights.shape != (Q,):
        raise ValueError(f"weights must be ({Q},), got shape {tuple(weights.shape)}")
    if int(P) != P or P < 2:
        raise ValueError(f"P must be an integer >= 2, got {P}")
    if not beta > 0:
        raise ValueError(f"beta must be positive (inf for zero temperature), got {beta}")
    if sweeps < 0:
        raise ValueError(f"sweeps must be non-negative, got {sweeps}")
    if not bool(torch.isfinite(weights).all()) or not bool(torch.isfinite(memories).all()):
        raise ValueError("memories and weights must be finite (found NaN or inf)")
    s = sigma.double().clone()
    mem, w = memories.double().to(s.device), weights.double().to(s.device)
    m = s @ mem.t() / N  # (batch, Q), kept up to date spin by spin
    for _ in range(sweeps):
        changed = False
        for i in torch.randperm(N, generator=generator).tolist():
            col = mem[:, i] / N
            base = m - s[:, i : i + 1] * col  # overlaps without spin i
            e_plus = _energy_from_overlaps(base + col, w, N, P)
            e_minus = _energy_from_overlaps(base - col, w, N, P)
            h = (e_minus - e_plus) / 2
            if math.isinf(beta):
                new = torch.where(h == 0, s[:, i], torch.sign(h))
            else:
                p_up = (1 + torch.tanh(beta * h)) / 2
                u = torch.rand(p_up.shape, generator=generator, dtype=p_up.dtype)
                new = torch.where(u.to(p_up.device) < p_up, 1.0, -1.0).to(s.dtype)
            if not changed and not torch.equal(new, s[:, i]):
                changed = True
            s[:, i] = new
            m = base + new.unsqueeze(1) * col
        if math.isinf(beta) and not changed:
            break
    return s


@register_model("dense_hebbian", family="analysis", paper=PAPER)
class DenseHebbianNetwork(nn.Module):
    """Dense (P-body) Hebbian associative memory trained from examples.

    Args:
        N: number of spins (neurons), positive.
        P: interaction order, an even integer ``>= 2``; ``P = 2`` is Hopfield (default: ``4``).
        supervised: store class averages of the examples (``True``) or every example
            (``False``) (default: ``True``).

    Shapes:
        - :meth:`store`: ``examples (S, N)`` of ±1, ``labels (S,)`` (only counted when
          unsupervised).
        - :meth:`forward`: ``sigma (batch, N)`` of ±1 -> final states ``(batch, N)``.
    """

    memories: Tensor
    weights: Tensor

    def __init__(self, N: int, P: int = 4, supervised: bool = True) -> None:
        super().__init__()
        if N < 1:
            raise ValueError(f"N must be positive, got {N}")
        if int(P) != P or P < 2 or P % 2:
            raise ValueError(f"P must be an even integer >= 2, got {P}")
        self.N, self.P, self.supervised = N, int(P), supervised
        self.register_buffer("memories", torch.zeros(0, N, dtype=torch.float64))
        self.register_buffer("weights", torch.zeros(0, dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        resize_buffers_to(self, state_dict, prefix, ("memories", "weights"))  # sized by fit / store
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset_parameters(self) -> None:
        """Forget every stored memory."""
        self.memories = self.memories.new_zeros(0, self.N)
        self.weights = self.weights.new_zeros(0)

    def store(self, examples: Tensor, labels: Tensor) -> DenseHebbianNetwork:
        """Hebbian storage of ``examples`` (replacing earlier memories); returns ``self``."""
        if examples.dim() != 2 or examples.shape[1] != self.N:
            raise ValueError(f"examples must be (S, {self.N}), got shape {tuple(examples.shape)}")
        memories, weights = hebbian_couplings(examples, labels, self.supervised)
        self.memories, self.weights = memories, weights
        return self

    def _check_stored(self) -> None:
        if self.memories.shape[0] == 0:
            raise RuntimeError("no memories stored; call store(examples, labels) first")

    def energy(self, sigma: Tensor) -> Tensor:
        """:math:`H(\\sigma)` of each state, shape ``(batch,)``."""
        self._check_stored()
        _check_spins(sigma, self.N)
        m = sigma.double() @ self.memories.t() / self.N
        return _energy_from_overlaps(m, self.weights, self.N, self.P)

    def forward(
        self,
        sigma: Tensor,
        beta: float = math.inf,
        sweeps: int = 10,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Retrieve: run :func:`glauber_dynamics` from ``sigma``; returns the final states."""
        self._check_stored()
        return glauber_dynamics(
            self.memories, self.weights, sigma, self.P, beta, sweeps, generator
        )

    def extra_repr(self) -> str:
        return (
            f"N={self.N}, P={self.P}, supervised={self.supervised}, "
            f"memories={len(self.memories)}"
        )


@torch.no_grad()
def retrieval_sweep(
    N: int,
    P: int,
    K_values: Sequence[int],
    r_values: Sequence[float],
    M_values: Sequence[int],
    betas: Sequence[float] = (math.inf,),
    supervised: bool = True,
    probes: int = 10,
    sweeps: int = 10,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Phase-diagram helper: mean retrieval magnetisation over a grid of (K, r, M, beta).

    For each grid point: draw ``K`` random archetypes of ``N`` spins and ``M`` examples of
    quality ``r`` of each, store them, run :func:`glauber_dynamics` at inverse temperature
    ``beta`` from ``probes`` fresh noisy examples, and average the Mattis magnetisation with
    each probe's own archetype.

    Returns:
        One dict per grid point with keys ``K, r, M, beta, m`` (and ``N, P``).
    """
    if probes < 1:
        raise ValueError(f"probes must be positive, got {probes}")
    rows = []
    for K, r, M, beta in itertools.product(K_values, r_values, M_values, betas):
        if K < 1:
            raise ValueError(f"K must be positive, got {K}")
        # seeded by the point itself, so a point's result does not depend on the rest of the grid
        g = torch.Generator().manual_seed(seed * 2**32 + zlib.crc32(repr((K, r, M, beta)).encode()))
        xi = torch.randint(0, 2, (K, N), generator=g).double() * 2 - 1
        examples, labels = noisy_examples(xi, M, r, g)
        net = DenseHebbianNetwork(N, P, supervised).store(examples, labels)
        which = torch.randint(K, (probes,), generator=g)
        start, _ = noisy_examples(xi[which], 1, r, g)
        out = net(start, beta=beta, sweeps=sweeps, generator=g)
        m = mattis_magnetization(out, xi)[torch.arange(probes), which].mean().item()
        rows.append({"N": N, "P": P, "K": K, "r": r, "M": M, "beta": beta, "m": m})
    return rows
