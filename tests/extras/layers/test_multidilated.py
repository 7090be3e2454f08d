import pytest
import torch
import torch.nn.functional as F

from graphkit.extras._core.counting import count_params
from graphkit.extras.layers.complex import from_pseudo_complex, to_pseudo_complex
from graphkit.extras.layers.multidilated import D2Block, D3Block, MultiDilatedConv2d


def test_each_slice_gets_its_own_dilation():
    torch.manual_seed(0)
    m = MultiDilatedConv2d([2, 3, 1], 4, kernel_size=3)
    assert m.dilations == [1, 2, 4]
    x = torch.randn(1, 6, 11, 9)
    parts = x.split([2, 3, 1], dim=1)
    want = sum(
        F.conv2d(p, c.weight, c.bias, padding=d, dilation=d)
        for p, c, d in zip(parts, m.convs, [1, 2, 4], strict=True)
    )
    torch.testing.assert_close(m(x), want)
    assert count_params(m) == 9 * 4 * (2 + 3 + 1) + 4  # one bias for the sum


def test_receptive_field_of_the_last_slice_uses_its_dilation():
    m = MultiDilatedConv2d([1, 1], 1, kernel_size=3)
    x = torch.zeros(1, 2, 17, 17, requires_grad=True)
    m(x)[0, 0, 8, 8].backward()
    rows = torch.nonzero(x.grad[0, 1].abs().sum(1)).flatten().tolist()
    assert rows == [6, 8, 10]  # dilation 2 on the second slice
    rows0 = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten().tolist()
    assert rows0 == [7, 8, 9]


def test_complex_multidilated_equals_complex_arithmetic():
    torch.manual_seed(0)
    m = MultiDilatedConv2d([2, 2], 3, complex=True)
    z = torch.randn(1, 4, 6, 7, dtype=torch.complex64)
    got = from_pseudo_complex(m(to_pseudo_complex(z)))
    want = 0
    for part, conv, d in zip(z.split(2, dim=1), m.convs, [1, 2], strict=True):
        w = torch.complex(conv.weight_real, conv.weight_imag)
        want = want + (
            F.conv2d(part.real, w.real, padding=d, dilation=d)
            - F.conv2d(part.imag, w.imag, padding=d, dilation=d)
            + 1j * (F.conv2d(part.imag, w.real, padding=d, dilation=d)
                    + F.conv2d(part.real, w.imag, padding=d, dilation=d))
        )
    c0 = m.convs[0]
    want = want + torch.complex(c0.bias_real, c0.bias_imag)[None, :, None, None]
    assert (got - want).abs().max().item() < 1e-5


def test_d2_and_d3_widths_keep_the_resolution():
    d2 = D2Block(5, growth=3, num_layers=4)
    y = d2(torch.randn(2, 5, 9, 10))
    assert y.shape == (2, 12, 9, 10)
    assert [c.sections for c in d2.convs] == [[5], [5, 3], [5, 3, 3], [5, 3, 3, 3]]
    assert d2.convs[-1].dilations == [1, 2, 4, 8]
    d3 = D3Block(4, growth=2, num_layers=2, num_blocks=3, complex=True)
    assert [b.in_channels for b in d3.blocks] == [4, 8, 12]
    assert d3(torch.randn(2, 2, 4, 7, 5)).shape == (2, 2, 12, 7, 5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="one dilation per section"):
        MultiDilatedConv2d([2, 2], 3, dilations=[1])
    with pytest.raises(ValueError, match="odd"):
        MultiDilatedConv2d([2], 3, kernel_size=4)
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        MultiDilatedConv2d([2, 2], 3)(torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match="pseudo-complex"):
        D3Block(4, 2, 2, 2, complex=True)(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="sections"):
        MultiDilatedConv2d([], 3)


def test_non_positive_dilation_is_named():
    with pytest.raises(ValueError, match=r"dilations\[1\] must be a positive integer, got 0"):
        MultiDilatedConv2d([2, 2], 4, dilations=[1, 0])
