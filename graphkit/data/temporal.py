"""Temporal interaction networks as PyG :class:`~torch_geometric.data.TemporalData`.

Every loader returns ``TemporalData(src, dst, t, msg[, y])`` with events sorted by time, so
``data.num_events`` (a PyG property: the number of rows of ``src``) is the number of events.

Conventions (tested in ``tests/data/test_temporal.py``):

* **Node ids** are relabelled to ``0 .. N-1`` in increasing order of the file's ids (a
  ``numpy.unique`` inverse), so ``data.num_nodes`` is the number of distinct nodes. The TGN
  ``ml_*.csv`` files are 1-based (id 0 is TGN's padding node) and UCI's is shifted once more
  (ids 2..1900), so there the rule is "subtract the smallest id"; CollegeMsg ids start at 1.
  In the JODIE format users and items are separate id spaces: users become ``0 .. U-1`` and
  items ``U .. U+I-1`` (the bipartite layout of PyG's ``JODIEDataset``).
* **Timestamps** ``t`` are ``int64`` when every value is integral (all shipped datasets), else
  ``float64``. They must be non-negative and sorted ascending, otherwise ``ValueError`` naming
  the line.
* **Messages** ``msg`` are the edge features when the file has them, else a ``[E, 0]`` float
  tensor (zero features), so ``msg.size(-1)`` is always the message width.
* ``y`` holds the per-event state label of the TGN and JODIE formats (``int64``).
* Self-loops and repeated interactions are kept: they are events.

:func:`chronological_split` implements the TGN train/validation/test protocol with held-out new
nodes for inductive evaluation.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import TemporalData

from graphkit.data.download import ensure_files
from graphkit.data.edges import relabel
from graphkit.data.registry import register
from graphkit.data.text import is_number, read_table, text_lines
from graphkit.data.validation import check_temporal_data, check_timestamps

__all__ = [
    "TemporalSplit",
    "chronological_split",
    "load_collegemsg",
    "load_enron",
    "load_temporal_sbm",
    "load_uci",
    "read_jodie_csv",
    "read_snap_temporal",
    "read_tgn_csv",
    "temporal_sbm",
]

_PANZARASA = (
    "P. Panzarasa, T. Opsahl, K. M. Carley, \"Patterns and dynamics of users' behavior and "
    "interaction: Network analysis of an online community\", JASIST 2009"
)


# ----------------------------------------------------------------------------- building blocks
def _times(ts: np.ndarray) -> Tensor:
    """``int64`` when every timestamp is integral, else ``float64``."""
    ts = np.asarray(ts, dtype=np.float64)
    if ts.size and np.all(np.isfinite(ts)) and np.all(ts == np.round(ts)) \
            and np.abs(ts).max() < 2**53:
        return torch.from_numpy(ts.astype(np.int64))
    return torch.from_numpy(ts)


def _line_of_event(path: Path, skip_header: int, event: int) -> int:
    """1-based line number of the ``event``-th non-blank data line of ``path``."""
    seen = -1
    for lineno, line in text_lines(path):  # UTF-8 whatever the locale, as the table was read
        if lineno > skip_header and line.strip():
            seen += 1
            if seen == event:
                return lineno
    return -1


def _checked_times(ts: np.ndarray, path: Path, skip_header: int) -> Tensor:
    t = _times(ts)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        i = int((~torch.isfinite(t)).nonzero()[0, 0])
        raise ValueError(f"{path}, line {_line_of_event(path, skip_header, i)}: "
                         "timestamp is NaN or infinite")
    if t.numel() and bool((t < 0).any()):
        i = int((t < 0).nonzero()[0, 0])
        raise ValueError(f"{path}, line {_line_of_event(path, skip_header, i)}: "
                         f"negative timestamp {t[i].item()}")
    if t.numel() > 1:
        dec = (t[1:] < t[:-1]).nonzero()
        if dec.numel():
            i = int(dec[0, 0]) + 1
            raise ValueError(
                f"{path}, line {_line_of_event(path, skip_header, i)}: timestamps are not sorted "
                f"({t[i].item()} comes after {t[i - 1].item()})"
            )
    return check_timestamps(t)


def _events(table: np.ndarray, path: Path) -> np.ndarray:
    """``table`` itself; a file without events (empty, or truncated to its header) raises."""
    if len(table) == 0:
        raise ValueError(f"{path} holds no events (the file is empty or truncated)")
    return table


def _relabel(ids: np.ndarray) -> tuple[Tensor, int]:
    """Map ids to ``0 .. N-1`` in increasing order of the original id (:func:`relabel`)."""
    original, new = relabel(ids)
    return torch.from_numpy(new.astype(np.int64)), int(original.size)


def _integral(col: np.ndarray, what: str, path: Path, skip_header: int) -> np.ndarray:
    bad = ~np.isfinite(col) | (col != np.round(col)) | (col < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {_line_of_event(path, skip_header, i)}: {what} must be a "
                         f"non-negative integer, got {col[i]}")
    return col.astype(np.int64)


# ----------------------------------------------------------------------------- file readers
def _check_header(path: Path, header: str) -> None:
    """The formats start with a header line: a first line of numbers is an event, which
    ``skip_header`` would drop without a word."""
    _, line = next(iter(text_lines(path)), (1, ""))
    fields = [f.strip() for f in line.split(",") if f.strip()]
    if fields and all(is_number(f) for f in fields):  # numbers: an event, not the header
        raise ValueError(f"{path}, line 1: expected the header line ({header}), got the event "
                         f"{line.strip()!r}; add the header so that no event is skipped")


def read_tgn_csv(path: str | os.PathLike) -> TemporalData:
    """Read a TGN/DyGLib processed ``ml_<name>.csv`` (header ``,u,i,ts,label,idx``).

    Returns ``TemporalData(src, dst, t, msg=[E, 0], y=label)`` with node ids relabelled from 0
    (see the module docstring). The ``idx`` column (1-based edge ids) equals the row order.
    """
    path = Path(path)
    _check_header(path, ",u,i,ts,label,idx")
    table = _events(read_table(path, 6, dtype=np.float64, delimiter=",", skip_header=1), path)
    u = _integral(table[:, 1], "u", path, 1)
    i = _integral(table[:, 2], "i", path, 1)
    t = _checked_times(table[:, 3], path, 1)
    y = torch.from_numpy(_integral(table[:, 4], "label", path, 1))  # NaN must not cast to junk
    ids, _ = _relabel(np.stack([u, i]))
    msg = torch.zeros((t.numel(), 0), dtype=torch.float)
    return TemporalData(src=ids[0], dst=ids[1], t=t, msg=msg, y=y)


def read_snap_temporal(path: str | os.PathLike) -> TemporalData:
    """Read a SNAP temporal edge list, one ``SRC DST UNIXTS`` per line (e.g. CollegeMsg)."""
    path = Path(path)
    table = _events(read_table(path, 3, dtype=np.int64), path)
    t = _checked_times(table[:, 2], path, 0)
    ids, _ = _relabel(table[:, :2].T)
    msg = torch.zeros((t.numel(), 0), dtype=torch.float)
    return TemporalData(src=ids[0].contiguous(), dst=ids[1].contiguous(), t=t, msg=msg)


def read_jodie_csv(path: str | os.PathLike) -> TemporalData:
    """Read a JODIE interaction CSV (`Kumar et al., KDD 2019 <https://arxiv.org/abs/1908.01207>`_).

    The format is a header line, then ``user_id,item_id,timestamp,state_label,f1,f2,...`` per
    line, the same number of features on every line. Users become nodes ``0 .. U-1`` and items
    ``U .. U+I-1``; ``msg`` holds the features (``[E, 0]`` when there are none) and ``y`` the
    state labels.

    Raises:
        ValueError: malformed lines (with the line number), negative or unsorted timestamps.
    """
    path = Path(path)
    _check_header(path, "user_id,item_id,timestamp,state_label,...")
    ncols = None
    for lineno, line in text_lines(path):
        if lineno > 1 and line.strip():
            ncols = len(line.strip().split(","))
            break
    if ncols is None:
        raise ValueError(f"{path} holds no interactions (only a header or nothing)")
    if ncols < 4:
        raise ValueError(f"{path}, line {lineno}: expected at least 4 comma-separated fields "
                         "(user_id,item_id,timestamp,state_label,...)")
    table = read_table(path, ncols, dtype=np.float64, delimiter=",", skip_header=1)
    users = _integral(table[:, 0], "user_id", path, 1)
    items = _integral(table[:, 1], "item_id", path, 1)
    t = _checked_times(table[:, 2], path, 1)
    src, num_users = _relabel(users)
    dst, _ = _relabel(items)
    features = table[:, 4:]
    if not np.isfinite(features).all():
        i = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
        raise ValueError(f"{path}, line {_line_of_event(path, 1, i)}: a feature is NaN or infinite")
    msg = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    y = torch.from_numpy(_integral(table[:, 3], "state_label", path, 1))
    return TemporalData(src=src, dst=dst + num_users, t=t, msg=msg, y=y)


# ----------------------------------------------------------------------------- registered data
@register(
    "uci",
    task="temporal link prediction",
    size="1899 nodes, 59835 events",
    source="https://github.com/Zehong-Wang/TGT (data/ml_uci.csv, TGN format)",
    citation=_PANZARASA + "; ml_ format: Rossi et al., Temporal Graph Networks, 2020",
    license="none stated",
    manifest="uci",
)
def load_uci(root: str) -> TemporalData:
    """UCI online-community messages (TGN ``ml_uci.csv``), as ``TemporalData``."""
    return read_tgn_csv(ensure_files("uci", root)["temporal/uci/ml_uci.csv"])


@register(
    "enron",
    task="temporal link prediction",
    size="184 nodes, 125235 events",
    source="https://github.com/ComplexData-MILA/TGX (data/ml_enron.csv, DyGLib version)",
    citation="J. Shetty, J. Adibi, The Enron email dataset database schema and brief "
             "statistical report, 2004; processed by Poursafaei et al., NeurIPS 2022",
    license="none stated (repository now MIT)",
    manifest="enron",
)
def load_enron(root: str) -> TemporalData:
    """Enron e-mails (Poursafaei et al.'s ``ml_enron.csv``), as ``TemporalData``."""
    return read_tgn_csv(ensure_files("enron", root)["temporal/enron/ml_enron.csv"])


@register(
    "collegemsg",
    task="temporal link prediction",
    size="1899 nodes, 59835 events",
    source="https://snap.stanford.edu/data/CollegeMsg.html (copy from wyd1502/DGNN)",
    citation=_PANZARASA,
    license="SNAP terms (repository MIT)",
    manifest="collegemsg",
)
def load_collegemsg(root: str) -> TemporalData:
    """SNAP CollegeMsg (``SRC DST UNIXTS``), as ``TemporalData``."""
    return read_snap_temporal(
        ensure_files("collegemsg", root)["temporal/CollegeMsg/CollegeMsg.txt"]
    )


def temporal_sbm(
    num_nodes: int = 200,
    num_events: int = 5000,
    num_communities: int = 4,
    p_in: float = 0.8,
    p_repeat: float = 0.5,
    seed: int = 0,
) -> TemporalData:
    r"""A synthetic interaction stream with community structure and recurrence.

    Nodes are assigned to ``num_communities`` communities uniformly at random. Event times are
    a Poisson process (integer seconds, mean gap 60). Each event is, with probability
    ``p_repeat``, a repetition of the ``(src, dst)`` pair of an earlier event chosen uniformly
    at random; otherwise ``src`` is uniform and ``dst`` is drawn from ``src``'s community with
    probability ``p_in`` and uniformly from all nodes otherwise (self-loops redrawn away).

    Returns ``TemporalData(src, dst, t, msg=[E, 0], y)`` where ``y`` is 1 for an event whose pair
    occurred before (recurrence) and 0 otherwise.
    """
    if num_nodes < 2:
        raise ValueError(f"temporal_sbm needs num_nodes >= 2, got {num_nodes}")
    if num_events < 1:
        raise ValueError(f"temporal_sbm needs num_events >= 1, got {num_events}")
    if not 1 <= num_communities <= num_nodes:
        raise ValueError(
            f"num_communities must lie in [1, num_nodes={num_nodes}], got {num_communities}"
        )
    for name, p in (("p_in", p_in), ("p_repeat", p_repeat)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {p}")
    rng = np.random.default_rng(seed)
    n, e = int(num_nodes), int(num_events)
    comm = rng.integers(0, num_communities, n)
    members = np.argsort(comm, kind="stable")
    first = np.searchsorted(comm[members], np.arange(num_communities))
    size = np.bincount(comm, minlength=num_communities)

    src = rng.integers(0, n, e)
    inside = rng.random(e) < p_in
    c = comm[src]
    pick = first[c] + (rng.random(e) * size[c]).astype(np.int64)
    dst = np.where(inside, members[pick], rng.integers(0, n, e))
    loop = dst == src
    dst[loop] = (src[loop] + 1 + rng.integers(0, n - 1, int(loop.sum()))) % n

    # Recurrence: event j copies an earlier event's pair; resolve chains by pointer doubling.
    parent = np.arange(e)
    repeat = (rng.random(e) < p_repeat) & (parent > 0)
    parent[repeat] = (rng.random(int(repeat.sum())) * parent[repeat]).astype(np.int64)
    for _ in range(max(e, 2).bit_length()):
        parent = parent[parent]
    src, dst = src[parent], dst[parent]

    gaps = rng.exponential(60.0, e).round().astype(np.int64)
    t = np.cumsum(gaps)
    key = src * n + dst
    _, first_seen = np.unique(key, return_index=True)
    y = np.ones(e, dtype=np.int64)
    y[first_seen] = 0
    return TemporalData(
        src=torch.from_numpy(src.astype(np.int64)),
        dst=torch.from_numpy(dst.astype(np.int64)),
        t=torch.from_numpy(t),
        msg=torch.zeros((e, 0), dtype=torch.float),
        y=torch.from_numpy(y),
    )


@register(
    "temporal-sbm",
    task="temporal link prediction (synthetic)",
    size="num_nodes x num_events (default 200 x 5000)",
    source="generated by graphkit",
    citation="synthetic; stochastic block model (Holland et al., Social Networks 1983)",
    license="MIT",
)
def load_temporal_sbm(root: str, **kwargs) -> TemporalData:
    """Synthetic timestamped interactions with communities and recurrence (no files)."""
    return temporal_sbm(**kwargs)


# ----------------------------------------------------------------------------- splits
@dataclasses.dataclass
class TemporalSplit:
    """Boolean event masks of a chronological split (all ``[num_events]``).

    Attributes:
        train_mask: events up to the validation time that touch no held-out new node.
        val_mask: events in ``(val_time, test_time]``.
        test_mask: events after ``test_time``.
        inductive_val_mask: validation events touching a node never seen in training.
        inductive_test_mask: test events touching a node never seen in training.
        new_nodes: the held-out nodes (sampled among nodes active after ``val_time``).
        val_time: the ``1 - val_ratio - test_ratio`` time quantile.
        test_time: the ``1 - test_ratio`` time quantile.
    """

    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    inductive_val_mask: Tensor
    inductive_test_mask: Tensor
    new_nodes: Tensor
    val_time: float
    test_time: float


def chronological_split(
    data: TemporalData,
    val_ratio: float = 0.15,
    test_ratio: float = 0.15,
    new_node_ratio: float = 0.1,
    seed: int = 0,
) -> TemporalSplit:
    r"""Split events by time with held-out new nodes, following TGN's protocol.

    As in `TGN <https://arxiv.org/abs/2006.10637>`_ (``utils/data_processing.py``,
    ``get_data``): ``val_time`` and ``test_time`` are the ``1 - val - test`` and ``1 - test``
    quantiles of ``t``; ``int(new_node_ratio * N)`` nodes (``N`` = distinct nodes in the stream)
    are sampled among the nodes active after ``val_time`` and every event touching one of them
    is removed from training; training keeps events with ``t <= val_time`` otherwise. The
    inductive masks select validation/test events with an endpoint never seen in training
    (held-out nodes and nodes that first appear after ``val_time``).

    The sample of new nodes uses ``numpy.random.default_rng(seed)``, not TGN's
    ``random.seed(2020)``, so the held-out set differs from TGN's for the same data.
    """
    if not (0 <= val_ratio < 1 and 0 <= test_ratio < 1 and val_ratio + test_ratio < 1):
        raise ValueError(
            f"val_ratio and test_ratio must be in [0, 1) with a sum below 1, got "
            f"{val_ratio} and {test_ratio}"
        )
    if not 0 <= new_node_ratio < 1:
        raise ValueError(f"new_node_ratio must lie in [0, 1), got {new_node_ratio}")
    if data.num_events == 0:
        raise ValueError("cannot split an empty event stream")
    # src, dst and t of one length (a shorter dst failed in a NumPy boolean index), ids
    # non-negative integers, t finite, non-negative and sorted, msg finite
    check_temporal_data(data)
    src = data.src.cpu().numpy()
    dst = data.dst.cpu().numpy()
    t = check_timestamps(data.t.cpu()).numpy()
    val_time, test_time = np.quantile(t, [1.0 - val_ratio - test_ratio, 1.0 - test_ratio])

    nodes = np.union1d(src, dst)
    late = t > val_time
    candidates = np.union1d(src[late], dst[late])
    num_new = min(int(new_node_ratio * nodes.size), candidates.size)
    rng = np.random.default_rng(seed)
    new_nodes = np.sort(rng.choice(candidates, size=num_new, replace=False))

    touches_new = np.isin(src, new_nodes) | np.isin(dst, new_nodes)
    train = (t <= val_time) & ~touches_new
    val = late & (t <= test_time)
    test = t > test_time
    seen = np.union1d(src[train], dst[train])
    unseen = ~np.isin(src, seen) | ~np.isin(dst, seen)

    def mask(m: np.ndarray) -> Tensor:
        return torch.from_numpy(m).to(data.src.device)

    return TemporalSplit(
        train_mask=mask(train),
        val_mask=mask(val),
        test_mask=mask(test),
        inductive_val_mask=mask(val & unseen),
        inductive_test_mask=mask(test & unseen),
        new_nodes=torch.from_numpy(new_nodes.astype(np.int64)).to(data.src.device),
        val_time=float(val_time),
        test_time=float(test_time),
    )
