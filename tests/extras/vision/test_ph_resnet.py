"""PH-ResNet (#24): about 1/n of a ResNet's weights; n = 1 is the real ResNet."""

import pytest
import torch

from graphkit.extras import count_params, create_model, get_entry
from graphkit.extras.layers.phc import PHConv2d
from graphkit.extras.vision.ph_resnet import PHResNet, ph_resnet


def _real_resnet18_cifar_params():
    """Real-valued CIFAR ResNet-18 (3-channel input, 10 classes), from its configuration."""
    convs = 3 * 64 * 9  # stem
    convs += 4 * 64 * 64 * 9  # stage 1: two BasicBlocks
    for c_in, c in ((64, 128), (128, 256), (256, 512)):  # stages 2-4: stride-2 first block
        convs += c_in * c * 9 + 3 * c * c * 9 + c_in * c  # 4 3x3 convs + 1x1 projection
    bn_channels = 64 + 4 * 64 + 5 * (128 + 256 + 512)
    return convs + 2 * bn_channels + (512 * 10 + 10)


def test_n1_is_the_real_resnet18():
    """With n = 1 each PHC conv is its dense kernel times one scalar A: 11,173,962 real
    parameters (counted from the configuration above) plus 20 convolutions' scalars."""
    assert _real_resnet18_cifar_params() == 11_173_962
    model = ph_resnet(18, n=1, in_channels=3)
    convs = [m for m in model.modules() if isinstance(m, PHConv2d)]
    assert len(convs) == 20
    assert count_params(model) == 11_173_962 + 20


def _ph_over_dense(model):
    convs = [m for m in model.modules() if isinstance(m, PHConv2d)][1:]  # without the stem
    ph = sum(m.A.numel() + m.F.numel() for m in convs)
    return ph / sum(m.weight.numel() for m in convs)


@pytest.mark.parametrize(
    "depth, n, in_channels, widths, total",
    [
        (18, 4, 4, (64, 128, 256, 512), 2_805_962),
        (18, 3, 3, (60, 120, 240, 516), 3_635_914),
        (50, 4, 4, (64, 128, 256, 512), 5_938_954),
    ],
)
def test_about_one_nth_of_the_weights(depth, n, in_channels, widths, total):
    """Spec: conv weights (without BN, stem, head) are within [1/n, 1/n + 0.02] of the dense
    ResNet's; measured 0.25011 (18, n=4), 0.33338 (18-Large, n=3), 0.25014 (50, n=4). The
    totals are counted here (all parameters, BN and head included)."""
    model = ph_resnet(depth, n=n, in_channels=in_channels, widths=widths)
    ratio = _ph_over_dense(model)
    assert 1 / n <= ratio <= 1 / n + 0.02
    assert count_params(model) == total


def test_forward_shapes():
    torch.manual_seed(0)
    model = ph_resnet(18, n=4, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 4, 16, 16)).shape == (2, 7)
    model = ph_resnet(50, n=2, in_channels=2, widths=(8, 8, 16, 16)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 2, 8, 8)).shape == (1, 10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="depth must be one of"):
        PHResNet(20)
    with pytest.raises(ValueError, match="divisible by n=4"):
        ph_resnet(18, n=4, in_channels=3)
    with pytest.raises(ValueError, match="widths must be four"):
        ph_resnet(18, widths=(64, 128, 256))
    with pytest.raises(ValueError, match=r"expects input \(N, 4, H, W\)"):
        ph_resnet(18)(torch.randn(1, 3, 8, 8))


def test_registered():
    assert isinstance(create_model("ph_resnet", depth=18, n=2, in_channels=2), PHResNet)
    assert get_entry("ph_resnet").family == "backbone"
