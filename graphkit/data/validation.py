"""Input validation shared by every loader, converter and method.

Each check raises a :class:`ValueError` that names the problem; nothing is dropped silently.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "check_data",
    "check_edge_index",
    "check_edge_weight",
    "check_features",
    "check_graph",
    "check_num_nodes",
    "check_temporal_data",
    "check_timestamps",
    "is_integer",
    "share_of",
]


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer count or id: a Python or NumPy integer, not a bool (a
    float such as 2.5 fails later inside ``range`` or a slice, naming neither)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_edge_index(
    edge_index: Tensor | np.ndarray,
    num_nodes: int | None = None,
    name: str = "edge_index",
    allow_empty: bool = True,
) -> Tensor:
    """Return ``edge_index`` as a ``[2, E]`` int64 tensor after checking shape, dtype and range."""
    if isinstance(edge_index, np.ndarray):
        if edge_index.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {edge_index.dtype}")
        edge_index = torch.from_numpy(np.ascontiguousarray(edge_index))
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"{name} must be a tensor or array, got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got dtype {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, num_edges], got {list(edge_index.shape)}")
    edge_index = edge_index.long()
    if edge_index.numel() == 0:
        if not allow_empty:
            raise ValueError(f"{name} is empty: the graph has no edges")
        return edge_index
    lo = int(edge_index.min())
    if lo < 0:
        raise ValueError(f"{name} holds a negative node id ({lo})")
    if num_nodes is not None:
        hi = int(edge_index.max())
        if hi >= num_nodes:
            raise ValueError(
                f"{name} holds node id {hi}, out of range for num_nodes={num_nodes}"
            )
    return edge_index


def check_edge_weight(edge_weight: Tensor, num_edges: int, name: str = "edge_weight") -> Tensor:
    """Check that ``edge_weight`` is a vector of ``num_edges`` finite values (one per edge)."""
    if not isinstance(edge_weight, Tensor) or edge_weight.dim() != 1 \
            or edge_weight.numel() != num_edges:
        shape = list(edge_weight.shape) if isinstance(edge_weight, Tensor) else \
            type(edge_weight).__name__
        raise ValueError(f"{name} must have shape [{num_edges}] (one weight per edge of "
                         f"edge_index), got {shape}")
    if edge_weight.is_floating_point() and not bool(torch.isfinite(edge_weight).all()):
        i = int((~torch.isfinite(edge_weight)).nonzero()[0, 0])
        raise ValueError(f"{name} holds NaN or infinite values (first at edge {i})")
    return edge_weight


def check_num_nodes(num_nodes: int, x: Tensor | None = None, name: str = "x") -> int:
    """Check that ``num_nodes`` is positive and agrees with the rows of ``x``."""
    if num_nodes <= 0:
        raise ValueError(f"the graph is empty (num_nodes={num_nodes})")
    if x is not None and x.size(0) != num_nodes:
        raise ValueError(
            f"node-count mismatch: {name} has {x.size(0)} rows but the graph has {num_nodes} nodes"
        )
    return num_nodes


def check_features(x: Tensor | np.ndarray, name: str = "x", rows: str = "num_nodes") -> Tensor:
    """Reject feature matrices of the wrong rank or holding NaN or infinite values (``rows``
    names what the rows are, for the message: ``num_events`` for event features)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biufc":  # object or string columns, e.g. from pandas
            raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor or array, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [{rows}, num_features], got {list(x.shape)}")
    if x.is_floating_point():
        # sparse features: the stored values (uncoalesced COO values are finite exactly when
        # the coalesced ones are, barring overflow)
        values = x._values() if x.layout == torch.sparse_coo else (
            x.values() if x.layout == torch.sparse_csr else x)
        # the sum is finite exactly when no value is NaN or infinite (overflow falls through to
        # the search): no N x F mask on the common, clean path, so the check does not set a
        # training run's peak memory
        if bool(torch.isfinite(values.sum())):
            return x
        if x.layout == torch.sparse_coo:  # the row of a value from the indices
            coalesced = x.coalesce()
            values, rows = coalesced.values(), coalesced.indices()[0]
        elif x.layout == torch.sparse_csr:  # ... or the row pointers
            rows = torch.repeat_interleave(torch.arange(x.size(0), device=x.device),
                                           x.crow_indices().diff())
        else:
            rows = None
        bad = ~torch.isfinite(values)
        if bool(bad.any()):
            first = bad.nonzero()[0]
            row = int(first[0] if rows is None else rows[first[0]])
            kind = "NaN" if bool(torch.isnan(values).any()) else "infinite"
            raise ValueError(f"{name} holds {kind} values (first in row {row})")
    return x


def check_timestamps(t: Tensor | np.ndarray, name: str = "t", sorted_: bool = True) -> Tensor:
    """Timestamps must be finite, non-negative and (by default) sorted ascending."""
    if isinstance(t, np.ndarray):
        if t.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
        t = torch.from_numpy(t)
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a tensor or array, got {type(t).__name__}")
    if t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {list(t.shape)}")
    if t.numel() == 0:
        return t
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds NaN or infinite timestamps")
    if bool((t < 0).any()):
        i = int((t < 0).nonzero()[0, 0])
        raise ValueError(f"{name} holds a negative timestamp at event {i}")
    if sorted_ and t.numel() > 1:
        dec = (t[1:] < t[:-1]).nonzero()
        if dec.numel():
            i = int(dec[0, 0]) + 1
            raise ValueError(f"{name} is not sorted: event {i} comes before event {i - 1} in time")
    return t


def check_temporal_data(data, num_nodes: int | None = None) -> None:
    """Check a PyG ``TemporalData`` stream: ``src`` and ``dst`` integer vectors of one length
    with node ids below ``num_nodes`` (when given), ``t`` finite, non-negative and sorted with
    one entry per event, and ``msg`` (when present) two-dimensional and finite, one row per
    event."""
    src, dst = getattr(data, "src", None), getattr(data, "dst", None)
    if src is None or dst is None or getattr(data, "t", None) is None:
        raise ValueError("the stream needs src, dst and t")
    for name, v in (("src", src), ("dst", dst)):
        if v.dim() != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {list(v.shape)}")
    if src.numel() != dst.numel():
        raise ValueError(f"src has {src.numel()} events but dst has {dst.numel()}")
    if src.numel() == 0:
        raise ValueError("the stream has no events")
    check_edge_index(torch.stack([src, dst]), num_nodes, name="src/dst")
    if data.t.numel() != src.numel():
        raise ValueError(f"t has {data.t.numel()} entries for {src.numel()} events")
    check_timestamps(data.t)
    msg = getattr(data, "msg", None)
    if msg is not None:
        check_features(msg, name="msg", rows="num_events")
        if msg.size(0) != src.numel():
            raise ValueError(f"msg has {msg.size(0)} rows for {src.numel()} events")


def check_graph(data) -> None:
    """Check the structure and features of a PyG ``Data``: a positive node count, ``edge_index``
    and ``hyperedge_index`` in range, ``edge_weight`` finite with one entry per edge, ``x``
    two-dimensional and finite with one row per node.

    Every training entry point (``train_node_classifier``, the forward-learning schemes, the
    LPGNAS search) runs it once on the user's graph, so that NaN features or an out-of-range
    node id fail at once with their name instead of training to NaN or failing in an index
    operation. Labels and masks are left to the caller, whose conventions differ.
    """
    n = data.num_nodes
    if n is None:
        raise ValueError("the graph has no nodes (num_nodes is None)")
    check_num_nodes(int(n))
    if getattr(data, "edge_index", None) is not None:
        check_edge_index(data.edge_index, n)
        if getattr(data, "edge_weight", None) is not None:
            check_edge_weight(data.edge_weight, data.edge_index.size(1))
    if getattr(data, "hyperedge_index", None) is not None:
        from graphkit.data.hypergraph import check_hyperedge_index

        check_hyperedge_index(data.hyperedge_index, n, getattr(data, "num_hyperedges", None))
    if getattr(data, "x", None) is not None:
        check_features(data.x)
        check_num_nodes(n, data.x)


def check_data(data) -> None:
    """Check a PyG ``Data`` as a whole: :func:`check_graph`, and that ``y`` and every
    ``*_mask`` have one row per node (masks boolean).
    """
    check_graph(data)
    n = data.num_nodes
    if getattr(data, "y", None) is not None and data.y.dim() > 0:
        check_num_nodes(n, data.y, name="y")
    for key in data.keys():
        if key.endswith("_mask"):
            mask = data[key]
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 1:
                raise ValueError(f"{key} must be a one-dimensional boolean tensor")
            check_num_nodes(n, mask, name=key)


def share_of(count: int, ratio: float, rounding: str = "floor") -> int:
    """``floor`` (or ``ceil``) of ``ratio * count`` for the ratio meant: read as the nearest
    fraction with a denominator up to 10**6 (0.29 is 29/100, not the binary 0.28999...; 1/3 is
    1/3), so a product meant to be whole is not one off (``int(0.29 * 100)`` is 28)."""
    if rounding not in ("floor", "ceil"):
        raise ValueError(f"rounding must be 'floor' or 'ceil', got {rounding!r}")
    exact = Fraction(float(ratio)).limit_denominator(10**6) * int(count)
    return math.floor(exact) if rounding == "floor" else math.ceil(exact)
