import random
import warnings

import pytest
import torch

from graphkit.data import load
from graphkit.extras.nas.methods.autognn import (
    ACTION_CLASSES,
    AUTOGNN_ACTIVATIONS,
    ChildTrainer,
    ConservativeController,
    ConservativeSearch,
    GraphNASNet,
    autognn,
    autognn_space,
    changed_actions,
    homogeneous,
    inherit_weights,
)
from graphkit.nn.conv.graphnas_conv import GRAPHNAS_AGGREGATIONS, GRAPHNAS_ATTENTIONS

LAYER = {"hidden": 8, "attention": "gat", "heads": 4, "aggregation": "mean",
         "activation": "elu", "skip": True}
OUT = {"attention": "gat", "heads": 2, "aggregation": "sum", "activation": "identity",
       "skip": False}


def cfg(**changes):
    """The reference two-layer cfg with ``layer0`` changed as given."""
    return {"layer0": {**LAYER, **changes}, "layer1": dict(OUT)}


@pytest.fixture(scope="module")
def cora(data_root):
    data = load("Cora", root=data_root)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta
        warnings.simplefilter("ignore", UserWarning)
        data.x = data.x.to_sparse_csr()
    return data


@pytest.fixture(scope="module")
def small():
    return load("csbm", num_nodes=60, seed=0)


def test_space_is_the_papers():
    space = autognn_space()
    layer0 = 7 * 7 * 6 * 4 * 8 * 2
    assert space.size() == layer0 * (layer0 // 7)  # the output layer has no hidden action
    paths = [p for p, _ in space.choices()]
    assert paths[:6] == [f"layer0.{c}" for c in ACTION_CLASSES]
    assert "layer1.hidden" not in paths and len(paths) == 11
    with pytest.raises(ValueError, match="num_layers"):
        autognn_space(num_layers=0)
    with pytest.raises(ValueError, match="not in the AGNN space"):
        autognn_space(hidden=(12,))


def covering_cfgs(space):
    """Configurations that together use every option of every action (option k mod n)."""
    width = max(len(c) for _, c in space.choices())
    return [space.build(lambda _p, c, k=k: k % len(c)) for k in range(width)]


def test_every_option_builds_and_runs_on_cora(cora):
    space = autognn_space()
    cfgs = covering_cfgs(space) + [space.sample(random.Random(0))]
    seen = {c: set() for c in ACTION_CLASSES}
    for c in cfgs:
        torch.manual_seed(0)
        model = autognn(cfg=c, in_channels=cora.num_features, num_classes=7, pool_dim=16)
        l0, l1 = c["layer0"], c["layer1"]
        for layer in (l0, l1):
            for k, v in layer.items():
                seen[k].add(v)
        width = l0["hidden"] * l0["heads"]
        assert model.convs[0].lin.weight.shape == (width, cora.num_features)
        assert model.convs[1].lin.weight.shape == (7 * l1["heads"], width)
        assert model.convs[1].bias.shape == (7,)  # the output layer averages its heads
        assert ("0" in model.skips) == l0["skip"]
        if l1["skip"]:
            assert model.skips["1"].weight.shape == (7, width)
        with torch.no_grad():
            out = model.eval()(cora.x, cora.edge_index)
        assert out.shape == (cora.num_nodes, 7) and torch.isfinite(out).all()
    assert seen["attention"] == set(GRAPHNAS_ATTENTIONS)
    assert seen["aggregation"] == set(GRAPHNAS_AGGREGATIONS)
    assert seen["activation"] == set(AUTOGNN_ACTIVATIONS)
    assert len(seen["hidden"]) == 7 and len(seen["heads"]) == 6 and seen["skip"] == {False, True}


def test_bad_configurations():
    with pytest.raises(ValueError, match="layer0 .. layer"):
        GraphNASNet({"layer1": OUT}, 5, 2)
    with pytest.raises(ValueError, match="must set exactly"):
        GraphNASNet({"layer0": {**LAYER, "extra": 1}, "layer1": OUT}, 5, 2)
    with pytest.raises(ValueError, match="activation"):
        GraphNASNet(cfg(activation="gelu"), 5, 2)
    with pytest.raises(ValueError, match="dropout"):
        GraphNASNet(cfg(), 5, 2, dropout=1.5)
    with pytest.raises(ValueError, match="in_channels must be a positive integer, got 5.5"):
        GraphNASNet(cfg(), 5.5, 2)  # was a TypeError inside torch.empty
    with pytest.raises(ValueError, match="child must be a GraphNASNet, got Linear"):
        inherit_weights(GraphNASNet(cfg(), 5, 2), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="parent must be a GraphNASNet"):
        homogeneous(torch.nn.Linear(2, 2), GraphNASNet(cfg(), 5, 2), 0)


def test_child_trainer_names_a_graph_without_labels_and_fractional_epochs():
    from torch_geometric.data import Data

    data = Data(x=torch.randn(4, 5), edge_index=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match="data has no y"):
        ChildTrainer(data)  # was an AttributeError on None.max()
    data.y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 1.5"):
        ChildTrainer(data, epochs=1.5)  # was a TypeError inside the training loop


def net(c):
    torch.manual_seed(0)
    return GraphNASNet(c, 5, 3)


def test_sharing_positive_case_copies_convs_but_never_skips():
    parent = net(cfg())
    child = net(cfg(aggregation="max"))  # same shapes, attention and activation
    assert homogeneous(parent, child, 0) and homogeneous(parent, child, 1)
    torch.manual_seed(1)
    child.reset_parameters()
    skip_before = child.skips["0"].weight.clone()
    assert inherit_weights(parent, child) == [True, True]
    for a, b in zip(parent.convs.parameters(), child.convs.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(child.skips["0"].weight, skip_before)
    assert not torch.equal(child.skips["0"].weight, parent.skips["0"].weight)


@pytest.mark.parametrize("change", [{"activation": "relu"}, {"attention": "sym-gat"}])
def test_sharing_negative_case_same_shapes_other_type(change):
    parent, child = net(cfg()), net(cfg(**change))
    shapes = [tuple(p.shape) for p in parent.convs[0].parameters()]
    assert shapes == [tuple(p.shape) for p in child.convs[0].parameters()]
    assert not homogeneous(parent, child, 0) and homogeneous(parent, child, 1)
    before = child.convs[0].lin.weight.clone()
    assert inherit_weights(parent, child) == [False, True]
    assert torch.equal(child.convs[0].lin.weight, before)


def test_sharing_negative_case_other_shapes():
    parent, child = net(cfg()), net(cfg(heads=2))  # layer 1 then reads 16, not 32, features
    assert inherit_weights(parent, child) == [False, False]
    with pytest.raises(ValueError, match="layer 2"):
        homogeneous(parent, child, 2)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_each_step_changes_at_most_m_actions(m):
    space = autognn_space()
    torch.manual_seed(0)
    controller = ConservativeController(space, max_changes=m)
    gen = torch.Generator().manual_seed(0)
    best = space.sample(0)
    for _ in range(25):
        p = controller.propose(best, gen)
        space.validate(p.cfg)
        assert sorted(changed_actions(best, p.cfg)) == sorted(p.changed)
        assert len(p.changed) == m <= 3  # every picked action takes a new value
        assert p.log_prob.requires_grad and float(p.log_prob.detach()) < 0
    with pytest.raises(ValueError, match="max_changes"):
        ConservativeController(space, max_changes=0)


def test_search_changes_only_the_best_and_learns():
    space = autognn_space()
    search = ConservativeSearch(space, max_changes=2, seed=0)
    before = [p.detach().clone() for p in search.controller.parameters()]

    def score(c):  # a synthetic reward: GCN attention in both layers is best
        return sum(c[f"layer{i}"]["attention"] == "gcn" for i in range(2)) / 2 + 0.01 * \
            (c["layer0"]["hidden"] == 64)

    bests = []
    history = []
    for step in range(40):
        bests.append(search.best)
        c = search.ask()
        s = score(c)
        search.tell(c, s)
        history.append((c, s))
        if step:
            assert len(changed_actions(bests[-1], c)) <= 2
    assert search.best_score == max(s for _, s in history)
    assert search.best_score >= 1.0  # the conservative steps found the GCN attention
    moved = [not torch.equal(a, b) for a, b in zip(before, search.controller.parameters())]
    assert any(moved)
    first = history[0][1]
    b = first
    for _, s in history:
        b = 0.95 * b + 0.05 * s
    assert search.baseline == pytest.approx(b)


def test_child_trainer_shares_and_trains_fewer_epochs(small):
    trainer = ChildTrainer(small, share=True, epochs=6, share_epochs=2, pool_dim=8)
    trainer(cfg())
    trainer(cfg(aggregation="max"))
    trainer(cfg(heads=1))
    first, second, third = trainer.records
    assert first.inherited == [False, False] and first.epochs == 6
    assert second.inherited == [True, True] and second.epochs == 2
    assert third.inherited == [False, False] and third.epochs == 6
    assert 0.0 <= trainer.best_score <= 1.0
    plain = ChildTrainer(small, share=False, epochs=3, share_epochs=2)
    plain(cfg())
    plain(cfg(aggregation="max"))
    assert [r.epochs for r in plain.records] == [3, 3]
    with pytest.raises(ValueError, match="epochs"):
        ChildTrainer(small, epochs=0)


def test_registered_builder():
    from graphkit.extras._core.registry import get_entry

    entry = get_entry("autognn")
    assert entry.family == "nas" and "Auto-GNN" in entry.paper
    model = entry(cfg=cfg(), in_channels=5, num_classes=3)
    assert isinstance(model, GraphNASNet)
