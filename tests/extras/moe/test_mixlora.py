"""MixLoRA on a tiny two-block transformer written here (no ``transformers`` needed)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras._core.counting import count_params
from graphkit.extras._core.registry import create_model
from graphkit.extras.moe.experts import LoRAExperts
from graphkit.extras.moe.methods.mixlora import MixLoRA, MixLoRAFFN

D, H, VOCAB = 16, 32, 11


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj, self.k_proj = nn.Linear(D, D), nn.Linear(D, D)
        self.v_proj, self.o_proj = nn.Linear(D, D), nn.Linear(D, D)

    def forward(self, x):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return self.o_proj(F.scaled_dot_product_attention(q, k, v, is_causal=True))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D, H), nn.Linear(H, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.self_attn, self.mlp = Attention(), MLP()

    def forward(self, x):
        x = x + self.self_attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.layers = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(D, VOCAB)

    def forward(self, tokens):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def _setup(seed=0, **kwargs):
    torch.manual_seed(seed)
    base = TinyLM()
    ref = copy.deepcopy(base)
    model = MixLoRA(base, **kwargs)
    tokens = torch.randint(0, VOCAB, (3, 9))
    return ref, model, tokens


def test_zero_b_output_equals_frozen_base_exactly():
    ref, model, tokens = _setup(num_experts=4, top_k=2, rank=2)
    with torch.no_grad():
        for block in model.moe_blocks():  # make routing non-trivial
            block.router.linear.weight.normal_()
    for mode in (False, True):  # dropout on the adapter input changes nothing while B = 0
        model.train(mode)
        ref.train(mode)
        assert torch.equal(model(tokens), ref(tokens))


def test_each_token_uses_exactly_k_experts():
    ref, model, tokens = _setup(seed=1, num_experts=4, top_k=2, rank=2, dropout=0.0)
    model.eval()
    block = model.moe_blocks()[1]
    with torch.no_grad():
        block.router.linear.weight.normal_()
        block.ffn.fc2.lora_B[3].normal_()  # only expert 3 departs from the base
    x = torch.randn(5, 7, D)
    base_out = ref.layers[1].mlp  # the untouched copy of this block's FFN
    out = block(x)
    idx = block.last_indices
    assert idx.shape == (35, 2) and (idx[:, 0] != idx[:, 1]).all()
    assert (idx >= 0).all() and (idx < 4).all()
    changed = (out - base_out(x)).reshape(35, D).abs().amax(dim=1) > 0
    uses3 = (idx == 3).any(dim=1)
    assert uses3.any() and (~uses3).any()
    assert torch.equal(changed, uses3)  # exactly the tokens routed to expert 3 moved


def test_mixture_equals_weighted_sum_of_expert_ffns():
    _, model, _ = _setup(seed=2, num_experts=3, top_k=2, rank=2, dropout=0.0)
    block = model.moe_blocks()[0]
    with torch.no_grad():
        for n in ("fc1", "fc2"):
            block.ffn.get_submodule(n).lora_B.normal_()
        block.router.linear.weight.normal_()
    x = torch.randn(8, D)
    out = block(x)
    w, idx, _ = block.router(x)

    def expert(e, v):
        for n in ("fc1", "fc2"):
            block.ffn.get_submodule(n).active = e
        try:
            return block.ffn(v)
        finally:
            for n in ("fc1", "fc2"):
                block.ffn.get_submodule(n).active = None

    want = torch.stack(
        [sum(w[t, j] * expert(int(idx[t, j]), x[t : t + 1])[0] for j in range(2)) for t in range(8)]
    )
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)


def test_trainable_parameter_count_equals_formula():
    e, r = 4, 2
    ref, model, _ = _setup(num_experts=e, top_k=2, rank=r)
    router = e * D  # bias-free router
    experts = e * r * ((D + H) + (H + D))  # fc1 and fc2
    attention = 4 * r * (D + D)  # q, k, v, o
    assert count_params(model, trainable_only=True) == 2 * (router + experts + attention)
    assert count_params(model) == count_params(ref) + 2 * (router + experts + attention)


def test_only_router_and_lora_parameters_train():
    _, model, tokens = _setup(num_experts=4, top_k=2, rank=2)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    allowed = ("lora_A", "lora_B", "router.linear.weight")
    assert trainable and all(n.endswith(allowed) for n in trainable)
    model(tokens).pow(2).mean().add(model.aux_loss()).backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "router" in n)


def test_aux_loss_is_coef_when_balanced():
    _, model, tokens = _setup(num_experts=4, top_k=2, rank=2, aux_coef=0.01)
    with pytest.raises(RuntimeError, match="forward"):
        model.aux_loss()
    with torch.no_grad():
        for block in model.moe_blocks():
            block.router.linear.weight.zero_()  # uniform router probabilities: P_i = 1/E
    model(tokens)
    assert model.aux_loss().item() == pytest.approx(0.01, rel=1e-6)
    torch.manual_seed(5)
    with torch.no_grad():
        for block in model.moe_blocks():
            block.router.linear.weight.normal_(std=3.0)
    model(tokens)
    terms = torch.stack([b.last_aux.balance for b in model.moe_blocks()])
    assert (terms > 1).all()  # skewed routing costs more than balanced
    assert model.aux_loss().item() == pytest.approx(0.01 * terms.mean().item())


def test_defaults_registry_and_structure():
    torch.manual_seed(0)
    model = create_model("mixlora", base_model=TinyLM())
    assert isinstance(model, MixLoRA)
    block = model.moe_blocks()[0]
    assert isinstance(block, MixLoRAFFN) and block.num_experts == 8 and block.top_k == 2
    assert block.ffn.fc1.rank == 8 and block.ffn.fc1.scaling == 2.0
    assert model.aux_coef == 0.001
    assert isinstance(model.model.layers[0].self_attn.q_proj, LoRAExperts)
    assert len(model.ffn_names) == 2 and len(model.attn_names) == 8


def test_new_parameters_follow_the_base_models_dtype():
    torch.manual_seed(0)
    base = TinyLM().double()
    ref = copy.deepcopy(base)
    model = MixLoRA(base, num_experts=2, top_k=1, rank=2)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    tokens = torch.randint(0, VOCAB, (2, 5))
    assert torch.equal(model(tokens), ref(tokens))


def test_bad_configurations_are_rejected():
    with pytest.raises(ValueError, match="top_k"):
        MixLoRA(TinyLM(), num_experts=2, top_k=3)
    with pytest.raises(ValueError, match="feed-forward"):
        MixLoRA(TinyLM(), ffn_names=("moe",))
    with pytest.raises(ValueError, match="attn_lora"):
        MixLoRA(TinyLM(), attn_targets=("query",))
    with pytest.raises(ValueError, match="aux_coef"):
        MixLoRA(TinyLM(), aux_coef=-1.0)
    assert MixLoRA(TinyLM(), attn_lora=False, attn_targets=()).attn_names == []
    _, model, _ = _setup(num_experts=2, top_k=1)
    with pytest.raises(ValueError, match="width"):
        model.moe_blocks()[0](torch.randn(2, D + 1))
