import pytest
import torch
from torch import nn

import graphkit.extras as extras
from graphkit.extras._core import registry
from graphkit.extras._core.testing import assert_macs, assert_params, assert_same_function


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


def test_counts_equal_hand_computed_figures():
    model = _tiny()
    assert extras.count_params(model) == (3 * 9 * 8 + 8) + (128 * 10 + 10)
    # conv: 8 x 4 x 4 outputs, 27 MACs each; linear: 128 x 10
    assert extras.count_macs(model, (1, 3, 4, 4)) == 8 * 16 * 27 + 128 * 10
    assert_params(model, 1514)
    assert_macs(model, (1, 3, 4, 4), 4736)
    with pytest.raises(AssertionError, match="expected exactly"):
        assert_params(model, 1515)
    assert_params(model, 1515, rel=0.01)


def test_trainable_only_and_shared_parameters_counted_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, lin)
    assert extras.count_params(model) == 20
    lin.bias.requires_grad_(False)
    assert extras.count_params(model, trainable_only=True) == 16


def test_nonzero_macs_scale_with_weight_density():
    model = _tiny()
    with torch.no_grad():
        model[2].weight[:, ::2] = 0  # half of the linear layer's weights
        model[0].weight[:4] = 0  # half of the conv filters
    dense = 8 * 16 * 27 + 128 * 10
    assert extras.nonzero_macs(model, (1, 3, 4, 4)) == pytest.approx(dense / 2)


def test_counting_restores_training_mode_and_rejects_bad_shapes():
    model = _tiny().train()
    extras.count_macs(model, (1, 3, 4, 4))
    assert model.training
    # a frozen submodule stays frozen (model.train(True) turned it back to training)
    frozen = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    frozen[1].eval()
    extras.count_macs(frozen, (1, 3, 8, 8))
    extras.nonzero_macs(frozen, (1, 3, 8, 8))
    assert_same_function(frozen, frozen, torch.randn(1, 3, 8, 8))
    assert frozen.training and frozen[0].training and not frozen[1].training
    with pytest.raises(ValueError, match="positive sizes"):
        extras.count_macs(model, (1, 0, 4, 4))


def test_attention_and_recurrent_layers_are_counted():
    # PyTorch's fused eval paths (MHA, CPU attention, LSTM) were counted as 0 MACs
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    # in-projection 10*16*48, Q K^T and A V 2*(2*10*10*8), out-projection 10*16*16,
    # feed-forward 2*10*16*32
    assert extras.count_macs(layer, (1, 10, 16)) == 7680 + 3200 + 2560 + 10240

    class Attention(nn.Module):
        def forward(self, x):
            return nn.functional.scaled_dot_product_attention(x, x, x)

    assert extras.count_macs(Attention(), (1, 2, 10, 8)) == 2 * 2 * 10 * 10 * 8
    assert extras.count_macs(nn.LSTM(8, 16, batch_first=True), (1, 5, 8)) == 5 * 4 * 16 * 24
    # GRU's gates are computed by visible matrix products: counted once, not twice
    gru = nn.GRU(8, 16, num_layers=2, bidirectional=True)
    assert extras.count_macs(gru, (5, 2, 8)) == 2 * 10 * 3 * 16 * (24 + 48)


def test_nonzero_macs_counts_transposed_convolutions():
    layer = nn.ConvTranspose2d(8, 4, 3, stride=2)
    assert extras.nonzero_macs(layer, (1, 8, 5, 5)) == extras.count_macs(layer, (1, 8, 5, 5)) \
        == 25 * 8 * 4 * 9
    with torch.no_grad():
        layer.weight[:, :2] = 0  # half of the output channels' taps
    assert extras.nonzero_macs(layer, (1, 8, 5, 5)) == 25 * 8 * 4 * 9 / 2


def test_assert_same_function_reports_the_difference():
    a = _tiny()
    b = _tiny()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 4, 4)
    assert_same_function(a, b, x, atol=0.0)
    with torch.no_grad():
        b[2].bias += 1
    with pytest.raises(AssertionError, match="differ by up to"):
        assert_same_function(a, b, x)


def test_registry_registers_builds_and_names_unknown_models(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_load_all", lambda: None)  # only this test's entry

    @extras.register_model("tinynet", family="backbone", paper="A tiny test net")
    def tinynet(width: int = 8) -> nn.Module:
        return nn.Linear(width, width)

    assert extras.list_models(family="backbone") == ["tinynet"]
    assert extras.list_models(family="moe") == []
    assert extras.create_model("tinynet", width=3).in_features == 3
    assert extras.get_entry("tinynet").paper == "A tiny test net"
    with pytest.raises(KeyError, match="did you mean tinynet"):
        extras.create_model("tinynett")
    with pytest.raises(ValueError, match="already registered"):
        extras.register_model("tinynet", family="backbone", paper="x")(lambda: None)
    with pytest.raises(ValueError, match="unknown family"):
        extras.register_model("other", family="vision", paper="x")
    with pytest.raises(ValueError, match="lower case"):
        extras.register_model("Other", family="backbone", paper="x")


def test_every_registered_entry_names_a_known_family_and_paper():
    for name in extras.list_models():
        entry = extras.get_entry(name)
        assert entry.family in extras.FAMILIES and entry.paper, name


def test_importing_extras_pulls_in_no_family():
    import subprocess
    import sys

    code = (
        "import sys, graphkit.extras; "
        "print(sorted(m for m in sys.modules if m.startswith('graphkit.extras.') "
        "and not m.startswith('graphkit.extras._core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_replace_module_by_dotted_name():
    from graphkit.extras._core.modules import replace_module

    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    new = nn.Linear(3, 1)
    old = replace_module(model, "1.1", new)
    assert isinstance(old, nn.Linear) and model[1][1] is new
    assert "1.1.weight" in model.state_dict()
    with pytest.raises(AttributeError, match="no submodule '1.5'"):
        replace_module(model, "1.5", new)
    with pytest.raises(ValueError, match="not root itself"):
        replace_module(model, "", new)


def test_helpers_that_evaluate_restore_each_submodule_mode():
    # model.train(was_training) switched a frozen BatchNorm back to training
    from graphkit.extras.analysis.efficiency import layer_costs
    from graphkit.extras.training.adversarial import robust_accuracy

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3)).train()
    model[1].eval()
    x = torch.rand(2, 3, 8, 8)
    layer_costs(model, x)
    robust_accuracy(model, x, torch.tensor([0, 1]), steps=1)
    assert model[0].training and not model[1].training
