import pytest
import torch
from torch import nn

from graphkit.robust import DGIEncoder, RecoverDGI, contrastive_embeddings, jaccard_prune
from graphkit.robust.contrastive import normalized_adjacency


def test_normalized_adjacency_self_loop_weight():
    ei = torch.tensor([[0, 1], [1, 0]])
    adj = normalized_adjacency(ei, 3, 2.0, "cpu").to_dense()
    # degrees 3, 3, 2: entries 2/3 on the diagonal of 0 and 1, 1/3 off it, node 2 alone
    expected = torch.tensor([[2 / 3, 1 / 3, 0], [1 / 3, 2 / 3, 0], [0, 0, 1.0]])
    assert torch.allclose(adj, expected, atol=1e-6)


def test_score_equals_bilinear():
    torch.manual_seed(0)
    model = RecoverDGI(5, 8)
    h, s = torch.randn(7, 8), torch.randn(8)
    ref = model.critic(h, s.expand_as(h)).squeeze(-1)
    assert torch.allclose(model.score(h, s), ref, atol=1e-5)
    assert isinstance(model.critic, nn.Bilinear)


def test_logits_layout():
    torch.manual_seed(0)
    model = RecoverDGI(4, 6)
    x = torch.randn(5, 4)
    adj = normalized_adjacency(torch.tensor([[0, 1, 2], [1, 2, 3]]), 5, 2.0, "cpu")
    perm = torch.arange(5)
    logits = model(x, adj, [adj, adj], perm)
    assert logits.shape == (10,)
    assert torch.allclose(logits[:5], logits[5:])  # identity shuffle: positives = negatives


def test_an_edge_index_for_the_adjacency_is_named():
    """An integer edge_index failed in the matmul: "mat1 and mat2 must have the same dtype"."""
    x, ei = torch.randn(5, 8), torch.tensor([[0, 1, 2], [1, 2, 3]])
    msg = r"adj must be the sparse normalised adjacency .*normalized_adjacency.*int64.*\[2, 3\]"
    with pytest.raises(ValueError, match=msg):
        DGIEncoder(8, 16)(x, ei)
    with pytest.raises(ValueError, match=msg):
        RecoverDGI(8, 16)(x, ei, [ei], torch.arange(5))
    adj = normalized_adjacency(ei, 5, 2.0, "cpu")
    assert DGIEncoder(8, 16)(x, adj).shape == (5, 16)


def test_training_lowers_loss_and_is_reproducible(sbm):
    kept, removed = jaccard_prune(sbm.edge_index, sbm.x, 0.1)
    runs = [contrastive_embeddings(sbm.x, kept, removed, hidden_channels=16, max_epochs=60,
                                   patience=10, generator=torch.Generator().manual_seed(0))
            for _ in range(2)]
    res = runs[0]
    assert res.embeddings.shape == (sbm.num_nodes, 16)
    assert not res.embeddings.requires_grad
    assert res.best_loss < 0.6931  # below chance level ln 2
    assert 0 <= res.best_epoch < res.epochs <= 60
    assert torch.equal(runs[0].embeddings, runs[1].embeddings)


def test_bad_inputs(sbm):
    ei = sbm.edge_index
    with pytest.raises(ValueError, match="positive"):
        contrastive_embeddings(sbm.x, ei, ei[:, :0], patience=0)
    with pytest.raises(ValueError, match="beta"):
        contrastive_embeddings(sbm.x, ei, ei[:, :0], beta=-1)
    with pytest.raises(ValueError, match="ratio"):
        contrastive_embeddings(sbm.x, ei, ei[:, :2], recover_ratio=2.0, max_epochs=1)
    with pytest.raises(ValueError, match="node-count mismatch"):
        contrastive_embeddings(sbm.x, ei, ei[:, :0], num_nodes=5)


def test_sparse_nan_features_nan_beta_and_wrong_width_are_named(sbm):
    ei = sbm.edge_index
    x = sbm.x.clone()
    x[3, 0] = float("nan")
    # sparse features skipped the NaN check and trained to NaN embeddings
    with pytest.raises(ValueError, match="x holds NaN values"):
        contrastive_embeddings(x.to_sparse(), ei, ei[:, :0], max_epochs=1)
    with pytest.raises(ValueError, match="beta .* finite non-negative number, got nan"):
        contrastive_embeddings(sbm.x, ei, ei[:, :0], beta=float("nan"), max_epochs=1)
    model = RecoverDGI(sbm.num_features, 8)
    adj = normalized_adjacency(ei, sbm.num_nodes, 2.0, "cpu")
    wide = torch.randn(sbm.num_nodes, sbm.num_features + 1)
    with pytest.raises(ValueError, match=f"x has {sbm.num_features + 1} features, but "
                                         f"in_channels is {sbm.num_features}"):
        model(wide, adj, [adj], torch.arange(sbm.num_nodes))  # was a matmul shape error
    with pytest.raises(ValueError, match="x has"):
        model.embed(wide, adj)
