"""PHNNs (#24): parameter formula, Kronecker construction, quaternion equivalence."""

import pytest
import torch
import torch.nn.functional as F

from graphkit.extras import create_model, get_entry
from graphkit.extras._core.testing import assert_params
from graphkit.extras.layers.phc import (
    PHConv1d,
    PHConv2d,
    PHConv3d,
    PHLinear,
    hamilton_matrices,
    kronecker_weight,
)


def test_param_formula_spec_example():
    """256 -> 256, 3x3, n = 4: 4**3 + 256*256*9/4 = 64 + 147,456 = 147,520 (spec [calc],
    counted here) against 589,824 for the dense kernel; the bias adds 256."""
    assert_params(PHConv2d(256, 256, 3, n=4, bias=False), 147_520)
    assert_params(PHConv2d(256, 256, 3, n=4), 147_520 + 256)
    assert PHConv2d(256, 256, 3, n=4).weight.numel() == 589_824


@pytest.mark.parametrize(
    "layer, n, dense, out",
    [
        (lambda: PHLinear(12, 6, n=3), 3, 12 * 6, 6),
        (lambda: PHLinear(16, 8, n=2, bias=False), 2, 16 * 8, 0),
        (lambda: PHConv1d(6, 9, 5, n=3), 3, 6 * 9 * 5, 9),
        (lambda: PHConv2d(3, 6, 3, n=3), 3, 3 * 6 * 9, 6),
        (lambda: PHConv3d(8, 4, (1, 2, 3), n=4), 4, 8 * 4 * 6, 4),
    ],
)
def test_param_formula(layer, n, dense, out):
    assert_params(layer(), n**3 + dense // n + out)


def _explicit_weight(A, Fb):
    """Block (r, c) of W is sum_l A[l, r, c] * F[l], written with loops."""
    n, o, i = A.shape[0], Fb.shape[1], Fb.shape[2]
    W = torch.zeros(n * o, n * i, *Fb.shape[3:], dtype=A.dtype)
    for l in range(n):
        for r in range(n):
            for c in range(n):
                W[r * o : (r + 1) * o, c * i : (c + 1) * i] += A[l, r, c] * Fb[l]
    return W


def test_kronecker_weight_equals_explicit_construction():
    torch.manual_seed(0)
    for n, kernel in [(2, ()), (3, (3,)), (4, (3, 3)), (4, (1, 2, 3))]:
        A = torch.randn(n, n, n, dtype=torch.float64)
        Fb = torch.randn(n, 5, 2, *kernel, dtype=torch.float64)
        want = _explicit_weight(A, Fb)
        torch.testing.assert_close(kronecker_weight(A, Fb), want, rtol=0, atol=1e-12)


def test_linear_weight_equals_sum_of_torch_kron():
    torch.manual_seed(1)
    layer = PHLinear(12, 8, n=4).double()
    want = sum(torch.kron(layer.A[i], layer.F[i]) for i in range(4))
    torch.testing.assert_close(layer.weight, want, rtol=0, atol=1e-12)
    x = torch.randn(7, 12, dtype=torch.float64)
    torch.testing.assert_close(layer(x), x @ want.T + layer.bias, rtol=0, atol=1e-12)


def _hamilton_parts(r, x, y, z, a, b, c, d, op):
    """Hamilton product (r + xi + yj + zk) * (a + bi + cj + dk), each product by ``op``."""
    return torch.cat(
        [
            op(r, a) - op(x, b) - op(y, c) - op(z, d),
            op(r, b) + op(x, a) + op(y, d) - op(z, c),
            op(r, c) - op(x, d) + op(y, a) + op(z, b),
            op(r, d) + op(x, c) - op(y, b) + op(z, a),
        ],
        dim=1,
    )


def test_quaternion_linear_with_hamilton_matrices():
    torch.manual_seed(2)
    layer = PHLinear(8, 12, n=4).double()
    with torch.no_grad():
        layer.A.copy_(hamilton_matrices(dtype=torch.float64))
    x = torch.randn(5, 8, dtype=torch.float64)
    r, xi, yj, zk = layer.F  # quaternion weight components, each (3, 2)
    a, b, c, d = x.chunk(4, dim=1)
    want = _hamilton_parts(r, xi, yj, zk, a, b, c, d, lambda w, v: v @ w.T) + layer.bias
    torch.testing.assert_close(layer(x), want, rtol=0, atol=1e-12)


def test_quaternion_conv2d_with_hamilton_matrices():
    """Reference: 16 real convolutions combined by the Hamilton product; fp32 to 1e-6 (spec)."""
    torch.manual_seed(3)
    layer = PHConv2d(8, 16, 3, n=4, stride=2, padding=1)
    with torch.no_grad():
        layer.A.copy_(hamilton_matrices())
    x = torch.randn(2, 8, 9, 9)
    r, xi, yj, zk = layer.F  # each (4, 2, 3, 3)
    a, b, c, d = x.chunk(4, dim=1)

    def conv(w, v):
        return F.conv2d(v, w, stride=2, padding=1)

    want = _hamilton_parts(r, xi, yj, zk, a, b, c, d, conv) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), want, rtol=0, atol=1e-6)


def test_conv_equals_conv_with_built_weight_and_gradients_reach_factors():
    torch.manual_seed(4)
    layer = PHConv1d(6, 9, 3, n=3, padding="same", dilation=2)
    x = torch.randn(2, 6, 11)
    out = layer(x)
    ref = F.conv1d(x, layer.weight, layer.bias, padding="same", dilation=2)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    out.square().sum().backward()
    assert layer.A.grad is not None and layer.A.grad.abs().sum() > 0
    assert layer.F.grad is not None and layer.F.grad.abs().sum() > 0


def test_shapes_and_unbatched_input():
    assert PHConv3d(4, 8, 3, n=4, padding=1)(torch.randn(2, 4, 5, 6, 7)).shape == (2, 8, 5, 6, 7)
    assert PHConv2d(6, 3, 3, n=3)(torch.randn(6, 5, 5)).shape == (3, 3, 3)
    assert PHLinear(4, 8, n=2)(torch.randn(2, 3, 4)).shape == (2, 3, 8)


def test_bad_inputs():
    with pytest.raises(ValueError, match="divisible by n=4"):
        PHConv2d(6, 8, 3, n=4)
    with pytest.raises(ValueError, match="divisible by n=3"):
        PHLinear(6, 8, n=3)
    with pytest.raises(ValueError, match="positive integer"):
        PHLinear(4, 4, n=0)
    with pytest.raises(ValueError, match="kernel_size"):
        PHConv2d(4, 4, (3, 3, 3), n=2)
    with pytest.raises(ValueError, match="expects input"):
        PHConv2d(4, 4, 3, n=2)(torch.randn(1, 6, 5, 5))
    with pytest.raises(ValueError, match="expects input"):
        PHLinear(4, 4, n=2)(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"shape \(n, n, n\)"):
        kronecker_weight(torch.randn(2, 3, 3), torch.randn(2, 1, 1))


def test_registered():
    layer = create_model("phconv2d", in_channels=4, out_channels=8, kernel_size=3, n=2)
    assert isinstance(layer, PHConv2d)
    assert get_entry("phconv2d").family == "block"


def test_bad_padding_is_named():
    with pytest.raises(ValueError, match="padding must be 'same', 'valid' or ints, got 'foo'"):
        PHConv2d(4, 4, 3, padding="foo")
    with pytest.raises(ValueError, match="padding must be >= 0"):
        PHConv2d(4, 4, 3, padding=-1)
