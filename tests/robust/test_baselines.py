import pytest
import torch

from graphkit.robust import GCNSVD, GCNDefense, GCNJaccard, low_rank_adjacency, tune_on_validation
from graphkit.train import seed_everything


def test_low_rank_adjacency_recovers_a_low_rank_graph():
    # two disjoint complete bipartite blocks: rank 4 exactly
    n = 8
    a = torch.zeros(n, n)
    a[:2, 2:4] = a[2:4, :2] = 1
    a[4:6, 6:] = a[6:, 4:6] = 1
    ei = a.nonzero().t()
    assert torch.allclose(low_rank_adjacency(ei, n, 4), a, atol=1e-5)
    assert not torch.allclose(low_rank_adjacency(ei, n, 2), a, atol=1e-2)
    with pytest.raises(ValueError, match="rank"):
        low_rank_adjacency(ei, n, n)


def test_jaccard_preprocess_drops_dissimilar_edges(sbm):
    graph = GCNJaccard(0.2).preprocess(sbm)
    assert graph.edge_index.size(1) < sbm.edge_index.size(1)
    assert GCNDefense().preprocess(sbm).edge_index.size(1) == sbm.edge_index.size(1)


@pytest.mark.parametrize("make", [GCNDefense, lambda: GCNJaccard(0.05), lambda: GCNSVD(4)])
def test_fit_predict(sbm, make):
    seed_everything(0)
    defense = make()
    defense.epochs = 30
    pred = defense.fit(sbm).predict()
    assert pred.shape == (sbm.num_nodes,)
    assert 0.0 <= defense.result_.test_acc <= 1.0


def test_tune_on_validation(sbm):
    def make(t):
        d = GCNJaccard(t)
        d.epochs = 5
        return d

    best, scores = tune_on_validation(make, sbm, [0.0, 0.5], runs=1)
    assert best in (0.0, 0.5) and set(scores) == {0.0, 0.5}
    assert scores[best] == max(scores.values())
    with pytest.raises(ValueError, match="grid"):
        tune_on_validation(make, sbm, [])


def test_bad_inputs(sbm):
    with pytest.raises(ValueError, match="threshold"):
        GCNJaccard(2.0)
    with pytest.raises(ValueError, match="rank"):
        GCNSVD(0)
    with pytest.raises(ValueError, match="fit"):
        GCNDefense().predict()
    unlabeled = sbm.clone()
    del unlabeled.y
    with pytest.raises(ValueError, match="labels"):
        GCNDefense().fit(unlabeled)


def test_missing_features_empty_graph_and_bad_rank_or_runs(sbm):
    no_x = sbm.clone()
    del no_x.x
    for make in (GCNDefense, GCNJaccard):
        with pytest.raises(ValueError, match="no node features x"):  # was AttributeError
            make().fit(no_x)
    ei = sbm.edge_index
    with pytest.raises(ValueError, match="the graph has no edges"):  # was an ArpackError
        low_rank_adjacency(ei[:, :0], sbm.num_nodes, 2)
    with pytest.raises(ValueError, match="rank must be an integer"):
        low_rank_adjacency(ei, sbm.num_nodes, 1.5)
    with pytest.raises(ValueError, match="runs must be >= 1"):  # was a StatisticsError
        tune_on_validation(lambda v: GCNDefense(epochs=1), sbm, [0.0], runs=0)
