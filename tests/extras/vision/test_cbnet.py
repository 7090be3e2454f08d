import pytest
import torch
from torch import nn

from graphkit.extras import create_model, list_models
from graphkit.extras._core.counting import count_params
from graphkit.extras.vision.cbnet import Bottleneck, CBNet, ResNetBackbone, cbnet_resnet50
from graphkit.extras.vision.emov2 import EMOv2
from graphkit.extras.vision.vovnet import VoVNet


class _Tiny(nn.Module):
    """A four-stage toy backbone (stride-2 convs) exposing ``stem`` and ``stages``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        widths = (8, 16, 24, 32, 40)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU())
            for a, b in zip(widths[:-1], widths[1:])
        )


def _dhlc_params(channels, del_stages):
    """Sum over stages l >= d and sources j >= l of a 1x1 conv C_{j+1} -> C_l plus its BN."""
    n = len(channels) - 1
    return sum(channels[j + 1] * channels[l] + 2 * channels[l]
               for l in range(del_stages, n) for j in range(l, n))


@pytest.fixture(scope="module")
def dual_r50():
    torch.manual_seed(0)
    return cbnet_resnet50().eval()


def _single_forward(model, x, lead=False):
    """The plain backbone's stages: copy 0 alone, or (``lead``) the shared stem and first
    stage followed by the lead copy's own later stages."""
    h, outs = model.stem(x), []
    for s in range(len(model.copies[0])):
        stage = model.copies[-1][s] if lead and s >= model.del_stages else model.copies[0][s]
        h = stage(h)
        outs.append(h)
    return outs


def test_resnet50_backbone_is_torchvisions_without_fc(dual_r50):
    """torchvision's resnet50 has 25,557,032 parameters, 2,049,000 of them in its fc; copy 0
    of the composite is a whole backbone."""
    assert count_params(dual_r50.stem) + count_params(dual_r50.copies[0]) == 23_508_032


def test_dual_resnet50_parameter_formula(dual_r50):
    """Official Dual-ResNet-50 (cb_del_stages=1, cb_inplanes 64/256/512/1024/2048):
    2 x 23,508,032 - (stem 9,536 + stage-1 215,808) + compositions 4,593,152
    = 51,383,872 [calc], counted here."""
    shared = count_params(dual_r50.stem) + count_params(dual_r50.copies[0][0])
    assert shared == 9_536 + 215_808
    comps = _dhlc_params((64, 256, 512, 1024, 2048), 1)
    assert comps == 4_593_152 == count_params(dual_r50.compositions)
    assert count_params(dual_r50) == 2 * 23_508_032 - shared + comps == 51_383_872


def test_vovnet_composite_parameter_formula():
    """k x backbone - (k-1) x (stem + first stage) + compositions (one set shared by all
    consecutive pairs, as in the official code). VoVNet-39 without its head is 22,600,296 -
    1,025,000 = 21,575,296 (VoVNet-39's [calc] count less its 1024x1000 fc); its
    compositions cost 2,298,880 [calc]. VoVNet-27-slim checks k = 3."""
    model = CBNet(lambda: VoVNet(39), k=2)
    assert model.channels == [128, 256, 512, 768, 1024]
    body = count_params(model.stem) + count_params(model.copies[0])
    assert body == 21_575_296
    shared = count_params(model.stem) + count_params(model.copies[0][0])
    comps = _dhlc_params(model.channels, 1)
    assert comps == 2_298_880
    assert count_params(model) == 2 * body - shared + comps
    slim = CBNet(lambda: VoVNet(27, slim=True, num_classes=0), k=3)
    body = count_params(slim.stem) + count_params(slim.copies[0])
    shared = count_params(slim.stem) + count_params(slim.copies[0][0])
    assert count_params(slim) == 3 * body - 2 * shared + _dhlc_params(slim.channels, 1)


@pytest.mark.parametrize(
    "backbone_fn",
    [lambda: VoVNet(27, slim=True, num_classes=0), lambda: EMOv2("1m"), _Tiny],
)
@pytest.mark.parametrize(("k", "del_stages"), [(2, 1), (3, 1), (3, 0)])
def test_stage_shapes_equal_the_single_backbone(backbone_fn, k, del_stages):
    torch.manual_seed(0)
    model = CBNet(backbone_fn, k=k, del_stages=del_stages).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = [f.shape for f in _single_forward(model, x)]
        got = model(x, all_copies=True)
    assert len(got) == k
    for feats in got:
        assert [f.shape for f in feats] == want


def test_dual_resnet50_shapes_and_lead_equals_the_plain_backbone_at_init(dual_r50):
    """Zero-initialised composition BNs: the lead copy computes the plain ResNet-50 made of
    the shared stem and first stage and the lead's own later stages (to 1e-6)."""
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        got = dual_r50(x)
        want = _single_forward(dual_r50, x, lead=True)
    assert [tuple(f.shape[1:]) for f in got] == [(256, 16, 20), (512, 8, 10), (1024, 4, 5),
                                                 (2048, 2, 3)]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=0)


def test_composition_carries_the_assistant_into_the_lead():
    torch.manual_seed(0)
    model = CBNet(_Tiny, k=2)
    for m in model.compositions.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
    model.train()
    # the official trick: composition BNs stay in eval mode while the rest trains
    assert all(not m.training for m in model.compositions.modules()
               if isinstance(m, nn.BatchNorm2d))
    assert model.copies[1][1].training
    lead = model(torch.randn(2, 3, 64, 64))
    lead[-1].sum().backward()
    # the assistant's last stage reaches the lead only through the composition
    assert model.copies[0][3][0].weight.grad.abs().sum() > 0
    assert model.compositions[1][2][0].weight.grad.abs().sum() > 0
    assert len(model.compositions[0]) == 0  # the shared first stage gets no composition
    # and at zero-initialised BNs the lead does not depend on the assistant's last stage
    model = CBNet(_Tiny, k=2)
    model(torch.randn(2, 3, 64, 64))[-1].sum().backward()
    assert model.copies[0][3][0].weight.grad.abs().sum() == 0


def test_assistant_loss_weights_the_assisting_copies():
    torch.manual_seed(0)
    model = CBNet(_Tiny, k=3, assistant_weight=0.5).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64), all_copies=True)

    def loss_fn(fs):
        return fs[-1].pow(2).mean()

    want = 0.5 * (loss_fn(feats[0]) + loss_fn(feats[1]))
    torch.testing.assert_close(model.assistant_loss(feats, loss_fn), want)
    with pytest.raises(ValueError, match="all 3 copies"):
        model.assistant_loss(feats[:2], loss_fn)
    single = CBNet(_Tiny, k=1)
    assert single.assistant_loss([feats[0]], loss_fn) == 0


def test_registered():
    assert "cbnet_resnet50" in list_models(family="backbone")
    assert isinstance(create_model("cbnet_resnet50", k=1), CBNet)


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be"):
        CBNet(_Tiny, k=0)
    with pytest.raises(ValueError, match="DHLC"):
        CBNet(_Tiny, composition="SLC")
    with pytest.raises(ValueError, match="del_stages"):
        CBNet(_Tiny, del_stages=4)
    with pytest.raises(ValueError, match="channels needs"):
        CBNet(_Tiny, channels=(8, 16))
    with pytest.raises(TypeError, match="stem"):
        CBNet(lambda: nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="ResNet depth"):
        ResNetBackbone(34)
    with pytest.raises(ValueError, match=r"expects \(B, C, H, W\)"):
        CBNet(_Tiny)(torch.randn(3, 64, 64))


def test_bottleneck_and_probe_arguments_are_named():
    block = Bottleneck(8, 4)
    with pytest.raises(ValueError, match="Bottleneck expects 8 input channels, got 4"):
        block(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="planes must be a positive integer, got 0"):
        Bottleneck(8, 0)
    with pytest.raises(ValueError, match="stride must be a positive integer, got 0"):
        Bottleneck(8, 4, stride=0)
    with pytest.raises(ValueError, match="probe_size must be a positive integer, got 0"):
        CBNet(lambda: VoVNet(27, slim=True, num_classes=0), probe_size=0)
