"""Shared MoE blocks: Router gates, Switch balancing term, z-loss, FFN and LoRA experts."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras.moe.experts import FFNExperts, LoRAExperts
from graphkit.extras.moe.losses import load_balance_loss, z_loss
from graphkit.extras.moe.router import Router


def test_topk_router_keeps_k_distinct_experts_with_softmax_over_their_logits():
    torch.manual_seed(0)
    router = Router(8, 5, gate="topk", k=2, init_std=1.0)
    x = torch.randn(3, 7, 8)
    w, idx, aux = router(x)
    assert w.shape == idx.shape == (3, 7, 2)
    flat = idx.reshape(-1, 2)
    assert (flat[:, 0] != flat[:, 1]).all()
    logits = router.linear(x.reshape(-1, 8))
    want = F.softmax(logits.gather(1, flat), dim=-1)  # softmax over the kept logits
    torch.testing.assert_close(w.reshape(-1, 2), want)
    assert torch.equal(flat, logits.topk(2, dim=-1).indices)
    assert aux.probs.shape == (21, 5)


def test_dense_gates_follow_their_formulas():
    torch.manual_seed(1)
    x = torch.randn(10, 4)
    for gate, fn in (
        ("softmax", lambda s: s),
        ("temperature", lambda s: s / 0.5),
        ("activation", lambda s: torch.tanh(s) / 0.5),
    ):
        r = Router(4, 3, gate=gate, tau=0.5, bias=True, init_std=1.0)
        w, idx, aux = r(x)
        torch.testing.assert_close(w, F.softmax(fn(r.linear(x)), dim=-1))
        assert torch.equal(idx, torch.arange(3).expand(10, 3))
        assert aux.balance.item() == pytest.approx(1.0)  # all experts used by every token


def test_learned_temperature_receives_gradient():
    r = Router(4, 3, gate="temperature", tau=2.0, learn_tau=True, init_std=1.0)
    w, _, _ = r(torch.randn(6, 4))
    (w[:, 0] ** 2).sum().backward()
    assert r.log_tau.grad is not None and r.log_tau.grad.abs() > 0
    assert r.tau.item() == pytest.approx(2.0)


def test_balance_term_is_one_when_balanced():
    # each of 4 experts is the clear favourite of 3 tokens: f_i = P_i = 1/4 by symmetry
    router = Router(4, 4, gate="topk", k=1)
    with torch.no_grad():
        router.linear.weight.copy_(torch.eye(4) * 5)
    x = torch.eye(4).repeat(3, 1)
    _, idx, aux = router(x)
    assert torch.equal(idx.squeeze(1), torch.arange(4).repeat(3))
    assert aux.balance.item() == pytest.approx(1.0, abs=1e-6)


def test_balance_term_formula_on_a_hand_example():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2]])
    idx = torch.tensor([[0], [0]])
    # E * sum f_i P_i = 2 * (1 * 0.85 + 0 * 0.15)
    assert load_balance_loss(probs, idx).item() == pytest.approx(1.7)
    # top-2 of 3 experts, 2 tokens: f = (2, 1, 1) / 4, P = column means
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.1, 0.5]])
    idx = torch.tensor([[0, 1], [2, 0]])
    want = 3 * (0.5 * 0.45 + 0.25 * 0.2 + 0.25 * 0.35)
    assert load_balance_loss(probs, idx).item() == pytest.approx(want)


def test_z_loss_formula():
    logits = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    want = (math.log(2) ** 2 + math.log(math.e + math.e**2) ** 2) / 2
    assert z_loss(logits).item() == pytest.approx(want)


def test_router_and_losses_reject_bad_input():
    with pytest.raises(ValueError, match="gate"):
        Router(4, 3, gate="noisy")
    with pytest.raises(ValueError, match="k must"):
        Router(4, 3, k=4)
    with pytest.raises(ValueError, match="tau"):
        Router(4, 3, gate="temperature", tau=0.0)
    r = Router(4, 3)
    with pytest.raises(ValueError, match="width 4"):
        r(torch.randn(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        r(torch.tensor([[float("nan"), 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="indices must lie"):
        load_balance_loss(torch.full((1, 2), 0.5), torch.tensor([[2]]))
    with pytest.raises(ValueError, match="same N"):
        load_balance_loss(torch.full((2, 2), 0.5), torch.tensor([[0]]))
    with pytest.raises(ValueError, match="logits"):
        z_loss(torch.zeros(3))


def test_ffn_experts_equal_a_per_token_loop():
    torch.manual_seed(2)
    experts = FFNExperts(6, 10, 4)
    x = torch.randn(9, 6)
    w, idx, _ = Router(6, 4, k=2, init_std=1.0)(x)
    out = experts(x, w, idx)
    for n in range(9):
        want = sum(w[n, j] * experts.expert(x[n : n + 1], int(idx[n, j]))[0] for j in range(2))
        torch.testing.assert_close(out[n], want)
    with pytest.raises(ValueError, match="must lie"):
        experts(x, w, idx + 4)


def test_lora_experts_start_at_base_and_mix_deltas():
    torch.manual_seed(3)
    base = nn.Linear(5, 7)
    lora = LoRAExperts(base, 3, rank=2, alpha=4.0)
    x = torch.randn(6, 5)
    assert not base.weight.requires_grad and lora.lora_A.requires_grad
    assert torch.equal(lora(x), base(x))  # B = 0 at init
    lora.active = 1
    assert torch.equal(lora(x), base(x))
    with torch.no_grad():
        lora.lora_B.normal_()
    delta1 = 2.0 * x @ lora.lora_A[1].T @ lora.lora_B[1].T  # alpha / r = 2
    torch.testing.assert_close(lora(x), base(x) + delta1)
    idx = torch.tensor([[0, 2]] * 6)
    w = torch.tensor([[0.25, 0.75]] * 6)
    want = base(x) + 0.25 * lora.delta(x, 0) + 0.75 * lora.delta(x, 2)
    torch.testing.assert_close(lora(x, w, idx), want)
    with pytest.raises(ValueError, match="both"):
        lora(x, w)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRAExperts(nn.Conv1d(2, 2, 1), 2)
    with pytest.raises(ValueError, match="dropout"):
        LoRAExperts(nn.Linear(2, 2), 2, dropout=1.0)


def test_float_expert_indices_are_rejected():
    experts = FFNExperts(4, 8, 3)
    with pytest.raises(TypeError, match="expert indices must be integer, got torch.float32"):
        experts(torch.randn(5, 4), torch.ones(5, 2), torch.ones(5, 2))


def test_lora_experts_name_a_wrong_width():
    experts = LoRAExperts(nn.Linear(4, 4), 3)
    with pytest.raises(ValueError, match=r"expected width 4, got \(5, 6\)"):
        experts(torch.randn(5, 6))
