import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras.nas.mixed import (
    BinarizedMixedOp,
    MixedOp,
    arch_parameters,
    weight_parameters,
)


def _mlp(seed: int, d: int = 6) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, d))


def _candidates(k: int = 4) -> dict[str, nn.Module]:
    ops = {f"mlp{i}": _mlp(i) for i in range(k - 1)}
    ops["skip"] = nn.Identity()
    return ops


def test_mixed_op_one_hot_weight_equals_chosen_op_exactly():
    op = MixedOp(_candidates())
    x = torch.randn(5, 6)
    for i, cand in enumerate(op.candidates):
        w = F.one_hot(torch.tensor(i), len(op.candidates)).float()
        assert torch.equal(op(x, weights=w), cand(x))


def test_mixed_op_is_softmax_weighted_sum_and_grads_reach_every_logit():
    op = MixedOp(_candidates())
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0]))
    x = torch.randn(5, 6)
    p = torch.softmax(op.alpha.detach(), 0)
    want = sum(p[i] * c(x) for i, c in enumerate(op.candidates))
    torch.testing.assert_close(op(x), want)
    op(x).pow(2).sum().backward()
    assert op.alpha.grad is not None and (op.alpha.grad != 0).all()
    assert op.chosen() == 2 and op.names[op.chosen()] == "mlp2"
    assert torch.equal(op.extract()(x), op.candidates[2](x))


def test_arch_and_weight_parameters_split():
    net = nn.Sequential(MixedOp(_candidates()), nn.Linear(6, 2), BinarizedMixedOp(_candidates(3)))
    arch = arch_parameters(net)
    assert [a.shape for a in arch] == [(4,), (3,)]
    weights = weight_parameters(net)
    assert len(arch) + len(weights) == len(list(net.parameters()))
    assert not {id(p) for p in arch} & {id(p) for p in weights}


def test_mixed_op_bad_inputs():
    op = MixedOp(_candidates())
    with pytest.raises(ValueError, match="shape"):
        op(torch.randn(2, 6), weights=torch.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        op(torch.randn(2, 6), weights=torch.tensor([1.0, float("nan"), 0, 0]))
    bad = MixedOp([nn.Linear(6, 3), nn.Linear(6, 4)])
    with pytest.raises(ValueError, match="gives shape"):
        bad(torch.randn(2, 6))
    with pytest.raises(ValueError, match="at least one"):
        MixedOp([])
    with pytest.raises(TypeError, match="not an nn.Module"):
        MixedOp([nn.Identity(), "conv"])
    with pytest.raises(ValueError, match="mode"):
        BinarizedMixedOp(_candidates(), mode="one")


def _gate_gradient(op: BinarizedMixedOp, x: torch.Tensor, active: int, involved: list[int]):
    """dL/dalpha from the binary-gate formula, with dL/dg_j by explicit autograd on gates."""
    g = F.one_hot(torch.tensor(active), len(op.candidates)).float().requires_grad_()
    y = sum(g[j] * op.candidates[j](x) for j in range(len(op.candidates)))
    (dg,) = torch.autograd.grad(y.pow(2).sum(), g)
    p = torch.softmax(op.alpha.detach()[involved], 0)
    dg = dg[involved]
    out = torch.zeros(len(op.candidates))
    for a, i in enumerate(involved):
        out[i] = sum(dg[b] * p[b] * (float(a == b) - p[a]) for b in range(len(involved)))
    return out


@pytest.mark.parametrize("mode", ["two", "full"])
def test_binarized_op_alpha_gradient_is_binary_gate_estimate(mode):
    op = BinarizedMixedOp(_candidates(), mode=mode, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.2, 0.5, -0.3, 0.1]))
    ref = copy.deepcopy(op)
    x = torch.randn(5, 6, requires_grad=True)
    op(x).pow(2).sum().backward()
    active, involved, _ = op.last_sample
    assert len(involved) == (2 if mode == "two" else 4) and active in involved
    want = _gate_gradient(ref, x.detach(), active, involved)
    torch.testing.assert_close(op.alpha.grad, want)
    untouched = [i for i in range(4) if i not in involved]
    assert (op.alpha.grad[untouched] == 0).all() and (op.alpha.grad[involved] != 0).any()
    # weights and input get exactly the gradient of the active path alone
    x2 = x.detach().clone().requires_grad_()
    ref.candidates[active](x2).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    for i, (c, r) in enumerate(zip(op.candidates, ref.candidates)):
        for p, q in zip(c.parameters(), r.parameters()):
            if i == active:
                torch.testing.assert_close(p.grad, q.grad)
            else:
                assert p.grad is None


def test_binarized_op_keeps_one_paths_activations():
    """Only the active candidate runs with autograd in forward; the saved tensors are its own."""
    op = BinarizedMixedOp(_candidates(), generator=torch.Generator().manual_seed(0))
    calls = []
    for i, c in enumerate(op.candidates):
        c.register_forward_hook(lambda m, a, o, i=i: calls.append((i, torch.is_grad_enabled())))
    saved = []
    x = torch.randn(8, 6, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: saved.append(t.shape) or t, lambda t: t
    ):
        y = op(x)
    active, involved, _ = op.last_sample
    assert calls == [(active, True)]
    alone = []
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: alone.append(t.shape) or t, lambda t: t
    ):
        op.candidates[active](x)
    assert saved == alone
    calls.clear()
    y.sum().backward()
    # backward recomputes the other involved path once, without a graph
    assert calls == [(j, False) for j in involved if j != active]


def test_binarized_op_samples_follow_probabilities():
    op = BinarizedMixedOp(
        [nn.Identity()] * 3, mode="full", generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.7, 0.2, 0.1]).log())
    counts = torch.zeros(3)
    for _ in range(3000):
        counts[op.sample()[0]] += 1
    torch.testing.assert_close(counts / 3000, torch.tensor([0.7, 0.2, 0.1]), atol=0.03, rtol=0)


def test_binarized_op_eval_runs_chosen_op_and_no_grad_runs_sampled_op():
    op = BinarizedMixedOp(_candidates())
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.0, 3.0, 0.0, 0.0]))
    x = torch.randn(4, 6)
    op.eval()
    assert torch.equal(op(x), op.candidates[1](x))
    op.train()
    with torch.no_grad():
        y = op(x)
    assert torch.equal(y, op.candidates[op.last_sample[0]](x))


def test_rescale_keeps_other_candidates_probabilities():
    op = BinarizedMixedOp(_candidates(), generator=torch.Generator().manual_seed(3))
    with pytest.raises(RuntimeError, match="no training step"):
        op.rescale_updated_alpha()
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.2, 0.5, -0.3, 0.1]))
    before = torch.softmax(op.alpha.detach(), 0)
    op(torch.randn(3, 6)).sum().backward()
    with torch.no_grad():
        op.alpha -= 2.0 * op.alpha.grad  # an SGD step moves only the involved logits
    assert not torch.allclose(torch.softmax(op.alpha.detach(), 0), before)
    op.rescale_updated_alpha()
    after = torch.softmax(op.alpha.detach(), 0)
    _, involved, _ = op.last_sample
    others = [i for i in range(4) if i not in involved]
    torch.testing.assert_close(after[others], before[others])
    torch.testing.assert_close(after[involved].sum(), before[involved].sum())
