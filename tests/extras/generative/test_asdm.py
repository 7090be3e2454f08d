"""A-SDM (#54): CLME-CondConv routing, GRI attention cost and equivalence, block incubation,
semantic alignment loss."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras._core.attention import MultiHeadSelfAttention
from graphkit.extras._core.counting import count_macs
from graphkit.extras.generative.asdm import (
    BlockIncubation,
    CLMECondConv,
    GRIAttention,
    semantic_alignment_loss,
)


def _condconv(seed: int = 0) -> CLMECondConv:
    torch.manual_seed(seed)
    return CLMECondConv(3, 5, kernel_size=3, num_experts=4, stride=2).double()


def test_condconv_one_hot_equals_expert():
    """One-hot routing gives exactly the chosen expert's convolution (< 1e-6)."""
    layer = _condconv()
    x = torch.randn(2, 3, 9, 9, dtype=torch.double)
    for e in range(4):
        routing = F.one_hot(torch.full((2,), e), 4).double()
        want = F.conv2d(x, layer.weight[e], layer.bias[e], stride=2, padding=1)
        assert (layer(x, routing) - want).abs().max() < 1e-6


def test_condconv_weighted_equals_mixed_kernel():
    """Per-sample routing weights give, for each sample, one conv with the weighted kernel."""
    layer = _condconv(1)
    x = torch.randn(3, 3, 8, 8, dtype=torch.double)
    routing = layer.route(x)
    assert routing.shape == (3, 4) and ((routing > 0) & (routing < 1)).all()
    out = layer(x)
    for i in range(3):
        kernel = torch.einsum("e,eoikl->oikl", routing[i], layer.weight)
        bias = routing[i] @ layer.bias
        want = F.conv2d(x[i : i + 1], kernel, bias, stride=2, padding=1)
        assert (out[i : i + 1] - want).abs().max() < 1e-10


def test_condconv_from_pruned_convs():
    """Experts copied from removed blocks' convolutions reproduce them under one-hot routing."""
    torch.manual_seed(2)
    convs = [nn.Conv2d(4, 6, 3, padding=1) for _ in range(3)]
    layer = CLMECondConv.from_convs(convs)
    assert layer.num_experts == 3 and layer.padding == 1 and layer.stride == 1
    x = torch.randn(2, 4, 7, 7)
    for e, conv in enumerate(convs):
        routing = F.one_hot(torch.full((2,), e), 3).float()
        assert (layer(x, routing) - conv(x)).abs().max() < 1e-6
    out = layer(x)
    out.sum().backward()
    assert layer.routing.weight.grad is not None and layer.weight.grad is not None


def test_condconv_bad_inputs():
    layer = _condconv()
    with pytest.raises(ValueError, match="input channels"):
        layer(torch.randn(1, 4, 8, 8, dtype=torch.double))
    with pytest.raises(ValueError, match="routing must have shape"):
        layer(torch.randn(2, 3, 8, 8, dtype=torch.double), torch.ones(2, 3, dtype=torch.double))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.randn(1, 3, 8, 8, dtype=torch.double), torch.full((1, 4), float("nan")))
    with pytest.raises(ValueError, match="num_experts"):
        CLMECondConv(3, 5, num_experts=0)
    with pytest.raises(ValueError, match="same weight shape"):
        CLMECondConv.from_convs([nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 5)])


class _Tokens(nn.Module):
    """Wraps an attention module so count_macs can feed it one (1, N, C) tensor."""

    def __init__(self, attn: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.attn, self.size = attn, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, self.size)


@pytest.mark.parametrize(
    "window, pool, size", [(8, 4, (32, 32)), (4, 2, (16, 8)), (8, None, (16, 16))]
)
def test_gri_macs_formula(window, pool, size):
    """The analytic MAC formula equals FlopCounterMode's count exactly."""
    gri = GRIAttention(32, 4, window=window, pool=pool)
    n = size[0] * size[1]
    assert count_macs(_Tokens(gri, size), (1, n, 32)) == gri.macs(*size)


def test_gri_cheaper_than_full_attention():
    """For N >= 1024 tokens GRI costs less than full attention (formula and measured)."""
    dim = 64
    for side in (32, 40):
        n = side * side
        gri = GRIAttention(dim, 8, window=8, pool=4)
        full = GRIAttention.full_attention_macs(dim, n)
        assert gri.macs(side, side) < full
        full_measured = count_macs(
            _Tokens(MultiHeadSelfAttention(dim, 8), (side, side)), (1, n, dim)
        )
        assert full_measured == full
    # N = 1024, C = 64, window 8, pool 4 (64 global tokens), counted by count_macs here:
    # 34,078,720 GRI vs 150,994,944 full-attention MACs (22.6%)
    gri = GRIAttention(dim, 8, 8, 4)
    assert count_macs(_Tokens(gri, (32, 32)), (1, 1024, dim)) == 34_078_720
    assert GRIAttention.full_attention_macs(dim, 1024) == 150_994_944


def test_gri_whole_map_window_is_full_attention():
    """Window = whole map and no pooling equals global MHSA with the same weights."""
    torch.manual_seed(3)
    gri = GRIAttention(16, 4, window=(6, 4), pool=None).double()
    full = MultiHeadSelfAttention(16, 4).double()
    full.load_state_dict(gri.attn.state_dict())
    x = torch.randn(2, 24, 16, dtype=torch.double)
    assert (gri(x, (6, 4)) - full(x)).abs().max() < 1e-12


def test_gri_global_tokens_mix_windows():
    """With global tokens a window's output depends on the other windows; without, it does not."""
    torch.manual_seed(4)
    x = torch.randn(1, 64, 8)
    x2 = x.clone()
    x2[0, -1] += 1.0  # a token of the last 4x4 window
    for pool, changes in ((None, False), (4, True)):
        gri = GRIAttention(8, 2, window=4, pool=pool)
        diff = (gri(x, (8, 8)) - gri(x2, (8, 8))).reshape(8, 8, 8)[:4, :4].abs().max()
        assert (diff > 1e-6) == changes


def test_gri_bad_inputs():
    gri = GRIAttention(8, 2, window=4, pool=3)
    with pytest.raises(ValueError, match="pool=3 must divide"):
        gri(torch.randn(1, 64, 8), (8, 8))
    with pytest.raises(ValueError, match="does not match"):
        gri(torch.randn(1, 60, 8), (8, 8))
    with pytest.raises(ValueError, match="window"):
        GRIAttention(8, 2, window=3, pool=None)(torch.randn(1, 64, 8), (8, 8))
    with pytest.raises(ValueError, match="num_heads"):
        GRIAttention(8, 3)


def _teacher() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)),
        nn.Conv2d(8, 3, 1),
    )


def test_incubation_freezes_the_right_parameters():
    """Stage s: students of stage s get gradients; teacher blocks and earlier students get None."""
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    students = {"1": nn.Conv2d(8, 8, 3, padding=1), "2.0": nn.Conv2d(8, 8, 1)}
    inc = BlockIncubation(teacher, students)
    x = torch.randn(2, 3, 8, 8)
    inc(x).square().mean().backward()
    assert inc.model[1] is students["1"] and isinstance(inc.model[2][0], nn.Conv2d)
    assert inc.model[2][0] is not students["2.0"]  # stage 1 block not yet swapped in
    assert students["1"].weight.grad is not None
    assert all(p.grad is None for n, p in inc.model.named_parameters() if not n.startswith("1."))
    assert inc.trainable_names() == ["1.weight", "1.bias"]

    inc.zero_grad(set_to_none=True)
    inc.set_stage(1)
    inc(x).square().mean().backward()
    assert inc.model[2][0] is students["2.0"]
    assert students["2.0"].weight.grad is not None and students["1"].weight.grad is None
    assert inc.model[0].weight.grad is None and inc.model[2][2].weight.grad is None
    # the teacher itself is never modified
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert all(p.requires_grad for p in teacher.parameters())

    model = inc.finish()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        "1.weight",
        "1.bias",
        "2.0.weight",
        "2.0.bias",
    }


def test_incubation_bad_inputs():
    with pytest.raises(ValueError, match="no submodule named '9'"):
        BlockIncubation(_teacher(), {"9": nn.Identity()})
    with pytest.raises(ValueError, match="exactly once"):
        BlockIncubation(_teacher(), {"1": nn.Identity()}, stages=[["1"], ["1"]])
    inc = BlockIncubation(_teacher(), {"1": nn.Identity()})
    with pytest.raises(ValueError, match="stage must lie"):
        inc.set_stage(1)


def test_semantic_alignment_loss():
    torch.manual_seed(6)
    phi = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).requires_grad_(False)
    teacher_out = torch.randn(2, 3, 6, 6)
    student_out = teacher_out.clone().requires_grad_(True)
    assert semantic_alignment_loss(student_out, teacher_out, phi) == 0
    moved = (teacher_out + torch.randn_like(teacher_out)).requires_grad_(True)
    loss = semantic_alignment_loss(moved, teacher_out, phi, normalize=False)
    want = F.mse_loss(phi(moved), phi(teacher_out))
    assert torch.allclose(loss, want) and loss > 0
    loss.backward()
    assert moved.grad is not None and phi[0].weight.grad is None
    with pytest.raises(ValueError, match="frozen"):
        semantic_alignment_loss(moved, teacher_out, nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        semantic_alignment_loss(moved, teacher_out[:1], phi)


def test_registered():
    import graphkit.extras.generative.asdm  # noqa: F401
    from graphkit.extras import create_model, get_entry

    assert get_entry("asdm").family == "generative"
    assert isinstance(create_model("asdm", in_channels=3, out_channels=4), CLMECondConv)
    assert isinstance(create_model("asdm", block="gri", dim=16, num_heads=2), GRIAttention)
    with pytest.raises(ValueError, match="unknown block"):
        create_model("asdm", block="unet")
