"""Sparse-IFT (Thangarasa et al., arXiv:2303.11525): iso-FLOP sparse transformations."""

import math

import pytest
import torch
from torch import nn

from graphkit.extras import create_model, nonzero_macs
from graphkit.extras.sparsity.masks import get_mask
from graphkit.extras.sparsity.methods.sparse_ift import (
    SparseDoped,
    SparseFactorized,
    SparseParallel,
    SparseWide,
    regrow_set,
    sparse_ift,
    wide_factor,
)

LAYERS = {
    "linear": (lambda: nn.Linear(64, 96), (2, 64)),
    "conv": (lambda: nn.Conv2d(16, 32, 3, padding=1), (1, 16, 8, 8)),
}
TRANSFORMS = {
    "parallel": SparseParallel,
    "factorized": SparseFactorized,
    "doped": SparseDoped,
}


@pytest.mark.parametrize("s", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_shape_keeping_transforms_are_iso_flop(kind, layer, s):
    make, shape = LAYERS[layer]
    torch.manual_seed(0)
    dense = make()
    sparse = TRANSFORMS[kind](dense, s, generator=torch.Generator().manual_seed(0))
    x = torch.randn(shape)
    assert sparse(x).shape == dense(x).shape  # drop-in
    want = nonzero_macs(dense, shape)
    assert nonzero_macs(sparse, shape) == pytest.approx(want, rel=0.01)
    # the sparse factors sit near sparsity s: the rounding of the width is all that moves them
    for m in sparse.modules():
        mask = get_mask(m)
        if mask is not None:
            assert mask.density == pytest.approx(1 - s, abs=0.06)


@pytest.mark.parametrize("s", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_sparse_wide_layer_is_iso_flop_at_density_one_minus_s(layer, s):
    make, shape = LAYERS[layer]
    dense = make()
    wide = SparseWide(dense, s, generator=torch.Generator().manual_seed(0))
    k = wide_factor(s)
    d_in, d_out = (64, 96) if layer == "linear" else (16, 32)
    assert (wide.in_width, wide.out_width) == (round(k * d_in), round(k * d_out))
    wide_shape = (shape[0], wide.in_width, *shape[2:])
    assert wide(torch.randn(wide_shape)).shape[1] == wide.out_width
    want = nonzero_macs(dense, shape)
    assert nonzero_macs(wide, wide_shape) == pytest.approx(want, rel=0.01)
    assert get_mask(wide.layer).density == pytest.approx(1 - s, rel=0.02)


def test_resnet18_sparse_wide_multiplier_at_s_09():
    """The spec's figure: Sparse Wide at s = 0.9 widens by sqrt(10) = 3.162..."""
    assert wide_factor(0.9) == pytest.approx(math.sqrt(10), rel=1e-12)
    assert round(wide_factor(0.9), 3) == 3.162


def _cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


@pytest.mark.parametrize("s", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("kind", ["wide", "parallel", "factorized", "doped"])
def test_sparse_ift_on_a_network_keeps_shapes_and_macs(kind, s):
    torch.manual_seed(0)
    dense = _cnn().eval()
    sparse = sparse_ift(dense, kind, s, seed=0).eval()
    shape = (2, 3, 8, 8)
    x = torch.randn(shape)
    assert sparse(x).shape == (2, 10)
    want = nonzero_macs(dense, shape)
    assert nonzero_macs(sparse, shape) == pytest.approx(want, rel=0.01)
    assert all(get_mask(m) is None for m in dense.modules())  # the original is untouched


def test_skip_keeps_named_layers_dense_and_registry():
    dense = _cnn()
    sparse = create_model("sparse_ift", model=dense, kind="doped", s=0.75, skip=["0", "9"])
    assert isinstance(sparse[0], nn.Conv2d) and isinstance(sparse[9], nn.Linear)
    assert isinstance(sparse[3], SparseDoped) and isinstance(sparse[7], SparseDoped)


def test_masks_are_seeded_and_train_only_kept_weights():
    a = sparse_ift(_cnn(), "parallel", 0.75, seed=3)
    b = sparse_ift(_cnn(), "parallel", 0.75, seed=3)
    ma, mb = get_mask(a[3].branches[1]).mask, get_mask(b[3].branches[1]).mask
    assert torch.equal(ma, mb)
    assert not torch.equal(ma, get_mask(a[3].branches[2]).mask)  # branches differ
    a[3].branches[1](torch.randn(1, 16, 8, 8)).sum().backward()
    grad = a[3].branches[1].parametrizations.weight.original.grad
    assert (grad[~ma] == 0).all()


def test_set_regrowth_moves_the_smallest_weights_and_keeps_density():
    torch.manual_seed(0)
    model = sparse_ift(_cnn(), "factorized", 0.75, seed=0)
    with torch.no_grad():  # trained-looking latents: every kept weight non-zero
        for m in model.modules():
            if get_mask(m) is not None:
                m.parametrizations.weight.original.copy_(torch.randn_like(m.weight))
    before = {n: get_mask(m).mask.clone() for n, m in model.named_modules() if get_mask(m)}
    weights = {n: m.weight.detach().clone() for n, m in model.named_modules() if get_mask(m)}
    moved = regrow_set(model, 0.2, generator=torch.Generator().manual_seed(1))
    total = 0
    for name, m in model.named_modules():
        if get_mask(m) is None:
            continue
        old, new = before[name], get_mask(m).mask
        count = int(0.2 * int(old.sum()) + 0.5)
        total += count
        assert int(new.sum()) == int(old.sum())  # density kept
        dropped, grown = old & ~new, new & ~old
        assert int(dropped.sum()) == int(grown.sum()) == count
        kept_abs = weights[name].abs()[old]
        assert weights[name].abs()[dropped].max() <= kept_abs.sort().values[count - 1]
        assert (m.weight.detach()[grown] == 0).all()  # regrown from zero
    assert moved == total > 0
    assert regrow_set(model, 0.0) == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="s must lie"):
        SparseParallel(nn.Linear(4, 4), 1.0)
    with pytest.raises(ValueError, match="s must lie"):
        SparseWide(nn.Linear(4, 4), 0.0)
    with pytest.raises(ValueError, match="s must lie"):
        SparseFactorized(nn.Linear(4, 4), float("nan"))
    with pytest.raises(ValueError, match="groups=1"):
        SparseDoped(nn.Conv2d(8, 8, 3, groups=8), 0.5)
    with pytest.raises(TypeError, match="nn.Linear or nn.Conv2d"):
        SparseWide(nn.Conv1d(4, 4, 3), 0.5)
    with pytest.raises(ValueError, match="kind must be one of"):
        sparse_ift(_cnn(), "deep", 0.5)
    with pytest.raises(TypeError, match="nn.Sequential"):
        sparse_ift(SparseParallel(nn.Linear(4, 4), 0.5), "wide", 0.5)
    with pytest.raises(ValueError, match="not modules"):
        sparse_ift(_cnn(), "parallel", 0.5, skip=["head"])
    with pytest.raises(ValueError, match="fraction must lie"):
        regrow_set(sparse_ift(_cnn(), "parallel", 0.5), 1.0)
    with pytest.raises(ValueError, match="no SparsityMask"):
        regrow_set(_cnn(), 0.1)


@pytest.mark.parametrize("cls", [SparseWide, SparseParallel, SparseFactorized, SparseDoped])
def test_transforms_name_a_wrong_input_width(cls):
    # each ended in torch's "mat1 and mat2 shapes cannot be multiplied"
    layer = cls(nn.Linear(4, 4), 0.5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects input \(\*, \d+\)"):
        layer(torch.rand(2, 5))
    conv = cls(nn.Conv2d(4, 4, 3), 0.5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects input \(N, \d+, H, W\)"):
        conv(torch.rand(1, 5, 6, 6))


def test_sparse_wide_zero_width_is_not_the_default():
    # in_width=0 was read as "not given" and the default width used
    with pytest.raises(ValueError, match="below the layer's"):
        SparseWide(nn.Linear(4, 4), 0.5, in_width=0)
