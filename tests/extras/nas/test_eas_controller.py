import copy

import pytest
import torch
from torch import nn

from graphkit.extras import create_model, get_entry
from graphkit.extras.nas.net2net import apply_deeper, apply_wider, describe
from graphkit.extras.nas.searchers import EASController

FILTERS = list(range(4, 44, 4))  # the official CIFAR-10 search script's widths
UNITS = list(range(8, 88, 8))


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.BatchNorm2d(12),
        nn.ReLU(),
        nn.Conv2d(12, 16, 5, padding=2),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 24),
        nn.ReLU(),
        nn.Linear(24, 10),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return net


def _controller(seed: int = 0) -> EASController:
    torch.manual_seed(seed)
    return EASController(EASController.vocabulary_for(FILTERS, UNITS))


def _widenable(described) -> list[bool]:
    """Convs / fcs below the largest width (pools cannot widen; the output layer is not listed)."""
    out = []
    for _, token in described:
        kind = token.split("-")[0]
        limit = {"conv": FILTERS[-1], "fc": UNITS[-1]}.get(kind)
        out.append(limit is not None and int(token.split("-")[1]) < limit)
    return out


def test_eas_is_registered():
    ctrl = create_model("eas", vocabulary=EASController.vocabulary_for(FILTERS, UNITS))
    assert isinstance(ctrl, EASController)
    assert get_entry("eas").family == "nas"
    # official config: embedding 16, 50 LSTM units per direction, 5 blocks x 10 layers, k {1,3,5}
    assert ctrl.encoder.hidden_size == 50 and ctrl.encoder.bidirectional
    assert ctrl.embed.embedding_dim == 16 and ctrl.kernel_sizes == (1, 3, 5)
    assert [h.out_features for h in ctrl.deeper_heads] == [5, 10, 3]
    # the default vocabulary is the official script's: 10 widths x 3 kernels, 10 fc sizes, pool
    default = create_model("eas")
    assert list(default.vocabulary) == list(ctrl.vocabulary) and len(default.vocabulary) == 41


def test_describe_tokens():
    assert [t for _, t in describe(_net())] == [
        "conv-8-3",
        "pool",
        "conv-12-3",
        "conv-16-5",
        "pool",
        "fc-24",
    ]
    assert describe(_net(), include_output=True)[-1] == (14, "fc-10")


def test_controller_samples_valid_actions_only():
    """Spec #7: the controller samples valid actions only (200 draws of each actor)."""
    ctrl = _controller()
    described = describe(_net())
    tokens = [t for _, t in described]
    mask = _widenable(described)
    assert mask == [True, False, True, True, False, True]
    gen = torch.Generator().manual_seed(0)
    blocks = [[0], [2, 3], [5]]  # token positions per block (pools split the blocks)
    seen_kernels, seen_blocks = set(), set()
    for _ in range(200):
        w = ctrl.wider(tokens, mask, generator=gen)
        assert all(m or not d for d, m in zip(w.decisions, mask))
        d = ctrl.deeper(tokens, generator=gen)
        assert 0 <= d.block < 3 and 0 <= d.layer < len(blocks[d.block])
        assert d.position == blocks[d.block][d.layer] and tokens[d.position] != "pool"
        is_fc = tokens[d.position].startswith("fc")
        assert (d.kernel_size is None) == is_fc
        assert is_fc or d.kernel_size in (1, 3, 5)
        seen_kernels.add(d.kernel_size)
        seen_blocks.add(d.block)
    assert seen_blocks == {0, 1, 2} and {1, 3, 5} <= seen_kernels


def test_log_prob_of_given_actions_matches_sampling():
    ctrl = _controller(1)
    described = describe(_net())
    tokens = [t for _, t in described]
    mask = _widenable(described)
    gen = torch.Generator().manual_seed(1)
    w = ctrl.wider(tokens, mask, generator=gen)
    again = ctrl.wider(tokens, mask, decisions=w.decisions)
    torch.testing.assert_close(again.log_prob, w.log_prob)
    d = ctrl.deeper(tokens, generator=gen)
    scored = ctrl.deeper(tokens, action=(d.block, d.layer, d.kernel_size))
    torch.testing.assert_close(scored.log_prob, d.log_prob)
    assert scored.position == d.position
    # REINFORCE loss reaches the encoder and both actors
    (-(w.log_prob + d.log_prob)).backward()
    for module in (ctrl.embed, ctrl.encoder, ctrl.wider_head, ctrl.deeper_cell):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_applied_actions_preserve_function():
    """Sampled widen / deepen actions applied to a CNN keep its outputs (< 1e-5, eval).

    Measured with this seed: 4 layers widened and 3 layers inserted over three rounds,
    max output difference 8.9e-8.
    """
    ctrl = _controller(2)
    gen = torch.Generator().manual_seed(2)
    parent = _net().eval()
    net = copy.deepcopy(parent)
    x = torch.randn(4, 3, 8, 8)
    widened = 0
    for _ in range(3):
        described = describe(net)
        tokens = [t for _, t in described]
        w = ctrl.wider(tokens, _widenable(described), generator=gen)
        for (i, token), widen in zip(described, w.decisions):
            if widen:
                widened += 1
                kind, width = token.split("-")[:2]
                sizes = FILTERS if kind == "conv" else UNITS
                apply_wider(net, i, next(s for s in sizes if s > int(width)), generator=gen)
        described = describe(net)
        d = ctrl.deeper([t for _, t in described], generator=gen)
        net = apply_deeper(net, described[d.position][0], kernel_size=d.kernel_size)
    net.eval()
    with torch.no_grad():
        assert (net(x) - parent(x)).abs().max().item() < 1e-5
    assert widened > 0 and len(describe(net)) == len(describe(parent)) + 3
    assert sum(p.numel() for p in net.parameters()) > sum(p.numel() for p in parent.parameters())


def test_reinforce_learns_kernel_preference():
    """Rewarding kernel 5 for 60 REINFORCE steps makes it the likely choice.

    Measured with this seed: P(kernel 5 | block 1, layer 0) goes from 0.36 at init to
    0.9999999 (Adam, lr 2e-2); the test asks for 0.9.
    """
    ctrl = _controller(3)
    tokens = [t for _, t in describe(_net())]
    with torch.no_grad():
        joint = [ctrl.deeper(tokens, action=(1, 0, k)).log_prob.exp() for k in (1, 3, 5)]
    assert joint[2] / sum(joint) < 0.5
    opt = torch.optim.Adam(ctrl.parameters(), lr=2e-2)
    gen = torch.Generator().manual_seed(3)
    baseline = 0.0
    for _ in range(60):
        d = ctrl.deeper(tokens, generator=gen)
        reward = 1.0 if d.kernel_size == 5 else 0.0
        loss = -(reward - baseline) * d.log_prob
        opt.zero_grad()
        loss.backward()
        opt.step()
        baseline = 0.9 * baseline + 0.1 * reward
    with torch.no_grad():
        joint = [ctrl.deeper(tokens, action=(1, 0, k)).log_prob.exp() for k in (1, 3, 5)]
    assert joint[2] / sum(joint) > 0.9


def test_eas_bad_inputs():
    ctrl = _controller()
    tokens = ["conv-8-3", "pool", "fc-16"]
    with pytest.raises(ValueError, match="vocabulary"):
        ctrl.encode(["conv-7-3"])
    with pytest.raises(ValueError, match="layer tokens"):
        EASController(["dense-4"])
    with pytest.raises(ValueError, match="layer tokens .* got 'conv-x-3'"):
        EASController(["conv-x-3"])  # was int()'s "invalid literal for int()"
    with pytest.raises(ValueError, match="layer tokens .* got 'conv-4-1.5'"):
        EASController(kernel_sizes=(1.5,))
    with pytest.raises(ValueError, match="no conv or fc layer after which to insert"):
        ctrl.deeper(["pool"])  # was torch.multinomial's "probability tensor contains ... nan"
    with pytest.raises(ValueError, match="entries"):
        ctrl.wider(tokens, [True])
    with pytest.raises(ValueError, match="may not be widened"):
        ctrl.wider(tokens, [True, False, False], decisions=[False, True, False])
    with pytest.raises(ValueError, match="invalid deeper decision"):
        ctrl.deeper(tokens, action=(0, 1, 3))  # block 0 has one layer
    with pytest.raises(ValueError, match="invalid deeper decision"):
        ctrl.deeper(tokens, action=(0, 0, 7))  # kernel 7 is not offered
    with pytest.raises(ValueError, match="blocks"):
        ctrl.deeper(["pool"] * 6 + ["fc-8"])
    with pytest.raises(ValueError, match="ReLU"):
        apply_deeper(_net(), 14)
    with pytest.raises(ValueError, match="no conv / linear"):
        apply_wider(_net(), 14, 12)
