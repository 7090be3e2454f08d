import importlib.util

import numpy as np
import pytest
import torch

from graphkit.extras import count_macs, create_model, list_models
from graphkit.extras._core.testing import assert_params, assert_same_function
from graphkit.extras.vision.kimianet import (
    KERAS_BN_EPS,
    KimiaNet,
    convert_kimianet_keras,
    keras_densenet121_to_state_dict,
    kimianet_features,
)


@pytest.fixture(scope="module")
def model() -> KimiaNet:
    torch.manual_seed(0)
    return KimiaNet().eval()


def test_param_counts(model):
    """Spec [calc] figures, recounted here: DenseNet-121 features 6,953,856; with the
    30-way TCGA head 6,984,606 (= + 1024 * 30 + 30)."""
    assert_params(model.features, 6_953_856)
    assert_params(model, 6_984_606)
    assert_params(KimiaNet(num_classes=0), 6_953_856)


def test_imagenet_head_matches_torchvision_densenet121():
    """With a 1000-way head it is torchvision's DenseNet-121, whose weights metadata [code]
    gives num_params 7,978,856 and 2.834 G ops at 224 (MACs, three decimals: checked to
    that precision); counted here: 7,978,856 params and 2,834,161,664 MACs."""
    net = KimiaNet(num_classes=1000)
    assert_params(net, 7_978_856)
    assert abs(count_macs(net, (1, 3, 224, 224)) - 2.834e9) <= 0.0005e9


def test_torchvision_module_names_and_shapes(model):
    sd = model.state_dict()
    expected = {
        "features.conv0.weight": (64, 3, 7, 7),
        "features.denseblock1.denselayer1.norm1.weight": (64,),
        "features.denseblock1.denselayer6.conv1.weight": (128, 224, 1, 1),
        "features.transition1.conv.weight": (128, 256, 1, 1),
        "features.transition2.conv.weight": (256, 512, 1, 1),
        "features.denseblock3.denselayer24.conv2.weight": (32, 128, 3, 3),
        "features.transition3.conv.weight": (512, 1024, 1, 1),
        "features.denseblock4.denselayer16.conv1.weight": (128, 992, 1, 1),
        "features.norm5.running_var": (1024,),
        "classifier.weight": (30, 1024),
    }
    assert {k: tuple(sd[k].shape) for k in expected} == expected
    layers = [k for k in sd if k.endswith("conv2.weight")]
    assert len(layers) == 6 + 12 + 24 + 16
    assert {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {KERAS_BN_EPS}


def test_pooled_representation_is_1024_d(model):
    x = torch.randn(2, 3, 128, 96)
    feats = kimianet_features(model, x)
    assert feats.shape == (2, 1024) and not feats.requires_grad
    assert (feats >= 0).all()  # GAP of a ReLU
    unit = kimianet_features(model, x, l2_normalize=True)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(unit, feats / feats.norm(dim=1, keepdim=True))
    with torch.no_grad():
        assert model(x).shape == (2, 30)
        assert KimiaNet(num_classes=0).eval()(x).shape == (2, 1024)


def test_kimianet_features_restores_training_mode():
    net = KimiaNet(num_classes=0).train()
    kimianet_features(net, torch.randn(1, 3, 64, 64))
    assert net.training


@pytest.mark.slow
def test_full_size_patch_gives_1024_vector(model):
    """The paper's 1000x1000 patch (about 4-5 s on one core, hence slow)."""
    assert kimianet_features(model, torch.randn(1, 3, 1000, 1000)).shape == (1, 1024)


def test_pretrained_path_round_trip(tmp_path, model):
    path = tmp_path / "kimianet.pt"
    torch.save(model.state_dict(), path)
    loaded = KimiaNet(pretrained_path=path)
    assert_same_function(model, loaded, torch.randn(1, 3, 64, 64), atol=0.0)
    # a {"state_dict": ...} checkpoint loads the same way
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    assert_same_function(model, KimiaNet(pretrained_path=path), torch.randn(1, 3, 64, 64))


def test_features_only_state_dict_keeps_the_head(tmp_path, model):
    path = tmp_path / "features.pt"
    torch.save(model.features.state_dict(), path)  # torchvision-style `.features` dict
    torch.manual_seed(1)
    net = KimiaNet(num_classes=5)
    head = net.classifier.weight.clone()
    net.load_pretrained(str(path))
    torch.testing.assert_close(net.classifier.weight, head)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(kimianet_features(net, x), kimianet_features(model, x))


def test_bad_weight_files(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        KimiaNet(pretrained_path=tmp_path / "absent.pt")
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ValueError, match=r"shape mismatch .*classifier.weight: \(30, 1024\)"):
        KimiaNet(num_classes=10, pretrained_path=path)
    partial = {k: v for k, v in model.state_dict().items() if "denseblock4" not in k}
    torch.save(partial, path)
    with pytest.raises(ValueError, match="does not fit KimiaNet: missing"):
        KimiaNet(pretrained_path=path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        KimiaNet(pretrained_path=path)


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="expects 3 input channels"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="H, W >= 32"):
        model(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match="num_classes must be >= 0"):
        KimiaNet(num_classes=-1)


def test_registered():
    assert "kimianet" in list_models(family="backbone")
    assert create_model("kimianet", num_classes=0).num_features == 1024


def _as_keras(net: KimiaNet, sep: str = "/", head: str | None = None) -> dict[str, np.ndarray]:
    """Write ``net`` out under the layer names of keras.applications' DenseNet121
    (keras-team/keras-applications densenet.py: conv1/conv, conv1/bn, conv{2..5}_block{i}_
    {0_bn,1_conv,1_bn,2_conv}, pool{2..4}_{bn,conv}, bn) in Keras layouts."""
    f = net.features
    out: dict[str, np.ndarray] = {}

    def conv(name, m):
        out[f"{name}/kernel:0"] = m.weight.detach().permute(2, 3, 1, 0).numpy()

    def bn(name, m):
        for keras, t in zip(
            ("gamma", "beta", "moving_mean", "moving_variance"),
            (m.weight, m.bias, m.running_mean, m.running_var),
            strict=True,
        ):
            out[f"{name}/{keras}:0"] = t.detach().numpy()

    conv(f"conv1{sep}conv", f.conv0)
    bn(f"conv1{sep}bn", f.norm0)
    for b, n in enumerate(KimiaNet.block_config):
        block = getattr(f, f"denseblock{b + 1}")
        for i in range(1, n + 1):
            layer = block[f"denselayer{i}"]
            bn(f"conv{b + 2}_block{i}_0_bn", layer.norm1)
            conv(f"conv{b + 2}_block{i}_1_conv", layer.conv1)
            bn(f"conv{b + 2}_block{i}_1_bn", layer.norm2)
            conv(f"conv{b + 2}_block{i}_2_conv", layer.conv2)
        if b < 3:
            trans = getattr(f, f"transition{b + 1}")
            bn(f"pool{b + 2}_bn", trans.norm)
            conv(f"pool{b + 2}_conv", trans.conv)
    bn("bn", f.norm5)
    if head is not None:
        out[f"{head}/kernel:0"] = net.classifier.weight.detach().t().numpy()
        out[f"{head}/bias:0"] = net.classifier.bias.detach().numpy()
    return out


def _randomise_bn(net: KimiaNet) -> None:
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
            m.bias.data.normal_(0, 0.1, generator=g)


def test_keras_weights_convert_to_the_same_function():
    torch.manual_seed(2)
    ref = KimiaNet(num_classes=30)
    _randomise_bn(ref)  # non-trivial running statistics, so a swapped BN tensor shows
    x = torch.randn(1, 3, 64, 64)
    for sep in ("/", "_"):  # tf.keras 2 and Keras 3 layer names
        net = KimiaNet(num_classes=30)
        state = keras_densenet121_to_state_dict(_as_keras(ref, sep, head="dense"), head="dense")
        net.load_state_dict(state, strict=False)
        assert_same_function(ref, net, x, atol=0.0)


def test_keras_conversion_errors(model):
    weights = _as_keras(model)
    with pytest.raises(ValueError, match="not in a Keras DenseNet-121.*'fc/kernel:0'"):
        keras_densenet121_to_state_dict({**weights, "fc/kernel:0": np.zeros((1024, 2))})
    del weights["conv5_block16_2_conv/kernel:0"]
    with pytest.raises(ValueError, match="lack 1 DenseNet-121 tensors"):
        keras_densenet121_to_state_dict(weights)


def test_keras_file_conversion(tmp_path, model):
    path = tmp_path / "kimianet.h5"
    if importlib.util.find_spec("h5py") is None:
        with pytest.raises(ImportError, match="optional package 'h5py'"):
            convert_kimianet_keras(path)
        return
    import h5py

    weights = _as_keras(model)
    with h5py.File(path, "w") as f:  # the tf.keras 2 save_weights layout
        layers = sorted({k.rpartition("/")[0] for k in weights})
        f.attrs["layer_names"] = [n.encode() for n in layers]
        for layer in layers:
            group = f.create_group(layer)
            names = [k for k in weights if k.rpartition("/")[0] == layer]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for n in names:
                group.create_dataset(n, data=weights[n])
    net = KimiaNet(num_classes=0)
    net.load_state_dict(convert_kimianet_keras(path), strict=False)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(kimianet_features(net, x), kimianet_features(model, x))


def test_unreadable_weight_file_is_named(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt' is not a state dict saved with torch.save"):
        KimiaNet(pretrained_path=path)


def test_keras_conversion_names_nan_weights_and_a_missing_head(model):
    weights = _as_keras(model)
    with pytest.raises(ValueError, match="head='dense' names no layer of the Keras weights"):
        keras_densenet121_to_state_dict(weights, head="dense")  # the classifier was dropped
    weights["conv1/conv/kernel:0"] = np.full_like(weights["conv1/conv/kernel:0"], np.nan)
    with pytest.raises(ValueError, match="'conv1/conv/kernel:0' holds NaN or infinite values"):
        keras_densenet121_to_state_dict(weights)
