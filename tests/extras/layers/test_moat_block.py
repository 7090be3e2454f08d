import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras import count_params
from graphkit.extras._core.blocks import MBConv
from graphkit.extras.layers.moat_block import MOATBlock, MOATMBConv, same_avg_pool


@torch.no_grad()
def _randomise(module):
    """Random weights and batch-norm statistics, so every term shows in the output."""
    for p in module.parameters():
        p.normal_(0.0, 0.3)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.3)
            m.running_var.uniform_(0.5, 1.5)
    return module.eval()


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0, bn.eps)


def test_mbconv_params_by_hand():
    """8 -> 16 channels, stride 2: hidden 4 × 16 = 64, SE width int(16 × 0.25) = 4."""
    c_in, c_out, mid, rd = 8, 16, 64, 4
    expected = (
        2 * c_in  # pre-norm BN
        + (c_in * mid + 2 * mid)  # 1×1 expansion (no bias) + BN
        + (mid * 9 + 2 * mid)  # 3×3 depthwise (no bias) + BN
        + (mid * rd + rd + rd * mid + mid)  # SE
        + (mid * c_out + c_out)  # 1×1 projection with bias, no norm
        + (c_in * c_out + c_out)  # shortcut 1×1 conv with bias
    )
    block = MOATMBConv(c_in, c_out, stride=2)
    assert isinstance(block, MBConv)
    assert count_params(block) == expected
    assert count_params(MOATMBConv(16, 16, se_ratio=0.0)) == (
        2 * 16 + 16 * 64 + 2 * 64 + 64 * 9 + 2 * 64 + 64 * 16 + 16
    )


def test_mbconv_dataflow_equals_the_official_order():
    """shortcut = conv1x1(avgpool2(x)); branch = proj(SE(act(BN(dw(act(BN(expand(BN(x)))))))))."""
    torch.manual_seed(0)
    m = _randomise(MOATMBConv(6, 8, stride=2))
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        shortcut = F.conv2d(F.avg_pool2d(x, 2, 2), m.shortcut.weight, m.shortcut.bias)
        h = _bn(x, m.pre_norm)
        h = F.gelu(_bn(F.conv2d(h, m.expand.conv.weight), m.expand.norm))
        h = F.conv2d(h, m.depthwise.conv.weight, stride=2, padding=1, groups=32)
        h = F.gelu(_bn(h, m.depthwise.norm))
        s = h.mean(dim=(2, 3), keepdim=True)
        s = F.conv2d(
            F.silu(F.conv2d(s, m.se.reduce.weight, m.se.reduce.bias)),
            m.se.expand.weight,
            m.se.expand.bias,
        )
        h = h * torch.sigmoid(s)
        want = shortcut + F.conv2d(h, m.project.conv.weight, m.project.conv.bias)
        torch.testing.assert_close(m(x), want, atol=1e-5, rtol=1e-5)
    assert m.se.reduce.out_channels == 2  # int(8 * 0.25): from the output width


def test_same_avg_pool_follows_tensorflow_padding():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    out = same_avg_pool(x, 2, 2)  # pads one row/column after; padded cells not counted
    assert out.shape == (1, 1, 3, 3)
    assert out[0, 0, 0, 0] == x[0, 0, :2, :2].mean()
    assert out[0, 0, 0, 2] == x[0, 0, :2, 4].mean()
    assert out[0, 0, 2, 2] == x[0, 0, 4, 4]
    out3 = same_avg_pool(x, 3, 2)  # pads one before and one after
    assert out3.shape == (1, 1, 3, 3)
    assert out3[0, 0, 0, 0] == x[0, 0, :2, :2].mean()
    assert out3[0, 0, 1, 1] == x[0, 0, 1:4, 1:4].mean()
    y = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(same_avg_pool(y, 2, 2), F.avg_pool2d(y, 2, 2))
    out8 = same_avg_pool(y, 3, 2)  # even size: one row/column after only
    torch.testing.assert_close(out8[..., 0, 0], y[..., :3, :3].mean(dim=(-2, -1)))
    torch.testing.assert_close(out8[..., 3, 3], y[..., 6:, 6:].mean(dim=(-2, -1)))


def test_moat_block_is_mbconv_then_attention_without_mlp():
    torch.manual_seed(1)
    block = _randomise(MOATBlock(16, 64, stride=2, rel_pos_size=4))
    assert block.attn.num_heads == 2 and block.attn.rel_pos.table.shape == (2, 7, 7)
    assert isinstance(block.mbconv.se, nn.Identity)  # the MOAT block's MBConv has no SE
    assert not any(isinstance(m, nn.Linear) and m.out_features == 4 * 64 for m in block.modules())
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        z = block.mbconv(x)
        t = F.layer_norm(z.permute(0, 2, 3, 1), (64,), block.norm.weight, block.norm.bias)
        y = block.attn(t.reshape(2, 16, 64), (4, 4)).reshape(2, 4, 4, 64)
        torch.testing.assert_close(block(x), z + y.permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)
    assert block(x).shape == (2, 64, 4, 4)


def test_window_equal_to_the_feature_size_gives_global_attention():
    torch.manual_seed(2)
    block = _randomise(MOATBlock(32, 32, rel_pos_size=3))
    x = torch.randn(2, 32, 6, 4)
    with torch.no_grad():
        global_out = block(x)
        block.window = (6, 4)
        torch.testing.assert_close(block(x), global_out, atol=1e-6, rtol=1e-6)
        block.window = (3, 2)  # six windows, each attended on its own
        windowed = block(x)
        z = block.mbconv(x)
        t = F.layer_norm(z.permute(0, 2, 3, 1), (32,), block.norm.weight, block.norm.bias)
        for i in range(0, 6, 3):
            for j in range(0, 4, 2):
                tokens = t[:, i : i + 3, j : j + 2].reshape(2, 6, 32)
                y = block.attn(tokens, (3, 2)).reshape(2, 3, 2, 32).permute(0, 3, 1, 2)
                torch.testing.assert_close(
                    windowed[..., i : i + 3, j : j + 2],
                    z[..., i : i + 3, j : j + 2] + y,
                    atol=1e-5,
                    rtol=1e-5,
                )
    assert not torch.allclose(windowed, global_out, atol=1e-4)


def test_without_relative_bias_and_param_count():
    c = 64
    block = MOATBlock(c, c, rel_pos_size=None)
    assert block.attn.rel_pos is None
    attn = 4 * (c * c + c) + 2 * c  # q, k, v, o with biases; the LayerNorm
    assert count_params(block) == count_params(block.mbconv) + attn
    with_bias = MOATBlock(c, c, rel_pos_size=7)
    assert count_params(with_bias) - count_params(block) == 2 * 13 * 13


def test_bad_arguments():
    with pytest.raises(ValueError, match="head_dim=32 must divide out_channels=48"):
        MOATBlock(16, 48)
    with pytest.raises(ValueError, match="window must be a pair"):
        MOATBlock(16, 32, window=(4, 4, 4))
    with pytest.raises(ValueError, match="window_h must be a positive integer"):
        MOATBlock(16, 32, window=(0, 4))
    with pytest.raises(ValueError, match="must divide the feature size"):
        MOATBlock(16, 32, window=(3, 3)).eval()(torch.randn(1, 16, 4, 4))
    with pytest.raises(ValueError, match="MOATMBConv expects 16 input channels"):
        MOATMBConv(16, 32)(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MOATMBConv(16, 32, stride=3)
    with pytest.raises(ValueError, match="drop_path must lie in"):
        MOATMBConv(16, 32, drop_path=1.0)
    with pytest.raises(ValueError, match="pool_size must be a positive integer"):
        MOATMBConv(16, 32, pool_size=0)


def test_window_and_pool_arguments_are_named():
    block = MOATBlock(8, 8, head_dim=4)
    with pytest.raises(ValueError, match=r"window must be a pair \(h, w\) or None, got 4"):
        block.window = 4
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(ValueError, match="kernel_size must be a positive integer, got 0"):
        same_avg_pool(x, 0, 2)
    with pytest.raises(ValueError, match="stride must be a positive integer, got 0"):
        same_avg_pool(x, 2, 0)


def test_negative_se_ratio_is_named():
    with pytest.raises(ValueError, match="se_ratio must be >= 0"):
        MOATMBConv(8, 8, se_ratio=-1)  # was silently no squeeze-excite
