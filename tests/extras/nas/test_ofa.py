import pytest
import torch
from torch import nn

from graphkit.extras._core.counting import count_macs, count_params
from graphkit.extras._core.registry import create_model
from graphkit.extras.nas.elastic import ElasticDepthwiseConv2d
from graphkit.extras.nas.methods.ofa import (
    ElasticSqueezeExcite,
    OFAMBConv,
    OFASupernet,
    ProgressiveShrinking,
)
from graphkit.extras.nas.supernet import Supernet


def _randomise(module: nn.Module) -> None:
    """Non-trivial BN statistics, kernel transforms and SE biases, so every copy matters."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2)
            if isinstance(m, ElasticDepthwiseConv2d):
                for t in m.transforms:
                    t.add_(0.1 * torch.randn_like(t))
            if isinstance(m, ElasticSqueezeExcite):
                m.expand.bias.uniform_(-1, 1)


@pytest.fixture(scope="module")
def small_net() -> OFASupernet:
    torch.manual_seed(0)
    net = OFASupernet(units=3, num_classes=10, dropout=0.0)
    _randomise(net)
    return net.eval()


def test_space_size_is_7371_to_the_fifth():
    net = OFASupernet()
    assert net.space.size() == 7371**5 == (9**2 + 9**3 + 9**4) ** 5
    assert net.space.size() == 21_758_655_492_572_485_851  # about 2.2e19
    assert isinstance(net, Supernet)
    assert net.resolutions[0] == 128 and net.resolutions[-1] == 224 and len(net.resolutions) == 25


def test_sampled_configs_are_in_the_space(small_net):
    for seed in range(5):
        small_net.space.validate(small_net.sample_config(seed))
    small_net.space.validate(small_net.max_config())
    cfg = small_net.sample_config(0, ks=(3,), depth=(2,))
    assert all(u["depth"] == 2 for u in cfg.values())
    assert all(layer["ks"] == 3 for u in cfg.values() for layer in u["layers"].values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extracted_subnet_equals_supernet(small_net, seed):
    cfg = small_net.sample_config(seed)
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        sub = small_net.extract(cfg).eval()
        small_net.set_active(cfg)
        want = small_net(x)
        got = sub(x)
    assert (want - got).abs().max().item() < 1e-6
    # the extracted net is plain layers: no elastic module and no kernel transforms
    assert not any(isinstance(m, (OFAMBConv, ElasticDepthwiseConv2d)) for m in sub.modules())


def test_extract_keeps_the_active_config(small_net):
    cfg = small_net.sample_config(7)
    small_net.set_active(cfg)
    small_net.extract(small_net.min_config())
    assert small_net.active_cfg == cfg


def test_channel_sorting_preserves_full_width_function():
    torch.manual_seed(1)
    net = OFASupernet(units=2, num_classes=5, dropout=0.0)
    _randomise(net)
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        net.sort_channels_()
        after = net(x)
    assert (before - after).abs().max().item() < 1e-5
    block = net.units[1].blocks[0]  # an SE unit: hidden channels are now by decreasing L1 norm
    importance = block.project.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])


def test_min_and_max_subnet_params_and_macs_at_224():
    """Measured here (FlopCounter MACs at 224×224, 1000 classes), no paper figure to compare.

    The largest subnet has the supernet's parameters less the kernel-transformation matrices
    (20 blocks × (25² + 9²) = 14,120).
    """
    net = OFASupernet().eval()
    largest, smallest = net.extract(net.max_config()), net.extract(net.min_config())
    assert count_params(net) - count_params(largest) == 20 * (25**2 + 9**2)
    assert count_params(largest) == 7_664_760
    assert count_params(smallest) == 3_410_792
    assert count_macs(largest, (1, 3, 224, 224)) == 566_170_656
    assert count_macs(smallest, (1, 3, 224, 224)) == 121_278_672


def test_progressive_shrinking_stages_and_options():
    net = OFASupernet(units=1, num_classes=4)
    ps = ProgressiveShrinking(net)
    assert ps.stages == ("full", "kernel", "depth1", "depth2", "expand1", "expand2")
    assert ps.options("full") == {"ks": (7,), "expand": (6,), "depth": (4,)}
    assert ps.options("kernel") == {"ks": (3, 5, 7), "expand": (6,), "depth": (4,)}
    assert ps.options("depth1")["depth"] == (3, 4)
    assert ps.options("depth2")["depth"] == (2, 3, 4)
    assert ps.options("expand1") == {"ks": (3, 5, 7), "expand": (4, 6), "depth": (2, 3, 4)}
    assert ps.options("expand2")["expand"] == (3, 4, 6)
    for stage in ps.stages:
        opts = ps.options(stage)
        for _ in range(5):
            cfg = ps.sample(stage)
            for unit in cfg.values():
                assert unit["depth"] in opts["depth"]
                for layer in unit["layers"].values():
                    assert layer["ks"] in opts["ks"] and layer["e"] in opts["expand"]
    with pytest.raises(ValueError, match="unknown stage"):
        ps.options("width")


def test_progressive_shrinking_trains_with_inplace_kd():
    torch.manual_seed(0)
    net = OFASupernet(units=2, num_classes=3, dropout=0.0)
    ps = ProgressiveShrinking(net, n_subnets=2, resolutions=(24, 32))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    with pytest.raises(RuntimeError, match="begin"):
        ps.train_step(x, y, opt)
    ps.begin("full")
    assert ps.teacher is None
    loss = ps.train_step(x, y, opt)
    assert loss > 0
    ps.begin("kernel")
    assert ps.teacher is not None
    assert not any(p.requires_grad for p in ps.teacher.parameters())
    transforms = [t for b in net.blocks() for t in b.depthwise.transforms]
    before = [t.detach().clone() for t in transforms]
    for _ in range(3):
        ps.train_step(x, y, opt)
    # the kernel transforms are trained once smaller kernels are sampled
    assert any(not torch.equal(b, t) for b, t in zip(before, transforms))
    ps.begin("expand1")  # sorts channels; the network still runs every stage's configs
    assert torch.isfinite(torch.tensor(ps.train_step(x, y, opt)))


def test_registered_builder():
    from graphkit.extras.nas.methods import ofa  # noqa: F401  (registers "ofa_mbv3")

    net = create_model("ofa_mbv3", units=1, num_classes=2)
    assert isinstance(net, OFASupernet)


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        OFASupernet(units=6)
    with pytest.raises(ValueError, match="expand"):
        OFASupernet(expand=(1, 0.5))
    with pytest.raises(ValueError, match="width_mult"):
        OFASupernet(width_mult=0)
    net = OFASupernet(units=1, num_classes=2)
    with pytest.raises(ValueError, match="depth"):
        net.sample_config(0, depth=(5,))
    cfg = net.sample_config(0)
    cfg["unit0"]["depth"] = 9
    with pytest.raises(ValueError):
        net.set_active(cfg)
    with pytest.raises(ValueError, match="images"):
        net(torch.randn(3, 32, 32))
    with pytest.raises(TypeError):
        ProgressiveShrinking(nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kd_ratio"):
        ProgressiveShrinking(net, kd_ratio=-1)
    with pytest.raises(ValueError, match="width_mult must be a positive finite number"):
        OFASupernet(width_mult=float("inf"))  # was an OverflowError in make_divisible
    for ratio in (float("nan"), float("inf")):  # accepted, then the KD loss was NaN
        with pytest.raises(ValueError, match="kd_ratio must be >= 0"):
            ProgressiveShrinking(net, kd_ratio=ratio)
