import math

import pytest
import torch
import torch.nn.functional as F

from graphkit.extras._core.counting import count_params
from graphkit.extras._core.registry import create_model
from graphkit.extras.audio.d3net_aec import ComplexD3NetAEC, erle
from graphkit.extras.layers.complex import to_pseudo_complex


def _closed_form(c=16, g=8, layers=3, d2=2, d3=2, k=3):
    """Parameters of ComplexD3NetAEC written out: complex weights count twice, batch norms
    normalise real and imaginary parts (2 * channels, weight and bias)."""
    total = 2 * (c * 2 * 9 + c)  # stem: 2 complex inputs (mic, far end), 3x3, bias
    for _ in range(d3):
        for m in range(d2):
            c_in = c + m * g * layers
            for i in range(layers):
                width = c_in + g * i
                total += 2 * 2 * width  # batch norm over real and imaginary channels
                total += 2 * g * width * k * k + 2 * g  # multi-dilated conv, one complex bias
        total += 2 * (c * g * layers * d2 + c)  # 1x1 complex transition
    return total + 2 * 2 * c + 2 * (2 * c * 9 + 2)  # head norm and 3x3 head to two masks


def test_default_count_is_graphkits_configuration():
    """The paper reports 354K parameters but its layer table is not available here; the
    default widths are graphkit's and give 68,516 parameters (counted and in closed form)."""
    model = create_model("complex_d3net_aec")
    assert count_params(model) == _closed_form() == 68_516
    small = ComplexD3NetAEC(channels=8, growth=4, num_layers=2, num_d2=2, num_d3=1)
    assert count_params(small) == _closed_form(8, 4, 2, 2, 1)


def test_masks_keep_the_time_frequency_resolution():
    model = ComplexD3NetAEC(n_fft=64, hop_length=16, channels=4, growth=2, num_layers=3,
                            num_d2=1, num_d3=1).eval()
    spec = to_pseudo_complex(torch.randn(2, 2, 33, 21, dtype=torch.complex64))
    masks = model.masks(spec)
    assert masks.shape == (2, 2, 2, 33, 21)  # no pooling anywhere: same F x T as the input
    assert (masks.pow(2).sum(1).sqrt() <= 1).all()
    for length in (64, 999):
        assert model(torch.randn(2, length), torch.randn(2, length)).shape == (2, length)


def test_unit_masks_pass_the_microphone_through():
    model = ComplexD3NetAEC(n_fft=64, hop_length=16, channels=4, growth=2, num_layers=2,
                            num_d2=1, num_d3=1).eval()
    with torch.no_grad():
        model.head.weight_real.zero_()
        model.head.weight_imag.zero_()
        model.head.bias_imag.zero_()
        model.head.bias_real.fill_(20.0)  # tanh(20) == 1 in float32: both masks are 1
    mic = torch.randn(2, 500)
    with torch.no_grad():
        torch.testing.assert_close(model(mic, torch.randn(2, 500)), mic, atol=1e-4, rtol=0)


def test_erle_and_bad_inputs():
    mic = torch.randn(3, 100)
    torch.testing.assert_close(erle(mic, mic / 10), torch.full((3,), 20.0), atol=1e-4, rtol=0)
    model = ComplexD3NetAEC(n_fft=64, hop_length=16, channels=4, growth=2, num_layers=1,
                            num_d2=1, num_d3=1)
    with pytest.raises(ValueError, match="one shape"):
        model(torch.randn(2, 100), torch.randn(2, 99))
    with pytest.raises(ValueError, match="at least n_fft=64"):
        model(torch.randn(2, 50), torch.randn(2, 50))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 100), math.nan), torch.zeros(1, 100))
    with pytest.raises(ValueError, match="hop_length"):
        ComplexD3NetAEC(n_fft=64, hop_length=128)
    with pytest.raises(ValueError, match="one shape"):
        erle(torch.randn(2, 5), torch.randn(2, 6))


def _harmonic(batch, length, gen, sr=8000):
    t = torch.arange(length) / sr
    k = torch.arange(1, 6, dtype=torch.float32)[:, None]
    out = []
    for _ in range(batch):
        f0 = 100 + 300 * torch.rand(1, generator=gen).item()
        amps = torch.rand(5, 1, generator=gen) + 0.2
        phase = torch.rand(5, 1, generator=gen) * 2 * math.pi
        s = (amps * torch.sin(2 * math.pi * f0 * k * t + phase)).sum(0)
        out.append(s / s.std())
    return torch.stack(out)


def echo_scenario(batch, length, gen, rir_len=32, double_talk=True):
    """Far-end harmonic signal through a random exponentially decaying RIR (the echo), plus
    white noise at -26 dB, plus (in half of the double-talk signals) a near-end harmonic
    talker. Returns ``(mic, farend, near_end)``."""
    far = _harmonic(batch, length, gen)
    rir = torch.randn(batch, rir_len, generator=gen) * torch.exp(-torch.arange(rir_len) / 8)
    rir = rir / rir.norm(dim=-1, keepdim=True)
    echo = F.conv1d(far[None], rir.flip(-1)[:, None], padding=rir_len - 1, groups=batch)
    near = _harmonic(batch, length, gen)
    if double_talk:
        near = near * (torch.rand(batch, 1, generator=gen) < 0.5)
    else:
        near = torch.zeros_like(near)
    mic = echo[0, :, :length] + near + 0.05 * torch.randn(batch, length, generator=gen)
    return mic, far, near


@pytest.mark.slow
def test_cancels_echo_on_synthetic_scenarios():
    """Acceptance: ERLE > 10 dB after <= 1000 CPU steps. A small configuration (5,188
    parameters, n_fft 128) trained 300 steps (batch 8, 0.25 s at 8 kHz, Adam 3e-3, MSE to the
    near-end signal normalised by the microphone power); measured ERLE 14.2 dB on held-out
    far-end single talk, and the near-end SNR in double talk rises from 1.7 dB to about 7.6 dB
    (after 500 steps in the same setup); about 20 s on one core."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = ComplexD3NetAEC(n_fft=128, hop_length=64, channels=8, growth=4, num_layers=2,
                            num_d2=2, num_d3=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        mic, far, near = echo_scenario(8, 2000, gen)
        loss = ((model(mic, far) - near) ** 2).mean() / mic.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    mic, far, _ = echo_scenario(8, 4000, torch.Generator().manual_seed(1), double_talk=False)
    mic_dt, far_dt, near_dt = echo_scenario(8, 4000, torch.Generator().manual_seed(2))
    with torch.no_grad():
        gain = erle(mic, model(mic, far)).mean().item()
        out_dt = model(mic_dt, far_dt)
    has = near_dt.abs().sum(-1) > 0

    def snr(est):
        ref = near_dt[has]
        return (10 * torch.log10(ref.pow(2).sum(-1) / (ref - est[has]).pow(2).sum(-1))).mean()

    assert gain > 10.0, gain
    assert snr(out_dt) > snr(mic_dt) + 3.0  # near-end speech is kept, not muted with the echo
