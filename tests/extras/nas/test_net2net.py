import copy

import pytest
import torch
from torch import nn

from graphkit.extras._core.testing import assert_same_function
from graphkit.extras.nas.net2net import insert_after, net2deeper, net2wider, widen_


def _randomise_bn(net: nn.Module) -> None:
    """Non-trivial affine parameters and running statistics, so copying them matters."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)


def _convnet() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 5 * 5, 12),
        nn.BatchNorm1d(12),
        nn.ReLU(),
        nn.Linear(12, 4),
    )
    _randomise_bn(net)
    return net


def _max_diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    a.eval()
    b.eval()
    with torch.no_grad():
        return (a(x) - b(x)).abs().max().item()


def test_net2wider_conv_conv_fc_fc_preserves_function():
    """Spec #7: max output difference < 1e-5 with noise 0, BatchNorm in eval mode."""
    net = _convnet()
    wide = copy.deepcopy(net)
    gen = torch.Generator().manual_seed(0)
    widen_(wide, "0", "3", 13, bn="1", generator=gen)  # conv -> conv
    widen_(wide, "3", "7", 11, bn="4", generator=gen)  # conv -> flatten -> fc
    widen_(wide, "7", "10", 20, bn="8", generator=gen)  # fc -> fc
    assert (wide[0].out_channels, wide[3].in_channels, wide[3].out_channels) == (13, 13, 11)
    assert (wide[4].num_features, wide[7].in_features) == (11, 11 * 25)
    assert (wide[7].out_features, wide[8].num_features, wide[10].in_features) == (20, 20, 20)
    x = torch.randn(6, 3, 5, 5)
    assert _max_diff(net, wide, x) < 1e-5
    assert_same_function(net, wide, x, atol=1e-5)


@pytest.mark.parametrize("pair", ["conv_conv", "conv_fc", "fc_fc"])
def test_net2wider_copies_units_and_divides_outgoing_weights(pair):
    torch.manual_seed(1)
    if pair == "conv_conv":
        layer, nxt, spatial = nn.Conv2d(3, 5, 3), nn.Conv2d(5, 4, 3), 9
    elif pair == "conv_fc":
        layer, nxt, spatial = nn.Conv2d(3, 5, 3), nn.Linear(5 * 4, 7), 4
    else:
        layer, nxt, spatial = nn.Linear(3, 5), nn.Linear(5, 7), 1
    wide, wide_next, _, g = net2wider(layer, nxt, 12, generator=torch.Generator().manual_seed(2))
    assert g[:5].tolist() == list(range(5)) and g.shape == (12,) and 0 <= g.min() <= g.max() < 5
    counts = torch.bincount(g, minlength=5)
    assert counts.sum() == 12 and (counts >= 1).all() and counts.max() > 1
    assert torch.equal(wide.weight, layer.weight[g]) and torch.equal(wide.bias, layer.bias[g])
    old = nxt.weight.reshape(nxt.weight.shape[0], 5, spatial)
    new = wide_next.weight.reshape(nxt.weight.shape[0], 12, spatial)
    for j in range(12):
        assert torch.equal(new[:, j], old[:, g[j]] / counts[g[j]])
    assert torch.equal(wide_next.bias, nxt.bias)
    # the parents are left as they were
    assert layer.weight.shape[0] == 5


def test_net2wider_noise_breaks_symmetry_only_slightly():
    torch.manual_seed(0)
    layer, nxt = nn.Linear(4, 6), nn.Linear(6, 3)
    x = torch.randn(10, 4)
    ref = nxt(torch.relu(layer(x)))
    exact = net2wider(layer, nxt, 10, generator=torch.Generator().manual_seed(0))
    noisy = net2wider(layer, nxt, 10, noise=0.01, generator=torch.Generator().manual_seed(0))
    assert torch.equal(exact.mapping, noisy.mapping)
    # original units' outgoing weights are untouched by the noise, the copies' are not
    assert torch.equal(noisy.next_layer.weight[:, :6], exact.next_layer.weight[:, :6])
    assert not torch.equal(noisy.next_layer.weight[:, 6:], exact.next_layer.weight[:, 6:])
    out = noisy.next_layer(torch.relu(noisy.layer(x)))
    diff = (out - ref).abs().max().item()
    assert 0 < diff < 0.1


def test_net2wider_is_seeded():
    layer, nxt = nn.Linear(4, 6), nn.Linear(6, 3)
    a = net2wider(layer, nxt, 9, generator=torch.Generator().manual_seed(5)).mapping
    b = net2wider(layer, nxt, 9, generator=torch.Generator().manual_seed(5)).mapping
    assert torch.equal(a, b)
    same = net2wider(layer, nxt, 6)  # same width: an exact copy
    assert torch.equal(same.layer.weight, layer.weight)
    assert torch.equal(same.next_layer.weight, nxt.weight)


def test_net2deeper_preserves_function_after_relu():
    """Spec #7: deepened nets equal the parent (< 1e-5; inserted BatchNorm in eval mode)."""
    net = _convnet()
    deep = copy.deepcopy(net)
    relu = nn.ReLU()
    insert_after(deep, "2", net2deeper(deep[0], batch_norm=True, activation=relu))  # conv 3x3
    insert_after(deep, "5", net2deeper(deep[3], kernel_size=5, batch_norm=True))  # conv 5x5
    insert_after(deep, "9", net2deeper(deep[7], batch_norm=True, activation=nn.ReLU()))  # fc
    insert_after(deep, "10", net2deeper(deep[10]))  # after the logits: plain identity fc
    x = torch.randn(6, 3, 5, 5)
    assert _max_diff(net, deep, x) < 1e-5
    new = deep[5][1]
    assert new[0].kernel_size == (5, 5) and new[0].padding == (2, 2) and new[0].bias is None
    assert len(list(deep.modules())) > len(list(net.modules()))


def test_net2deeper_identity_kernel_and_matrix():
    conv = net2deeper(nn.Conv2d(2, 4, 3), kernel_size=(3, 5))
    assert conv.weight.shape == (4, 4, 3, 5)
    assert conv.weight.sum() == 4 and torch.equal(conv.weight[:, :, 1, 2], torch.eye(4))
    fc = net2deeper(nn.Linear(3, 7))
    assert torch.equal(fc.weight, torch.eye(7)) and torch.equal(fc.bias, torch.zeros(7))
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(conv(x), x)


def test_net2net_bad_inputs():
    conv, fc = nn.Conv2d(3, 5, 3), nn.Linear(5, 2)
    with pytest.raises(ValueError, match=">= the current width"):
        net2wider(fc, nn.Linear(2, 3), 1)
    with pytest.raises(ValueError, match="takes 4 inputs"):
        net2wider(nn.Linear(3, 5), nn.Linear(4, 2), 8)
    with pytest.raises(ValueError, match="not a multiple"):
        net2wider(conv, nn.Linear(12, 2), 8)
    with pytest.raises(TypeError, match="cannot feed"):
        net2wider(fc, nn.Conv2d(2, 3, 1), 4)
    with pytest.raises(ValueError, match="ungrouped"):
        net2wider(nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 4, 1), 6)
    with pytest.raises(TypeError, match="nn.Linear or nn.Conv2d"):
        net2wider(nn.LSTM(3, 5), fc, 6)
    with pytest.raises(ValueError, match="noise"):
        net2wider(nn.Linear(3, 5), fc, 6, noise=-1.0)
    with pytest.raises(ValueError, match="bn has 4 features"):
        net2wider(nn.Linear(3, 5), fc, 6, bn=nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="odd"):
        net2deeper(conv, kernel_size=2)
    with pytest.raises(ValueError, match="convolutions only"):
        net2deeper(fc, kernel_size=3)
    with pytest.raises(AttributeError):
        insert_after(nn.Sequential(fc), "3", nn.ReLU())
