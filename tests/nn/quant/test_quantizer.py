import pytest
import torch

from graphkit.nn.quant import FixedPointQuantizer, QFormat, fixed_point_quantize
from graphkit.nn.quant.formats import act_format, weight_format
from graphkit.nn.quant.quantizer import quantize_to_int

FORMATS = [QFormat(i, f, s) for i in (-1, 0, 1, 3) for f in (1, 2, 5) for s in (True, False)
           if i + f >= 1]


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_outputs_on_grid_inside_range(fmt):
    x = torch.linspace(-20, 20, 4001)
    q = fixed_point_quantize(x, fmt)
    k = q * 2 ** fmt.frac_bits
    assert torch.equal(k, k.round())
    lo, hi = fmt.range
    assert q.min() == lo and q.max() == hi
    inside = (x >= lo) & (x <= hi)
    assert (q[inside] - x[inside]).abs().max() <= fmt.step / 2 + 1e-6


def test_ranges_exact():
    assert QFormat(2, 2, True).range == (-2.0, 1.75)
    assert QFormat(2, 2, False).range == (0.0, 3.75)
    assert QFormat(-1, 3, True).range == (-0.25, 0.125)
    assert QFormat(4, 4).bits == 8 and QFormat(4, 4).qmin == -128 and QFormat(4, 4).qmax == 127


def test_round_half_up():
    fmt = QFormat(4, 1)
    assert fixed_point_quantize(torch.tensor([0.25, -0.25, 0.75]), fmt).tolist() == \
        [0.5, 0.0, 1.0]


def test_ste_gradient_one_inside_zero_outside():
    fmt = QFormat(2, 2)
    x = torch.tensor([-3.0, -2.0, -0.3, 0.1, 1.75, 1.8, 5.0], requires_grad=True)
    fixed_point_quantize(x, fmt).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_full_precision_identity():
    x = torch.randn(50, requires_grad=True)
    q = FixedPointQuantizer(QFormat.full())(x)
    assert torch.equal(q, x)
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones(50))
    assert QFormat.full().bits == 32 and QFormat.of_bits(32, 1).is_full


def test_bad_formats():
    with pytest.raises(ValueError, match="frac_bits"):
        QFormat(2, -1)
    with pytest.raises(ValueError, match="int_bits \\+ frac_bits"):
        QFormat(-2, 1)
    with pytest.raises(ValueError, match="bits"):
        weight_format(1)
    with pytest.raises(ValueError, match="bits"):
        act_format(20)
    with pytest.raises(ValueError, match="full precision"):
        _ = QFormat.full().qmin
    with pytest.raises(ValueError, match="int_bits must be an integer, got 2.5"):
        QFormat(2.5, 1)


def test_quantize_to_int_rejects_nan():
    fmt = QFormat(2, 2)
    with pytest.raises(ValueError, match="weight holds NaN values, which have no integer code"):
        quantize_to_int(torch.tensor([1.0, float("nan")]), fmt, name="weight")
    assert quantize_to_int(torch.tensor([float("inf"), -float("inf")]), fmt).tolist() == \
        [fmt.qmax, fmt.qmin]


@pytest.mark.parametrize("bits", [2, 4, 8, 16, 32])
def test_default_formats_have_their_bits(bits):
    assert weight_format(bits).bits == bits and act_format(bits).bits == bits


def test_full_precision_block_bypasses_and_restores():
    from graphkit.nn.quant.quantizer import full_precision
    x = torch.linspace(-3, 3, 101)
    fmt = QFormat(2, 2, signed=True)
    q = fixed_point_quantize(x, fmt)
    assert not torch.equal(q, x)
    with full_precision():
        assert torch.equal(fixed_point_quantize(x, fmt), x)
        with full_precision(False):  # an inner disabled block keeps the outer bypass
            assert torch.equal(fixed_point_quantize(x, fmt), x)
    with full_precision(False):
        assert torch.equal(fixed_point_quantize(x, fmt), q)
    with pytest.raises(RuntimeError), full_precision():
        raise RuntimeError
    assert torch.equal(fixed_point_quantize(x, fmt), q)


def test_wide_formats_quantise_exactly_in_float32():
    # a 31-bit format is wider than float32's significand: codes are computed in float64
    from graphkit.nn.quant.quantizer import QFormat, quantize_to_int

    fmt = QFormat(1, 30)
    x = torch.tensor([10.0, -10.0])
    assert quantize_to_int(x, fmt).tolist() == [fmt.qmax, fmt.qmin]
    odd = QFormat(-6, 37)
    x = torch.tensor([8388609 * 2.0**-37], dtype=torch.float32)  # code 2^23 + 1, odd
    assert quantize_to_int(x, odd).tolist() == [8388609]
    q = fixed_point_quantize(torch.tensor([10.0, -10.0, 0.3]), fmt)
    assert q.dtype == torch.float32  # the grid values, rounded once to float32
    lo, hi = (torch.tensor(v, dtype=torch.float64) for v in fmt.range)
    assert torch.equal(q[:2], torch.stack([hi, lo]).float())


@pytest.mark.parametrize("int_bits", [1, 4, 12])
def test_unsigned_24_bit_codes_round_on_the_grid_in_float32(int_bits):
    # float32 cannot hold code + 1/2 past 2^23: grid values of the upper half moved a step up
    fmt = QFormat(int_bits, 24 - int_bits, signed=False)
    codes = torch.tensor([2**23 + 1, 2**24 - 3, 12345], dtype=torch.float64)
    x = (codes * fmt.step).float()
    expected = (quantize_to_int(x, fmt) * fmt.step).float()
    assert torch.equal(fixed_point_quantize(x, fmt), expected)

