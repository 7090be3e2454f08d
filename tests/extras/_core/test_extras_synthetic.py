"""The shared synthetic generators: determinism by seed, shapes, label consistency, bad input."""

import json

import numpy as np
import pytest
import torch

from graphkit.extras._core.synthetic import (
    add_rain_streaks,
    blobs_classification,
    coco_fixture,
    echo_scenario,
    image_text_pairs,
    rle_encode,
    shapes_segmentation,
    two_source_mixture,
)


def test_blobs_are_seeded_shaped_and_classifiable():
    x, y = blobs_classification(60, classes=6, size=16, seed=3)
    x2, y2 = blobs_classification(60, classes=6, size=16, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, blobs_classification(60, classes=6, size=16, seed=4)[0])
    assert x.shape == (60, 3, 16, 16) and y.dtype == torch.long
    assert 0 <= x.min() and x.max() <= 1
    assert torch.equal(torch.bincount(y), torch.full((6,), 10))
    # the class is in the image: class means of seed 3 classify seed 4 (nearest mean)
    means = torch.stack([x[y == c].mean(0) for c in range(6)]).flatten(1)
    xt, yt = blobs_classification(60, classes=6, size=16, seed=4)
    pred = torch.cdist(xt.flatten(1), means).argmin(1)
    assert (pred == yt).float().mean() == 1.0


def test_shapes_masks_match_the_painted_pixels():
    img, mask = shapes_segmentation(8, size=24, noise=0.0, seed=1)
    assert img.shape == (8, 1, 24, 24) and mask.shape == (8, 24, 24)
    assert torch.equal(img[:, 0], mask.float() / 3)  # intensity (k + 1) / 3 where label is k + 1
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3} and (mask > 0).any(dim=(1, 2)).all()
    a, b = shapes_segmentation(4, seed=2), shapes_segmentation(4, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    only_disks = shapes_segmentation(4, shapes=("disk",), noise=0.0)[1]
    assert set(only_disks.unique().tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="shapes must be"):
        shapes_segmentation(2, shapes=("hexagon",))
    with pytest.raises(ValueError, match="size must be at least 8"):
        shapes_segmentation(2, size=4)


def test_rain_streaks_only_brighten_and_follow_the_angle():
    clean = torch.full((2, 3, 32, 32), 0.25)
    rainy, streaks = add_rain_streaks(clean, density=0.01, angle=0.0, length=7, seed=0)
    assert rainy.shape == clean.shape and streaks.shape == (2, 1, 32, 32)
    dry = streaks.expand_as(rainy) == 0
    assert (rainy >= clean).all() and torch.equal(rainy[dry], clean[dry]) and dry.any()
    assert streaks.max() > 0
    torch.testing.assert_close(rainy, 1 - (1 - clean) * (1 - streaks))
    # angle 0 is vertical: neighbours along columns agree far more often than along rows
    s = (streaks > 0).float()
    vert = (s[..., 1:, :] * s[..., :-1, :]).sum()
    horiz = (s[..., :, 1:] * s[..., :, :-1]).sum()
    assert vert > 5 * horiz
    s90 = (add_rain_streaks(clean, density=0.01, angle=90.0, length=7, seed=0)[1] > 0).float()
    horiz90 = (s90[..., :, 1:] * s90[..., :, :-1]).sum()
    assert horiz90 > 5 * (s90[..., 1:, :] * s90[..., :-1, :]).sum()
    single, layer = add_rain_streaks(clean[0], seed=5)
    assert single.shape == (3, 32, 32) and layer.shape == (1, 32, 32)
    assert torch.equal(single, add_rain_streaks(clean[0], seed=5)[0])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        add_rain_streaks(clean * 5)
    with pytest.raises(ValueError, match="density"):
        add_rain_streaks(clean, density=1.5)


def test_two_source_mixture_sums_and_has_its_pitch():
    m = two_source_mixture(length=4000, sr=8000, n=3, seed=7)
    assert m.mixture.shape == (3, 4000) and m.sources.shape == (3, 2, 4000)
    torch.testing.assert_close(m.mixture, m.sources.sum(1) + m.noise)
    torch.testing.assert_close(m.sources.pow(2).mean(-1), torch.ones(3, 2))
    assert ((m.f0 >= 100) & (m.f0 <= 400)).all()
    # the strongest spectral line of each source is one of its harmonics of f0
    spec = torch.fft.rfft(m.sources, dim=-1).abs()
    peak_hz = spec.argmax(-1).float() * 8000 / 4000
    ratio = peak_hz / m.f0
    assert ((ratio - ratio.round()).abs() < 0.05).all()
    assert torch.equal(m.mixture, two_source_mixture(length=4000, sr=8000, n=3, seed=7).mixture)
    with pytest.raises(ValueError, match="f0_range"):
        two_source_mixture(sr=400)


def test_echo_scenario_is_a_causal_room_echo():
    e = echo_scenario(length=1000, sr=8000, rir_len=64, n=2, seed=4)
    assert e.mic.shape == e.far.shape == e.near.shape == e.echo.shape == (2, 1000)
    assert e.rir.shape == (2, 64) and (e.rir[:, 0] == 1).all()
    torch.testing.assert_close(e.mic, e.near + e.echo + e.noise)
    for i in range(2):
        full = np.convolve(e.far[i].double().numpy(), e.rir[i].double().numpy())[:1000]
        np.testing.assert_allclose(e.echo[i].numpy(), full, rtol=1e-4, atol=1e-4)
    # the room decays: with rt60 = 2 ms the last taps (~8 ms) are over 60 dB below the first
    short = echo_scenario(length=100, sr=8000, rir_len=64, rt60=0.002, seed=4).rir
    assert short[:, 1:9].abs().mean() > 1000 * short[:, -8:].abs().mean()
    assert torch.equal(e.mic, echo_scenario(length=1000, sr=8000, rir_len=64, n=2, seed=4).mic)
    with pytest.raises(ValueError, match="rt60"):
        echo_scenario(rt60=0.0)


def test_image_text_pairs_corrupt_exactly_the_asked_share():
    p = image_text_pairs(200, corrupt_frac=0.5, concepts=5, seed=0)
    assert len(p) == 200 and p.images.shape == (200, 3, 16, 16) and p.tokens.shape == (200, 6)
    assert int((~p.is_clean).sum()) == 100
    assert torch.equal(p.is_clean, p.image_concepts == p.text_concepts)
    # each caption holds its concept's word exactly once among filler words (ids >= concepts)
    words = p.tokens < p.concepts
    assert (words.sum(1) == 1).all()
    assert torch.equal(p.tokens[words], p.text_concepts)
    assert p.tokens.max() < p.vocab
    q = image_text_pairs(200, corrupt_frac=0.5, concepts=5, seed=0)
    assert torch.equal(p.images, q.images) and torch.equal(p.tokens, q.tokens)
    sub = p.subset(p.is_clean)
    assert len(sub) == 100 and sub.is_clean.all()
    with pytest.raises(ValueError, match="corrupt_frac"):
        image_text_pairs(10, corrupt_frac=1.0)


def test_rle_encode_runs_are_column_major():
    mask = np.array([[0, 1], [1, 1]], dtype=np.uint8)  # column-major: 0, 1, 1, 1
    assert rle_encode(mask) == {"size": [2, 2], "counts": [1, 3]}
    assert rle_encode(np.ones((2, 2)))["counts"] == [0, 4]


def test_coco_fixture_is_valid_coco(tmp_path):
    cats = ["a", "b", "c"]
    path = coco_fixture(tmp_path, cats, n_images=5, seed=2, ann_file="ann/x.json", image_dir="im")
    doc = json.loads(path.read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3]
    assert [c["name"] for c in doc["categories"]] == cats
    assert len(doc["images"]) == 5
    ids = {im["id"] for im in doc["images"]}
    for ann in doc["annotations"]:
        x, y, w, h = ann["bbox"]
        assert ann["image_id"] in ids and 1 <= ann["category_id"] <= 3
        assert w > 0 and h > 0 and x + w <= 64 and y + h <= 48 and ann["area"] == w * h
    assert any(isinstance(a["segmentation"], dict) for a in doc["annotations"])
    assert any(isinstance(a["segmentation"], list) for a in doc["annotations"])
    img = np.load(tmp_path / "im" / doc["images"][0]["file_name"])
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    again = coco_fixture(tmp_path / "b", cats, n_images=5, seed=2)
    assert json.loads(again.read_text()) == doc
    assert not list(tmp_path.glob("**/*.tmp"))  # atomic writes leave no temporaries


