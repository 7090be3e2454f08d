import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from graphkit.extras import count_params
from graphkit.extras._core.attention import (
    MultiHeadSelfAttention,
    RelativePositionBias,
    scaled_dot_product,
    window_partition,
    window_reverse,
)


def _reference(x, q_w, q_b, k, v, heads, proj, bias=None):
    """Plain multi-head attention written out per head: softmax(Q K^T / sqrt(d) + B) V."""
    b, n, c = x.shape
    d = c // heads
    q = x @ q_w.T + q_b
    outs = []
    for h in range(heads):
        qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))
        logits = qh @ kh.transpose(-2, -1) / math.sqrt(d)
        if bias is not None:
            logits = logits + bias[h]
        outs.append(torch.softmax(logits, dim=-1) @ vh)
    return torch.cat(outs, dim=-1) @ proj.weight.T + proj.bias


@torch.no_grad()
def _randomise(module):
    """Unit-scale random weights, biases and bias tables, so that every term shows in the
    output (the default init, std 0.02 and zero biases, would leave it near zero)."""
    for p in module.parameters():
        p.normal_(0.0, 0.5)
    return module.eval()


def _kv(attn, src):
    kv = src @ attn.kv.weight.T + attn.kv.bias
    return kv[..., : attn.dim], kv[..., attn.dim :]


def _rel_bias_by_loops(table, h, w):
    out = torch.empty(table.shape[0], h * w, h * w)
    for i in range(h):
        for j in range(w):
            for x in range(h):
                for y in range(w):
                    out[:, i * w + j, x * w + y] = table[:, x - i + h - 1, y - j + w - 1]
    return out


def test_global_attention_equals_plain_softmax_reference():
    torch.manual_seed(0)
    attn = _randomise(MultiHeadSelfAttention(12, num_heads=3))
    x = torch.randn(2, 10, 12)
    with torch.no_grad():
        k, v = _kv(attn, x)
        want = _reference(x, attn.q.weight, attn.q.bias, k, v, 3, attn.proj)
        torch.testing.assert_close(attn(x), want, atol=1e-5, rtol=1e-5)


def test_spatial_reduction_attention_equals_reference_on_reduced_keys():
    torch.manual_seed(1)
    h, w, c, r = 8, 12, 8, 4
    attn = _randomise(MultiHeadSelfAttention(c, num_heads=2, sr_ratio=r))
    x = torch.randn(2, h * w, c)
    with torch.no_grad():
        fmap = x.transpose(1, 2).reshape(2, c, h, w)
        reduced = F.conv2d(fmap, attn.sr.weight, attn.sr.bias, stride=r)
        reduced = F.layer_norm(
            reduced.flatten(2).transpose(1, 2), (c,), attn.sr_norm.weight, attn.sr_norm.bias
        )
        assert reduced.shape == (2, h * w // r**2, c)
        k, v = _kv(attn, reduced)
        want = _reference(x, attn.q.weight, attn.q.bias, k, v, 2, attn.proj)
        torch.testing.assert_close(attn(x, (h, w)), want, atol=1e-5, rtol=1e-5)


def test_window_attention_equals_reference_inside_each_window():
    torch.manual_seed(2)
    h, w, c, (wh, ww) = 4, 6, 8, (2, 3)
    attn = _randomise(MultiHeadSelfAttention(c, num_heads=2, window=(wh, ww)))
    x = torch.randn(2, h * w, c)
    with torch.no_grad():
        got = attn(x, (h, w)).reshape(2, h, w, c)
        grid = x.reshape(2, h, w, c)
        for i0 in range(0, h, wh):
            for j0 in range(0, w, ww):
                tokens = grid[:, i0 : i0 + wh, j0 : j0 + ww].reshape(2, wh * ww, c)
                k, v = _kv(attn, tokens)
                want = _reference(tokens, attn.q.weight, attn.q.bias, k, v, 2, attn.proj)
                torch.testing.assert_close(
                    got[:, i0 : i0 + wh, j0 : j0 + ww].reshape(2, wh * ww, c),
                    want,
                    atol=1e-5,
                    rtol=1e-5,
                )


def test_relative_bias_lookup_and_attention_with_bias():
    torch.manual_seed(3)
    h, w = 3, 4
    bias = _randomise(RelativePositionBias(2, (h, w)))
    assert bias.table.shape == (2, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(bias(h, w), _rel_bias_by_loops(bias.table, h, w))
    attn = _randomise(MultiHeadSelfAttention(8, num_heads=2, rel_pos_size=(h, w)))
    x = torch.randn(2, h * w, 8)
    with torch.no_grad():
        k, v = _kv(attn, x)
        b = _rel_bias_by_loops(attn.rel_pos.table, h, w)
        want = _reference(x, attn.q.weight, attn.q.bias, k, v, 2, attn.proj, bias=b)
        torch.testing.assert_close(attn(x, (h, w)), want, atol=1e-5, rtol=1e-5)
        # the bias matters: dropping it changes the output
        assert not torch.allclose(
            attn(x, (h, w)),
            _reference(x, attn.q.weight, attn.q.bias, k, v, 2, attn.proj),
            atol=1e-4,
        )


def test_relative_bias_table_is_resized_bilinearly_for_another_grid():
    torch.manual_seed(4)
    bias = _randomise(RelativePositionBias(3, 7))
    with torch.no_grad():
        resized = F.interpolate(
            bias.table[None], size=(2 * 4 - 1, 2 * 5 - 1), mode="bilinear", align_corners=False
        )[0]
        torch.testing.assert_close(bias(4, 5), _rel_bias_by_loops(resized, 4, 5))
    assert count_params(bias) == 3 * 13 * 13  # one table, whatever the grid


def test_sra_attention_macs_equal_the_pvt_formula_at_stage1():
    """PVT stage 1 at 224²: a 56×56 grid, C = 64, R = 8. The attention products
    (Q K^T and A V) cost 2·N·(N/R²)·C MACs, the formula of PVT's get_flops.py."""
    n, c, r = 56 * 56, 64, 8
    attn = _randomise(MultiHeadSelfAttention(c, num_heads=1, sr_ratio=r))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        attn(torch.zeros(1, n, c), (56, 56))
    flops = counter.get_flop_counts()["Global"]
    attention_macs = sum(v for op, v in flops.items() if "bmm" in str(op)) // 2
    assert attention_macs == 2 * n * (n // r**2) * c == 19_668_992


def test_scaled_dot_product_matches_torch_sdpa_and_windows_round_trip():
    torch.manual_seed(5)
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    mask = torch.randn(5, 7)
    torch.testing.assert_close(
        scaled_dot_product(q, k, v, 0.5, mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.5),
        atol=1e-5,
        rtol=1e-5,
    )
    x = torch.randn(2, 6, 8, 3)
    win = window_partition(x, (3, 4))
    assert win.shape == (2 * 4, 12, 3)
    torch.testing.assert_close(win[1], x[0, :3, 4:].reshape(12, 3))
    torch.testing.assert_close(window_reverse(win, (3, 4), (6, 8)), x)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="num_heads=3 must divide dim=8"):
        MultiHeadSelfAttention(8, num_heads=3)
    with pytest.raises(ValueError, match="cannot be combined"):
        MultiHeadSelfAttention(8, 2, sr_ratio=2, window=4)
    with pytest.raises(ValueError, match="needs sr_ratio=1"):
        MultiHeadSelfAttention(8, 2, sr_ratio=2, rel_pos_size=4)
    with pytest.raises(ValueError, match="attn_drop must lie in"):
        MultiHeadSelfAttention(8, 2, attn_drop=1.5)
    with pytest.raises(ValueError, match=r"window\[0\] must be a positive integer"):
        MultiHeadSelfAttention(8, 2, window=(0, 2))
    sra = MultiHeadSelfAttention(8, 2, sr_ratio=2)
    with pytest.raises(ValueError, match="pass size"):
        sra(torch.randn(1, 16, 8))
    with pytest.raises(ValueError, match="does not match the 16 tokens"):
        sra(torch.randn(1, 16, 8), (4, 5))
    with pytest.raises(ValueError, match="sr_ratio=2 must divide"):
        sra(torch.randn(1, 15, 8), (3, 5))
    with pytest.raises(ValueError, match=r"expects tokens \(B, N, 8\)"):
        sra(torch.randn(1, 16, 6), (4, 4))
    with pytest.raises(ValueError, match="must divide the feature size"):
        MultiHeadSelfAttention(8, 2, window=3)(torch.randn(1, 16, 8), (4, 4))
    with pytest.raises(ValueError, match="height must be a positive integer"):
        RelativePositionBias(2, 3)(0, 3)


def test_gradients_reach_every_parameter_including_the_bias_table():
    torch.manual_seed(6)
    for attn, size in [
        (MultiHeadSelfAttention(8, 2, rel_pos_size=3), (4, 4)),
        (MultiHeadSelfAttention(8, 2, window=2, rel_pos_size=2), (4, 4)),
        (MultiHeadSelfAttention(8, 2, sr_ratio=2), (4, 4)),
    ]:
        _randomise(attn).train()
        attn(torch.randn(2, 16, 8), size).square().sum().backward()
        for name, p in attn.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
