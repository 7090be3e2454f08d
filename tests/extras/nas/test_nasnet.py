import math
import random

import pytest
import torch

from graphkit.extras import create_model, list_models
from graphkit.extras._core.counting import count_macs, count_params
from graphkit.extras.nas.methods import nasnet
from graphkit.extras.nas.methods.nasnet import (
    NASNET_A,
    NASNET_OPERATIONS,
    CellGenotype,
    NASNetA,
    NASNetSearchSpace,
    ScheduledDropPath,
)


def _meta(variant: str, num_classes: int) -> NASNetA:
    with torch.device("meta"):  # shapes only: counting needs no memory or arithmetic
        return NASNetA(variant, num_classes=num_classes)


def _bn_statistics(model: NASNetA) -> int:
    return sum(b.numel() for name, b in model.named_buffers() if "running_" in name)


@pytest.mark.parametrize(
    ("variant", "classes", "params", "with_bn_stats", "paper"),
    [
        ("cifar_6@768", 10, 3_346_538, 3_383_786, 3.3e6),
        ("mobile_4@1056", 1000, 5_289_978, 5_326_716, 5.3e6),
        ("large_6@4032", 1000, 88_753_150, 88_949_818, 88.9e6),
    ],
)
def test_param_counts(variant, classes, params, with_bn_stats, paper):
    """Counted here (no auxiliary head). The paper gives 3.3M (CIFAR), 5.3M and 88.9M (the
    Keras Applications table repeats the ImageNet two). Trainable parameters are within 1.5%
    of those; adding the BN running means and variances (which TF / Keras count among a
    model's parameters) gives 5,326,716 and 88,949,818, which round to 5.3M and 88.9M."""
    model = _meta(variant, classes)
    assert count_params(model) == params
    assert params + _bn_statistics(model) == with_bn_stats
    assert abs(params - paper) <= 0.015 * paper


@pytest.mark.parametrize(
    ("variant", "size", "macs", "paper"),
    [("mobile_4@1056", 224, 563_638_816, 564e6), ("large_6@4032", 331, 23_783_414_658, 23.8e9)],
)
def test_macs_match_the_paper(variant, size, macs, paper):
    """Multiply-adds counted here (convolutions and the classifier) on the meta device; the
    paper's table: 564M (Mobile, 224²) and 23.8B (Large, 331²)."""
    got = count_macs(_meta(variant, 1000), (1, 3, size, size))
    assert got == macs
    assert abs(got - paper) <= 0.015 * paper


def test_output_shapes_and_feature_strides():
    torch.manual_seed(0)
    mobile = NASNetA("mobile_1@96", num_classes=7).eval()
    x = torch.randn(2, 3, 65, 65)
    with torch.no_grad():
        assert mobile(x).shape == (2, 7)
        feats = mobile.forward_features(x)
    # 65 -> 32 (valid 3x3 stem conv, stride 2) -> 16 -> 8 -> 4 -> 2
    assert feats.shape == (2, 96, 2, 2)
    cifar = NASNetA("cifar_1@48", num_classes=0).eval()
    with torch.no_grad():
        assert cifar.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 48, 8, 8)
        assert cifar(torch.randn(1, 3, 32, 32)).shape == (1, 48)


def test_cell_wiring_follows_tf_slim():
    """Normal cell: 6 states of f concatenated (state 1 included); reduction: states 3..6. The
    large model's normal cell after a reduction reads the output before the reduction's
    input (TF-slim skip_reduction_layer_input); the mobile one reads the reduction's input."""
    assert NASNET_A.normal.concat == (1, 2, 3, 4, 5, 6)
    assert NASNET_A.reduction.concat == (3, 4, 5, 6)
    for variant, skip in (("large_2@96", True), ("mobile_2@96", False)):
        model = NASNetA(variant)
        kinds = [cell.reduction for cell in model.cells]
        assert kinds == [True, True, False, False, True, False, False, True, False, False]
        cur, prev = model._wiring[5]  # the normal cell right after the first stack's reduction
        # outputs: [None, stem, stem cell 0, stem cell 1, normal 0, normal 1, reduction, ...]
        assert cur == 6  # the reduction cell's output
        assert prev == (4 if skip else 5)  # 5 is the reduction's input, 4 the output before
        # a reduction cell widens the filters by 2 and halves nothing else
        assert [c.filters for c in model.cells] == [1, 2, 4, 4, 8, 8, 8, 16, 16, 16]


def test_stem_cell_reads_the_raw_stem_output_as_state_one():
    model = NASNetA("mobile_1@96")
    first = model.cells[0]
    assert first.preprocess1 is None
    # separable convolutions on state 1 start from the stem's 32 channels
    sep = first.ops[1][0]
    assert sep[1].in_channels == 32 and sep[2].out_channels == first.filters


def test_scheduled_drop_path_rate_is_linear_in_the_step():
    layer = ScheduledDropPath(p=0.4, total_steps=100)
    for t in (0, 1, 25, 50, 99, 100, 250):
        assert layer.rate(t) == pytest.approx(0.4 * min(t, 100) / 100, abs=0)
    half = ScheduledDropPath(p=0.4, total_steps=100, layer_ratio=0.5)
    half.set_step(50)
    assert half.p == pytest.approx(0.1)
    with pytest.raises(ValueError, match="step"):
        layer.rate(-1)


def test_scheduled_drop_path_drops_whole_samples_in_training_only():
    layer = ScheduledDropPath(p=0.5, total_steps=10)
    x = torch.ones(4000, 3)
    layer.train()
    assert torch.equal(layer(x), x)  # step 0: nothing dropped yet
    layer.set_step(10)
    torch.manual_seed(0)
    y = layer(x)
    rows = y[:, 0]
    assert torch.equal(y, rows[:, None].expand_as(y))  # one decision per sample
    assert set(rows.unique().tolist()) == {0.0, 2.0}  # kept samples are divided by 1 - p
    assert abs((rows == 0).float().mean().item() - 0.5) < 0.03
    layer.eval()
    assert torch.equal(layer(x), x)


def test_model_set_step_uses_the_depth_ratio_of_each_cell():
    model = NASNetA("cifar_1@48", drop_path=0.6, total_steps=10)
    model.set_step(5)
    layers = [
        [m for m in cell.modules() if isinstance(m, ScheduledDropPath)] for cell in model.cells
    ]
    total = len(model.cells)
    for k, cell_layers in enumerate(layers):
        assert cell_layers  # every cell has non-identity operations
        for m in cell_layers:
            assert m.p == pytest.approx(0.6 * 0.5 * (k + 1) / total)
    # the identity ("none") operations carry no drop path, as in TF-slim
    assert sum(len(c) for c in layers[:1]) == 8  # normal cell: 10 operations, 2 identities


def test_search_space_size_and_genotypes():
    space = NASNetSearchSpace()
    per_cell = math.prod((b + 2) ** 2 * 13**2 for b in range(5))
    assert space.size() == per_cell**2
    assert len(NASNET_OPERATIONS) == 13
    cfg = space.sample(random.Random(3))
    genotype = space.genotype(cfg)
    for cell in (genotype.normal, genotype.reduction):
        read = set(cell.inputs)
        assert cell.concat == tuple(s for s in range(2, 7) if s not in read)
        assert 6 in cell.concat  # the last block is never read
    small = NASNetSearchSpace(num_blocks=1, operations=("none", "max_pool_3x3"))
    assert small.size() == (2**2 * 2**2) ** 2
    assert len(list(small.enumerate())) == small.size()


def test_networks_from_sampled_genotypes_run():
    """Every operation (in normal and reduction cells, on raw and projected states) builds
    and keeps the shapes consistent."""
    space = NASNetSearchSpace()
    rng = random.Random(0)
    seen: set[str] = set()
    torch.manual_seed(0)
    for _ in range(4):
        genotype = space.genotype(space.sample(rng))
        seen |= set(genotype.normal.operations) | set(genotype.reduction.operations)
        model = NASNetA("mobile_1@96", num_classes=3, genotype=genotype).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 40, 40)).shape == (1, 3)
    assert len(seen) >= 10
    # a cell that concatenates its inputs in a reduction cell reduces them first
    cell = CellGenotype(("conv_1x3_3x1", "dilated_3x3"), (0, 1), (0, 1, 2))
    model = NASNetA("mobile_1@192", genotype=nasnet.NASNetGenotype(cell, cell)).eval()
    assert "0" in model.cells[0].fix and "1" in model.cells[0].fix
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 40, 40)).shape == (1, 3 * 32, 2, 2)


def test_gradients_reach_the_stem():
    model = NASNetA("cifar_1@48", num_classes=3, drop_path=0.2)
    model.set_step(1)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert model.stem[0].weight.grad.abs().sum() > 0


def test_registered():
    assert {"nasnet_a_cifar", "nasnet_a_mobile", "nasnet_a_large"} <= set(list_models("nas"))
    with torch.device("meta"):
        model = create_model("nasnet_a_mobile", num_classes=10)
    assert isinstance(model, NASNetA) and model.variant == "mobile_4@1056"


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        NASNetA("tiny_4@1056")
    with pytest.raises(ValueError, match="multiple of 24"):
        NASNetA("mobile_4@1000")
    with pytest.raises(ValueError, match="at least 96"):
        NASNetA("mobile_1@48")
    with pytest.raises(ValueError, match="drop_path"):
        NASNetA("cifar_1@48", drop_path=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        NASNetA("cifar_1@48", num_classes=-1)
    with pytest.raises(ValueError, match="not yet computed"):
        CellGenotype(("none", "none"), (0, 2), (2,))
    with pytest.raises(ValueError, match="unknown operations"):
        CellGenotype(("conv_9x9", "none"), (0, 1), (2,))
    with pytest.raises(ValueError, match="concat"):
        CellGenotype(("none", "none"), (0, 1), (5,))
    with pytest.raises(ValueError, match="p must lie"):
        ScheduledDropPath(p=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        ScheduledDropPath(p=0.1, total_steps=0)
    with pytest.raises(ValueError, match="operations"):
        NASNetSearchSpace(operations=("conv_9x9",))
    with pytest.raises(ValueError, match="images"):
        NASNetA("cifar_1@48")(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="NASNetA expects 3 input channels, got 4"):
        NASNetA("cifar_1@48")(torch.randn(1, 4, 32, 32))  # was the stem conv's error
