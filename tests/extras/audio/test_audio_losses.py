import math

import pytest
import torch

from graphkit.extras.audio.losses import (
    pairwise_si_snr,
    pit_si_snr,
    pit_si_snr_loss,
    si_snr,
    si_snr_improvement,
)


def test_si_snr_matches_the_definition_and_is_scale_invariant():
    torch.manual_seed(0)
    s = torch.randn(3, 200)
    e = torch.randn(3, 200)
    est = s + 0.3 * e
    # the definition written out for one signal, in float64
    a, b = est[0].double() - est[0].double().mean(), s[0].double() - s[0].double().mean()
    target = (a @ b) / (b @ b) * b
    want = 10 * math.log10(float(target @ target) / float((a - target) @ (a - target)))
    assert si_snr(est, s)[0].item() == pytest.approx(want, abs=1e-4)
    torch.testing.assert_close(si_snr(5.0 * est + 2.0, s), si_snr(est, s), atol=1e-4, rtol=0)
    # a known ratio: estimate = s + n with n orthogonal to s gives 10 log10(|s|^2 / |n|^2)
    t = torch.arange(400) / 400
    s1 = torch.sin(2 * math.pi * 3 * t)
    n1 = 0.1 * torch.sin(2 * math.pi * 7 * t)  # orthogonal over whole periods
    assert si_snr(s1 + n1, s1).item() == pytest.approx(20.0, abs=1e-3)


def test_pit_is_invariant_to_source_order():
    torch.manual_seed(0)
    refs = torch.randn(4, 3, 100)
    est = refs + 0.2 * torch.randn(4, 3, 100)
    best, perm = pit_si_snr(est, refs)
    assert (perm == torch.arange(3)).all()
    order = torch.tensor([2, 0, 1])
    best_shuffled, perm_shuffled = pit_si_snr(est[:, order], refs)
    torch.testing.assert_close(best_shuffled, best)
    # reference j was estimate j, which now sits where order == j
    assert (perm_shuffled == torch.argsort(order)).all()
    torch.testing.assert_close(pit_si_snr_loss(est[:, order], refs), -best.mean())


def test_pairwise_and_improvement():
    torch.manual_seed(0)
    refs = torch.randn(2, 2, 64)
    scores = pairwise_si_snr(refs.flip(1), refs)
    torch.testing.assert_close(scores[:, 0, 1], si_snr(refs[:, 1], refs[:, 1]))
    mix = refs.sum(1)
    # estimating the mixture for both sources improves nothing
    gain = si_snr_improvement(mix.unsqueeze(1).expand(-1, 2, -1), refs, mix)
    torch.testing.assert_close(gain, torch.zeros(2), atol=1e-4, rtol=0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shapes differ"):
        si_snr(torch.randn(2, 10), torch.randn(2, 11))
    with pytest.raises(ValueError, match=r"\(B, S, T\)"):
        pit_si_snr(torch.randn(2, 10), torch.randn(2, 10))
    with pytest.raises(ValueError, match="mixture must be"):
        si_snr_improvement(torch.randn(2, 2, 10), torch.randn(2, 2, 10), torch.randn(2, 9))


def test_pit_refuses_more_sources_than_it_can_permute():
    x = torch.randn(1, 12, 10)  # 12! permutations would exhaust memory
    with pytest.raises(ValueError, match="S=12 is too many"):
        pit_si_snr(x, x)
    with pytest.raises(ValueError, match="S=9 is too many"):
        pit_si_snr_loss(x[:, :9], x[:, :9])
