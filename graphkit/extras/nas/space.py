"""Search spaces: a tree of named categorical choices, shared by every NAS entry.

A :class:`SearchSpace` is a product of children (choices and nested spaces); a :class:`Choice`
picks one of its options, and an option may open a conditional sub-space (e.g. OFA's depth
choice decides how many layers have a kernel and an expansion to choose). One configuration
("cfg") is a nested ``dict``: a choice's entry is the chosen option; a nested space's entry is
its own dict; the sub-space opened by a chosen option sits beside the choice under the
sub-space's name. Example, one OFA-like unit::

    layer = lambda i: SearchSpace(f"layer{i}", [Choice("ks", (3, 5, 7)), Choice("e", (3, 4, 6))])
    unit = SearchSpace("unit", [
        Choice("depth", (2, 3), branches={d: SearchSpace("layers", [layer(i) for i in range(d)])
                                           for d in (2, 3)}),
    ])
    unit.size()            # 9**2 + 9**3 = 810
    unit.sample(0)         # {'depth': 3, 'layers': {'layer0': {'ks': 5, 'e': 3}, ...}}

Every choice of the tree (in every branch) owns a fixed segment of the one-hot encoding, so
:meth:`SearchSpace.encode` gives vectors of one length for all configurations (inactive
branches are zero), the input predictors and controllers need.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

#: ``decide(path, choice) -> option index``; ``path`` names the choice in the tree.
Decider = Callable[[str, "Choice"], int]


class Choice:
    r"""One categorical decision: pick one of ``options``.

    Args:
        name (str): the key of this choice in its space's configuration.
        options (Sequence[Hashable]): the candidates, distinct (at least one).
        branches (Mapping[Hashable, SearchSpace], optional): for some options, a sub-space whose
            choices become active when that option is chosen (default: :obj:`None`).

    The number of configurations below a choice is
    :math:`\sum_o |\mathrm{branch}(o)|`, with :math:`|\cdot| = 1` for an option without a
    branch.
    """

    def __init__(
        self,
        name: str,
        options: Sequence[Hashable],
        branches: Mapping[Hashable, SearchSpace] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"a choice name is a non-empty string without '.', got {name!r}")
        options = tuple(options)
        if not options:
            raise ValueError(f"choice {name!r} needs at least one option")
        if len(set(options)) != len(options):
            raise ValueError(f"choice {name!r} has repeated options: {options}")
        branches = dict(branches or {})
        for option, sub in branches.items():
            if option not in options:
                raise ValueError(f"choice {name!r}: branch for unknown option {option!r}")
            if not isinstance(sub, SearchSpace):
                raise TypeError(f"choice {name!r}: the branch of {option!r} must be a SearchSpace")
            if sub.name == name:
                raise ValueError(f"choice {name!r}: a branch may not share the choice's name")
        self.name = name
        self.options = options
        self.branches = branches

    def __len__(self) -> int:
        return len(self.options)

    def size(self) -> int:
        """Number of configurations of this choice and the branches it opens."""
        return sum(self.branches[o].size() if o in self.branches else 1 for o in self.options)

    def index(self, option: Hashable) -> int:
        """Position of ``option`` in :attr:`options`."""
        try:
            return self.options.index(option)
        except ValueError:
            raise ValueError(
                f"{option!r} is not an option of choice {self.name!r} {self.options}"
            ) from None

    def __repr__(self) -> str:
        branches = f", branches={sorted(map(repr, self.branches))}" if self.branches else ""
        return f"Choice({self.name!r}, {self.options}{branches})"


class SearchSpace:
    """A product of choices and nested spaces: the tree an architecture is searched in.

    Args:
        name (str): the key of this space in its parent's configuration.
        children (Sequence[Choice | SearchSpace]): the decisions, in a fixed order (the order
            samplers and controllers make them in). Keys must be unique within the space,
            counting the names of the branches the choices open.

    :meth:`size` is exact (a Python integer); :meth:`enumerate` yields every configuration.
    """

    def __init__(self, name: str, children: Sequence[Choice | SearchSpace]) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"a space name is a non-empty string without '.', got {name!r}")
        children = tuple(children)
        keys: list[str] = []
        for child in children:
            if not isinstance(child, (Choice, SearchSpace)):
                raise TypeError(
                    f"space {name!r}: children are Choice or SearchSpace, got {child!r}"
                )
            keys.append(child.name)
            if isinstance(child, Choice):
                keys.extend({b.name for b in child.branches.values()})
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"space {name!r} has repeated keys {repeated}")
        self.name = name
        self.children = children
        # one-hot layout: every choice in every branch owns a segment, in tree order
        self._segments: dict[str, tuple[int, Choice]] = {}
        offset = 0
        for path, choice in self.choices():
            self._segments[path] = (offset, choice)
            offset += len(choice)
        self.num_features = offset

    # -- structure ------------------------------------------------------------------------
    def choices(self, prefix: str = "") -> Iterator[tuple[str, Choice]]:
        """Every choice of the tree, inactive branches included, with its dotted path.

        A branch is entered as ``<choice>=<option index>``, so paths stay unique even where
        the branches of one choice reuse names (``unit.depth=1.layers.layer0.ks``).
        """
        for child in self.children:
            path = f"{prefix}{child.name}"
            if isinstance(child, SearchSpace):
                yield from child.choices(prefix=f"{path}.")
                continue
            yield path, child
            for i, option in enumerate(child.options):
                if option in child.branches:
                    sub = child.branches[option]
                    yield from sub.choices(prefix=f"{path}={i}.{sub.name}.")

    def size(self) -> int:
        """Exact number of configurations (product over children)."""
        return math.prod(child.size() for child in self.children)

    # -- building configurations ------------------------------------------------------------
    def build(self, decide: Decider, prefix: str = "") -> dict[str, Any]:
        """The configuration made by asking ``decide(path, choice)`` for each active choice.

        Choices are visited depth first in :attr:`children` order, a branch right after the
        choice that opened it: the order a sequential controller makes its decisions in.
        """
        cfg: dict[str, Any] = {}
        for child in self.children:
            path = f"{prefix}{child.name}"
            if isinstance(child, SearchSpace):
                cfg[child.name] = child.build(decide, prefix=f"{path}.")
                continue
            i = decide(path, child)
            # a bool is an int to Python: True silently picked option 1
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(child):
                raise ValueError(
                    f"decision for {path!r} must be an index in [0, {len(child)}), got {i!r}"
                )
            option = child.options[i]
            cfg[child.name] = option
            if option in child.branches:
                sub = child.branches[option]
                cfg[sub.name] = sub.build(decide, prefix=f"{path}={i}.{sub.name}.")
        return cfg

    def sample(self, rng: random.Random | int | None = None) -> dict[str, Any]:
        """A random configuration, each active choice uniform over its options.

        Uniform per decision, not over configurations: a branch with a larger sub-space is not
        favoured. ``rng`` is a :class:`random.Random` or a seed.
        """
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        return self.build(lambda _path, choice: rng.randrange(len(choice)))

    def enumerate(self) -> Iterator[dict[str, Any]]:
        """Every configuration once, in a fixed order (``size()`` of them)."""
        parts = [_enumerate_child(child) for child in self.children]
        for combo in itertools.product(*parts):
            cfg: dict[str, Any] = {}
            for piece in combo:
                cfg.update(piece)
            yield cfg

    # -- checking and encoding ------------------------------------------------------------
    def validate(self, cfg: Mapping[str, Any]) -> None:
        """Raise a :class:`ValueError` naming the first key where ``cfg`` leaves this space."""
        self._check(cfg, prefix="")

    def _check(self, cfg: Mapping[str, Any], prefix: str) -> None:
        if not isinstance(cfg, Mapping):
            raise ValueError(
                f"configuration of {prefix or self.name!r} must be a dict, got {cfg!r}"
            )
        expected: set[str] = set()
        for child in self.children:
            path = f"{prefix}{child.name}"
            expected.add(child.name)
            if child.name not in cfg:
                raise ValueError(f"configuration misses {path!r}")
            if isinstance(child, SearchSpace):
                child._check(cfg[child.name], prefix=f"{path}.")
                continue
            option = cfg[child.name]
            if not _hashable(option):
                raise ValueError(f"{path!r}: {option!r} is not an option of {child.options}")
            i = child.index(option)
            if option in child.branches:
                sub = child.branches[option]
                expected.add(sub.name)
                if sub.name not in cfg:
                    raise ValueError(f"configuration misses {prefix}{sub.name!r} opened by {path}")
                sub._check(cfg[sub.name], prefix=f"{path}={i}.{sub.name}.")
        extra = sorted(set(cfg) - expected)
        if extra:
            raise ValueError(f"configuration has keys outside the space at {prefix!r}: {extra}")

    def encode(self, cfg: Mapping[str, Any]) -> Tensor:
        """One-hot vector of length :attr:`num_features`: one 1 per active choice."""
        self.validate(cfg)
        out = torch.zeros(self.num_features)

        def mark(path: str, choice: Choice) -> int:
            offset = self._segments[path][0]
            i = choice.index(self.value_at(cfg, path))
            out[offset + i] = 1.0
            return i

        self.build(mark)
        return out

    def decode(self, vector: Tensor) -> dict[str, Any]:
        """The configuration whose active choices take the arg-max of their segment.

        Exact inverse of :meth:`encode`; also turns scores or logits into a configuration.
        """
        vector = torch.as_tensor(vector)
        if vector.shape != (self.num_features,):
            raise ValueError(
                f"expected a vector of shape ({self.num_features},), got {tuple(vector.shape)}"
            )
        if torch.isnan(vector).any():
            raise ValueError("cannot decode a vector holding NaN")

        def pick(path: str, choice: Choice) -> int:
            offset = self._segments[path][0]
            return int(vector[offset : offset + len(choice)].argmax())

        return self.build(pick)

    def value_at(self, cfg: Mapping[str, Any], path: str) -> Any:
        """The option ``cfg`` picks for the choice at ``path`` (see :meth:`choices`)."""
        if path not in self._segments:
            raise KeyError(f"no choice at {path!r}; known paths: {list(self._segments)[:8]}...")
        try:
            return _lookup(cfg, path)
        except (KeyError, TypeError):
            raise ValueError(f"configuration has no value for {path!r}") from None

    def segment(self, path: str) -> slice:
        """Where the choice at ``path`` (see :meth:`choices`) sits in the encoding."""
        if path not in self._segments:
            raise KeyError(f"no choice at {path!r}; known paths: {list(self._segments)[:8]}...")
        offset, choice = self._segments[path]
        return slice(offset, offset + len(choice))

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, children={len(self.children)}, size={self.size()})"


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _lookup(cfg: Mapping[str, Any], path: str) -> Any:
    """The value at a :meth:`SearchSpace.choices` path; branch markers step into the sibling."""
    node: Any = cfg
    parts = path.split(".")
    for part in parts:
        if "=" in part:
            # ``choice=i`` is followed by the name of its branch, stored beside the choice
            continue
        node = node[part]
    return node


def _enumerate_child(child: Choice | SearchSpace) -> list[dict[str, Any]]:
    if isinstance(child, SearchSpace):
        return [{child.name: cfg} for cfg in child.enumerate()]
    out: list[dict[str, Any]] = []
    for option in child.options:
        if option in child.branches:
            sub = child.branches[option]
            out.extend({child.name: option, sub.name: cfg} for cfg in sub.enumerate())
        else:
            out.append({child.name: option})
    return out
