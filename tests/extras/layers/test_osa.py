import pytest
import torch

from graphkit.extras import count_macs, count_params
from graphkit.extras.layers.osa import OSAModule


def test_shape_and_aggregation_width():
    m = OSAModule(16, 8, 24, num_layers=3)
    y = m(torch.randn(2, 16, 9, 7))
    assert y.shape == (2, 24, 9, 7)
    # the 1x1 fuses the input and every 3x3 output once: 16 + 3 * 8 channels
    assert m.concat.conv.in_channels == 16 + 3 * 8
    assert [layer.conv.in_channels for layer in m.layers] == [16, 8, 8]


def test_params_and_macs_equal_the_closed_form():
    c_in, c_s, c_out, n, h, w = 16, 8, 24, 3, 6, 5
    m = OSAModule(c_in, c_s, c_out, num_layers=n)
    convs = 9 * c_in * c_s + (n - 1) * 9 * c_s * c_s + (c_in + n * c_s) * c_out
    bn = 2 * (n * c_s + c_out)
    assert count_params(m) == convs + bn
    # every conv keeps the H x W map: MACs = weights x pixels
    assert count_macs(m, (1, c_in, h, w)) == convs * h * w


def test_identity_adds_the_input():
    torch.manual_seed(0)
    plain = OSAModule(8, 4, 8, num_layers=2).eval()
    skip = OSAModule(8, 4, 8, num_layers=2, identity=True).eval()
    skip.load_state_dict(plain.state_dict())
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(skip(x), plain(x) + x)


def test_bad_inputs():
    with pytest.raises(ValueError, match="identity needs in_channels == concat_channels"):
        OSAModule(8, 4, 16, identity=True)
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        OSAModule(8, 4, 16, num_layers=0)
    with pytest.raises(ValueError, match=r"expects \(B, 8, H, W\)"):
        OSAModule(8, 4, 16)(torch.randn(1, 7, 5, 5))
