import functools

import pytest
import torch
from torch import nn

from graphkit.extras import count_params
from graphkit.extras._core.blocks import (
    MLP,
    ConvNormAct,
    DropPath,
    LayerScale,
    MBConv,
    SqueezeExcite,
)


def test_conv_norm_act_same_padding_and_bias_rule():
    m = ConvNormAct(3, 8, 3, stride=2)
    assert m(torch.randn(2, 3, 9, 10)).shape == (2, 8, 5, 5)
    assert m.conv.bias is None  # BN follows: its shift replaces the bias
    plain = ConvNormAct(3, 8, 5, norm_layer=None, act_layer=None)
    assert plain.conv.bias is not None and plain.conv.padding == (2, 2)
    bn = ConvNormAct(
        4, 4, 1, bias=True, norm_layer=functools.partial(nn.BatchNorm2d, momentum=0.05)
    )
    assert bn.norm.momentum == 0.05 and bn.conv.bias is not None
    # ReLU output is non-negative; no activation lets negatives through
    assert (m(torch.randn(1, 3, 6, 6)) >= 0).all()
    assert (plain(torch.randn(1, 3, 6, 6)) < 0).any()


def test_conv_norm_act_depthwise_params():
    m = ConvNormAct(8, 8, 3, groups=8, act_layer=None)
    assert count_params(m) == 8 * 9 + 2 * 8


def test_squeeze_excite_gate_in_open_unit_interval_and_scales_channels():
    torch.manual_seed(0)
    se = SqueezeExcite(16, rd_ratio=0.25)
    assert se.reduce.out_channels == 4
    assert count_params(se) == (16 * 4 + 4) + (4 * 16 + 16)
    x = 3 * torch.randn(2, 16, 5, 5)
    g = se.gate(x)
    assert g.shape == (2, 16, 1, 1)
    assert ((g > 0) & (g < 1)).all()
    torch.testing.assert_close(se(x), x * g)


def test_drop_path_identity_in_eval_and_unbiased_in_training():
    torch.manual_seed(0)
    dp = DropPath(0.3)
    x = torch.randn(4000, 3, 2)
    assert dp.eval()(x) is x
    y = dp.train()(x)
    # each sample is either dropped whole or kept and scaled by 1 / (1 - p)
    ratio = y / x
    per_sample = ratio.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))
    vals = per_sample[:, 0]
    assert torch.all((vals == 0) | torch.isclose(vals, torch.tensor(1 / 0.7)))
    # keep rate 0.7 +- 4 standard errors (sqrt(0.21 / 4000) = 0.0072)
    assert abs((vals > 0).float().mean().item() - 0.7) < 0.03
    ones = torch.ones(20000, 1)
    assert abs(dp(ones).mean().item() - 1.0) < 0.03  # E[y] = x
    assert DropPath(0.0).train()(x) is x


def test_layer_scale_tokens_and_maps():
    ls = LayerScale(6, init_value=0.1)
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(ls(x), 0.1 * x)
    maps = LayerScale(6, init_value=2.0, channel_dim=1)
    y = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(maps(y), 2.0 * y)
    with pytest.raises(ValueError, match="expects size 6 on dim -1"):
        ls(torch.randn(2, 6, 5))


def test_mlp_shapes_and_params():
    m = MLP(8, out_features=3)
    assert m.fc1.out_features == 32
    assert m(torch.randn(2, 7, 8)).shape == (2, 7, 3)
    assert count_params(m) == (8 * 32 + 32) + (32 * 3 + 3)
    with pytest.raises(ValueError, match="last dimension 8"):
        m(torch.randn(2, 7))


def test_mbconv_residual_only_for_stride_one_and_equal_widths():
    x = torch.randn(2, 8, 10, 10)
    same = MBConv(8, 8, expand_ratio=4, se_ratio=0.25).eval()
    assert same.has_residual
    assert same(x).shape == x.shape
    # zeroing the projection's BN scale leaves only the shortcut
    nn.init.zeros_(same.project.norm.weight)
    torch.testing.assert_close(same(x), x)
    down = MBConv(8, 8, stride=2).eval()
    assert not down.has_residual and down(x).shape == (2, 8, 5, 5)
    wider = MBConv(8, 16, kernel_size=5)
    assert not wider.has_residual and wider(x).shape == (2, 16, 10, 10)


def test_mbconv_param_count_closed_form():
    c_in, c_out, e, k, se = 16, 24, 6, 5, 0.25
    mid, rd = c_in * e, int(c_in * se)
    m = MBConv(c_in, c_out, expand_ratio=e, kernel_size=k, se_ratio=se)
    expected = (
        (c_in * mid + 2 * mid)  # expand 1x1 + BN
        + (mid * k * k + 2 * mid)  # depthwise + BN
        + (mid * rd + rd + rd * mid + mid)  # SE convs with bias
        + (mid * c_out + 2 * c_out)  # project 1x1 + BN
    )
    assert count_params(m) == expected
    no_expand = MBConv(8, 8, expand_ratio=1)
    assert isinstance(no_expand.expand, nn.Identity)
    assert count_params(no_expand) == (8 * 9 + 16) + (64 + 16)


def test_bad_block_arguments():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        ConvNormAct(8, 8, groups=3)
    with pytest.raises(ValueError, match="expects 3 input channels"):
        ConvNormAct(3, 8)(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"expects a \(B, C, H, W\)"):
        ConvNormAct(3, 8)(torch.randn(3, 5, 5))
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MBConv(8, 8, stride=3)
    with pytest.raises(ValueError, match="odd"):
        MBConv(8, 8, kernel_size=4)
    with pytest.raises(ValueError, match="drop_path needs a residual"):
        MBConv(8, 16, drop_path=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)
    with pytest.raises(ValueError, match="rd_ratio"):
        SqueezeExcite(8, rd_ratio=0.0)
    with pytest.raises(ValueError, match="channel_dim"):
        LayerScale(4, channel_dim=2)
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        MLP(0)
