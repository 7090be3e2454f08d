"""The graph behind a ``cached=True`` layer's normalisation, and the check that a later call
passes the same graph.

A cached layer (PyG's convention, transductive use only) normalises the adjacency on its first
call and reuses the result. Called with another graph it used to reuse the first graph's
normalisation without a word: right output shape, wrong numbers. :class:`CachedGraph`
remembers the graph instead and :func:`check_cached_graph` refuses a different one. The common
full-batch loop passes the very same tensor every call, which costs an identity test; only a
different tensor object has its contents compared (a device sync on an accelerator).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CachedGraph", "check_cached_graph", "check_pyg_gcn_cache"]


class CachedGraph:
    """Node count and edge tensors (by reference, not copied) of the graph a cache was built
    from. A tensor with autograd history is kept detached, so that the key neither holds its
    graph alive nor stops a deep copy."""

    def __init__(self, num_nodes: int, tensors: dict[str, object]) -> None:
        self.num_nodes = num_nodes
        self.tensors = {name: t.detach() if isinstance(t, Tensor) and not t.is_leaf else t
                        for name, t in tensors.items()}


def _dense(t: object) -> bool:
    return isinstance(t, Tensor) and t.layout == torch.strided


def _same_content(a: object, b: object) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    if _dense(a) and _dense(b):
        if a.shape != b.shape:
            return False
        dtype = torch.promote_types(a.dtype, b.dtype)  # int32 and int64 ids of one graph match
        return torch.equal(a.to(dtype), b.to(a.device, dtype))
    if _dense(a) or _dense(b):
        return False
    # two sparse adjacencies (torch.sparse or SparseTensor): compare their edges and values
    from torch_geometric.utils import to_edge_index

    if (a.size(0), a.size(1)) != (b.size(0), b.size(1)):
        return False
    (index_a, value_a), (index_b, value_b) = to_edge_index(a), to_edge_index(b)
    return _same_content(index_a, index_b) and _same_content(value_a, value_b)


def _format(t: object) -> str:
    return "an edge index tensor" if _dense(t) else "a sparse adjacency"


def check_cached_graph(layer: str, key: CachedGraph | None, num_nodes: int,
                       tensors: dict[str, object], reset: str = "reset_parameters()",
                       graph: str = "graph", nodes: str = "nodes") -> CachedGraph:
    """Raise a ValueError if ``num_nodes`` and ``tensors`` (by name, e.g. ``edge_index`` and
    ``edge_weight``) are not the graph of ``key``, the graph the cache of the layer named
    ``layer`` was built from;
    return the key to keep, which refers to the tensors of this call so that the next call
    with them is again an identity test. ``key=None`` (nothing cached yet) accepts any graph.

    Call it whenever the layer holds a cache, before deciding to reuse it or to rebuild it
    after ``.to()`` / ``.double()``: a rebuild must not accept another graph either.
    """
    if key is not None:
        why, held = None, f"another {graph}"
        if num_nodes != key.num_nodes:
            why = f"cached for a {graph} of {key.num_nodes} {nodes} but got {num_nodes}"
        else:
            for name, t in tensors.items():
                old = key.tensors.get(name)
                if old is not None and t is not None and _dense(old) != _dense(t):
                    # the same graph may come in the other format: say which changed
                    why = f"{name} is now {_format(t)}, but the cache was built from " \
                          f"{_format(old)}"
                    held = f"a {graph} given in another format"
                    break
                if not _same_content(old, t):
                    why = f"{name} differs from the one of the cached {graph} of " \
                          f"{num_nodes} {nodes}"
                    break
        if why is not None:
            raise ValueError(
                f"{layer} was built with cached=True and its cache holds "
                f"{held} ({why}). A cached layer serves one fixed {graph} "
                f"(transductive use): build it with cached=False for changing {graph}s or "
                f"mini-batches, or call {reset} after changing the {graph}")
    return CachedGraph(num_nodes, tensors)


def _fits(cache: object, x: Tensor) -> bool:
    """Whether a PyG ``GCNConv`` cache (``(edge_index, edge_weight)``, or an ``adj_t``) is on
    ``x``'s device and in its dtype."""
    t = cache[1] if isinstance(cache, tuple) and cache[1] is not None else \
        cache[0] if isinstance(cache, tuple) else cache
    device, dtype = t.device, t.dtype  # a SparseTensor has them as methods
    device, dtype = device() if callable(device) else device, dtype() if callable(dtype) else dtype
    return device == x.device and (not dtype.is_floating_point or dtype == x.dtype)


def check_pyg_gcn_cache(model: torch.nn.Module, convs: list[torch.nn.Module], x: Tensor,
                        edge_index: object, edge_weight: Tensor | None = None) -> None:
    """:func:`check_cached_graph` for a model built on PyG ``GCNConv`` layers, which reuse
    their cache whatever graph they get; the key lives on ``model``. Caches that no longer
    fit ``x`` (after ``.double()`` or ``.to(device)``, which PyG does not notice) are dropped
    and rebuilt by the layers."""
    cached = [conv for conv in convs if conv.cached and conv.normalize]
    if not cached:
        return
    held = False
    for conv in cached:
        for attr in ("_cached_edge_index", "_cached_adj_t"):
            cache = getattr(conv, attr)
            if cache is not None:
                held = True
                if not _fits(cache, x):
                    setattr(conv, attr, None)
    key = getattr(model, "_cached_graph", None) if held else None
    given = {"edge_index": edge_index, "edge_weight": edge_weight}
    model._cached_graph = check_cached_graph(type(model).__name__, key, x.size(-2), given)
