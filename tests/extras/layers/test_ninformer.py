"""NiNformer (#48): shapes, the block's equations, input-dependent gate, cost linear in tokens."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras import count_macs, count_params, create_model, get_entry
from graphkit.extras.layers.nin_gating import (
    MixerBlock,
    MixerGatingUnit,
    NiNformer,
    NiNformerBlock,
)


def test_shapes():
    torch.manual_seed(0)
    block = NiNformerBlock(16, tokens=9, hidden=24)
    assert block(torch.randn(3, 9, 16)).shape == (3, 9, 16)
    net = NiNformer(image_size=12, patch_size=4, in_channels=2, num_classes=5, dim=16, hidden=8,
                    depth=2)
    assert net(torch.randn(4, 2, 12, 12)).shape == (4, 5)


def test_official_cifar_configuration_parameter_count():
    """Official train.py config (32x32, patch 4, d_model 256, d_ffn 512, 4 layers): counted
    here, 2,652,170 parameters; the same total written out from the layer sizes below."""
    d, h, t, c = 256, 512, 64, 10
    ffn = lambda i, j: i * j + j + j * i + i  # Linear(i, j) then Linear(j, i)
    ln = 2 * d
    block = ln + (d * d + d) + (ln + ffn(t, h) + ln + ffn(d, h)) + ffn(d, h)
    expected = (3 * 16 * d + d) + 4 * block + (d * c + c)
    assert expected == 2_652_170
    assert count_params(NiNformer()) == expected


def _ffn(mlp, x):
    lin1, lin2 = mlp.fc1, mlp.fc2
    return F.linear(F.gelu(F.linear(x, lin1.weight, lin1.bias)), lin2.weight, lin2.bias)


def test_block_equals_equations():
    """Z = Y + FFN(LN(Y)), Y = X + (LN(X) W_p + b_p) * Mixer(LN(X)), written with F ops."""
    torch.manual_seed(1)
    block = NiNformerBlock(8, tokens=5, hidden=6).double().eval()
    x = torch.randn(2, 5, 8, dtype=torch.float64)

    def ln(norm, v):
        return F.layer_norm(v, (8,), norm.weight, norm.bias, norm.eps)

    mixer = block.gating.mixer
    u = ln(block.norm, x)
    g = u + _ffn(mixer.token_mlp, ln(mixer.token_norm, u).transpose(1, 2)).transpose(1, 2)
    g = g + _ffn(mixer.channel_mlp, ln(mixer.channel_norm, g))
    y = x + F.linear(u, block.gating.proj.weight, block.gating.proj.bias) * g
    z = y + _ffn(block.ffn, ln(block.norm, y))
    torch.testing.assert_close(block(x), z, rtol=0, atol=1e-12)


def test_gate_depends_on_other_tokens():
    """Perturbing token 0 changes the gate (and output) of every other token; a plain channel
    MLP, the FFN, leaves the other tokens untouched."""
    torch.manual_seed(2)
    unit = MixerGatingUnit(8, tokens=6, token_hidden=12, channel_hidden=12).eval()
    x = torch.randn(1, 6, 8)
    x2 = x.clone()
    x2[0, 0] += torch.randn(8)  # not a constant shift: LayerNorm would remove that
    with torch.no_grad():
        gate_change = (unit.gate(x2) - unit.gate(x)).abs()[0, 1:].amax(dim=-1)
        out_change = (unit(x2) - unit(x)).abs()[0, 1:].amax(dim=-1)
        ffn = NiNformerBlock(8, tokens=6).ffn.eval()
        ffn_change = (ffn(x2) - ffn(x)).abs()[0, 1:]
    assert bool((gate_change > 1e-4).all()) and bool((out_change > 1e-6).all())
    assert ffn_change.max().item() == 0.0


def test_macs_linear_in_tokens():
    """count_macs of one block: N (d^2 + 6 d h) exactly (proj d^2; token-mixing, channel-mixing
    and FFN MLPs 2 d h each per token), so 4x the tokens costs exactly 4x."""
    d, h = 32, 48
    macs = {n: count_macs(NiNformerBlock(d, n, h), (1, n, d)) for n in (16, 64)}
    assert macs[16] == 16 * (d * d + 6 * d * h) == 163_840
    assert macs[64] == 4 * macs[16]


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"expects input \(B, 9, 16\)"):
        NiNformerBlock(16, tokens=9)(torch.randn(2, 8, 16))
    with pytest.raises(ValueError, match=r"expects input \(B, 9, 16\)"):
        NiNformerBlock(16, tokens=9)(torch.randn(9, 16))
    with pytest.raises(ValueError, match="tokens must be a positive integer"):
        NiNformerBlock(16, tokens=0)
    with pytest.raises(ValueError, match="dropout"):
        MixerBlock(4, 4, 4, 4, dropout=1.0)
    with pytest.raises(ValueError, match="must divide image_size"):
        NiNformer(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match=r"expects input \(B, 3, 32, 32\)"):
        NiNformer(dim=8, hidden=8, depth=1)(torch.randn(1, 3, 28, 28))


def test_registered():
    net = create_model("ninformer", dim=8, hidden=8, depth=1)
    assert isinstance(net, NiNformer)
    assert get_entry("ninformer").family == "block"


def test_reset_parameters_reinitialises_every_parameter():
    # both iterated the FFN, a _core MLP that is not iterable: TypeError
    net = create_model("ninformer", image_size=8, dim=8, hidden=8, depth=2)
    block = NiNformerBlock(8, tokens=4, hidden=8)
    for module in (net, block):
        with torch.no_grad():
            for p in module.parameters():
                p.fill_(0.5)
        module.reset_parameters()
        stale = [n for n, p in module.named_parameters() if bool((p == 0.5).all())]
        assert stale == []


# ---------------------------------------------------------------- synthetic comparison (slow)


class _MLPMixer(nn.Module):
    """MLP-Mixer with NiNformer's stem and head and the same depth, width and hidden size."""

    def __init__(self, dim, hidden, depth, tokens, patch, classes):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.Sequential(
            *(MixerBlock(dim, tokens, hidden, hidden) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(t)).mean(dim=1))


def _blobs(n, classes, size, generator):
    """Each class places a bright blob in its own colour channel pair and image quadrant pair;
    positions jitter and the background is noisy, so the class needs the blob's where and
    what together."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    labels = torch.randint(classes, (n,), generator=generator)
    img = 0.5 * torch.randn(n, 3, size, size, generator=generator)
    centres = torch.tensor([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]]) * size
    for i in range(n):
        k = int(labels[i])
        cy, cx = centres[k % 4] + 3 * torch.randn(2, generator=generator)
        blob = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * 3.0**2))
        img[i, k // 4 % 3] += 1.5 * blob
        img[i, (k // 4 + 1) % 3] -= 0.5 * blob
    return img, labels


def _train_eval(model, data, epochs, seed):
    (xtr, ytr), (xte, yte) = data
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(xtr), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return (model(xte).argmax(1) == yte).float().mean().item()


@pytest.mark.slow
def test_matches_mlp_mixer_on_synthetic_blobs():
    """Spec #48 asks NiNformer to beat an MLP-Mixer of equal size (32x32, 4 blocks, dim 128,
    same epochs, mean of 3 seeds); here: 8 classes (4 positions x 2 colours), 1,024 train / 512
    test images, 6 epochs, hidden 256, no dropout. Not reproduced, so not asserted: the first
    measurement (the FFN then a plain Sequential, drawing other initial weights) gave NiNformer
    0.967 / 0.979 / 0.963 (mean 0.969) against MLP-Mixer 0.949 / 0.965 / 0.973 (mean 0.962);
    with the shared MLP block, NiNformer 0.963 / 0.975 / 0.965 (mean 0.967) against 0.979 /
    0.975 / 0.969 (mean 0.974). Either lead is below the seed spread. What holds in both: the
    two reach the same accuracy to within 2 points, and both learn the task (> 0.9)."""
    g = torch.Generator().manual_seed(0)
    data = (_blobs(1024, 8, 32, g), _blobs(512, 8, 32, g))
    accs = {"ninformer": [], "mixer": []}
    for seed in range(3):
        torch.manual_seed(seed)
        nin = NiNformer(dim=128, hidden=256, depth=4, dropout=0.0, num_classes=8)
        torch.manual_seed(seed)
        mixer = _MLPMixer(128, 256, 4, 64, 4, 8)
        accs["ninformer"].append(_train_eval(nin, data, 6, seed))
        accs["mixer"].append(_train_eval(mixer, data, 6, seed))
    mean = {k: sum(v) / len(v) for k, v in accs.items()}
    print(accs, mean)
    assert min(mean.values()) > 0.9, accs
    assert abs(mean["ninformer"] - mean["mixer"]) <= 0.02, accs
