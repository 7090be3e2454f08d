import pytest
import torch

from graphkit.extras import count_params, create_model, list_models
from graphkit.extras._core.testing import assert_params
from graphkit.extras.layers.moat_block import MOATBlock, MOATMBConv
from graphkit.extras.vision import moat
from graphkit.extras.vision.moat import MOAT

VARIANTS = ["moat0", "moat1", "moat2", "moat3", "moat4"] + [f"tiny_moat{k}" for k in range(4)]


def _meta(variant, **kwargs):
    with torch.device("meta"):  # structure only: no memory, no initialisation
        return create_model(variant, **kwargs)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("moat0", 27_846_892),
        ("moat1", 41_598_448),
        ("moat2", 73_422_408),
        ("tiny_moat0", 3_355_348),
        ("tiny_moat1", 5_122_895),
        ("tiny_moat2", 9_772_741),
        ("tiny_moat3", 19_534_390),
    ],
)
def test_param_counts_of_the_official_test(variant, expected):
    """The counts of the official deeplab2 MOAT test (spec [code]), with a 1000-way head and
    the relative position bias, matched exactly. The bias tables are made for 14² and 7²
    grids and resized for other inputs (as in deeplab2), so the count is the same at the
    test's resolutions (224, 256, 384)."""
    assert_params(_meta(variant), expected)


@pytest.mark.parametrize(
    ("variant", "expected"), [("moat0", 27_777_544), ("tiny_moat0", 3_332_232)]
)
def test_param_counts_without_position_embedding(variant, expected):
    """The official "no_pe" models drop the tables: 7 blocks × heads × 27² at stride 16 and
    2 × heads × 13² at stride 32."""
    model = _meta(variant, relative_position=False)
    assert_params(model, expected)
    heads3, heads4 = model.config.hidden[2] // 32, model.config.hidden[3] // 32
    assert count_params(_meta(variant)) - expected == 7 * heads3 * 27**2 + 2 * heads4 * 13**2


def test_registered_as_backbones():
    assert set(VARIANTS) <= set(list_models(family="backbone"))
    assert isinstance(create_model("tiny_moat0", num_classes=0), MOAT)


def test_stage_layout():
    model = _meta("moat0")
    kinds = [{type(b) for b in stage} for stage in model.stages]
    assert kinds == [{MOATMBConv}, {MOATMBConv}, {MOATBlock}, {MOATBlock}]
    assert [len(s) for s in model.stages] == [2, 3, 7, 2]
    assert [s[0].out_channels for s in model.stages] == [96, 192, 384, 768]
    assert [b.attn.num_heads for b in model.stages[2]] == [12] * 7
    assert model.stages[3][0].attn.rel_pos.size == (7, 7)
    assert model.stages[2][0].attn.rel_pos.size == (14, 14)
    se = [b.se.reduce.out_channels for b in model.stages[0]]
    assert se == [24, 24]  # int(96 × 0.25), from the output width


def test_stage_shapes_and_strides_at_256():
    torch.manual_seed(0)
    model = moat.tiny_moat0(features_only=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 256, 256))
    assert [f.shape[1] for f in feats] == model.feature_channels == [32, 64, 128, 256]
    assert [tuple(f.shape[-2:]) for f in feats] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert model.feature_strides == [4, 8, 16, 32]


def test_window_mode_equals_global_mode_when_the_window_is_the_feature_size():
    torch.manual_seed(1)
    model = moat.tiny_moat0(features_only=True).eval()
    x = torch.randn(1, 3, 128, 96)  # stride-16 map 8×6, stride-32 map 4×3
    with torch.no_grad():
        global_feats = model(x)
        model.set_window([(8, 6), (4, 3)])
        same = model(x)
        model.set_window([(4, 3), (2, 3)])
        local = model(x)
    for g, s in zip(global_feats, same, strict=True):
        torch.testing.assert_close(s, g)
    torch.testing.assert_close(local[1], global_feats[1])  # stages before attention agree
    assert not torch.allclose(local[2], global_feats[2], atol=1e-4)


def test_logits_and_odd_sizes():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 72, 56)
    with torch.no_grad():
        assert moat.tiny_moat0(num_classes=5).eval()(x).shape == (2, 5)
        feats = moat.tiny_moat0(features_only=True, pool_size=3).eval()(torch.randn(1, 3, 50, 50))
    # stride-2 "same" arithmetic: 50 -> 25 (stem) -> 13 -> 7 -> 4 -> 2
    assert [tuple(f.shape[-2:]) for f in feats] == [(13, 13), (7, 7), (4, 4), (2, 2)]


def test_drop_path_schedule():
    model = _meta("tiny_moat0", drop_path_rate=0.28)
    rates = [b.drop_path.p for stage in model.stages for b in stage]
    assert rates == pytest.approx([0.28 * i / 14 for i in range(14)])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown MOAT variant 'moat5'"):
        MOAT("moat5")
    with pytest.raises(ValueError, match="one \\(h, w\\) or None per attention stage"):
        _meta("tiny_moat0", window=[(7, 7)])
    with pytest.raises(ValueError, match="num_classes must be >= 0"):
        MOAT("tiny_moat0", num_classes=-1)
    with pytest.raises(ValueError, match="drop_path_rate must lie in"):
        MOAT("tiny_moat0", drop_path_rate=1.0)
    model = moat.tiny_moat0(num_classes=2, window=[(5, 5), (3, 3)]).eval()
    with pytest.raises(ValueError, match="must divide the feature size"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="expects 3 input channels"):
        model(torch.randn(1, 4, 64, 64))


def test_window_must_give_one_entry_per_attention_stage():
    with pytest.raises(ValueError, match="one .* per attention stage \\(two\\), got 0"):
        MOAT("tiny_moat0", window=0)  # was a TypeError from len()
