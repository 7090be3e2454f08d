import pytest
import torch
from torch import nn

from graphkit.extras import count_macs, count_params, create_model, list_models
from graphkit.extras._core.testing import assert_params
from graphkit.extras.vision import simplenet
from graphkit.extras.vision.simplenet import LAYOUTS, SimpleNet


def _closed_form_params(variant: str, num_classes: int, scale: float = 1.0) -> int:
    """Conv weights + conv bias + BN scale/shift per conv, then the classifier."""
    total, width = 0, 3
    for layer in LAYOUTS[variant]:
        if layer.width is None:
            continue
        out = round(layer.width * scale)
        total += width * out * layer.kernel**2 + 3 * out
        width = out
    return total + width * num_classes + num_classes


def test_cifar_5m_param_count():
    """5,498,378 with 10 classes: the spec's [calc] figure, recounted here on the official
    layout (the official README rounds it to 5.48M)."""
    assert_params(simplenet.simplenet_cifar_5m(), 5_498_378)
    assert _closed_form_params("cifar_5m", 10) == 5_498_378


def test_imagenet_5m_param_count():
    """5,752,808 counted here with 1000 classes; the official code quotes 5.75M [code]
    (three significant figures, hence the 0.1% tolerance on that figure)."""
    model = simplenet.simplenet_imagenet_5m()
    assert_params(model, _closed_form_params("imagenet_5m", 1000))
    assert_params(model, 5_750_000, rel=0.001)


@pytest.mark.parametrize(
    ("variant", "classes"), [("cifar_310k", 10), ("cifar_460k", 100), ("imagenet_9m", 1000)]
)
def test_other_variants_match_the_closed_form(variant, classes):
    """The smaller CIFAR layouts are taken verbatim from the official code; counted here
    cifar_310k has 312,362 params (10 classes) and cifar_460k 394,790 (100 classes):
    the official name '460k' does not match its own layout, which we keep as published."""
    assert_params(SimpleNet(variant, num_classes=classes), _closed_form_params(variant, classes))


def test_scale_gives_the_official_small_models():
    """The official README lists ImageNet models of 1.5m and 3m params: imagenet_5m at width
    0.5 / 0.75 in the official code. Counted here: 1,506,792 and 3,287,272, checked to the
    README's precision (half a unit of its last digit)."""
    half = count_params(SimpleNet("imagenet_5m", num_classes=1000, scale=0.5))
    three_quarters = count_params(SimpleNet("imagenet_5m", num_classes=1000, scale=0.75))
    assert abs(half - 1_500_000) <= 50_000
    assert abs(three_quarters - 3_000_000) <= 500_000
    assert half == _closed_form_params("imagenet_5m", 1000, 0.5)


def test_cifar_5m_macs_equal_hand_arithmetic():
    """Padding 1 on the 1x1 convs (official code) grows the 4x4 map to 6x6 and 8x8."""
    expected = (
        32**2 * 9 * (3 * 64 + 64 * 128 + 2 * 128 * 128)
        + 16**2 * 9 * (2 * 128 * 128 + 128 * 256)
        + 8**2 * 9 * (2 * 256 * 256)
        + 4**2 * 9 * 256 * 512
        + 6**2 * 512 * 2048
        + 8**2 * 2048 * 256
        + 4**2 * 9 * 256 * 256
        + 256 * 10
    )
    assert count_macs(simplenet.simplenet_cifar_5m(), (1, 3, 32, 32)) == expected


def test_stride_modes_at_224():
    """Every ImageNet mode makes three convs stride 2 (224 -> 28), then two 2x2 pools give
    7 and the two padded 1x1 convs 9 and 11; later downsampling costs more MACs."""
    macs = []
    for mode in (1, 2, 3, 4):
        model = SimpleNet("imagenet_5m", num_classes=5, mode=mode, scale=0.25).eval()
        strides = [m.stride[0] for m in model.features if isinstance(m, nn.Conv2d)]
        assert strides.count(2) == 3
        with torch.no_grad():
            assert model.features(torch.randn(1, 3, 224, 224)).shape[-2:] == (11, 11)
        macs.append(count_macs(model, (1, 3, 224, 224)))
    assert macs == sorted(macs) and len(set(macs)) == 4
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 5)


def test_output_shape_on_cifar_inputs():
    model = simplenet.simplenet_cifar_5m(num_classes=100).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
        assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 256)


def test_official_module_order_and_settings():
    model = simplenet.simplenet_cifar_5m(drop_rates={0: 0.1, 4: 0.2})
    kinds = [type(m).__name__ for m in model.features[:18]]
    conv = ["Conv2d", "BatchNorm2d", "ReLU"]
    # no dropout after the conv right before a pool; pool, dropout
    assert kinds == (conv + ["Dropout2d"]) * 3 + conv + ["MaxPool2d", "Dropout2d"] + ["Conv2d"]
    assert model.features[3].p == 0.1 and model.features[16].p == 0.2
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.05}
    assert "features.0.weight" in model.state_dict() and "classifier.weight" in model.state_dict()


def test_registered_variants():
    names = {f"simplenet_{v}" for v in LAYOUTS}
    assert names <= set(list_models(family="backbone"))
    assert create_model("simplenet_imagenet_9m").classifier.out_features == 1000
    assert create_model("simplenet_cifar_310k").classifier.out_features == 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown SimpleNet variant 'cifar_1m'"):
        SimpleNet("cifar_1m")
    with pytest.raises(ValueError, match="stride mode must be one of"):
        SimpleNet("imagenet_5m", mode=7)
    with pytest.raises(ValueError, match="drop_rates needs layer indices"):
        SimpleNet(drop_rates={40: 0.1})
    with pytest.raises(ValueError, match="drop_rates needs layer indices"):
        SimpleNet(drop_rates={0: 1.5})
    with pytest.raises(ValueError, match="expects 3 input channels"):
        SimpleNet("cifar_310k")(torch.randn(1, 1, 32, 32))


def test_image_too_small_for_the_strides_is_named():
    model = SimpleNet("cifar_310k", num_classes=3).eval()
    assert model.min_size == (8, 8)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"SimpleNet cifar_310k \(stride mode 0\) needs images "
                                         r"of at least 8x8 pixels .* got 4x4"):
        model(torch.randn(1, 3, 4, 4))
