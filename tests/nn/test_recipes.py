"""Recipes: lookup, data preparation, one training run per model family, and MAD."""

import pytest
import torch
from torch_geometric.data import Data

from graphkit.nn.oversmoothing import mean_average_distance
from graphkit.nn.recipes import MODELS, RECIPES, build_model, get_recipe, prepare_data, run_recipe


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    n, c = 30, 3
    y = torch.arange(n) % c
    x = (torch.rand(n, 40) < 0.05).float()
    x[torch.arange(n), y] = 1.0  # one class-indicative word per node
    src = torch.randint(0, n, (80,))
    dst = (src + c) % n
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    mask = torch.zeros(n, dtype=torch.bool)
    train, val, test = mask.clone(), mask.clone(), mask.clone()
    train[:12], val[12:21], test[21:] = True, True, True
    return Data(x=x, edge_index=edge_index, y=y, train_mask=train, val_mask=val, test_mask=test)


def test_official_hyperparameters_are_recorded():
    r = get_recipe("dagnn", "cora")
    assert (r.model_kwargs["K"], r.model_kwargs["dropout"], r.weight_decay) == (10, 0.8, 5e-3)
    assert (r.epochs, r.patience, r.early_stopping, r.selection) == (
        1000, 100, "pyg_citation", "val_loss")
    assert get_recipe("dagnn", "CiteSeer").weight_decay == 2e-2
    arxiv = get_recipe("dagnn", "ogbn-arxiv")
    assert arxiv.model_kwargs["batch_norm"] and arxiv.to_undirected
    air = get_recipe("sgc_air", "Cora")
    assert air.num_hops == 10 and air.model_kwargs["skip_last_hop"]
    assert not air.normalize_features
    assert get_recipe("appnp_air", "Cora").model_kwargs["alpha"] == 0.05  # official 0.95 retain


def test_every_model_has_citation_recipes():
    for model in MODELS:
        for ds in ("cora", "citeseer"):
            assert (model, ds) in RECIPES


def test_unknown_model_or_dataset_raises():
    with pytest.raises(ValueError, match="unknown model"):
        get_recipe("gat", "Cora")
    with pytest.raises(ValueError, match="no recipe for dagnn"):
        get_recipe("dagnn", "Reddit")


def test_prepare_data_normalises_and_precomputes(tiny):
    data = prepare_data(get_recipe("dagnn", "Cora"), tiny)
    assert data.x.layout == torch.sparse_csr
    torch.testing.assert_close(data.x.to_dense().sum(1), torch.ones(tiny.num_nodes))
    assert tiny.x.layout == torch.strided  # the input is not modified
    hop_data = prepare_data(get_recipe("sgc_air", "Cora"), tiny)
    assert hop_data.hops.shape == (tiny.num_nodes, 11, tiny.num_features)
    torch.testing.assert_close(hop_data.hops[:, 0], tiny.x)  # raw features for AIR


def test_prepare_data_keeps_float64_features(tiny):
    wide = tiny.clone()
    wide.x = tiny.x.double()
    data = prepare_data(get_recipe("dagnn", "Cora"), wide, sparse_features=False)
    assert data.x.dtype == torch.float64
    torch.testing.assert_close(data.x.sum(1), torch.ones(tiny.num_nodes, dtype=torch.float64))


@pytest.mark.parametrize("model", ["dagnn", "sgc_air", "appnp_air", "gcn_air", "appnp", "sgc",
                                   "mlp", "gcn"])
def test_run_recipe_trains_every_model(tiny, model):
    recipe = get_recipe(model, "Cora")
    data = prepare_data(recipe, tiny)
    torch.manual_seed(0)
    res = run_recipe(recipe, data, epochs=15)
    assert res.epochs_run == 15 and 1 <= res.best_epoch <= 15
    assert 0.0 <= res.test_acc <= 1.0
    assert isinstance(res.model, torch.nn.Module)


def test_run_recipe_needs_precomputed_hops(tiny):
    with pytest.raises(ValueError, match="prepare_data"):
        run_recipe(get_recipe("sgc_air", "Cora"), tiny)


@pytest.mark.parametrize("extra", [{}, {"first_hop": 1}, {"skip_last_hop": False}])
def test_run_recipe_refuses_hops_of_another_depth(tiny, extra):
    """Hops prepared for num_hops=10 trained silently after a num_hops=5 override."""
    recipe = get_recipe("sgc_air", "Cora").with_overrides(**extra)
    data = prepare_data(recipe, tiny)
    assert data.hops.size(1) == 11
    run_recipe(recipe, data, epochs=1)  # the depth it was prepared for
    for hops in (5, 12):
        with pytest.raises(ValueError, match=rf"data.hops has shape \(30, 11, 40\), but sgc_air "
                                             rf"with num_hops={hops} needs \(num_nodes, "
                                             rf"{hops + 1}, F\): re-run prepare_data"):
            run_recipe(recipe.with_overrides(num_hops=hops), data, epochs=1)
    run_recipe(recipe.with_overrides(num_hops=5),
               prepare_data(recipe.with_overrides(num_hops=5), tiny), epochs=1)


def test_build_model_uses_recipe_kwargs():
    model = build_model(get_recipe("dagnn", "Cora").with_model_kwargs(K=3), 20, 4)
    assert model.K == 3 and model.dropout == 0.8


def test_mad_of_identical_and_orthogonal_rows():
    assert mean_average_distance(torch.ones(5, 3)) == 0.0
    assert mean_average_distance(torch.eye(4)) == pytest.approx(1.0)
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # Node 0: distances 1 (node 1) and 0 (node 2, left out as zero) -> 1; likewise for all.
    assert mean_average_distance(h) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least two"):
        mean_average_distance(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="shape"):
        mean_average_distance(torch.ones(3))


def test_with_overrides_splits_protocol_and_model_arguments():
    r = get_recipe("sgc_air", "Cora").with_overrides(weight_decay=5e-3, num_hops=20,
                                                      input_dropout=0.5)
    assert (r.weight_decay, r.num_hops, r.model_kwargs["input_dropout"]) == (5e-3, 20, 0.5)
    assert r.model_kwargs["skip_last_hop"]  # untouched arguments stay
    assert get_recipe("sgc_air", "Cora").weight_decay == 5e-4  # the registry is not modified
    with pytest.raises(ValueError, match="num_hops"):
        get_recipe("dagnn", "Cora").with_overrides(num_hops=3)


@pytest.mark.parametrize("override, message", [
    ({"lr": "abc"}, "lr must be a number, got 'abc'"),
    ({"dropout": "x"}, "dropout must be a number, got 'x'"),  # a model argument
    ({"epochs": True}, "epochs must be a number, got True"),
    ({"epochs": 10.5}, "epochs must be an integer, got 10.5"),  # failed only in training
    ({"patience": 2.5}, "patience must be an integer, got 2.5"),
])
def test_with_overrides_names_a_value_of_the_wrong_type(override, message):
    with pytest.raises(ValueError, match=message):
        get_recipe("dagnn", "Cora").with_overrides(**override)


def test_with_overrides_wants_integer_counts_on_hop_recipes_and_unset_patience():
    with pytest.raises(ValueError, match="num_hops must be an integer, got 5.0"):
        get_recipe("sgc_air", "Cora").with_overrides(num_hops=5.0)
    # ogbn-arxiv DAGNN has no patience, so the number check had no old value to compare
    with pytest.raises(ValueError, match="patience must be an integer, got 10.5"):
        get_recipe("dagnn", "ogbn-arxiv").with_overrides(patience=10.5)
    assert get_recipe("dagnn", "ogbn-arxiv").with_overrides(patience=10).patience == 10


def test_with_overrides_names_an_unknown_model_argument():
    # a typo became a model argument that failed only in build_model
    for model, key in (("sgc_air", "lrr"), ("dagnn", "k"), ("appnp_air", "num_layers"),
                       ("gcn_air", "cached"), ("appnp", "skip_last_hop"), ("sgc", "bogus")):
        with pytest.raises(ValueError, match=rf"^{model} takes no setting '{key}' \(its model "
                                             r"settings: .*; training settings: .*lr.*\)$"):
            get_recipe(model, "Cora").with_overrides(**{key: 1})
    # every argument of the model class may still be set; GCN forwards **kwargs to GCNConv
    r = get_recipe("sgc_air", "Cora").with_overrides(first_hop=1, att_dropout=0.1, lr=0.2)
    assert (r.model_kwargs["first_hop"], r.lr) == (1, 0.2)
    assert get_recipe("dagnn", "Cora").with_overrides(batch_norm=True).model_kwargs["batch_norm"]
    assert get_recipe("gcn", "Cora").with_overrides(improved=True).model_kwargs["improved"]


def test_with_overrides_lets_optional_fields_and_model_arguments_be_none():
    r = get_recipe("dagnn", "Cora").with_overrides(patience=None, input_dropout=None, lr=0.1)
    assert (r.patience, r.model_kwargs["input_dropout"], r.lr) == (None, None, 0.1)


def test_hop_models_train_on_the_evaluated_rows_only(tiny):
    """Rows outside every split do not change the result of a node-wise model on hops."""
    recipe = get_recipe("sgc_air", "Cora")
    data = prepare_data(recipe, tiny)
    unused = data.clone()
    unused.train_mask[5:12] = False  # rows 5..11 belong to no split now
    torch.manual_seed(0)
    a = run_recipe(recipe, unused, epochs=10)
    unused.hops[5:12] = 1e6  # garbage in rows nobody reads
    torch.manual_seed(0)
    b = run_recipe(recipe, unused, epochs=10)
    assert [h["test_acc"] for h in a.history] == [h["test_acc"] for h in b.history]
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_hop_models_honour_split_of_2d_masks(tiny):
    """[N, S] masks with split=: the run on column s equals the run on its 1-D masks (the
    hop path indexed rows with the whole [N, S] mask: a raw IndexError)."""
    recipe = get_recipe("sgc_air", "Cora")
    data = prepare_data(recipe, tiny)
    idx = torch.arange(tiny.num_nodes)
    other = {"train": idx >= 18, "val": idx < 9, "test": (idx >= 9) & (idx < 15)}  # 15..17 unused
    two = data.clone()
    for n in ("train", "val", "test"):
        two[f"{n}_mask"] = torch.stack([data[f"{n}_mask"], other[n]], dim=1)
    for split in (0, 1):
        one = data.clone()
        for n in ("train", "val", "test"):
            one[f"{n}_mask"] = two[f"{n}_mask"][:, split]
        torch.manual_seed(0)
        a = run_recipe(recipe, one, epochs=10)
        torch.manual_seed(0)
        b = run_recipe(recipe, two, epochs=10, split=split)
        assert a.history == b.history and a.best_epoch == b.best_epoch
    with pytest.raises(ValueError, match="split=2 out of range for 2 splits"):
        run_recipe(recipe, two, epochs=1, split=2)
    with pytest.raises(ValueError, match="choose one with split="):
        run_recipe(recipe, two, epochs=1)


def test_expand_grid_gives_every_combination():
    from graphkit.nn.recipes import expand_grid

    model, combos = expand_grid("dagnn:weight_decay=5e-3|5e-4,dropout=0.8|0.5,lr=0.01")
    assert model == "dagnn"
    assert combos == [
        {"weight_decay": 5e-3, "dropout": 0.8, "lr": 0.01},
        {"weight_decay": 5e-3, "dropout": 0.5, "lr": 0.01},
        {"weight_decay": 5e-4, "dropout": 0.8, "lr": 0.01},
        {"weight_decay": 5e-4, "dropout": 0.5, "lr": 0.01},
    ]
    assert expand_grid("sgc") == ("sgc", [{}])
    with pytest.raises(ValueError, match="unknown model 'gat'"):
        expand_grid("gat:lr=0.1|0.01")
    with pytest.raises(ValueError, match="KEY=V1"):
        expand_grid("dagnn:lr=")
    with pytest.raises(ValueError, match="listed twice"):
        expand_grid("dagnn:lr=0.1,lr=0.01")


def test_sgc_and_mlp_refuse_settings_they_do_not_take():
    # PyG's SGConv / MLP got K / hidden_channels and dropout only: `sgc:bogus=1` and
    # `mlp:num_layers=3` ran as if not given
    from graphkit.benchmarking import check_recipe

    for model, setting in (("sgc", "bogus"), ("sgc", "num_layers"), ("mlp", "bogus")):
        with pytest.raises(ValueError, match=f"{model} takes no setting '{setting}'"):
            check_recipe(model, "Cora", {setting: 1}, f"--model {model}")
    deep = build_model(get_recipe("mlp", "Cora").with_overrides(num_layers=3), 8, 2)
    assert len(deep.lins) == 3  # PyG Linear layers
