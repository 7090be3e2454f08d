import pytest
import torch

from graphkit.extras import create_model, list_models
from graphkit.extras._core.counting import count_macs, count_params
from graphkit.extras._core.testing import assert_macs
from graphkit.extras.vision import emov2
from graphkit.extras.vision.emov2 import EMOv2


@pytest.mark.parametrize(
    ("variant", "params", "official"),
    [("1m", 1_460_844, 1.461e6), ("2m", 2_384_312, 2.384e6), ("5m", 5_126_440, 5.126e6),
     ("20m", 20_195_208, None)],
)
def test_parameter_counts(variant, params, official):
    """Counted here on the official ``EMO2_*_k5_hybrid`` configs. The official training logs
    (zhangzjn/EMOv2 resources/Cls/log_train_EMOv2_{1M,2M,5M}_224.txt, fvcore table) print
    1.461M / 2.384M / 5.126M, which these equal to the printed digit; the README's 1.4M /
    2.3M / 5.1M [code] are the same figures truncated, so the spec's 2% check against the
    README would fail for 1M (4.3% above 1.4M) while the model matches the official code
    exactly. The 20M variant has no classification figure in the README (measured only)."""
    model = EMOv2(variant)
    assert count_params(model) == params
    if official is not None:
        assert abs(params - official) <= 500  # the logs round to thousands


@pytest.mark.parametrize(("variant", "official"), [("1m", 285e6), ("2m", 487e6),
                                                  ("5m", 1035e6)])
def test_macs_at_224_within_5_percent_of_the_official_flops(variant, official):
    """README/log FLOPs [code] are fvcore counts (one multiply-add = one FLOP), which include
    BatchNorm/LayerNorm work; our counter counts convolutions and matrix products only, so
    ours are 1-2% lower (measured 279,936,484 / 480,811,600 / 1,025,113,984)."""
    assert_macs(EMOv2(variant), (1, 3, 224, 224), int(official), rel=0.05)


def test_macs_of_1m_exactly():
    """Our counter's exact figure for EMOv2-1M at 224 (measured here, pinned against drift)."""
    assert count_macs(EMOv2("1m"), (1, 3, 224, 224)) == 279_936_484


def test_registered_and_feature_pyramid():
    assert {"emov2_1m", "emov2_2m", "emov2_5m", "emov2_20m"} <= set(
        list_models(family="backbone"))
    model = create_model("emov2_1m", num_classes=10).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert [f.shape[1] for f in feats] == [32, 48, 80, 180]
    assert [f.shape[-2:] for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    assert logits.shape == (2, 10)
    assert emov2.emov2_5m().dims == (48, 72, 160, 288)


def test_trains_one_step_and_drop_path_schedule():
    torch.manual_seed(0)
    model = EMOv2("1m", num_classes=4)
    rates = [b.drop_path.p for s in model.stages for b in s if b.has_skip]
    assert rates == sorted(rates) and max(rates) <= 0.04036 + 1e-9
    loss = torch.nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)),
                                             torch.tensor([0, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown EMOv2 variant"):
        EMOv2("3m")
    with pytest.raises(ValueError, match="drop_path"):
        EMOv2("1m", drop_path=1.0)
    with pytest.raises(ValueError, match="expects"):
        EMOv2("1m")(torch.randn(1, 1, 32, 32))
