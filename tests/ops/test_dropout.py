import math

import pytest
import torch

from graphkit.ops.dropout import dropout


def _within(frac: float, p_keep: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(frac - p_keep) < sigmas * math.sqrt(p_keep * (1 - p_keep) / n)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.9])
def test_keeps_each_element_with_probability_one_minus_p_and_scales_it(p):
    torch.manual_seed(0)
    x = torch.randn(400_000) + 5.0  # never zero, so zeros mark dropped elements
    y = dropout(x, p)
    kept = y != 0
    n = x.numel()
    assert _within(kept.float().mean().item(), 1 - p, n)
    scale = torch.tensor(1.0 / (1.0 - p), dtype=torch.float32)
    assert torch.equal(y[kept], x[kept] * scale)
    # no drift along the tensor, and neighbours independent: P(keep, keep) = (1 - p)^2
    for block in kept.view(8, -1):
        assert _within(block.float().mean().item(), 1 - p, block.numel())
    both = (kept[1:] & kept[:-1]).float().mean().item()
    assert _within(both, (1 - p) ** 2, n - 1)


def test_seeded_by_torch_and_fresh_per_call():
    x = torch.ones(10_000)
    torch.manual_seed(3)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5), a)
    assert not torch.equal(a, b)
    # two calls' masks are independent: they agree on about half the elements
    agree = ((a != 0) == (b != 0)).float().mean().item()
    assert _within(agree, 0.5, x.numel())
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(dropout(x, 0.5, generator=g1), dropout(x, 0.5, generator=g2))


def test_gradient_is_the_scaled_mask():
    x = torch.randn(50, 20, dtype=torch.float64, requires_grad=True)
    y = dropout(x, 0.25)
    g = torch.randn_like(y)
    y.backward(g)
    mask = (y != 0).double() / 0.75
    torch.testing.assert_close(x.grad, g * mask, rtol=0, atol=1e-15)
    assert y.dtype == torch.float64


def test_identity_cases_and_bad_probability():
    x = torch.randn(5, 3)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    assert dropout(torch.empty(0, 4), 0.5).shape == (0, 4)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="dropout probability must lie in"):
            dropout(x, bad)


def test_other_dtypes_and_layouts_behave_like_torch_dropout():
    torch.manual_seed(0)
    half = torch.ones(1000, dtype=torch.float16)
    y = dropout(half, 0.5)
    assert y.dtype == torch.float16 and set(y.unique().tolist()) <= {0.0, 2.0}
    x = torch.randn(30, 40).t()  # not contiguous
    y = dropout(x, 0.5)
    kept = y != 0
    assert y.shape == x.shape and torch.equal(y[kept], x[kept] * 2)


def test_a_generator_is_honoured_on_the_fallback_path_too():
    x = torch.ones(2000, dtype=torch.float16)
    masks = [dropout(x, 0.5, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(masks[0], masks[1])
    assert set(masks[0].unique().tolist()) <= {0.0, 2.0}
    state = torch.get_rng_state()
    dropout(x, 0.5, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left alone


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_index_add_equals_the_two_steps(dtype):
    from graphkit.ops.dropout import dropout_index_add

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 7, generator=g, dtype=dtype, requires_grad=True)
    index = torch.randint(0, 40, (500,), generator=g)
    grad = torch.randn(40, 7, generator=g, dtype=dtype)
    torch.manual_seed(11)
    fused = dropout_index_add(x, index, 40, 0.3)
    (gx_fused,) = torch.autograd.grad(fused, x, grad)
    torch.manual_seed(11)  # the same seed draws the same mask
    dropped = dropout(x, 0.3)
    steps = torch.zeros(40, 7, dtype=dtype).index_add(0, index, dropped)
    (gx_steps,) = torch.autograd.grad(steps, x, grad)
    assert torch.equal(fused, steps)
    assert torch.equal(gx_fused, gx_steps)
    assert fused.dtype == dtype


def test_fused_index_add_gradient_and_bad_index():
    from graphkit.ops.dropout import dropout_index_add

    x = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 6, (30,))

    def f(v):
        torch.manual_seed(2)  # a fixed mask, so the function is differentiable
        return dropout_index_add(v, index, 6, 0.4)

    assert torch.autograd.gradcheck(f, (x,))
    for bad, match in ((index + 6, r"index must lie in \[0, 6\), got 11"),
                       (index[:5], r"index must have shape \[30\]")):
        with pytest.raises(ValueError, match=match):
            dropout_index_add(x, bad, 6, 0.4)
    plain = dropout_index_add(x, index, 6, 0.4, training=False)
    assert torch.equal(plain, torch.zeros(6, 4, dtype=torch.float64).index_add(0, index, x))
