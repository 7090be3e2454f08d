"""The shared mask API of graphkit.extras.sparsity: parametrisation, granularities, checks."""

import io

import pytest
import torch
from torch import nn

from graphkit.extras.sparsity.masks import (
    Pruner,
    SparsityMask,
    apply_mask,
    apply_masks,
    block,
    channel,
    check_block_zero,
    check_density,
    check_nm,
    get_mask,
    load_masked_state_dict,
    masked_layers,
    masked_params,
    nm,
    remove_masks,
    unstructured,
    update_mask,
)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 16),
        nn.ReLU(),
        nn.Linear(16, 4),
    )


def test_masked_forward_uses_masked_weight_and_soft_multiplier():
    torch.manual_seed(0)
    layer = nn.Linear(6, 5)
    dense = layer.weight.detach().clone()
    mask = torch.rand(5, 6) > 0.5
    apply_mask(layer, mask=mask)
    assert torch.equal(layer.weight, torch.where(mask, dense, torch.zeros(())))
    soft = torch.full((5, 6), 0.5)
    param = SparsityMask(mask, soft)
    assert torch.equal(param(dense), dense * mask * 0.5)
    x = torch.randn(3, 6)
    assert torch.allclose(layer(x), x @ (dense * mask).T + layer.bias)


def test_gradients_and_optimiser_never_revive_pruned_weights():
    net = _net()
    pruner = Pruner(net)
    pruner.prune(0.3)
    masks = {n: get_mask(m).mask.clone() for n, m in masked_layers(net).items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-2)
    x, y = torch.randn(16, 3, 4, 4), torch.randint(0, 4, (16,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        for name, module in masked_layers(net).items():
            grad = module.parametrizations.weight.original.grad
            assert not grad[~masks[name]].any(), name  # no gradient reaches a pruned weight
        opt.step()
    for name, module in masked_layers(net).items():
        assert torch.equal(get_mask(module).mask, masks[name])
        assert not module.weight[~masks[name]].any()
        assert not module.parametrizations.weight.original[~masks[name]].any()
    check_density(net, 0.3)


def test_masks_survive_state_dict_round_trip():
    net = _net(0)
    Pruner(net, allocation="global").prune(0.25)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    fresh = _net(1)
    load_masked_state_dict(fresh, torch.load(buffer))
    assert set(masked_layers(fresh)) == set(masked_layers(net))
    for name, module in masked_layers(net).items():
        assert torch.equal(get_mask(masked_layers(fresh)[name]).mask, get_mask(module).mask)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(fresh(x), net(x))


def test_masks_on_any_parameter_round_trip_and_bake():
    torch.manual_seed(0)
    rnn = nn.LSTM(4, 8)
    mask = torch.rand(32, 8) > 0.5
    targets = apply_masks(rnn, ["weight_hh_l0"])
    assert targets == {"weight_hh_l0": (rnn, "weight_hh_l0")}
    update_mask(rnn, mask, "weight_hh_l0")
    assert list(masked_params(rnn)) == ["weight_hh_l0"] and not masked_layers(rnn)
    fresh = nn.LSTM(4, 8)
    load_masked_state_dict(fresh, rnn.state_dict())
    assert torch.equal(get_mask(fresh, "weight_hh_l0").mask, mask)
    x = torch.randn(3, 2, 4)
    assert torch.equal(fresh(x)[0], rnn(x)[0])
    remove_masks(fresh)
    assert not masked_params(fresh)
    assert torch.equal(fresh.weight_hh_l0, rnn.weight_hh_l0)


def test_remove_masks_bakes_the_sparse_weight():
    net = _net()
    Pruner(net).prune(0.5)
    weights = {n: m.weight.detach().clone() for n, m in masked_layers(net).items()}
    remove_masks(net)
    assert not masked_layers(net)
    modules = dict(net.named_modules())
    for name, w in weights.items():
        assert isinstance(modules[name].weight, nn.Parameter)
        assert torch.equal(modules[name].weight, w)
        check_density(modules[name].weight, 0.5)


def test_baking_a_copy_leaves_the_original_masked_model_intact():
    import copy

    net = _net()
    Pruner(net).prune(0.5)
    deploy = copy.deepcopy(net)
    remove_masks(deploy)  # deleted the weight property of the class the copy shared
    assert masked_layers(net) and not masked_layers(deploy)
    x = torch.randn(3, 3, 4, 4)
    assert torch.equal(net(x), deploy(x))


def test_a_soft_multiplier_is_reloaded():
    lin = nn.Linear(4, 3)
    apply_mask(lin, "weight")
    get_mask(lin, "weight").soft = torch.full((3, 4), 0.5)
    fresh = nn.Linear(4, 3)
    load_masked_state_dict(fresh, lin.state_dict())
    assert torch.equal(fresh.weight, lin.weight)


def test_unstructured_keeps_exact_count_even_with_ties():
    mask = unstructured().select(torch.ones(7, 9), 0.3)
    assert int(mask.sum()) == 19  # round(0.3 * 63) = round(18.9)
    scores = torch.arange(20.0).view(4, 5)
    assert torch.equal(unstructured().select(scores, 0.25), scores >= 15)


def test_nm_block_channel_granularities():
    torch.manual_seed(0)
    scores = torch.rand(8, 16, 3, 3)
    check_nm(nm(2, 4, dim=1).select(scores, 0.5), 2, 4, dim=1)
    check_nm(nm(1, 8, dim=0).select(scores, 0.5), 1, 8, dim=0)
    mask = block(4, 8).select(scores, 0.5)
    check_block_zero(mask, 4, 8)
    assert int(mask.sum()) == scores.numel() // 2
    mask = channel(0).select(scores, 0.25)
    kept = mask.flatten(1).all(1)
    assert int(kept.sum()) == 2 and not mask[~kept].any()
    assert torch.equal(kept, scores.sum((1, 2, 3)) >= scores.sum((1, 2, 3)).topk(2).values[-1])
    mask = channel(1).select(scores, 0.5)
    assert int(mask.movedim(1, 0).flatten(1).all(1).sum()) == 8


def test_global_allocation_hits_the_global_count():
    net = _net()
    densities = Pruner(net, allocation="global").prune(0.1)
    assert len(set(densities.values())) > 1  # layers differ under one threshold
    total = sum(get_mask(m).mask.numel() for m in masked_layers(net).values())
    kept = sum(int(get_mask(m).mask.sum()) for m in masked_layers(net).values())
    assert kept == round(0.1 * total)


def test_checks_raise_on_violations():
    with pytest.raises(AssertionError, match="density"):
        check_density(torch.ones(10), 0.5)
    assert check_density(torch.tensor([1.0, 0.0, 2.0, 0.0]), 0.5) == 0.5
    check_density(torch.tensor([1.0, 1.0, 1.0, 0.0]), 0.5, tol=0.25)
    with pytest.raises(AssertionError, match="groups"):
        check_nm(torch.ones(2, 8), 2, 4)
    with pytest.raises(AssertionError, match="partly zero"):
        check_block_zero(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), 2, 2)
    with pytest.raises(ValueError, match="carries no SparsityMask"):
        check_density(nn.Linear(2, 2), 0.5)


def test_bad_inputs_raise_clear_errors():
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="mask shape"):
        apply_mask(layer, mask=torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no weight parameter"):
        apply_mask(nn.ReLU())
    with pytest.raises(ValueError, match="carries no SparsityMask"):
        update_mask(nn.Linear(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="density must lie"):
        unstructured().select(torch.rand(3, 3), 1.5)
    with pytest.raises(ValueError, match="NaN"):
        unstructured().select(torch.tensor([[float("nan"), 1.0]]), 0.5)
    with pytest.raises(ValueError, match="not a multiple"):
        nm(2, 4).select(torch.rand(3, 6), 0.5)
    with pytest.raises(ValueError, match="tiled"):
        block(2, 2).select(torch.rand(3, 4), 0.5)
    with pytest.raises(ValueError, match="no module or parameter named"):
        apply_masks(nn.Sequential(nn.Linear(2, 2)), ["7"])
    with pytest.raises(ValueError, match="allocation"):
        Pruner(nn.Linear(2, 2), allocation="erk")
    apply_mask(layer)
    with pytest.raises(ValueError, match="does not match its mask"):
        get_mask(layer)(torch.ones(2, 2))


def test_fractional_or_zero_block_sizes_are_rejected():
    # 2.5 was truncated to 2 silently; 0 ended in a ZeroDivisionError of the tiling
    with pytest.raises(ValueError, match="block size bh must be a positive integer"):
        block(2.5, 2)
    with pytest.raises(ValueError, match="block size bh must be a positive integer"):
        block(float("nan"), 2)
    with pytest.raises(ValueError, match="block size bw must be a positive integer"):
        check_block_zero(torch.ones(4, 4), 2, 0)
    assert repr(block(2.0, 2)) == "block(2, 2)"


def test_check_density_rejects_nan_expected_and_empty_tensors():
    # a NaN expectation passed every comparison, so the check always succeeded
    with pytest.raises(ValueError, match="expected density must lie in"):
        check_density(torch.ones(4), float("nan"))
    with pytest.raises(ValueError, match="tol must be"):
        check_density(torch.ones(4), 1.0, tol=-0.1)
    with pytest.raises(ValueError, match="empty tensor"):
        check_density(torch.zeros(0), 0.5)


def test_allocation_rejects_inf_power_empty_scores_and_bad_sizes():
    from graphkit.extras.sparsity.allocation import erdos_renyi, global_magnitude, round_counts

    with pytest.raises(ValueError, match="power_scale must be a finite number"):
        erdos_renyi({"a": (4, 8), "b": (3, 3)}, 0.5, power_scale=float("inf"))
    with pytest.raises(ValueError, match=r"layers \['a'\] have empty scores"):
        global_magnitude({"a": torch.zeros(0), "b": torch.rand(4)}, 0.5)
    with pytest.raises(ValueError, match="sizes lacks the layers"):
        round_counts({"a": 0.5}, {})
    with pytest.raises(ValueError, match=r"sizes\['a'\] must be an integer >= 0"):
        round_counts({"a": 0.5}, {"a": -4})  # gave a count of -3


def test_schedules_reject_fractional_steps():
    from graphkit.extras.sparsity.schedules import CubicSchedule, StepSchedule

    with pytest.raises(ValueError, match="n must be an integer"):
        CubicSchedule(0.5, n=2.5)  # was truncated to 2
    with pytest.raises(ValueError, match="t0 must be an integer"):
        CubicSchedule(0.5, t0=float("nan"))
    with pytest.raises(ValueError, match="milestone steps must be integers"):
        StepSchedule({1.5: 0.5})  # was read as step 1
    assert CubicSchedule(0.5, n=4.0).n == 4


def test_pruner_rejects_a_schedule_that_is_not_one():
    with pytest.raises(TypeError, match="schedule must be a Schedule"):
        Pruner(nn.Linear(2, 2), schedule=0.5)


def test_non_binary_float_masks_are_rejected():
    # a 0.5 entry was kept as True silently
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="mask must be boolean or hold only 0 and 1"):
        apply_mask(layer, mask=torch.tensor([[0.5, 0.0], [1.0, 1.0]]))
    assert get_mask(layer) is None  # nothing half-installed
    apply_mask(layer, mask=torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="mask must be boolean or hold only 0 and 1"):
        update_mask(layer, torch.tensor([[float("nan"), 0.0], [1.0, 1.0]]))


def test_soft_multiplier_must_be_finite():
    # a NaN soft factor made the masked weight NaN silently
    with pytest.raises(ValueError, match="soft contains NaN"):
        SparsityMask(torch.ones(2, 2, dtype=torch.bool), torch.full((2, 2), float("nan")))
