import math

import pytest
import torch
import torch.nn.functional as F

from graphkit.extras._core.counting import count_macs, count_params
from graphkit.extras.layers.i2rmb import (
    I2RMB,
    HybridWindowAttention,
    LayerNorm2d,
    MetaMobileBlock,
    i2RMB,
)


def _reference_attention(attn: HybridWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Full attention over the padded map with a partition mask per pixel pair.

    Close: both pixels in the same w x w block. Remote: rows congruent modulo n1 and columns
    congruent modulo n2 (n = padded size / w). Written from the definitions, not from the
    window reshapes under test.
    """
    b, _, h, w = x.shape
    ws = attn.window_size if attn.window_size > 0 else None
    wh, ww = (ws, ws) if ws else (h, w)
    xp = F.pad(x, (0, (-w) % ww, 0, (-h) % wh))
    hp, wp = xp.shape[-2:]
    n1, n2 = hp // wh, wp // ww
    q, k = attn.qk(xp).chunk(2, dim=1)
    v = attn.v(xp)
    heads = attn.heads

    def split(t):
        return t.reshape(b, heads, t.size(1) // heads, hp * wp).transpose(-2, -1)

    q, k, v = split(q), split(k), split(v)
    rows = torch.arange(hp).repeat_interleave(wp)
    cols = torch.arange(wp).repeat(hp)
    close = (rows[:, None] // wh == rows[None] // wh) & (cols[:, None] // ww == cols[None] // ww)
    remote = (rows[:, None] % n1 == rows[None] % n1) & (cols[:, None] % n2 == cols[None] % n2)
    logits = (q @ k.transpose(-2, -1)) / math.sqrt(attn.head_dim)
    out = 0
    for mask in (close, remote):
        out = out + logits.masked_fill(~mask, float("-inf")).softmax(-1) @ v
    out = out.transpose(-2, -1).reshape(b, -1, hp, wp)
    return out[:, :, :h, :w]


@pytest.mark.parametrize(("size", "window"), [((14, 14), 7), ((10, 12), 4), ((6, 9), 0)])
def test_hybrid_window_attention_equals_masked_full_attention(size, window):
    """Divisible maps, padded maps, and global mode (window <= 0: one window, so the close
    and remote partitions coincide and the output is twice global attention)."""
    torch.manual_seed(0)
    attn = HybridWindowAttention(32, 48, head_dim=8, window_size=window)
    x = torch.randn(2, 32, *size)
    got = attn(x)
    assert got.shape == (2, 48, *size)
    torch.testing.assert_close(got, _reference_attention(attn, x), atol=1e-5, rtol=1e-5)


def test_remote_windows_reach_across_the_map():
    """A change in one corner moves the output at the opposite corner only through the
    remote (dilated) windows: close windows alone would not connect them."""
    torch.manual_seed(0)
    attn = HybridWindowAttention(16, 16, head_dim=8, window_size=2).eval()
    x = torch.randn(1, 16, 8, 8)
    x2 = x.clone()
    x2[..., 0, 0] += 1.0
    with torch.no_grad():
        d = (attn(x2) - attn(x)).abs()
    # pixel (0,0) shares its remote window with (4,4) (same residue mod 4) and its close
    # window with (1,1); (7,7) is in neither.
    assert d[..., 4, 4].max() > 1e-4 and d[..., 1, 1].max() > 1e-4
    assert d[..., 7, 7].max() == 0


def test_attention_macs_equal_the_official_per_block_count():
    """EMOv2-5M stage-3 attention (C=160, values 640, head 32, window 7) on a 14x14 map:
    qk 10,035,200 + v 20,070,400 + two partitions x (QK^T 1,536,640 + AV 6,146,560)
    = 45,472,000 MACs [calc]; the official training log (fvcore) lists this operator at
    45.472M (``stage3.1.eops.0``, zhangzjn/EMOv2 resources/Cls/log_train_EMOv2_5M_224.txt)."""
    attn = HybridWindowAttention(160, 640, head_dim=32, window_size=7)
    assert count_macs(attn, (1, 160, 14, 14)) == 45_472_000
    # parameters from the same log: qk 51,520 + v 103,040
    assert count_params(attn) == 160 * 320 + 320 + 160 * 640 + 640


def test_i2rmb_parameter_formula():
    """norm 2C + qk (2C^2 + 2C) + v (C*M + M) + dw (25M + 2M) + proj M*C + layer scale C,
    with M = 4C; equals the official 5M log's 0.275M for C=160 (274,720)."""
    c, m = 160, 640
    block = I2RMB(c, c, expand_ratio=4.0, head_dim=32, norm_layer=LayerNorm2d)
    expected = 2 * c + (2 * c * c + 2 * c) + (c * m + m) + (25 * m + 2 * m) + m * c + c
    assert count_params(block) == expected == 274_720


def test_residual_block_starts_near_identity_and_downsampling_block_has_no_skip():
    torch.manual_seed(0)
    block = i2RMB(32, 32, expand_ratio=2.0, head_dim=16, window_size=4).eval()
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        y = block(x)
    assert block.has_skip and (y - x).abs().max() < 1e-3  # layer scale starts at 1e-6
    down = I2RMB(32, 64, expand_ratio=4.0, attention=False, stride=2).eval()
    assert not down.has_skip
    assert down(x).shape == (2, 64, 4, 4)
    odd = I2RMB(32, 48, attention=False, stride=2).eval()
    assert odd(torch.randn(1, 32, 7, 9)).shape == (1, 48, 4, 5)


def test_meta_mobile_block_with_a_custom_expansion():
    """The abstraction takes any expansion operator; an identity expansion leaves the
    depthwise conv and projection."""
    block = MetaMobileBlock(16, 16, torch.nn.Identity(), 16, dw_kernel=3, layer_scale=0.0)
    assert count_params(block) == 2 * 16 + (9 * 16 + 2 * 16) + 16 * 16
    y = block(torch.randn(1, 16, 5, 5))
    assert y.shape == (1, 16, 5, 5)
    y.sum().backward()
    assert block.proj.conv.weight.grad is not None


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="head_dim"):
        HybridWindowAttention(30, 60, head_dim=8)
    with pytest.raises(ValueError, match="heads must divide"):
        HybridWindowAttention(32, 50, head_dim=8)
    with pytest.raises(ValueError, match="stride"):
        I2RMB(16, 16, head_dim=8, stride=3)
    with pytest.raises(ValueError, match="dw_kernel"):
        I2RMB(16, 16, head_dim=8, dw_kernel=4)
    with pytest.raises(ValueError, match="expand_ratio"):
        I2RMB(16, 16, expand_ratio=0)
    with pytest.raises(ValueError, match="drop_path needs"):
        I2RMB(16, 32, attention=False, stride=2, drop_path=0.1)
    with pytest.raises(ValueError, match=r"expects \(B, 16"):
        I2RMB(16, 16, head_dim=8)(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="LayerNorm2d"):
        LayerNorm2d(8)(torch.randn(8, 4))
