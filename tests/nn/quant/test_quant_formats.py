import math

import pytest
import torch

from graphkit.nn.quant import QuantGNN, fixed_point_quantize, uniform_specs
from graphkit.nn.quant.formats import glorot_bound, moved_format, weight_format


@pytest.mark.parametrize("bits,expected", [(2, "sQ-1.3"), (4, "sQ0.4"), (8, "sQ1.7"),
                                           (16, "sQ3.13"), (32, "fp32")])
def test_default_bound_gives_the_fixed_table(bits, expected):
    assert str(weight_format(bits)) == expected


@pytest.mark.parametrize("bound", [0.01, 0.04, 0.3, 1.0, 1.7])
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_range_covers_bound_with_headroom(bits, bound):
    fmt = weight_format(bits, bound)
    s = 2.0 ** math.ceil(math.log2(bound))
    assert fmt.bits == bits
    assert fmt.range[0] == -s * 2 ** (bits // 4)
    assert fmt.range[0] <= -bound
    # a grid step no coarser than the bound: initial weights are not all rounded to zero
    assert fmt.step <= bound


def test_two_bit_wide_layer_is_not_rounded_to_zero():
    # CiteSeer's first GCN layer (3703 -> 16): a layer-independent 2-bit split (sQ-1.3,
    # grid 1/8) rounds every Glorot-initialised weight (|w| <= 0.04) to zero.
    torch.manual_seed(0)
    model = QuantGNN(3703, uniform_specs("gcn", 16, 6, 2, 8))
    conv = model.convs[0]
    assert conv.weight_format == weight_format(2, glorot_bound(3703, 16))
    assert (fixed_point_quantize(conv.weight, weight_format(2)) == 0).all()
    nonzero = (fixed_point_quantize(conv.weight, conv.weight_format) != 0).float().mean()
    assert nonzero > 0.4


def test_bad_bounds():
    with pytest.raises(ValueError, match="bound"):
        weight_format(4, 0.0)
    with pytest.raises(ValueError, match="bound"):
        weight_format(4, float("nan"))
    with pytest.raises(ValueError, match="fans"):
        glorot_bound(0, 3)


@pytest.mark.parametrize("to_bound", [0.01, 0.3, 0.8, 1.7])
@pytest.mark.parametrize("from_bound", [0.02, 0.04, 0.25, 1.0])
@pytest.mark.parametrize("bits", [2, 4, 8, 16, 32])
def test_moved_format_is_the_weight_format_of_the_new_range(bits, from_bound, to_bound):
    fmt = moved_format(weight_format(bits, from_bound), from_bound, to_bound)
    assert fmt == weight_format(bits, to_bound)


def test_moved_format_keeps_the_width_and_bad_bounds():
    # a move beyond the width keeps every bit integer, never a negative fraction
    fmt = moved_format(weight_format(2, 0.01), 0.01, 1e6)
    assert fmt.bits == 2 and fmt.frac_bits == 0
    with pytest.raises(ValueError, match="to_bound"):
        moved_format(weight_format(4), 0.25, 0.0)
