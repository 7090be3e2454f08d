import pytest
import torch

from graphkit.extras._core.counting import count_params
from graphkit.extras.layers.fsmn import (
    ChannelLayerNorm,
    DepthwiseConvModule,
    DilatedDenseMemory,
    DilatedFSMN,
    DilatedFSMNBlock,
    FFConvM,
    GatedConvUnit,
)


def _receptive_offsets(module, channels, length, layout="btc"):
    """Time offsets of the inputs that reach the output at the centre step (by gradient)."""
    torch.manual_seed(0)
    shape = (1, length, channels) if layout == "btc" else (1, channels, length)
    x = torch.randn(shape, requires_grad=True)
    module.eval()
    y = module(x)
    centre = length // 2
    (y[0, centre] if layout == "btc" else y[0, :, centre]).sum().backward()
    g = x.grad[0].abs().sum(-1 if layout == "btc" else 0)
    idx = torch.nonzero(g > 0).flatten()
    return idx.min().item() - centre, idx.max().item() - centre


def test_dense_memory_shapes_and_dense_grouped_widths():
    m = DilatedDenseMemory(8, lorder=5, depth=3)
    assert m(torch.randn(2, 8, 30)).shape == (2, 8, 30)
    # layer i reads the concatenation of i earlier outputs and the input: 8 * (i + 1) channels
    assert [c.in_channels for c in m.convs] == [8, 16, 24]
    assert [c.dilation[0] for c in m.convs] == [1, 2, 4]
    # grouped (8 groups): each filter holds (i + 1) * (2L - 1) taps; IN affine 2C; PReLU C
    assert count_params(m) == sum(8 * (i + 1) * 9 + 2 * 8 + 8 for i in range(3))


def test_dense_memory_receptive_field_is_the_sum_of_dilated_spans():
    # layer i spans (L - 1) * 2^i steps each side; instance norm is global in time, so measure
    # the receptive field with the norm switched off (affine identity, no statistics)
    m = DilatedDenseMemory(4, lorder=4, depth=2)
    for norm in m.norms:
        norm.forward = lambda x: x  # identity, for this measurement only
    assert _receptive_offsets(m, 4, 64, layout="bct") == (-(3 * 1 + 3 * 2), 3 * 1 + 3 * 2)


def test_fsmn_residual_and_counts():
    f = DilatedFSMN(6, hidden=10, lorder=3, depth=2)
    x = torch.randn(2, 11, 6)
    assert f(x).shape == x.shape
    memory = sum(6 * (i + 1) * 5 + 3 * 6 for i in range(2))
    assert count_params(f) == 6 * 10 + 10 + 10 * 6 + memory
    # a zero projection makes the memory see zeros; the residual then passes x unchanged
    # up to the memory's response to a constant zero input (PReLU(IN-affine bias))
    torch.nn.init.zeros_(f.project.weight)
    for norm in f.memory.norms:
        torch.nn.init.zeros_(norm.bias)
    torch.testing.assert_close(f.eval()(x), x)


def test_gated_conv_unit_gates_with_the_v_branch():
    torch.manual_seed(0)
    g = GatedConvUnit(8, lorder=3).eval()
    x = torch.randn(2, 7, 8)
    expected = g.to_v(x) * g.fsmn(g.to_u(x)) + x
    torch.testing.assert_close(g(x), expected)
    # zeroing the v-branch output linear (weight and bias) and its conv leaves the residual only
    for p in g.to_v.parameters():
        if p.dim() > 1 or p is g.to_v.linear.bias:
            torch.nn.init.zeros_(p)
    torch.testing.assert_close(g(x), x)


def test_ffconvm_is_norm_linear_silu_residual_depthwise():
    torch.manual_seed(0)
    m = FFConvM(6, 4, kernel_size=3).eval()
    x = torch.randn(2, 9, 6)
    h = torch.nn.functional.silu(m.linear(m.norm(x)))
    conv = torch.nn.functional.conv1d(h.transpose(1, 2), m.conv.conv.weight, padding=1, groups=4)
    torch.testing.assert_close(m(x), h + conv.transpose(1, 2))
    assert count_params(m) == 2 * 6 + 6 * 4 + 4 + 4 * 3


def test_channel_layer_norm_normalises_each_step():
    y = ChannelLayerNorm(5)(torch.randn(3, 5, 7) * 4 + 2)
    torch.testing.assert_close(y.mean(1), torch.zeros(3, 7), atol=1e-5, rtol=0)


def test_block_count_matches_the_official_widths():
    c, inner, k, lorder = 16, 8, 17, 20
    b = DilatedFSMNBlock(c, inner_channels=inner, lorder=lorder)
    ff = 2 * inner + inner * inner + inner + inner * k
    memory = inner * (2 * lorder - 1) * (1 + 2) + 2 * (2 * inner + inner)
    gcu = 2 * ff + inner * inner + inner + inner * inner + memory
    expected = c * inner + inner + 1 + 2 * inner + gcu + 2 * inner + inner * c + c
    assert count_params(b) == expected
    x = torch.randn(2, 13, c)
    assert b(x).shape == x.shape


def test_bad_inputs():
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        FFConvM(4, 4, kernel_size=4)
    with pytest.raises(ValueError, match="lorder"):
        DilatedDenseMemory(4, lorder=0)
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        DilatedFSMNBlock(8, inner_channels=4)(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"\(B, 4, T\)"):
        DilatedDenseMemory(4)(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="dropout"):
        GatedConvUnit(4, dropout=1.5)


def test_wrong_width_is_named():
    with pytest.raises(ValueError, match=r"ChannelLayerNorm expects a \(B, 4, T\) tensor"):
        ChannelLayerNorm(4)(torch.randn(1, 10, 5))
    with pytest.raises(ValueError, match=r"DepthwiseConvModule expects a \(B, T, 4\) tensor"):
        DepthwiseConvModule(4)(torch.randn(1, 10, 5))
    with pytest.raises(ValueError, match=r"FFConvM expects a \(B, T, 4\) tensor"):
        FFConvM(4, 8)(torch.randn(1, 10, 5))
    with pytest.raises(ValueError, match=r"FFConvM expects .* got shape \(10, 4\)"):
        FFConvM(4, 8)(torch.randn(10, 4))
