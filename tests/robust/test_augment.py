import pytest
import torch
from torch_geometric.utils import to_undirected

from graphkit.robust import recover_edges, undirected_pairs


def pairs(ei):
    return {tuple(sorted(e)) for e in ei.t().tolist()}


@pytest.mark.parametrize("ratio,count", [(0.2, 2), (0.25, 3), (0.5, 6), (0.0, 0), (1.0, 13)])
def test_recovers_floor_share_of_removed_edges(ratio, count):
    n = 30
    kept = to_undirected(torch.stack([torch.arange(0, 10), torch.arange(1, 11)]))
    removed = to_undirected(torch.stack([torch.arange(13), torch.arange(13) + 15]))
    for seed in range(5):
        out = recover_edges(kept, removed, ratio, n, torch.Generator().manual_seed(seed))
        added = pairs(out) - pairs(kept)
        assert len(added) == count  # floor(ratio * 13) undirected edges
        assert added <= pairs(removed)
        assert pairs(kept) <= pairs(out)
        assert pairs(out.flip(0)) == pairs(out) and out.size(1) == 2 * len(pairs(out))


def test_recover_count_is_the_floor_of_the_decimal_ratio():
    # 100 * 0.29 is 28.999999999999996 in floating point: int() recovered 28 edges
    removed = to_undirected(torch.stack([torch.arange(100), torch.arange(100) + 100]))
    out = recover_edges(torch.empty(2, 0, dtype=torch.long), removed, 0.29, 200,
                        torch.Generator().manual_seed(0))
    assert out.size(1) // 2 == 29


def test_views_differ_between_draws():
    kept = torch.empty(2, 0, dtype=torch.long)
    removed = to_undirected(torch.stack([torch.arange(40), torch.arange(40) + 40]))
    gen = torch.Generator().manual_seed(0)
    a, b = (recover_edges(kept, removed, 0.2, 80, gen) for _ in range(2))
    assert pairs(a) != pairs(b)


def test_undirected_pairs_dedups():
    ei = torch.tensor([[0, 1, 1, 2, 2], [1, 0, 0, 2, 0]])
    assert undirected_pairs(ei, 3).t().tolist() == [[0, 1], [0, 2]]


def test_bad_ratio():
    with pytest.raises(ValueError, match="ratio"):
        recover_edges(torch.tensor([[0], [1]]), torch.tensor([[1], [2]]), 1.5)


def test_bad_edge_indices_are_named():
    ei = torch.tensor([[0, 1], [1, 0]])
    # without num_nodes a 1-D removed_edge_index failed in torch.cat
    with pytest.raises(ValueError, match=r"removed must have shape \[2, num_edges\]"):
        recover_edges(ei, torch.tensor([0, 1]), 0.5)
    # undirected_pairs used to keep ids beyond num_nodes and negative ids
    with pytest.raises(ValueError, match="node id 9, out of range for num_nodes=3"):
        undirected_pairs(torch.tensor([[0, 9], [1, 0]]), 3)
    with pytest.raises(ValueError, match="negative node id"):
        undirected_pairs(torch.tensor([[0, -1], [1, 0]]), 3)
