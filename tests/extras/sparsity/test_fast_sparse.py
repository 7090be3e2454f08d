"""Fast Sparse ConvNets (Elsen et al., arXiv:1911.09723): CSR 1x1 convolutions, pointwise-only
sparsification of a MobileNet-style network."""

import pytest
import torch
from torch import nn

from graphkit.extras import create_model, nonzero_macs
from graphkit.extras._core.counting import count_macs
from graphkit.extras.sparsity.kernels import SparseConv1x1, csr_conv1x1
from graphkit.extras.sparsity.masks import apply_mask, check_block_zero, check_density, get_mask
from graphkit.extras.sparsity.methods.fast_sparse import (
    layer_roles,
    sparsify_mobilenet,
    to_sparse_kernels,
)


def _mobilenet_v1() -> nn.Sequential:
    """A tiny MobileNet v1: full 3x3 stem, (depthwise 3x3, pointwise 1x1) pairs, classifier."""

    def dw_pw(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        ]

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        *dw_pw(16, 32, 1),
        *dw_pw(32, 64, 2),
        *dw_pw(64, 64, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("blk", [(1, 1), (1, 4), (2, 1), (4, 1)])
@pytest.mark.parametrize("stride", [1, 2])
def test_csr_conv_equals_the_dense_masked_conv(batch, blk, stride):
    torch.manual_seed(1)
    conv = nn.Conv2d(32, 48, 1, stride=stride)
    sparse = SparseConv1x1.from_dense(conv, block=blk, density=0.2)
    check_block_zero(sparse.to_dense()[:, :, 0, 0], *blk)
    assert sparse.nnz == round(0.2 * 32 * 48 / (blk[0] * blk[1])) * blk[0] * blk[1]
    masked = nn.Conv2d(32, 48, 1, stride=stride)
    masked.load_state_dict(conv.state_dict())
    apply_mask(masked, mask=sparse.to_dense() != 0)
    x = torch.randn(batch, 32, 9, 7)
    want = masked(x)
    got = sparse(x)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-5


def test_csr_kernel_macs_scale_with_density_and_equal_nonzero_macs():
    shape = (2, 32, 8, 8)
    dense_macs = nonzero_macs(nn.Conv2d(32, 48, 1), shape)
    assert dense_macs == 2 * 48 * 32 * 64
    for density in (0.1, 0.25, 0.5):
        conv = nn.Conv2d(32, 48, 1)
        sparse = SparseConv1x1.from_dense(conv, density=density)
        apply_mask(conv, mask=sparse.to_dense() != 0)
        assert sparse.macs(shape) == nonzero_macs(conv, shape)
        kept = round(density * 32 * 48)  # the layer keeps round(density * numel) weights
        assert sparse.macs(shape) == kept * 2 * 64
        assert sparse.macs(shape) == pytest.approx(density * dense_macs, abs=2 * 64 / 2)


def test_from_dense_reads_an_existing_mask():
    conv = nn.Conv2d(8, 8, 1)
    mask = torch.zeros(8, 8, 1, 1, dtype=torch.bool)
    mask[::2, :4] = True
    apply_mask(conv, mask=mask)
    sparse = SparseConv1x1.from_dense(conv)
    assert sparse.nnz == 16 and torch.equal(sparse.to_dense() != 0, mask)
    with pytest.raises(AssertionError, match="partly zero"):
        SparseConv1x1.from_dense(conv, block=(4, 1))  # rows 0, 2, 4, 6 kept: not 4x1 blocks


def test_roles_of_a_mobilenet():
    roles = layer_roles(_mobilenet_v1())
    assert roles == {
        "0": "stem", "3": "dw", "6": "pw", "9": "dw", "12": "pw", "15": "dw", "18": "pw",
        "23": "head",
    }  # fmt: skip


@pytest.mark.parametrize("blk", [(1, 1), (4, 1)])
def test_sparsify_mobilenet_prunes_only_pointwise_and_keeps_the_function(blk):
    model = _mobilenet_v1().eval()
    shape = (1, 3, 32, 32)
    dense_macs = nonzero_macs(model, shape)
    pruner = create_model("fast_sparse_convnets", model=model, density=0.1, block=blk)
    roles = layer_roles(model)
    assert set(pruner.layers) == {n for n, r in roles.items() if r == "pw"}
    modules = dict(model.named_modules())
    for name, role in roles.items():
        if role == "pw":
            check_density(modules[name].weight, 0.1, tol=2 * blk[0] / modules[name].weight.numel())
            check_block_zero(modules[name].weight, *blk)
        else:  # stem, depthwise and classifier stay dense
            assert get_mask(modules[name]) is None
            assert bool((modules[name].weight != 0).all())
    # the MACs saved are 90% of the pointwise ones, nothing else
    pw_macs = sum(
        nonzero_macs(modules[n], _input_of(model, modules[n], shape)) for n in pruner.layers
    )
    assert dense_macs - nonzero_macs(model, shape) == pytest.approx(9 * pw_macs, rel=0.02)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        replaced = to_sparse_kernels(model, blk)
        got = model(x)
    assert replaced == sorted(pruner.layers, key=int)
    assert all(isinstance(model.get_submodule(n), SparseConv1x1) for n in replaced)
    assert (got - want).abs().max() < 1e-5
    assert count_macs(model, shape) < dense_macs  # the dense 1x1 products are gone


def _input_of(model, module, shape):
    seen = {}

    def hook(m, args, out):  # returns None: the output is left alone
        seen["x"] = args[0]

    handle = module.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(shape))
    handle.remove()
    return seen["x"]


def test_gradual_schedule_reaches_the_density():
    model = _mobilenet_v1()
    pruner = sparsify_mobilenet(model, 0.25, t0=0, n=4, dt=2)
    assert all(float(pruner.mask(n).float().mean()) == 1.0 for n in pruner.layers)
    for step in range(9):
        pruner.step(step)
    check_density(model, 0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="only 1x1"):
        SparseConv1x1.from_dense(nn.Conv2d(4, 4, 3))
    with pytest.raises(ValueError, match="padding 0"):
        SparseConv1x1.from_dense(nn.Conv2d(4, 4, 1, padding=1))
    with pytest.raises(TypeError, match="nn.Conv2d"):
        SparseConv1x1.from_dense(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="tiled"):
        SparseConv1x1.from_dense(nn.Conv2d(6, 6, 1), block=(4, 1), density=0.5)
    with pytest.raises(ValueError, match="density must lie"):
        SparseConv1x1.from_dense(nn.Conv2d(4, 4, 1), density=1.5)
    sparse = SparseConv1x1.from_dense(nn.Conv2d(4, 4, 1), density=0.5)
    with pytest.raises(ValueError, match=r"expected \(N, 4, H, W\)"):
        sparse(torch.randn(1, 5, 2, 2))
    with pytest.raises(ValueError, match="expects"):
        csr_conv1x1(torch.randn(4, 2), sparse.crow_indices, sparse.col_indices, sparse.values, 4)
    with pytest.raises(ValueError, match="do not form a CSR"):
        SparseConv1x1(torch.tensor([0, 2, 1]), torch.tensor([0]), torch.tensor([1.0]), 4)
    with pytest.raises(ValueError, match="unknown roles"):
        sparsify_mobilenet(_mobilenet_v1(), 0.1, keep_dense=("stem", "depthwise"))
    with pytest.raises(ValueError, match="pointwise convolutions are"):
        sparsify_mobilenet(_mobilenet_v1(), 0.1, keep_dense=("pw",))
    with pytest.raises(ValueError, match="density must lie"):
        sparsify_mobilenet(_mobilenet_v1(), -0.1)
    with pytest.raises(ValueError, match="no pointwise"):
        sparsify_mobilenet(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2)), 0.1)


def test_csr_conv1x1_checks_the_csr_metadata():
    x = torch.randn(1, 4, 3, 3)
    # a crow of the wrong length was read past its end and gave garbage
    with pytest.raises(ValueError, match=r"crow must be \(3,\) for out_channels=2"):
        csr_conv1x1(x, torch.tensor([0, 1]), torch.tensor([0, 1]), torch.rand(2), 2)
    with pytest.raises(ValueError, match="col and values must be"):
        csr_conv1x1(x, torch.tensor([0, 1, 2]), torch.tensor([0, 1]), torch.rand(3), 2)
    with pytest.raises(ValueError, match="bias must hold out_channels=2"):
        crow, col = torch.tensor([0, 1, 2]), torch.tensor([0, 1])
        csr_conv1x1(x, crow, col, torch.rand(2), 2, torch.rand(3))


def test_macs_names_a_wrong_input_shape():
    layer = SparseConv1x1.from_dense(nn.Conv2d(4, 4, 1))
    with pytest.raises(ValueError, match=r"input_shape must be \(N, C_in, H, W\)"):
        layer.macs((1, 4, 8))  # was "not enough values to unpack"
