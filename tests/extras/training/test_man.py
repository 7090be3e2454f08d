import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras._core.blocks import ConvNormAct
from graphkit.extras._core.registry import create_model
from graphkit.extras.training.local_learning import MANLocalTrainer, local_head


def _net(width: int = 8, classes: int = 4) -> nn.Sequential:
    return nn.Sequential(
        ConvNormAct(3, width, 3),
        ConvNormAct(width, width, 3),
        ConvNormAct(width, 2 * width, 3, stride=2),
        ConvNormAct(2 * width, 2 * width, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, classes),
    )


def _trainer(aux="man", **kw) -> MANLocalTrainer:
    torch.manual_seed(0)
    return MANLocalTrainer(_net(), [1, 2, 3], aux=aux, num_classes=4,
                           example_input=torch.randn(2, 3, 8, 8), **kw)


def _owned(tr: MANLocalTrainer, j: int) -> set[int]:
    """Ids of the parameters local loss j may train: block j, its head and bias copy."""
    mods = [tr.blocks[j]]
    if j < len(tr.blocks) - 1:
        mods.append(tr.heads[j])
        if tr.bias_net is not None:
            mods.append(tr.bias_net[j])
    return {id(p) for m in mods for p in m.parameters()}


@pytest.mark.parametrize("aux", ["man", "plain"])
def test_each_block_gets_gradients_only_from_its_own_loss(aux):
    tr = _trainer(aux)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    assert len(tr.blocks) == 4
    for j in range(4):
        tr.zero_grad(set_to_none=True)
        tr.local_losses(x, y)[j].backward()
        owned = _owned(tr, j)
        for name, p in tr.named_parameters():
            if id(p) in owned:
                assert p.grad is not None and p.grad.abs().sum() > 0, (j, name)
            else:  # other blocks, other heads and every EMA copy: no gradient at all
                assert p.grad is None, (j, name)


def test_step_gradients_equal_the_sum_of_isolated_local_losses():
    tr = _trainer().double()
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    tr.zero_grad(set_to_none=True)
    sum(tr.local_losses(x, y)).backward()
    want = {n: p.grad.clone() for n, p in tr.named_parameters() if p.grad is not None}
    tr.zero_grad(set_to_none=True)
    ema_before = [p.clone() for p in tr.ema.parameters()]
    losses = tr.step(x, y)  # no optimizer: gradients are left for us to read
    got = {n: p.grad for n, p in tr.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys() and len(losses) == 4
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=0, atol=1e-12)
    # parameters did not move, so the EMA moved towards the (equal) initial copy: unchanged
    for a, b in zip(ema_before, tr.ema.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)


def test_ema_update_follows_the_momentum_formula_exactly():
    tr = _trainer(momentum=0.9).double()
    old = [p.clone() for p in tr.ema.parameters()]
    with torch.no_grad():
        for j in range(3):
            for p in tr.blocks[j + 1][0].parameters():
                p.add_(torch.randn_like(p))
    tr.update_ema()
    src = [p for j in range(3) for p in tr.blocks[j + 1][0].parameters()]
    assert len(src) == len(old) > 0
    for o, s, e in zip(old, src, tr.ema.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * o + 0.1 * s, rtol=0, atol=1e-14)
        assert not e.requires_grad


def test_optimizer_step_trains_model_and_leaves_ema_to_the_average():
    tr = _trainer(momentum=0.5)
    opt = torch.optim.SGD(tr.parameters(), lr=0.1)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 4, (8,))
    layer = tr.blocks[1][0].conv.weight
    before_layer, before_ema = layer.detach().clone(), tr.ema[0].conv.weight.clone()
    tr.step(x, y, opt)
    assert not torch.equal(layer, before_layer)
    torch.testing.assert_close(tr.ema[0].conv.weight, 0.5 * before_ema + 0.5 * layer.detach(),
                               rtol=0, atol=1e-7)


def test_aux_features_and_default_heads():
    x = torch.randn(2, 3, 8, 8)
    man = _trainer("man")
    plain = _trainer("plain")
    with torch.no_grad():
        h = man.blocks[0](x)
        torch.testing.assert_close(man.aux_features(0, h), man.ema[0](h) + man.bias_net[0](h))
        assert torch.equal(plain.aux_features(0, h), h)
        # MAN's head 1 sees the next layer's output (16 channels, stride 2), plain's block 1's
        assert man.heads[1][0].conv.in_channels == 16
        assert plain.heads[1][0].conv.in_channels == 8
        no_bias = _trainer("man", learnable_bias=False)
        assert no_bias.bias_net is None
        torch.testing.assert_close(no_bias.aux_features(0, h), no_bias.ema[0](h))
        man.eval()
        assert torch.equal(man(x), man.model(x))
    assert local_head((5,), 3)(torch.randn(2, 5)).shape == (2, 3)


class _SavedBytes:
    """Peak bytes of tensors held by autograd graphs (saved-tensor hooks, freed on release)."""

    def __init__(self) -> None:
        self.live = self.peak = 0

    def pack(self, t):
        owner = self

        class Holder:
            def __init__(self, t):
                self.t, self.n = t, t.numel() * t.element_size()
                owner.live += self.n
                owner.peak = max(owner.peak, owner.live)

            def __del__(self):
                owner.live -= self.n

        return Holder(t)

    @staticmethod
    def unpack(h):
        return h.t


def test_peak_activation_memory_with_four_blocks_is_below_end_to_end():
    """Autograd-saved activations of one step: 4 blocks of 3 conv layers (16 channels, 32x32),
    MAN heads of width 8. Measured here: local peak 8,966,820 B = 0.48 of the end-to-end
    18,556,420 B (plain local learning: 0.31); the check asks for below 0.75."""
    torch.manual_seed(0)
    layers = [ConvNormAct(3, 16, 3)] + [ConvNormAct(16, 16, 3) for _ in range(11)]
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    heads = [local_head((16, 32, 32), 4, width=8) for _ in range(3)]
    tr = MANLocalTrainer(net, [3, 6, 9], heads=heads)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    e2e, local = _SavedBytes(), _SavedBytes()
    with torch.autograd.graph.saved_tensors_hooks(e2e.pack, e2e.unpack):
        F.cross_entropy(tr(x), y).backward()
    with torch.autograd.graph.saved_tensors_hooks(local.pack, local.unpack):
        tr.step(x, y)
    assert e2e.live == 0 and local.live == 0
    assert local.peak < 0.75 * e2e.peak, (local.peak, e2e.peak, local.peak / e2e.peak)


def test_registered_builder_and_bad_arguments():
    tr = create_model("man", model=_net(), splits=[2], num_classes=4,
                      example_input=torch.randn(1, 3, 8, 8))
    assert isinstance(tr, MANLocalTrainer) and len(tr.blocks) == 2
    with pytest.raises(TypeError, match="nn.Sequential"):
        MANLocalTrainer(nn.Linear(2, 2), [1], heads=[])
    for bad in ([], [0], [3, 3], [7], [4, 2]):
        with pytest.raises(ValueError, match="strictly increasing"):
            MANLocalTrainer(_net(), bad, heads=[nn.Identity()] * 3)
    with pytest.raises(ValueError, match="aux must be"):
        MANLocalTrainer(_net(), [2], heads=[nn.Identity()], aux="infopro")
    with pytest.raises(ValueError, match="momentum"):
        MANLocalTrainer(_net(), [2], heads=[nn.Identity()], momentum=1.0)
    with pytest.raises(ValueError, match="need 2 heads"):
        MANLocalTrainer(_net(), [2, 3], heads=[nn.Identity()])
    with pytest.raises(ValueError, match="num_classes and example_input"):
        MANLocalTrainer(_net(), [2])
    with pytest.raises(ValueError, match="feature_shape"):
        local_head((2, 3), 4)


def _stripes(n: int, g: torch.Generator):
    """4 classes of noisy 16x16 stripe images (horizontal/vertical x two frequencies)."""
    y = torch.randint(0, 4, (n,), generator=g)
    r = torch.arange(16).float()
    freq = torch.where(y % 2 == 0, 0.8, 1.6).view(n, 1, 1)
    phase = torch.rand(n, 1, 1, generator=g) * 6.28
    rows = torch.sin(freq * r.view(1, 16, 1) + phase).expand(n, 16, 16)
    img = torch.where((y < 2).view(n, 1, 1), rows, rows.transpose(1, 2))
    x = img.unsqueeze(1).expand(n, 3, 16, 16) + 3.0 * torch.randn(n, 3, 16, 16, generator=g)
    return x, y


@pytest.mark.slow
def test_man_matches_or_beats_plain_local_learning():
    """K=4 blocks of the small test net, the same default head for both (MAN's sees the EMA
    layer's output plus the learnable-bias copy), 3 seeds of 100 SGD steps on noisy synthetic
    stripes. Measured here (test accuracy, seeds 0-2): MAN 0.763 / 0.950 / 0.384, plain local
    learning 0.530 / 0.856 / 0.298 (end-to-end backprop, same steps: 0.986 / 0.970 / 0.441).
    The seeds vary a lot, so the check is on the mean: MAN >= plain."""
    results = []
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        x, y = _stripes(1024, g)
        xt, yt = _stripes(1000, g)
        accs = []
        for aux in ("man", "plain"):
            torch.manual_seed(seed)
            tr = MANLocalTrainer(_net(), [1, 2, 3], aux=aux, num_classes=4, example_input=x[:2])
            opt = torch.optim.SGD(tr.parameters(), lr=0.05, momentum=0.9)
            for _ in range(100):
                idx = torch.randint(0, 1024, (64,), generator=g)
                tr.step(x[idx], y[idx], opt)
            tr.eval()
            with torch.no_grad():
                accs.append((tr(xt).argmax(1) == yt).float().mean().item())
        results.append(accs)
    mean_man = sum(a for a, _ in results) / 3
    mean_plain = sum(b for _, b in results) / 3
    assert mean_man >= mean_plain, results
