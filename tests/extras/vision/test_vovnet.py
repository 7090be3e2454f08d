import pytest
import torch

from graphkit.extras import create_model, list_models
from graphkit.extras._core.testing import assert_params
from graphkit.extras.vision import vovnet
from graphkit.extras.vision.vovnet import VoVNet


@pytest.mark.parametrize(
    ("name", "expected"),
    [("vovnet27_slim", 3_525_736), ("vovnet39", 22_600_296), ("vovnet57", 36_640_296)],
)
def test_param_counts_with_1000_classes(name, expected):
    """Spec figures [calc], recounted here on the official VoVNet.pytorch configs
    (stage/concat widths, modules per stage, 5 layers per module); they agree with the
    paper's 22.6M (VoVNet-39) and 36.6M (VoVNet-57)."""
    assert_params(create_model(name), expected)


def test_registered_as_backbones():
    assert {"vovnet27_slim", "vovnet39", "vovnet57"} <= set(list_models(family="backbone"))
    assert isinstance(create_model("vovnet39", num_classes=0), VoVNet)


def test_features_only_strides_and_channels_at_224():
    model = vovnet.vovnet39(features_only=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 224, 224))
    assert [f.shape[1] for f in feats] == [256, 512, 768, 1024]
    assert [224 // f.shape[-1] for f in feats] == [4, 8, 16, 32]
    assert [f.shape[-2:] for f in feats] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert model.feature_strides == [4, 8, 16, 32]
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())


def test_stage_sizes_on_odd_inputs_follow_the_conv_and_pool_arithmetic():
    def conv_s2(n):  # 3x3, stride 2, padding 1
        return (n - 1) // 2 + 1

    def pool(n):  # 3x3, stride 2, ceil mode
        return -(-(n - 3) // 2) + 1

    def sizes(n):
        out = [conv_s2(conv_s2(n))]
        for _ in range(3):
            out.append(pool(out[-1]))
        return out

    model = vovnet.vovnet27_slim(features_only=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 65, 33))
    assert [tuple(f.shape[-2:]) for f in feats] == list(zip(sizes(65), sizes(33), strict=True))
    assert sizes(65) == [17, 8, 4, 2]  # the arithmetic itself, by hand
    assert [f.shape[1] for f in feats] == [128, 256, 384, 512]


def test_logits_and_pooled_features():
    model = vovnet.vovnet27_slim(num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
        assert vovnet.vovnet27_slim(num_classes=0)(x).shape == (2, 512)


def test_later_modules_of_a_stage_have_shortcuts():
    model = vovnet.vovnet57()
    stage4 = [m for m in model.stages[2] if hasattr(m, "identity")]
    assert [m.identity for m in stage4] == [False, True, True, True]


def test_bad_arguments():
    with pytest.raises(ValueError, match="no VoVNet with depth=27, slim=False"):
        VoVNet(depth=27)
    with pytest.raises(ValueError, match="no VoVNet with depth=50"):
        VoVNet(depth=50)
    with pytest.raises(ValueError, match=r"expects a \(B, C, H, W\) tensor"):
        vovnet.vovnet27_slim()(torch.randn(3, 32, 32))


def test_image_too_small_for_the_strides_is_named():
    with torch.device("meta"):
        model = VoVNet(27, slim=True, num_classes=3)
    assert model.min_size == (29, 29)
    with pytest.raises(ValueError, match="VoVNet needs images of at least 29x29 pixels"):
        model(torch.zeros(1, 3, 64, 28, device="meta"))
