"""graphkit.data.splits.random_supervised_split: the full-supervised split of the graph NAS
papers (500 validation, 500 test, every other node training)."""

import pytest
import torch
from torch_geometric.data import Data

from graphkit.data import per_class_split, random_planetoid_split, random_supervised_split


def _graph(n: int = 40) -> Data:
    return Data(x=torch.randn(n, 3), y=torch.arange(n) % 4,
                edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=n)


def test_counts_partition_and_determinism():
    d = _graph()
    s = random_supervised_split(d, num_val=7, num_test=11, seed=3)
    assert int(s.val_mask.sum()) == 7 and int(s.test_mask.sum()) == 11
    assert int(s.train_mask.sum()) == 40 - 18
    assert bool(((s.train_mask.int() + s.val_mask.int() + s.test_mask.int()) == 1).all())
    again = random_supervised_split(d, num_val=7, num_test=11, seed=3)
    other = random_supervised_split(d, num_val=7, num_test=11, seed=4)
    for key in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(s[key], again[key])
    assert not torch.equal(s.test_mask, other.test_mask)
    assert "train_mask" not in d  # the input is not modified
    assert s.x is d.x  # a shallow copy


def test_defaults_on_cora_follow_graphnas(data_root):
    from graphkit.data import load
    s = random_supervised_split(load("Cora", root=data_root))
    assert (int(s.train_mask.sum()), int(s.val_mask.sum()), int(s.test_mask.sum())) == \
        (1708, 500, 500)


@pytest.mark.parametrize("num_val, num_test, match", [
    (-1, 5, "must be >= 0"), (20, 20, "leaves no training node"), (0, 40, "no training")])
def test_bad_counts_are_named(num_val, num_test, match):
    with pytest.raises(ValueError, match=match):
        random_supervised_split(_graph(), num_val=num_val, num_test=num_test)


def test_fractional_counts_short_labels_and_negative_classes_are_named():
    from graphkit.data import random_planetoid_split

    d = _graph()
    # fractions used to fail as a bare "slice indices must be integers" TypeError
    with pytest.raises(ValueError, match="num_val must be an integer, got 0.1"):
        random_supervised_split(d, num_val=0.1, num_test=0.1)
    with pytest.raises(ValueError, match="train_per_class must be an integer"):
        random_planetoid_split(d, 2.0, 1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        random_planetoid_split(d, 2, 1, seed="a")
    # labels for 4 of 40 nodes used to give masks of 4 entries
    with pytest.raises(ValueError, match="data.y has 4 entries but the graph has 40 nodes"):
        random_planetoid_split(Data(y=torch.arange(4) % 2, num_nodes=40), 1, 1)
    # -1 (unlabelled) used to be split like a class, putting unlabelled nodes in training
    with pytest.raises(ValueError, match=r"negative class id \(-1\)"):
        random_planetoid_split(Data(y=torch.tensor([-1, -1, 0, 0, 1, 1]), num_nodes=6), 1, 1)


def test_largest_connected_component_rejects_short_node_tensors():
    from graphkit.data import largest_connected_component

    ei = torch.tensor([[0, 2], [2, 0]])
    # x or y with a row missing used to be sliced silently into the wrong rows
    with pytest.raises(ValueError, match="x has 2 rows but the graph has 3 nodes"):
        largest_connected_component(Data(x=torch.randn(2, 2), edge_index=ei, num_nodes=3))
    with pytest.raises(ValueError, match="y has 2 rows but the graph has 3 nodes"):
        largest_connected_component(Data(x=torch.randn(3, 2), y=torch.arange(2),
                                         edge_index=ei, num_nodes=3))


@pytest.mark.parametrize("split", [random_planetoid_split, random_supervised_split])
def test_a_label_vector_for_the_graph_is_named(split):
    # random_planetoid_split(data.y) said it "needs data.y as a vector of integer class ids",
    # random_supervised_split(data.y) ended in an AttributeError
    y = torch.tensor([0, 1, 0, 1] * 30)
    with pytest.raises(ValueError, match=rf"{split.__name__} takes a torch_geometric.data.Data "
                                         r"\(the whole graph\), got Tensor"):
        split(y)


def test_per_class_split_is_the_planetoid_split_of_a_class_vector():
    y = torch.arange(3).repeat_interleave(torch.tensor([10, 12, 9]))
    data = Data(y=y, num_nodes=y.numel())
    split = random_planetoid_split(data, 2, 3, seed=4)
    masks = per_class_split(y, 2, 3, torch.Generator().manual_seed(4))
    assert all(torch.equal(a, b) for a, b in
               zip(masks, (split.train_mask, split.val_mask, split.test_mask)))
    for bad, message in [(y.float(), "integer class ids"), (y - 1, "negative class id"),
                         (y.view(1, -1), "vector")]:
        with pytest.raises(ValueError, match=message):
            per_class_split(bad, 2, 3)
    with pytest.raises(ValueError, match="must be >= 0"):
        per_class_split(y, -1, 3)
