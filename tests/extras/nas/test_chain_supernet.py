import pytest
import torch
from torch import nn

from graphkit.extras._core.testing import assert_same_function
from graphkit.extras.nas.supernet import ChainSupernet, Supernet


def _conv(k: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(4, 4, k, padding=k // 2), nn.BatchNorm2d(4), nn.ReLU())


def _supernet() -> ChainSupernet:
    torch.manual_seed(0)
    layers = [
        nn.Conv2d(3, 4, 3, padding=1),  # fixed stem: no choice
        {"conv3": _conv(3), "conv5": _conv(5), "skip": nn.Identity()},
        {"conv3": _conv(3), "conv7": _conv(7)},
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)),
    ]
    return ChainSupernet(layers)


def test_chain_supernet_follows_protocol_and_space():
    net = _supernet()
    assert isinstance(net, Supernet)
    assert net.space.size() == 3 * 2
    assert [p for p, _ in net.space.choices()] == ["layer1", "layer2"]


def test_extract_equals_supernet_under_every_cfg():
    net = _supernet()
    for m in net.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8)
    outputs = []
    for cfg in net.space.enumerate():
        net.set_active(cfg)
        sub = net.extract(cfg)
        assert_same_function(net, sub, x, atol=0.0)
        outputs.append(sub.eval()(x))
        # a standalone copy: training it leaves the supernet untouched
        assert all(p.data_ptr() != q.data_ptr() for p in sub.parameters() for q in net.parameters())
    assert len(outputs) == 6
    assert not torch.equal(outputs[0], outputs[1])


def test_extracted_subnet_has_only_chosen_weights():
    net = _supernet()
    cfg = {"layer1": "skip", "layer2": "conv3"}
    sub = net.extract(cfg)
    n = sum(p.numel() for p in sub.parameters())
    want = sum(
        p.numel()
        for m in (net.layers[0]["fixed"], net.layers[2]["conv3"], net.layers[3]["fixed"])
        for p in m.parameters()
    )
    assert n == want


def test_bad_cfg_and_layers_raise():
    net = _supernet()
    with pytest.raises(ValueError, match="not an option"):
        net.set_active({"layer1": "conv9", "layer2": "conv3"})
    with pytest.raises(ValueError, match="misses"):
        net.extract({"layer1": "skip"})
    with pytest.raises(ValueError, match="at least one layer"):
        ChainSupernet([])
    with pytest.raises(ValueError, match="non-empty mapping"):
        ChainSupernet([{}])
