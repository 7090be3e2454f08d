r"""A model's computational graph, as graph hypernetworks read it.

GHN-2 (`"Parameter Prediction for Unseen Deep Architectures"
<https://arxiv.org/abs/2110.13100>`_), GHN-3 and LoGAH (`"LoGAH: Predicting 774-Million-Parameter
Transformers using Graph HyperNetworks with 1/100 Parameters"
<https://arxiv.org/abs/2405.16287>`_) predict a network's parameters from a directed acyclic
graph of its forward pass: one node per operation, edges along the data flow.
:func:`trace_architecture` builds that graph from autograd: it runs the model once on an example
input and walks the ``grad_fn`` chain back from the output, so any model whose forward pass is
differentiable is traced, whatever Python control flow it holds.

- Ops that only move data (view, reshape, transpose, expand, split, clone, ...) are contracted:
  their producers are joined to their consumers.
- A parameter consumed by a linear, convolution, layer-norm or embedding op belongs to that op
  node (``params`` maps ``"weight"``/``"bias"`` to the parameter's name); its ``shape`` is the
  node's shape feature. Any other parameter (a positional embedding, a class token) is a node
  of its own, of type ``"param"``, with an edge into the op that consumes it.
- Node 0 is the input; nodes are in topological order.

The Graphormer of :mod:`graphkit.extras.hyper.logah` reads the in/out degrees, the shortest-path
distances (:meth:`ArchGraph.distances`) and the distance from the input.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path
from torch import Tensor, nn

from graphkit.data.validation import check_edge_index
from graphkit.extras._core.modules import eval_mode

__all__ = ["OP_TYPES", "ArchGraph", "trace_architecture"]

#: The op vocabulary (index = the op's id in :attr:`ArchGraph.op_ids`).
OP_TYPES = (
    "input", "param", "linear", "conv", "layernorm", "embedding", "matmul", "add", "mul",
    "softmax", "gelu", "relu", "act", "pool", "cat", "other",
)

#: Ops that own the parameters they consume.
_PARAM_OPS = {"linear", "conv", "layernorm", "embedding"}

#: autograd node names (``...Backward0`` stripped) that only move data.
_SHAPE_OPS = {
    "View", "UnsafeView", "Reshape", "ReshapeAlias", "Transpose", "T", "Permute", "Expand",
    "Clone", "Split", "SplitWithSizes", "UnsafeSplit", "Unbind", "Select", "Slice", "Squeeze",
    "Unsqueeze", "Alias", "AsStrided", "Contiguous", "ToCopy", "Chunk",
}

_OP_NAMES = {
    "Addmm": "linear", "Linear": "linear", "Convolution": "conv", "Conv2D": "conv",
    "NativeLayerNorm": "layernorm", "LayerNorm": "layernorm", "Embedding": "embedding",
    "Mm": "matmul", "Bmm": "matmul", "Matmul": "matmul", "Baddbmm": "matmul",
    "Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul", "Softmax": "softmax",
    "Gelu": "gelu", "Relu": "relu", "Tanh": "act", "Sigmoid": "act", "Silu": "act",
    "Mean": "pool", "Sum": "pool", "AdaptiveAvgPool2D": "pool", "AvgPool2D": "pool",
    "MaxPool2DWithIndices": "pool", "Cat": "cat", "Stack": "cat",
}


@dataclass
class ArchGraph:
    """A traced computational graph (see the module docstring).

    Attributes:
        ops (list[str]): op type of each node, from :data:`OP_TYPES`.
        names (list[str]): the owning module's name for parametric ops and parameter nodes,
            ``"<op>:<k>"`` otherwise.
        params (list[dict[str, str]]): per node, role (``"weight"``, ``"bias"``, or the
            parameter's own last name) to the parameter's full name; empty for ops without
            parameters.
        shapes (list[tuple[int, ...] | None]): shape of the node's weight (of its first
            parameter when it has no weight); :obj:`None` for ops without parameters.
        edge_index (Tensor): ``(2, E)`` int64 edges, producer to consumer.
        param_shapes (dict[str, tuple[int, ...]]): the shape of every parameter in the graph.
    """

    ops: list[str]
    names: list[str]
    params: list[dict[str, str]]
    shapes: list[tuple[int, ...] | None]
    edge_index: Tensor
    param_shapes: dict[str, tuple[int, ...]]

    @property
    def num_nodes(self) -> int:
        return len(self.ops)

    @property
    def op_ids(self) -> Tensor:
        """``(N,)`` int64 index of each node's op in :data:`OP_TYPES`."""
        return torch.tensor([OP_TYPES.index(o) for o in self.ops], dtype=torch.long)

    @property
    def param_nodes(self) -> list[int]:
        """The nodes that own parameters, in node order."""
        return [i for i, p in enumerate(self.params) if p]

    @property
    def param_names(self) -> list[str]:
        """Every parameter in the graph, in node order."""
        return [name for p in self.params for name in p.values()]

    def validate(self) -> None:
        """Raise a ``ValueError`` naming the first inconsistency of a graph built by hand
        (:func:`trace_architecture`'s graphs are consistent): per-node lists of one length, ops
        from :data:`OP_TYPES`, edges in range and a shape for every named parameter."""
        n = len(self.ops)
        for name in ("names", "params", "shapes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"the graph has {n} ops but {len(getattr(self, name))} {name}")
        unknown = sorted({o for o in self.ops if o not in OP_TYPES})
        if unknown:
            raise ValueError(f"unknown op types {unknown}; known: {OP_TYPES}")
        check_edge_index(self.edge_index, n, "graph.edge_index")
        missing = [p for p in self.param_names if p not in self.param_shapes]
        if missing:
            raise ValueError(f"param_shapes has no shape for {missing[:3]}")

    def distances(self) -> Tensor:
        """``(N, N)`` int64 shortest-path lengths along the data flow; ``0`` where there is no
        path (and on the diagonal)."""
        n = self.num_nodes
        src, dst = self.edge_index.cpu().numpy()  # a hand-built graph may hold it on a GPU
        adj = csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
        d = shortest_path(adj, directed=True, unweighted=True)
        d[~np.isfinite(d)] = 0
        return torch.from_numpy(d.astype(np.int64))

    def __repr__(self) -> str:
        return (f"ArchGraph(num_nodes={self.num_nodes}, num_edges={self.edge_index.size(1)}, "
                f"param_nodes={len(self.param_nodes)})")


def _kind(fn: object) -> str:
    name = re.sub(r"Backward\d*$", "", type(fn).__name__)
    if name in _SHAPE_OPS:
        return "shape"
    return _OP_NAMES.get(name, "other")


@torch.no_grad()
def _check_input(x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError("the example input must be a floating-point tensor")
    if x.numel() == 0:
        raise ValueError(f"the example input is empty, shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("the example input has NaN or infinite entries")


def trace_architecture(model: nn.Module, example: Tensor) -> ArchGraph:
    """Trace ``model`` on ``example`` into an :class:`ArchGraph`.

    The model runs once in eval mode (dropout off) with gradients recorded; its mode and
    parameters are left as they were.

    Args:
        model (torch.nn.Module): the network; its output must be a tensor that depends on the
            input and on at least one parameter.
        example (Tensor): an example input, e.g. ``(1, C, H, W)`` for an image model.

    Returns:
        The graph, node 0 being the input.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    _check_input(example)
    by_id = {id(p): name for name, p in model.named_parameters()}
    if not by_id:
        raise ValueError("model has no parameters to trace")
    x = example.detach().clone().requires_grad_(True)
    with eval_mode(model), torch.enable_grad():
        out = model(x)
    if not isinstance(out, Tensor) or out.grad_fn is None:
        raise ValueError("the model's output must be a tensor computed from its parameters")

    # raw autograd nodes and their producers, found from the output backwards
    producers: dict[object, list[object]] = {}
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn in producers:
            continue
        producers[fn] = [g for g, _ in fn.next_functions if g is not None]
        stack.extend(producers[fn])

    def leaf(fn: object) -> str | None:
        var = getattr(fn, "variable", None)
        if var is None:
            return None
        return by_id.get(id(var), "<input>" if var is x else "<other>")

    effective: dict[object, list[object]] = {}

    def real_producers(fn: object) -> list[object]:
        # the producers of fn with data-moving ops contracted (iterative: deep models)
        if fn in effective:
            return effective[fn]
        todo, seen, found = list(producers[fn]), set(), []
        while todo:
            g = todo.pop()
            if g in seen:
                continue
            seen.add(g)
            if leaf(g) is None and _kind(g) == "shape":
                todo.extend(producers[g])
            elif leaf(g) != "<other>":  # constants that need grad but are not model state
                found.append(g)
        effective[fn] = found
        return found

    nodes = [fn for fn in producers if not (leaf(fn) is None and _kind(fn) == "shape")]
    kinds = {}
    owned: dict[object, dict[str, str]] = {}
    taken: set[str] = set()
    for fn in nodes:
        name = leaf(fn)
        if name == "<other>":  # a tensor that needs grad but is neither input nor parameter
            kinds[fn] = "skip"
        else:
            kinds[fn] = "input" if name == "<input>" else "param" if name else _kind(fn)
    for fn in nodes:
        if kinds[fn] not in _PARAM_OPS:
            continue
        owned[fn] = {}
        for g in real_producers(fn):
            name = leaf(g)
            if kinds.get(g) == "param" and name not in taken:
                role = name.rsplit(".", 1)[-1]
                owned[fn][role if role not in owned[fn] else name] = name
                taken.add(name)
    if not any(kinds[fn] == "input" for fn in nodes):
        raise ValueError("the model's output does not depend on its input")
    keep = [fn for fn in nodes if not (kinds[fn] == "param" and leaf(fn) in taken)]
    keep = [fn for fn in keep if kinds[fn] != "skip"]

    # topological order from the input (Kahn), producers before consumers
    index = {fn: i for i, fn in enumerate(keep)}
    edges = {(index[g], index[fn]) for fn in keep for g in real_producers(fn) if g in index}
    succ: dict[int, list[int]] = {i: [] for i in range(len(keep))}
    indeg = [0] * len(keep)
    for a, b in sorted(edges):
        succ[a].append(b)
        indeg[b] += 1
    start = [i for i in range(len(keep)) if indeg[i] == 0]
    start.sort(key=lambda i: (kinds[keep[i]] != "input", i))  # the input first
    queue, order = deque(start), []
    while queue:
        i = queue.popleft()
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                queue.append(j)
    new = {old: k for k, old in enumerate(order)}

    ops, names, params, shapes = [], [], [], []
    shape_of = dict(model.named_parameters())
    for k, old in enumerate(order):
        fn = keep[old]
        kind = kinds[fn]
        own = owned.get(fn, {})
        if kind == "param":
            own = {leaf(fn).rsplit(".", 1)[-1]: leaf(fn)}
        ops.append(kind)
        params.append(own)
        if own:
            main = own.get("weight", next(iter(own.values())))
            shapes.append(tuple(shape_of[main].shape))
            names.append(main.rsplit(".", 1)[0] if kind != "param" else main)
        else:
            shapes.append(None)
            names.append(f"{kind}:{k}")
    edge_list = sorted((new[a], new[b]) for a, b in edges)
    edge_index = torch.tensor(edge_list, dtype=torch.long).t().reshape(2, -1)
    param_shapes = {n: tuple(shape_of[n].shape) for p in params for n in p.values()}
    return ArchGraph(ops, names, params, shapes, edge_index, param_shapes)
