import pytest
import torch
import torch.nn.functional as F

from graphkit.extras._core.counting import count_params
from graphkit.extras.layers.complex import (
    ComplexConv2d,
    apply_complex_mask,
    bounded_complex_mask,
    from_pseudo_complex,
    to_pseudo_complex,
)


@pytest.mark.parametrize("dilation", [1, 2])
def test_pseudo_complex_conv_equals_complex_arithmetic(dilation):
    """Reference: the convolution done directly on complex64 tensors, element by element
    (a complex sum of products over the window, not the block-weight trick)."""
    torch.manual_seed(0)
    conv = ComplexConv2d(3, 4, 3, dilation=dilation)
    z = torch.randn(2, 3, 7, 6, dtype=torch.complex64)
    w = torch.complex(conv.weight_real, conv.weight_imag)
    b = torch.complex(conv.bias_real, conv.bias_imag)
    zp = F.pad(z.real, (dilation,) * 4) + 1j * F.pad(z.imag, (dilation,) * 4)
    want = torch.zeros(2, 4, 7, 6, dtype=torch.complex64)
    for ky in range(3):
        for kx in range(3):
            window = zp[:, :, ky * dilation : ky * dilation + 7, kx * dilation : kx * dilation + 6]
            want += torch.einsum("oi,bihw->bohw", w[:, :, ky, kx], window)
    want += b[None, :, None, None]
    got = from_pseudo_complex(conv(to_pseudo_complex(z)))
    assert (got - want).abs().max().item() < 1e-5


def test_counts_and_round_trip():
    assert count_params(ComplexConv2d(3, 4, 3)) == 2 * (4 * 3 * 9 + 4)
    assert count_params(ComplexConv2d(3, 4, 1, bias=False)) == 2 * 12
    z = torch.randn(2, 3, 4, 5, dtype=torch.complex64)
    assert torch.equal(from_pseudo_complex(to_pseudo_complex(z)), z)


def test_masks_multiply_as_complex_numbers_and_are_bounded():
    torch.manual_seed(0)
    m = torch.randn(2, 1, 4, 5, dtype=torch.complex64)
    s = torch.randn(2, 1, 4, 5, dtype=torch.complex64)
    got = from_pseudo_complex(apply_complex_mask(to_pseudo_complex(m), to_pseudo_complex(s)))
    torch.testing.assert_close(got, m * s)
    bounded = from_pseudo_complex(bounded_complex_mask(to_pseudo_complex(m)))
    torch.testing.assert_close(bounded.abs(), torch.tanh(m.abs()), atol=1e-6, rtol=1e-5)
    # tanh saturates to 1.0 in float32, and z / |z| may then round one ulp above it.
    big = from_pseudo_complex(bounded_complex_mask(to_pseudo_complex(10 * m))).abs()
    assert big.max() <= 1 + 2 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(bounded.angle(), m.angle(), atol=1e-5, rtol=0)


def test_bad_inputs():
    conv = ComplexConv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"\(B, 2, C, H, W\)"):
        conv(torch.randn(2, 6, 5, 5))
    with pytest.raises(ValueError, match="3 complex channels"):
        conv(torch.randn(2, 2, 4, 5, 5))
    with pytest.raises(ValueError, match="odd kernels"):
        ComplexConv2d(3, 4, 2)
    with pytest.raises(ValueError, match="complex tensor"):
        to_pseudo_complex(torch.randn(2, 3))


def test_mask_that_does_not_broadcast_is_named():
    with pytest.raises(ValueError, match=r"mask \(1, 2, 2, 4, 4\) does not broadcast"):
        apply_complex_mask(torch.randn(1, 2, 2, 4, 4), torch.randn(1, 2, 2, 5, 4))


def test_non_positive_dilation_is_named():
    with pytest.raises(ValueError, match="dilation must be a positive integer, got 0"):
        ComplexConv2d(2, 2, 3, dilation=0)
