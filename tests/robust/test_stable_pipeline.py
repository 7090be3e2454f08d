import pytest
import torch

from graphkit.robust import STABLE, DegreePowerGCN, STABLEConfig, stable_preset, stable_refine
from graphkit.train import seed_everything

SMALL = dict(embedding_dim=16, max_embedding_epochs=40, embedding_patience=10, epochs=30,
             jaccard_threshold=0.05, cos_threshold=0.0, k=2, alpha=0.3)


def test_presets_follow_the_readme_tables():
    c = stable_preset("cora", 0.2)
    assert (c.alpha, c.beta, c.k, c.jaccard_threshold, c.cos_threshold) == (0.6, 2, 7, 0.03, 0.25)
    c = stable_preset("prognn-citeseer", 0.0)
    assert (c.alpha, c.k, c.jaccard_threshold) == (-0.5, 3, 0.0)
    assert stable_preset("polblogs", 0.1).beta == 1
    assert stable_preset("cora_ml", 0.19).k == 7  # Cora's table, nearest rate
    assert stable_preset("cora", 0.2, k=0).k == 0
    with pytest.raises(ValueError, match="rate"):
        stable_preset("cora", -0.1)


def test_config_validation():
    with pytest.raises(ValueError, match="k must"):
        STABLEConfig(k=-1)
    with pytest.raises(ValueError, match="recover_ratio"):
        STABLEConfig(recover_ratio=1.5)
    with pytest.raises(ValueError, match="jaccard_threshold"):
        STABLEConfig(jaccard_threshold=2)
    with pytest.raises(ValueError, match="cos_threshold"):
        STABLEConfig(cos_threshold=-2)


def test_refine_bookkeeping(sbm):
    cfg = STABLEConfig(**SMALL)
    ref = stable_refine(sbm.x, sbm.edge_index, cfg, torch.Generator().manual_seed(0))
    e = sbm.edge_index.size(1)
    assert ref.info["jaccard_removed"] == ref.jaccard_removed.size(1)
    assert ref.pruned_edge_index.size(1) + ref.cosine_removed.size(1) == e
    pruned = {tuple(p) for p in ref.pruned_edge_index.t().tolist()}
    assert pruned <= {tuple(p) for p in ref.edge_index.t().tolist()}
    assert bool((ref.edge_index[0] != ref.edge_index[1]).all())
    assert ref.embeddings.shape == (sbm.num_nodes, 16)


def test_one_direction_edges_are_made_undirected_with_a_warning(sbm):
    cfg = STABLEConfig(**SMALL)
    both = stable_refine(sbm.x, sbm.edge_index, cfg, torch.Generator().manual_seed(0))
    once = sbm.edge_index[:, sbm.edge_index[0] < sbm.edge_index[1]]
    with pytest.warns(UserWarning, match="not symmetric"):
        one = stable_refine(sbm.x, once, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(one.edge_index, both.edge_index)
    torch.testing.assert_close(one.embeddings, both.embeddings)


def test_self_loops_and_repeated_edges_are_removed_with_a_warning(sbm):
    # they counted as neighbours and weighed twice, and a loop survived into the refined graph
    cfg = STABLEConfig(**SMALL)
    clean = stable_refine(sbm.x, sbm.edge_index, cfg, torch.Generator().manual_seed(0))
    loops = torch.arange(3).repeat(2, 1)
    with pytest.warns(UserWarning, match="3 self-loop"):
        looped = stable_refine(sbm.x, torch.cat([sbm.edge_index, loops], 1), cfg,
                               torch.Generator().manual_seed(0))
    copies = torch.cat([sbm.edge_index[:, :2], sbm.edge_index[:, :2].flip(0)], 1)  # symmetric
    with pytest.warns(UserWarning, match="repeats 4 edge"):
        repeated = stable_refine(sbm.x, torch.cat([sbm.edge_index, copies], 1), cfg,
                                 torch.Generator().manual_seed(0))
    for ref in (looped, repeated):
        assert torch.equal(ref.edge_index, clean.edge_index)
        assert ref.info["edges_in"] == clean.info["edges_in"]


def test_fit_predict_and_shared_refinement(sbm):
    seed_everything(0)
    model = STABLE(STABLEConfig(**SMALL))
    with pytest.raises(ValueError, match="fit"):
        model.predict()
    model.fit(sbm, generator=torch.Generator().manual_seed(0))
    pred = model.predict()
    assert pred.shape == (sbm.num_nodes,)
    assert isinstance(model.model_, DegreePowerGCN)
    acc = float((pred[sbm.test_mask] == sbm.y[sbm.test_mask]).float().mean())
    assert acc >= 0.75  # two well separated communities
    refined = model.refined_
    raw = STABLE(STABLEConfig(**SMALL, use_embeddings=False)).fit(sbm, refined=refined)
    assert raw.model_.conv1.in_channels == sbm.num_features


def test_fit_needs_labels(sbm):
    data = sbm.clone()
    del data.y
    with pytest.raises(ValueError, match="labels"):
        STABLE(STABLEConfig(**SMALL)).fit(data)


def test_classifier_shapes_and_dropout_check():
    model = DegreePowerGCN(4, 8, 3, alpha=0.3)
    out = model(torch.randn(5, 4), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert out.shape == (5, 3)
    assert "alpha=0.3" in repr(model)
    with pytest.raises(ValueError, match="dropout"):
        DegreePowerGCN(4, 8, 3, dropout=1.0)


def test_config_rejects_values_that_used_to_fail_after_the_contrastive_stage():
    for field, value in (("dropout", 1.5), ("alpha", float("nan")), ("embedding_dim", 0),
                         ("embedding_patience", 0), ("lr", float("nan")),
                         ("beta", float("inf"))):
        with pytest.raises(ValueError, match=field):
            STABLEConfig(**{field: value})
    with pytest.raises(ValueError, match="rate must be a fraction of edges"):
        stable_preset("cora", float("nan"))  # picked an arbitrary table entry
    with pytest.raises(ValueError, match=r"0.05 for 5%\), got 5"):
        stable_preset("cora", 5)  # meant as 5%: silently gave the 0.2-rate settings
    assert stable_preset("cora", 0.05) != stable_preset("cora", 0.2)


def test_fit_names_missing_features_and_masks(sbm):
    no_x = sbm.clone()
    del no_x.x
    with pytest.raises(ValueError, match="STABLE needs node features x"):
        STABLE(STABLEConfig(**SMALL)).fit(no_x)  # was an AttributeError on None.layout
    refined = stable_refine(sbm.x, sbm.edge_index, STABLEConfig(**SMALL),
                            torch.Generator().manual_seed(0))
    no_mask = sbm.clone()
    del no_mask.train_mask
    with pytest.raises(ValueError, match="train_mask"):  # was an AttributeError
        STABLE(STABLEConfig(**SMALL)).fit(no_mask, refined=refined)
