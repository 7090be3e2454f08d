"""The data splits of the ForwardGNN experiments (facebookresearch/forwardgnn).

* Nodes: 5-fold :class:`~sklearn.model_selection.KFold` (shuffled, ``random_state=101``); fold
  ``i`` is the test set (20%), and 20% of the rest is validation
  (``train_test_split(random_state=127 * i)``): 64/16/20, every node labelled.
* Edges: PyG :class:`~torch_geometric.transforms.RandomLinkSplit` with 16% validation and 20%
  test edges (of an undirected graph) and one fixed negative per positive
  (``neg_sampling_ratio=1.0``), seeded with ``101 * i``.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from graphkit.data.validation import check_graph, is_integer

__all__ = ["link_split", "node_split"]


def node_split(num_nodes: int, split: int, num_splits: int = 5, seed: int = 101,
               val_seed_step: int = 127) -> tuple[Tensor, Tensor, Tensor]:
    """Boolean ``(train, val, test)`` masks of split ``split`` (``0 <= split < num_splits``)."""
    from sklearn.model_selection import KFold, train_test_split

    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
        raise ValueError(f"num_nodes must be an integer, got {type(num_nodes).__name__}")
    # a float split found no fold (a bare StopIteration) and True passed as fold 1
    if not is_integer(split) or not 0 <= split < num_splits:
        raise ValueError(f"split must be an integer in [0, {num_splits}), got {split!r}")
    if num_nodes < num_splits:
        raise ValueError(f"need at least {num_splits} nodes, got {num_nodes}")
    folds = KFold(n_splits=num_splits, shuffle=True, random_state=seed).split(np.arange(num_nodes))
    rest, test = next(f for i, f in enumerate(folds) if i == split)
    train, val = train_test_split(rest, test_size=0.2, random_state=val_seed_step * split)
    masks = []
    for idx in (train, val, test):
        m = torch.zeros(num_nodes, dtype=torch.bool)
        m[torch.from_numpy(np.asarray(idx))] = True
        masks.append(m)
    return masks[0], masks[1], masks[2]


def link_split(data: Data, split: int, seed_step: int = 101, num_val: float = 0.16,
               num_test: float = 0.2) -> tuple[Data, Data, Data]:
    """``(train, val, test)`` graphs of :class:`RandomLinkSplit` seeded with ``seed_step * split``.

    Each holds ``edge_index`` (the message-passing edges: training edges, plus validation edges
    for the test graph), ``edge_label_index`` and ``edge_label`` (positives and as many fixed
    negatives). ``data`` must be undirected, each edge listed in both directions (as the
    official code asserts). PyG draws the split with torch and the negatives with Python's
    :mod:`random` and NumPy, so all three are seeded, and their global states restored
    afterwards.
    """
    from torch_geometric.transforms import RandomLinkSplit

    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or split < 0:
        raise ValueError(f"split must be an integer >= 0, got {split!r}")
    if getattr(data, "edge_index", None) is None:
        raise ValueError("data.edge_index is missing")
    check_graph(data)  # an out-of-range or float edge_index, NaN features: before splitting
    from torch_geometric.utils import is_undirected

    # RandomLinkSplit(is_undirected=True) keeps the u <= v half of edge_index, so an edge
    # listed in one direction only would be dropped without a word
    if not is_undirected(data.edge_index, num_nodes=data.num_nodes):
        raise ValueError("link_split needs an undirected graph with both directions of every "
                         "edge in edge_index; symmetrise it first "
                         "(torch_geometric.utils.to_undirected)")
    # a repeated pair or a self-loop would put one edge in two parts (a test positive that
    # the model also propagates over): refuse them, as the one-way edges above
    ei = data.edge_index
    loops = int((ei[0] == ei[1]).sum())
    if loops:
        raise ValueError(f"link_split got {loops} self-loop(s); remove them first "
                         "(torch_geometric.utils.remove_self_loops): a self-loop is no link "
                         "to predict")
    n = max(int(data.num_nodes), 1)
    repeats = ei.size(1) - int(torch.unique(ei[0] * n + ei[1]).numel())
    if repeats:
        raise ValueError(f"link_split got {repeats} repeated edge(s) in edge_index; coalesce "
                         "it first (torch_geometric.utils.coalesce): a repeat would put one "
                         "edge in training and in the test")
    for name, share in (("num_val", num_val), ("num_test", num_test)):
        fraction = isinstance(share, float) and 0 <= share < 1
        count = isinstance(share, int) and not isinstance(share, bool) and share >= 0
        if not (fraction or count):  # RandomLinkSplit takes either
            raise ValueError(f"{name} must be a fraction in [0, 1) or a count >= 0, got "
                             f"{share!r}")
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    try:
        seed = seed_step * split
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        transform = RandomLinkSplit(num_val=num_val, num_test=num_test, is_undirected=True,
                                    add_negative_train_samples=True, neg_sampling_ratio=1.0)
        train, val, test = transform(Data(x=data.x, edge_index=data.edge_index,
                                          num_nodes=data.num_nodes))
    finally:
        torch.set_rng_state(states[0])
        random.setstate(states[1])
        np.random.set_state(states[2])
    return train, val, test
