"""Virtual class nodes, label vectors and one-pass / one-pass-per-class inference."""

import pytest
import torch

from graphkit.train.forward import (
    LayerwiseTrainer,
    VirtualClassNodes,
    l2_normalize_rows,
    label_matrix,
    node_model,
    wrong_classes,
)


def test_virtual_edges_touch_training_nodes_only(two_blobs):
    torch.manual_seed(0)
    net = node_model("sf", "gcn", 8, 8, 2, num_layers=2)
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
            LayerwiseTrainer(epochs=2, val_every=1, patience=2))
    g, n = net.graph, two_blobs.num_nodes
    assert g.x.shape == (n + 2, 8)  # the first layer's input: normalised features, kept once
    torch.testing.assert_close(g.x[n:], l2_normalize_rows(net.virtual.features))
    torch.testing.assert_close(g.x[:n], l2_normalize_rows(two_blobs.x))
    src, dst = g.virtual_edges
    real = torch.where(src < n, src, dst)
    virtual = torch.where(src < n, dst, src)
    assert bool(((src < n) ^ (dst < n)).all()), "each added edge joins a real and a virtual node"
    assert set(real.tolist()) == set(two_blobs.train_mask.nonzero().view(-1).tolist())
    assert torch.equal(virtual - n, two_blobs.y[real]), "linked to the node's true class"
    assert g.virtual_edges.size(1) == 2 * int(two_blobs.train_mask.sum())  # both directions
    assert torch.equal(g.edge_index[:, : two_blobs.num_edges], two_blobs.edge_index)


def test_edge_types_and_one_direction():
    vn = VirtualClassNodes(3, 4, bidirectional=False)
    g = vn.augment(torch.zeros(5, 4), torch.tensor([[0, 1], [1, 0]]), torch.tensor([2, 4]),
                   torch.tensor([1, 0]))
    assert g.edge_index.tolist() == [[0, 1, 2, 4], [1, 0, 6, 5]]
    assert g.edge_type.tolist() == [0, 0, 2, 1]
    assert not vn.features.requires_grad and "features" in dict(vn.named_buffers())


def test_augment_rejects_bad_input():
    vn = VirtualClassNodes(3, 4)
    ei = torch.zeros(2, 0, dtype=torch.long)
    with pytest.raises(ValueError, match="features"):
        vn.augment(torch.zeros(5, 3), ei, torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="class ids"):
        vn.augment(torch.zeros(5, 4), ei, torch.tensor([0]), torch.tensor([3]))
    with pytest.raises(ValueError, match="real node ids"):
        vn.augment(torch.zeros(5, 4), ei, torch.tensor([5]), torch.tensor([0]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        VirtualClassNodes(1, 4)
    # a training mask given as the nodes linked nodes 0 and 1 to every node's class
    mask = torch.tensor([True, False, True, False, False])
    with pytest.raises(ValueError, match="nodes must hold integer ids"):
        vn.augment(torch.zeros(5, 4), ei, mask, torch.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match="classes must hold integer ids"):
        vn.augment(torch.zeros(5, 4), ei, torch.tensor([1, 2]), torch.tensor([0.0, 1.7]))


def test_label_matrix_and_wrong_classes():
    y = torch.tensor([0, 2, 1])
    m = label_matrix(y, torch.tensor([True, False, True]), 3)
    torch.testing.assert_close(m, torch.tensor([[1, 0, 0], [1 / 3] * 3, [0, 1, 0]]))
    w = wrong_classes(torch.tensor([0, 1, 2, 1]), 3, 100, torch.Generator().manual_seed(0))
    assert w.shape == (2, 4)  # capped at C - 1
    for i, c in enumerate([0, 1, 2, 1]):
        assert sorted(w[:, i].tolist()) == sorted({0, 1, 2} - {c})
    with pytest.raises(ValueError, match="num_negs"):
        wrong_classes(y, 3, 0)


def _count_calls(net):
    calls = [0] * len(net.layers)
    for i, layer in enumerate(net.layers):
        layer.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
    return calls


@pytest.mark.parametrize("scheme, passes", [("sf", 1), ("ff-la", 2), ("ff-vn", 2),
                                            ("sf-top2loss", 1), ("sf-top2input", 10)])
def test_inference_forward_passes(two_blobs, scheme, passes):
    torch.manual_seed(0)
    net = node_model(scheme, "gcn", 8, 8, 2, num_layers=3)
    net.fit(two_blobs, two_blobs.train_mask, two_blobs.val_mask,
            LayerwiseTrainer(epochs=2, val_every=1, patience=2))
    calls = _count_calls(net)
    scores = net.predict(two_blobs.test_mask)
    assert scores.shape == (int(two_blobs.test_mask.sum()), 2)
    extra = 1 if scheme == "sf-top2input" else 0  # the bottom-up initialisation
    assert calls == [passes + extra] * 3


def test_sf_keeps_bag_of_words_input_sparse(two_blobs):
    """Mostly-zero features are kept as one sparse CSR input; the model is the same."""
    data = two_blobs.clone()
    data.x = torch.nn.functional.one_hot(data.y * 3 + torch.arange(60) % 3, 40).float()
    scores = {}
    for sparse in (True, False):
        torch.manual_seed(0)
        net = node_model("sf", "gcn", 40, 8, 2, num_layers=2, sparse_input=sparse)
        net.fit(data, data.train_mask, data.val_mask,
                LayerwiseTrainer(epochs=4, lr=0.01, val_every=2, patience=2))
        layout = torch.sparse_csr if sparse else torch.strided
        assert net.graph.x.layout == layout
        scores[sparse] = net.predict(data.test_mask)
    torch.testing.assert_close(scores[True], scores[False])
