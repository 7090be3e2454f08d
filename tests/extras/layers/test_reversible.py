"""Reversible blocks (#16, reusable): exact inverse, recomputed gradients, flat memory."""

import pytest
import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from graphkit.extras.layers.reversible import ReversibleBlock, ReversibleSequence


def _branch(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, 2 * c, 3, padding=1), nn.Tanh(), nn.Conv2d(2 * c, c, 1))


def _stack(depth: int, c: int = 4, memory_saving: bool = True) -> ReversibleSequence:
    blocks = [ReversibleBlock(_branch(c // 2), _branch(c // 2)) for _ in range(depth)]
    return ReversibleSequence(blocks, memory_saving=memory_saving)


def _saved_bytes(fn) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_inverse_reconstructs_input(dtype, tol):
    torch.manual_seed(0)
    seq = _stack(6).to(dtype)
    x = torch.randn(2, 4, 8, 8, dtype=dtype)
    with torch.no_grad():
        y = seq(x)
        assert (y - x).abs().max() > 0.1  # the blocks do change the input
        assert (seq.inverse(y) - x).abs().max() < tol
        block = seq.blocks[0]
        assert (block.inverse(block(x)) - x).abs().max() < tol


def test_recomputed_gradients_equal_autograd():
    """Input and parameter gradients of the recompute path equal ordinary autograd (fp64)."""
    torch.manual_seed(1)
    fast = _stack(4).double()
    ref = _stack(4, memory_saving=False).double()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    params_f, params_r = list(fast.parameters()), list(ref.parameters())
    got = torch.autograd.grad((fast(x) * w).sum(), [x, *params_f])
    want = torch.autograd.grad((ref(x) * w).sum(), [x, *params_r])
    assert len(got) == 1 + 4 * 8
    for g, r in zip(got, want, strict=True):
        assert (g - r).abs().max() < 1e-8


def test_gradcheck_and_backward_accumulation():
    torch.manual_seed(2)
    seq = _stack(2, c=2).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seq, (x,))
    seq(x).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in seq.parameters())


def test_shared_and_frozen_parameters():
    """A branch used twice gets the sum of both gradients; frozen parameters get none."""
    torch.manual_seed(3)
    shared = _branch(2).double()
    frozen = _branch(2).double().requires_grad_(False)
    blocks = [ReversibleBlock(shared, frozen), ReversibleBlock(shared, _branch(2).double())]
    fast = ReversibleSequence(blocks)
    ref = ReversibleSequence(blocks, memory_saving=False)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    ps = [p for p in fast.parameters() if p.requires_grad]
    got = torch.autograd.grad(fast(x).sum(), [x, *ps])
    want = torch.autograd.grad(ref(x).sum(), [x, *ps])
    for g, r in zip(got, want, strict=True):
        assert (g - r).abs().max() < 1e-10
    fast(x).sum().backward()
    assert all(p.grad is None for p in frozen.parameters())


def test_saved_activations_independent_of_depth():
    """Saved-tensor bytes: 8 blocks store what 1 block stores (the output only); plain
    autograd through the same blocks stores about 8 times as much."""
    torch.manual_seed(4)
    x = torch.randn(1, 4, 16, 16, requires_grad=True)
    one, eight = _stack(1), _stack(8)
    b1, b8 = _saved_bytes(lambda: one(x)), _saved_bytes(lambda: eight(x))
    assert b1 == x.numel() * 4
    assert b8 <= 1.2 * b1
    plain1 = _saved_bytes(lambda: _stack(1, memory_saving=False)(x))
    plain8 = _saved_bytes(lambda: _stack(8, memory_saving=False)(x))
    assert plain8 > 7 * plain1 > 7 * b1


def test_no_grad_path_equals_function_path():
    torch.manual_seed(5)
    seq = _stack(3)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        plain = seq(x)
    assert torch.equal(seq(x.requires_grad_(True)), plain)


def test_bad_inputs():
    seq = _stack(1)
    with pytest.raises(ValueError, match="even size on dim 1"):
        seq(torch.randn(1, 3, 4, 4))
    with pytest.raises(TypeError, match="not a ReversibleBlock"):
        ReversibleSequence([nn.Identity()])
    with pytest.raises(ValueError, match="BatchNorm"):
        ReversibleSequence([ReversibleBlock(nn.BatchNorm2d(2), _branch(2))])


def test_f_or_g_changing_the_half_shape_is_named():
    block = ReversibleBlock(nn.Conv2d(2, 3, 1), nn.Conv2d(2, 2, 1))
    with pytest.raises(ValueError, match=r"f must keep the shape of a half, \(1, 2, 4, 4\)"):
        block(torch.randn(1, 4, 4, 4))
    block = ReversibleBlock(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 3, 1))
    with pytest.raises(ValueError, match="g must keep the shape of a half"):
        block(torch.randn(1, 4, 4, 4))
