"""DASS (arXiv 2207.06968): sparse candidate ops, masked bi-level search, derived genotype."""

import pytest
import torch

from graphkit.extras._core.registry import create_model
from graphkit.extras.nas.methods.dass import (
    DARTS_SPARSE_OPS,
    DASSGenotype,
    DASSNetwork,
    DASSSearch,
    SparseConvOp,
    SparseLinearOp,
    sparse_ops,
)
from graphkit.extras.nas.mixed import arch_parameters
from graphkit.extras.sparsity.masks import check_density, get_mask


def _batches(steps: int, seed: int = 0):
    """Two-class 16x16 synthetic images: a bright square top-left vs bottom-right."""
    g = torch.Generator().manual_seed(seed)

    def batch():
        y = torch.randint(0, 2, (8,), generator=g)
        x = 0.3 * torch.randn(8, 3, 16, 16, generator=g)
        for i, label in enumerate(y.tolist()):
            r = slice(0, 8) if label == 0 else slice(8, 16)
            x[i, :, r, r] += 1.0
        return x, y

    return [(batch(), batch()) for _ in range(steps)]


def _exact_density(op, density):
    for module in op.masked_modules():
        mask = get_mask(module).mask
        assert int(mask.sum()) == round(density * mask.numel())
        # the effective weight has no more non-zeros than the mask keeps
        assert int((module.weight != 0).sum()) <= int(mask.sum())


def test_sparse_conv_op_shapes_and_density():
    op = SparseConvOp(8, 16, 5, stride=2, dilation=1, density=0.25)
    assert op(torch.randn(2, 8, 16, 16)).shape == (2, 16, 8, 8)
    _exact_density(op, 0.25)
    check_density(op, 0.25)
    dense = SparseConvOp(4, 4, 3, separable=False, density=1.0)
    assert int((dense.conv[0].weight != 0).sum()) == 4 * 4 * 9


def test_sparse_linear_op_2d_and_4d():
    op = SparseLinearOp(10, 6, density=0.3)
    assert int(get_mask(op.linear).mask.sum()) == 18  # round(0.3 * 60)
    assert op(torch.randn(5, 10)).shape == (5, 6)
    assert op(torch.randn(2, 10, 4, 4)).shape == (2, 6, 4, 4)
    with pytest.raises(ValueError, match="expects"):
        op(torch.randn(2, 9, 4, 4))


def test_bad_arguments():
    with pytest.raises(ValueError, match="density"):
        SparseConvOp(4, 4, density=0.0)
    with pytest.raises(ValueError, match="density"):
        SparseLinearOp(4, 4, density=1.5)
    with pytest.raises(ValueError, match="odd"):
        SparseConvOp(4, 4, 4)
    with pytest.raises(ValueError, match="unknown space"):
        DASSSearch(space="darts")
    with pytest.raises(ValueError, match="channels"):
        DASSSearch(channels=0)
    with pytest.raises(ValueError, match="input channels"):
        DASSSearch(channels=4, cells=1, nodes=2)(torch.randn(1, 1, 8, 8))
    with pytest.raises(TypeError, match="genotype must be a DASSGenotype, got str"):
        DASSNetwork("darts")  # was an AttributeError on str.cells
    with pytest.raises(ValueError, match="batches is empty"):  # returned the untrained genotype
        DASSSearch(channels=4, cells=1, nodes=2).search([])
    with pytest.raises(ValueError, match="NaN"):
        op = SparseLinearOp(4, 4, density=0.5)
        with torch.no_grad():
            op.linear.parametrizations.weight.original[0, 0] = float("nan")
        op.resparsify()


def test_candidate_set_has_sparse_ops():
    names = set(DARTS_SPARSE_OPS)
    assert {"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"} <= names
    assert {"sparse_sep_conv_3x3", "sparse_dil_conv_3x3", "sparse_linear"} <= names


def test_density_exact_after_every_step_and_alpha_grads_flow():
    torch.manual_seed(0)
    net = DASSSearch(density=0.2, channels=4, cells=1, nodes=2, num_classes=2)
    ops = net.sparse_ops()
    # per node i: i + 2 edges, each with 4 sparse convs-ops (2 sep stacks + 2 dil) + 1 linear
    assert len(ops) == (2 + 3) * 7
    for step, (train, val) in enumerate(_batches(3)):
        net.step(train, val)
        for op in ops:
            _exact_density(op, 0.2)
        check_density(net, 0.2)
        grads = [a.grad for a in arch_parameters(net)]
        assert all(g is not None for g in grads)
        # the architecture gradient reaches the sparse candidates' logits
        for cell in net.cells:
            for edge in cell.edges:
                k = edge.names.index("sparse_sep_conv_3x3")
                assert edge.alpha.grad[k].abs() > 0, step


def test_mini_search_derives_valid_genotype():
    """A 50-step CPU search on 16x16 synthetic data gives a valid genotype (DARTS's rule)."""
    torch.manual_seed(0)
    net = DASSSearch(density=0.1, channels=4, cells=1, nodes=2, num_classes=2)
    alphas = [a.detach().clone() for a in arch_parameters(net)]
    genotype = net.search(_batches(50, seed=1))
    assert isinstance(genotype, DASSGenotype)
    genotype.validate(2)
    assert len(genotype.cells) == 1 and [len(n) for n in genotype.cells[0]] == [2, 2]
    moved = [float((a.detach() - b).abs().max()) for a, b in zip(arch_parameters(net), alphas)]
    assert min(moved) > 1e-3  # every edge's logits were updated
    check_density(net, 0.1)
    with pytest.raises(ValueError, match="distinct"):
        bad_node = (("skip_connect", 0), ("skip_connect", 0))
        DASSGenotype(((bad_node, (("skip_connect", 0), ("max_pool_3x3", 2))),)).validate(2)
    with pytest.raises(ValueError, match="invalid edge"):
        DASSGenotype((((("none", 0), ("skip_connect", 1)),),)).validate(1)


def test_registered():
    net = create_model("dass", channels=4, cells=1, nodes=2, num_classes=3)
    assert isinstance(net, DASSSearch)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_derived_network_is_sparse_and_trains():
    """The searched genotype becomes a discrete network whose sparse ops keep the density."""
    genotype = DASSGenotype(
        (
            (
                (("sparse_sep_conv_3x3", 0), ("skip_connect", 1)),
                (("sparse_linear", 1), ("sparse_dil_conv_5x5", 2)),
            ),
        )
    )
    torch.manual_seed(0)
    net = DASSNetwork(genotype, density=0.2, channels=4, num_classes=2)
    ops = sparse_ops(net)
    assert [type(op).__name__ for op in ops] == ["SparseConvOp"] * 2 + [
        "SparseLinearOp",
        "SparseConvOp",
    ]
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    (x, y), _ = _batches(1, seed=2)[0]
    for _ in range(20):  # fit one batch: the loss must fall with the masks re-applied
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.resparsify()
        losses.append(loss.item())
        for op in ops:
            _exact_density(op, 0.2)
    assert losses[-1] < 0.5 * losses[0], losses  # measured 0.711 -> 0.182
    with pytest.raises(ValueError, match="no cells"):
        DASSNetwork(DASSGenotype(()))
    with pytest.raises(ValueError, match="invalid edge"):
        DASSNetwork(DASSGenotype((((("conv_7x7", 0), ("skip_connect", 1)),),)))
