import pytest
import torch
from torch_geometric.utils import to_undirected

from graphkit.robust import random_attack, undirected_pairs


def ring(n=20):
    return to_undirected(torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])), n


def pairs(ei, n):
    return {tuple(p) for p in undirected_pairs(ei, n).t().tolist()}


def test_add_inserts_budget_new_edges():
    ei, n = ring()
    out = random_attack(ei, n, 0.5, "add", torch.Generator().manual_seed(0))
    before, after = pairs(ei, n), pairs(out, n)
    assert before <= after and len(after - before) == 10
    assert bool((out[0] != out[1]).all())
    assert out.size(1) == 2 * len(after)  # symmetric, no duplicates


def test_budget_is_the_floor_of_the_decimal_rate():
    ei, n = ring(100)  # 100 edges; 100 * 0.29 is just below 29 in floating point
    out = random_attack(ei, n, 0.29, "add", torch.Generator().manual_seed(0))
    assert len(pairs(out, n) - pairs(ei, n)) == 29


def test_remove_and_flip():
    ei, n = ring()
    out = random_attack(ei, n, 0.25, "remove", torch.Generator().manual_seed(1))
    assert pairs(out, n) <= pairs(ei, n) and len(pairs(out, n)) == 15
    out = random_attack(ei, n, 0.5, "flip", torch.Generator().manual_seed(2))
    diff = pairs(out, n) ^ pairs(ei, n)
    assert len(diff) == 10


def test_zero_rate_keeps_graph():
    ei, n = ring()
    assert pairs(random_attack(ei, n, 0.0), n) == pairs(ei, n)


def test_bad_inputs():
    ei, n = ring(4)
    with pytest.raises(ValueError, match="mode"):
        random_attack(ei, n, 0.1, "swap")
    with pytest.raises(ValueError, match="rate"):
        random_attack(ei, n, -0.1)
    with pytest.raises(ValueError, match="non-edges"):
        random_attack(ei, n, 2.0, "add")
    with pytest.raises(ValueError, match="out of range"):
        random_attack(ei, 3, 0.1)


def test_non_finite_rate_and_bad_num_nodes_are_named():
    ei, n = ring(4)
    for rate in (float("nan"), float("inf")):  # failed in int() naming neither
        with pytest.raises(ValueError, match="rate must be a finite non-negative number"):
            random_attack(ei, n, rate)
    empty = torch.empty(2, 0, dtype=torch.long)
    with pytest.raises(ValueError, match="num_nodes must be a non-negative integer, got -1"):
        random_attack(empty, -1, 0.5)  # returned an empty graph
    with pytest.raises(ValueError, match="num_nodes must be a non-negative integer, got 6.5"):
        random_attack(ei, 6.5, 0.5)  # failed inside torch
