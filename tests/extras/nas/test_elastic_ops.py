import itertools

import pytest
import torch
from torch import nn

from graphkit.extras._core.blocks import MBConv
from graphkit.extras._core.testing import assert_same_function
from graphkit.extras.nas.elastic import (
    ElasticBatchNorm2d,
    ElasticDepth,
    ElasticDepthwiseConv2d,
    ElasticMBConv,
    ElasticPointConv2d,
    make_divisible,
)
from graphkit.extras.nas.space import Choice, SearchSpace
from graphkit.extras.nas.supernet import Supernet


def _randomise(module: nn.Module) -> None:
    """Non-trivial BN statistics and kernel transforms, so every copied tensor matters."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
            if isinstance(m, ElasticDepthwiseConv2d):
                for t in m.transforms:
                    t.add_(0.1 * torch.randn_like(t))


def test_make_divisible():
    assert [make_divisible(v) for v in (48, 50, 52, 64, 3, 90)] == [48, 48, 56, 64, 8, 88]


def test_elastic_kernel_is_transformed_centre_chain():
    torch.manual_seed(0)
    conv = ElasticDepthwiseConv2d(4, (3, 5, 7))
    w7 = conv.weight
    # identity transforms: the smaller kernels are the centres
    assert torch.equal(conv.kernel(5), w7[:, :, 1:6, 1:6])
    assert torch.equal(conv.kernel(3), w7[:, :, 2:5, 2:5])
    _randomise(conv)
    m75, m53 = conv.transforms[1], conv.transforms[0]
    assert m75.shape == (25, 25) and m53.shape == (9, 9)
    k5 = (w7[:, :, 1:6, 1:6].reshape(4, 25) @ m75.T).reshape(4, 1, 5, 5)
    k3 = (k5[:, :, 1:4, 1:4].reshape(4, 9) @ m53.T).reshape(4, 1, 3, 3)
    torch.testing.assert_close(conv.kernel(5), k5)
    torch.testing.assert_close(conv.kernel(3), k3)
    conv.set_active(3)
    conv(torch.randn(2, 3, 6, 6)).sum().backward()  # 3 of 4 channels
    assert (m53.grad != 0).any() and (m75.grad != 0).any()
    assert (conv.weight.grad[3] == 0).all() and (conv.weight.grad[:3] != 0).any()


def test_elastic_width_uses_first_channels():
    torch.manual_seed(0)
    pw = ElasticPointConv2d(6, 10)
    pw.set_active(4)
    x = torch.randn(2, 5, 3, 3)
    y = pw(x)
    assert y.shape == (2, 4, 3, 3)
    torch.testing.assert_close(y, nn.functional.conv2d(x, pw.weight[:4, :5]))
    bn = ElasticBatchNorm2d(10)
    bn(torch.randn(8, 4, 3, 3) + 3.0)
    assert (bn.running_mean[:4] > 0.2).all() and (bn.running_mean[4:] == 0).all()


def test_extracted_mbconv_equals_elastic_block_for_every_setting():
    """Spec #27: an extracted subnet's output equals the supernet's under the same cfg."""
    torch.manual_seed(0)
    for stride, cout in ((1, 16), (2, 24)):
        block = ElasticMBConv(16, cout, stride=stride)
        _randomise(block)
        x = torch.randn(2, 16, 9, 9)
        for k, e in itertools.product((3, 5, 7), (3, 4, 6)):
            block.set_active(k, e)
            sub = block.extract()
            assert isinstance(sub, MBConv)
            assert sub.depthwise.conv.kernel_size == (k, k)
            assert sub.depthwise.out_channels == block.mid_channels() == make_divisible(16 * e)
            assert sub.has_residual == (stride == 1)
            assert_same_function(block, sub, x, atol=1e-6)


def test_channel_sorting_is_function_preserving_at_full_width():
    torch.manual_seed(1)
    block = ElasticMBConv(8, 8, expand_ratios=(2, 4))
    _randomise(block)
    x = torch.randn(3, 8, 7, 7)
    block.eval()
    before = block(x)
    order = block.sort_channels_()
    assert sorted(order.tolist()) == list(range(32))
    torch.testing.assert_close(block(x), before, atol=1e-6, rtol=0)
    importance = block.project.weight.abs().sum(dim=(0, 2, 3))
    assert (importance[:-1] >= importance[1:]).all()


def _unit_space(u: int) -> SearchSpace:
    def layer(i: int) -> SearchSpace:
        return SearchSpace(f"layer{i}", [Choice("ks", (3, 5)), Choice("e", (2, 3))])

    branches = {d: SearchSpace("layers", [layer(i) for i in range(d)]) for d in (2, 3)}
    return SearchSpace(f"unit{u}", [Choice("depth", (2, 3), branches=branches)])


class _TinyOFA(nn.Module):
    """A two-unit elastic supernet written against the Supernet protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.units = nn.ModuleList(
            ElasticDepth([ElasticMBConv(8, 8, (3, 5), (2, 3)) for _ in range(3)], depths=(2, 3))
            for _ in range(2)
        )
        self.space = SearchSpace("tiny", [_unit_space(0), _unit_space(1)])

    def set_active(self, cfg) -> None:
        self.space.validate(cfg)
        for u, unit in enumerate(self.units):
            ucfg = cfg[f"unit{u}"]
            unit.set_active(ucfg["depth"])
            for i in range(ucfg["depth"]):
                lcfg = ucfg["layers"][f"layer{i}"]
                unit.blocks[i].set_active(lcfg["ks"], lcfg["e"])

    def forward(self, x):
        for unit in self.units:
            x = unit(x)
        return x

    def extract(self, cfg) -> nn.Module:
        self.set_active(cfg)
        return nn.Sequential(*(unit.extract() for unit in self.units))


def test_elastic_supernet_extract_equals_supernet_under_cfg():
    torch.manual_seed(0)
    net = _TinyOFA()
    _randomise(net)
    assert isinstance(net, Supernet)
    assert net.space.size() == (4**2 + 4**3) ** 2
    x = torch.randn(2, 8, 6, 6)
    for seed in range(4):
        cfg = net.space.sample(seed)
        sub = net.extract(cfg)
        net.set_active(cfg)
        assert len(sub[0]) == cfg["unit0"]["depth"]
        assert_same_function(net, sub, x, atol=1e-6)


def test_elastic_bad_inputs():
    with pytest.raises(ValueError, match="odd"):
        ElasticDepthwiseConv2d(4, (3, 4))
    conv = ElasticDepthwiseConv2d(4, (3, 5))
    with pytest.raises(ValueError, match="not one of"):
        conv.set_active(7)
    with pytest.raises(ValueError, match="C<=4"):
        conv(torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match=r"\[1, 10\]"):
        ElasticPointConv2d(4, 10).set_active(11)
    with pytest.raises(ValueError, match="> 1"):
        ElasticMBConv(8, 8, expand_ratios=(1, 2))
    block = ElasticMBConv(8, 8)
    with pytest.raises(ValueError, match="expand ratio"):
        block.set_active(expand_ratio=5)
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        block(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="depths"):
        ElasticDepth([nn.Identity()], depths=(1, 2))
    with pytest.raises(ValueError, match="depth 1"):
        ElasticDepth([nn.Identity(), nn.Identity()], depths=(2,)).set_active(1)


def test_non_finite_and_fractional_sizes_are_named():
    # NaN failed in int() ("cannot convert float NaN to integer"); -5 was rounded to 8
    for value in (float("nan"), float("inf"), -5):
        with pytest.raises(ValueError, match="value must be a finite number >= 0"):
            make_divisible(value)
    assert make_divisible(0) == 8  # as before: never below the divisor
    with pytest.raises(ValueError, match="> 1"):
        ElasticMBConv(8, 8, expand_ratios=(float("nan"),))
    with pytest.raises(ValueError, match="channels must be a positive integer, got 4.5"):
        ElasticDepthwiseConv2d(4.5)  # a TypeError inside torch.empty
    with pytest.raises(ValueError, match="out_channels must be a positive integer, got 2.5"):
        ElasticPointConv2d(4, 2.5)
