import math
import time

import pytest
import torch
from torch import nn

from graphkit.extras._core.blocks import MBConv
from graphkit.extras._core.counting import count_macs
from graphkit.extras.analysis.efficiency import (
    FusedResidualBlock,
    HardwareProfile,
    LatencyModel,
    efficiency_gap,
    layer_costs,
    waterline,
)

#: the spec's declared machine: 10 TFLOP/s peak, 500 GB/s DRAM
HW = HardwareProfile(peak_flops=10e12, bandwidth=500e9, name="spec")


def _toy_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
        nn.Conv2d(16, 32, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def _random_bn(block: nn.Module) -> None:
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def test_latency_identity_reconstructs_measured_latency():
    """latency = FLOPs / (efficiency x peak): the efficiency measured from a real timing and
    the counted FLOPs give back the timing to 1e-9 relative, for the network and each layer."""
    torch.manual_seed(0)
    net, x = _toy_net().eval(), torch.randn(2, 3, 32, 32)
    flops = sum(c.flops for c in layer_costs(net, x))
    with torch.no_grad():
        t0 = time.perf_counter()
        net(x)
        measured = time.perf_counter() - t0
    lm = LatencyModel(HW)
    eff = lm.efficiency(flops, measured)
    assert 0 < eff <= 1
    assert math.isclose(lm.latency(flops, eff), measured, rel_tol=1e-9)
    for row in efficiency_gap(net, x, HW):
        assert math.isclose(lm.latency(row.flops, row.efficiency), row.measured_s,
                            rel_tol=1e-9)


def test_layer_flops_are_exact_and_agree_with_the_shared_counter():
    net, x = _toy_net(), torch.randn(2, 3, 32, 32)
    costs = layer_costs(net, x)
    assert [c.kind for c in costs] == ["Conv2d", "Conv2d", "Conv2d", "Linear"]
    # conv 3->16 3x3 s2 on 32x32: 2 * (3*9) * 16 * 16*16 * batch 2
    assert costs[0].flops == 2 * 27 * 16 * 256 * 2 == 442_368
    assert costs[1].flops == 2 * 9 * 16 * 256 * 2  # depthwise: one input channel per output
    assert costs[0].input_bytes == 2 * 3 * 32 * 32 * 4
    assert costs[0].weight_bytes == (16 * 27 + 16) * 4
    # FLOPs = 2 x MACs of torch's FlopCounterMode on the same network
    assert sum(c.flops for c in costs) == 2 * count_macs(net, x)


def test_waterline_depthwise_is_memory_bound_and_wide_pointwise_compute_bound():
    """On the declared profile (ridge point 20 FLOP/byte): a 3x3 depthwise conv on
    256x56x56 does 2*9 FLOPs per output for ~8 bytes moved (intensity ~2.25), a 1x1 conv
    256->256 does 2*256 per output (intensity ~61.5)."""
    x = torch.randn(1, 256, 56, 56)
    dw = nn.Conv2d(256, 256, 3, padding=1, groups=256, bias=False)
    pw = nn.Conv2d(256, 256, 1, bias=False)
    (row_dw,) = waterline(dw, x, HW)
    (row_pw,) = waterline(pw, x, HW)
    assert HW.ridge_point == 20
    assert row_dw.bound == "memory" and row_dw.intensity < HW.ridge_point
    assert row_pw.bound == "compute" and row_pw.intensity > HW.ridge_point
    acts = 2 * 256 * 56 * 56 * 4
    assert row_dw.dram_bytes == acts + 256 * 9 * 4
    assert row_dw.intensity == pytest.approx(2 * 9 * 256 * 3136 / (acts + 9216), rel=1e-12)
    assert row_dw.bound_s == row_dw.memory_s == row_dw.dram_bytes / HW.bandwidth
    assert row_pw.bound_s == row_pw.compute_s == 2 * 256 * 256 * 3136 / HW.peak_flops
    # a workspace that fits on chip leaves only the weights on DRAM
    cached = HardwareProfile(10e12, 500e9, cache_bytes=acts)
    (row,) = waterline(dw, x, cached)
    assert row.dram_bytes == 256 * 9 * 4 and row.bound == "compute"


def test_waterline_table_and_efficiency_gap_on_a_toy_net():
    net, x = _toy_net(), torch.randn(1, 3, 32, 32)
    table = waterline(net, x, HW)
    assert [r.name for r in table] == ["0", "2", "4", "8"]
    assert [r.bound for r in table] == ["memory"] * 4  # tiny layers: all below the ridge

    def twice_the_bound(layer, inp):
        (r,) = waterline(layer, inp, HW)
        return 2 * r.bound_s

    gap = efficiency_gap(net, x, HW, measure=twice_the_bound)
    for g, w in zip(gap, table):
        assert g.bound_s == w.bound_s and g.measured_s == 2 * w.bound_s
        assert g.ideal_s == w.flops / HW.peak_flops
        assert g.efficiency == pytest.approx(g.ideal_s / g.measured_s, rel=1e-12)
    with pytest.raises(ValueError, match="measure returned"):
        efficiency_gap(net, x, HW, measure=lambda layer, inp: 0.0)


@pytest.mark.parametrize(
    ("kwargs", "cin", "cout"),
    [(dict(kernel_size=3, stride=1), 8, 8), (dict(kernel_size=5, stride=2), 8, 12),
     (dict(kernel_size=3, stride=2, expand_ratio=1.0), 8, 8),
     (dict(kernel_size=5, stride=1, expand_ratio=6.0), 8, 16)],
)
@pytest.mark.parametrize("tile", [4, 5, (3, 7), 64])
def test_fused_block_equals_the_unfused_block(kwargs, cin, cout, tile):
    """Tiles that divide the output (4 on 16x20 at stride 1), that do not (5, 3x7) and one
    tile covering everything; the map is 16x20 (stride 2: 8x10)."""
    torch.manual_seed(0)
    block = MBConv(cin, cout, **kwargs)
    _random_bn(block)
    block.eval()
    fused = FusedResidualBlock(block, tile).eval()
    x = torch.randn(2, cin, 16, 20)
    with torch.no_grad():
        want, got = block(x), fused(x)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-5


def test_memory_traffic_of_fusion():
    """MBConv 16->16, expansion 4, 3x3, on 1x16x32x32 (fp32): unfused moves x twice
    (expansion and residual), the 64-channel expanded and depthwise maps twice each, y once;
    fused with one tile reads x and writes y once. Weights: 1024+128+128 (expand conv, BN
    weight/bias + running stats) + 576+256 (depthwise, BN) + 1024+64 (project, BN) = 3,200
    floats counting BN running statistics. [calc]"""
    block = MBConv(16, 16, expand_ratio=4.0, kernel_size=3)
    fused = FusedResidualBlock(block, 32)
    hw_elems = 32 * 32
    weights = (1024 + 4 * 64) + (576 + 4 * 64) + (1024 + 4 * 16)
    assert weights == 3_200
    traffic = fused.memory_traffic((1, 16, 32, 32))
    assert traffic["unfused"] == 4 * (3 * 16 * hw_elems + 4 * 64 * hw_elems + weights)
    assert traffic["fused"] == 4 * (2 * 16 * hw_elems + weights)
    small_tiles = FusedResidualBlock(block, 4).memory_traffic((1, 16, 32, 32))
    assert traffic["fused"] < small_tiles["fused"] < traffic["unfused"]  # halos re-read


def test_bad_inputs():
    block = MBConv(8, 8)
    with pytest.raises(RuntimeError, match="eval"):
        FusedResidualBlock(block)(torch.randn(1, 8, 8, 8))
    with pytest.raises(ValueError, match="squeeze-excitation"):
        FusedResidualBlock(MBConv(8, 8, se_ratio=0.25))
    with pytest.raises(TypeError, match="MBConv"):
        FusedResidualBlock(nn.Conv2d(8, 8, 3))
    with pytest.raises(ValueError, match="tile_size"):
        FusedResidualBlock(block, 0)
    with pytest.raises(ValueError, match=r"expects \(B, 8"):
        FusedResidualBlock(block).eval()(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="peak_flops"):
        HardwareProfile(0.0, 1e9)
    with pytest.raises(ValueError, match="bandwidth"):
        HardwareProfile(1e12, float("nan"))
    with pytest.raises(ValueError, match="efficiency"):
        LatencyModel(1e12).latency(1e9, 1.5)
    with pytest.raises(ValueError, match="latency"):
        LatencyModel(1e12).efficiency(1e9, 0.0)
    with pytest.raises(ValueError, match="elem_bytes"):
        layer_costs(_toy_net(), torch.randn(1, 3, 8, 8), elem_bytes=0)


def test_fractional_elem_bytes_and_wrong_hardware_are_errors():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    x = torch.rand(1, 3, 8, 8)
    # 2.5 bytes per element gave fractional byte counts
    with pytest.raises(ValueError, match="elem_bytes must be an integer >= 1, got 2.5"):
        layer_costs(model, x, elem_bytes=2.5)
    with pytest.raises(TypeError, match="hw must be a HardwareProfile, got str"):
        waterline(model, x, "gpu")  # was an AttributeError on 'cache_bytes'


def test_fused_block_checks_tile_size_elem_bytes_and_latency_flops():
    with pytest.raises(ValueError, match="tile_size must be a positive int"):
        FusedResidualBlock(MBConv(8, 8), 2.5)  # was "'float' object is not iterable"
    fused = FusedResidualBlock(MBConv(8, 8), 4).eval()
    with pytest.raises(ValueError, match="elem_bytes must be an integer >= 1, got 0"):
        fused.memory_traffic((1, 8, 8, 8), elem_bytes=0)  # gave 0 bytes
    with pytest.raises(ValueError, match="flops must be >= 0"):
        LatencyModel(1e12).efficiency(float("nan"), 1.0)  # gave NaN
