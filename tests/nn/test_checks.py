import pytest
import torch

from graphkit.nn._checks import check_edge_index_layout, check_node_features


def test_node_features_of_the_right_width_pass():
    check_node_features(torch.randn(4, 3), 3)
    check_node_features(torch.randn(0, 3), 3)
    check_node_features(torch.randn(4, 7), -1)  # lazy width


@pytest.mark.parametrize("x, match", [
    (torch.randn(4, 5), "x has 5 features, but in_channels is 3"),
    (torch.randn(4), r"x must have shape \[num_nodes, 3\], got \[4\]"),
    (torch.randn(2, 4, 3), r"got \[2, 4, 3\]"),
])
def test_node_features_of_the_wrong_shape_are_named(x, match):
    with pytest.raises(ValueError, match=match):
        check_node_features(x, 3)


def test_node_features_must_be_a_tensor():
    with pytest.raises(TypeError, match="hops must be a tensor"):
        check_node_features([[1.0, 2.0]], 2, name="hops")


def test_edge_index_layout():
    check_edge_index_layout(torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="integer node ids"):
        check_edge_index_layout(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \[2, num_edges\]"):
        check_edge_index_layout(torch.tensor([0, 1, 2]))
