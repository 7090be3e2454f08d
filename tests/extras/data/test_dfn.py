"""Data Filtering Networks: scores, top-fraction filtering, and the acceptance checks of §4.10."""

import json
import math

import pytest
import torch

from graphkit.extras._core.registry import create_model
from graphkit.extras._core.synthetic import image_text_pairs
from graphkit.extras.data.dfn import (
    BagOfWordsTextEncoder,
    DataFilteringNetwork,
    FilterResult,
    TinyImageEncoder,
    clip_loss,
    keep_precision,
    tiny_dfn,
    top_fraction,
    zero_shot_accuracy,
)


@pytest.fixture(scope="module")
def trained():
    """A DFN trained on 1k clean pairs, and a 2k pool with 50% mismatched captions."""
    torch.manual_seed(0)
    clean = image_text_pairs(1000, corrupt_frac=0.0, seed=1)
    pool = image_text_pairs(2000, corrupt_frac=0.5, seed=2)
    dfn = tiny_dfn(vocab=clean.vocab, seed=0)
    losses = dfn.train_filter(clean, epochs=10)
    return dfn, pool, losses


def test_precision_at_keep_half_on_a_corrupted_pool(trained):
    """Spec §4.10 acceptance: precision >= 0.9 at keep = 0.5 (measured 0.958, seed 0)."""
    dfn, pool, losses = trained
    assert losses[-1] < 0.6 * losses[0]
    result = dfn.filter_pool(pool, keep=0.5)
    assert result.indices.numel() == 1000
    assert keep_precision(result.indices, pool.is_clean) >= 0.9
    # an untrained filter keeps about the base rate of clean pairs
    untrained = tiny_dfn(vocab=pool.vocab, seed=0).filter_pool(pool, keep=0.5)
    assert keep_precision(untrained.indices, pool.is_clean) < 0.6


def test_clip_trained_on_the_filtered_subset_beats_the_unfiltered_pool(trained):
    """Spec §4.10 acceptance: at an equal step budget (32 steps of 128 pairs), a tiny CLIP on the
    kept half beats one on the whole pool in synthetic zero-shot accuracy. Measured with seeds
    10-12: filtered 0.938 / 0.956 / 0.866, unfiltered 0.634 / 0.704 / 0.754; this test runs
    seed 10 and asks for a 0.1 margin."""
    dfn, pool, _ = trained
    kept = pool.subset(dfn.filter_pool(pool, keep=0.5).indices)
    test = image_text_pairs(500, corrupt_frac=0.0, seed=3)
    k = test.concepts
    prompts = torch.full((k, 6), k)  # the concept word, then one fixed filler word
    prompts[:, 0] = torch.arange(k)
    acc = {}
    for name, data, epochs in (("filtered", kept, 4), ("unfiltered", pool, 2)):
        clip = tiny_dfn(vocab=pool.vocab, seed=10)
        clip.train_filter(data, epochs=epochs, seed=0)
        acc[name] = zero_shot_accuracy(clip, test.images, test.image_concepts, prompts)
    assert acc["filtered"] >= acc["unfiltered"] + 0.1, acc


def test_scores_are_cosines_and_filtering_keeps_the_top(trained):
    dfn, pool, _ = trained
    small = pool.subset(torch.arange(50))
    scores = dfn.score_pairs(small, batch_size=7)
    img, txt = dfn.encode(small.images, small.tokens)
    torch.testing.assert_close(scores, (img * txt).sum(-1), rtol=1e-5, atol=1e-6)
    assert scores.abs().max() <= 1 + 1e-6
    res = dfn.filter_pool(small, keep=0.3)
    assert res.indices.numel() == math.ceil(0.3 * 50) == 15
    assert res.threshold == float(scores[res.indices].min())
    assert scores[~res.mask()].max() <= res.threshold
    assert torch.equal(dfn.score_pairs((small.images, small.tokens)), dfn.score_pairs(small))


def test_top_fraction_is_exact_and_checks_its_input():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.9, -0.2])
    assert top_fraction(scores, 0.4).tolist() == [1, 3]  # ties keep the earlier pair first
    assert top_fraction(scores, 0.41).tolist() == [1, 3, 2]
    assert top_fraction(scores, 1.0).numel() == 5
    for keep in (0.0, 1.5):
        with pytest.raises(ValueError, match="keep must lie"):
            top_fraction(scores, keep)
    with pytest.raises(ValueError, match="NaN"):
        top_fraction(torch.tensor([0.1, float("nan")]), 0.5)
    with pytest.raises(ValueError, match="1-D"):
        top_fraction(scores.view(5, 1), 0.5)


def test_clip_loss_is_symmetric_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    log_r = logits.log_softmax(1).diag()
    log_c = logits.log_softmax(0).diag()
    torch.testing.assert_close(clip_loss(logits), -0.5 * (log_r.mean() + log_c.mean()))
    with pytest.raises(ValueError, match="square"):
        clip_loss(torch.zeros(2, 3))


def test_save_writes_the_kept_pool_atomically(tmp_path):
    scores = torch.tensor([0.2, 0.8, 0.5])
    res = FilterResult(top_fraction(scores, 0.5), scores, 0.5, 0.5)
    path = res.save(tmp_path / "out" / "kept.json")
    doc = json.loads(path.read_text())
    assert doc["indices"] == [1, 2] and doc["pool_size"] == 3 and doc["keep"] == 0.5
    assert doc["scores"] == pytest.approx([0.8, 0.5])
    assert [p.name for p in path.parent.iterdir()] == ["kept.json"]


def test_bad_inputs_are_named():
    dfn = DataFilteringNetwork(TinyImageEncoder(3, 8, 4), BagOfWordsTextEncoder(10, 16))
    images, tokens = torch.rand(4, 3, 16, 16), torch.randint(10, (4, 5))
    with pytest.raises(ValueError, match="one shape"):
        dfn(images, tokens)
    dfn = tiny_dfn(vocab=10, embed_dim=8, width=4)
    with pytest.raises(ValueError, match="pair up"):
        dfn.score_pairs((images, tokens[:3]))
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10\)"):
        dfn.score_pairs((images, tokens + 10))
    with pytest.raises(ValueError, match="int64"):
        dfn.score_pairs((images, tokens.float()))
    with pytest.raises(TypeError, match="ImageTextPairs"):
        dfn.score_pairs(images)
    with pytest.raises(ValueError, match="keep must lie"):
        dfn.filter_pool((images, tokens), keep=0.0)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        dfn.train_filter((images[:1], tokens[:1]))
    with pytest.raises(ValueError, match="init_temperature"):
        DataFilteringNetwork(torch.nn.Identity(), torch.nn.Identity(), init_temperature=0.0)


def test_registered_builder():
    dfn = create_model("dfn", vocab=20, embed_dim=16, width=8)
    assert isinstance(dfn, DataFilteringNetwork)
    assert dfn(torch.rand(3, 3, 16, 16), torch.randint(20, (3, 4))).shape == (3, 3)


def test_bad_pools_labels_and_kept_indices_are_named():
    model = tiny_dfn(vocab=16, seed=0)
    images, tokens = torch.rand(4, 3, 16, 16), torch.randint(0, 16, (4, 5))
    bad = images.clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images contain NaN or infinite values"):
        model.train_filter((bad, tokens), epochs=1, batch_size=2)  # trained to NaN weights
    with pytest.raises(ValueError, match="images contain NaN"):
        model.score_pairs((bad, tokens))
    with pytest.raises(ValueError, match="pool is empty"):
        model.filter_pool((images[:0], tokens[:0]))
    with pytest.raises(ValueError, match="TinyImageEncoder expects 3 input channels, got 4"):
        model.score_pairs((torch.rand(4, 4, 16, 16), tokens))
    prompts = torch.randint(0, 16, (3, 5))
    with pytest.raises(ValueError, match=r"labels must be \(4,\), one per image"):
        zero_shot_accuracy(model, images, torch.zeros(3, dtype=torch.long), prompts)
    with pytest.raises(ValueError, match="labels hold class 7, out of range for 3 class prompts"):
        zero_shot_accuracy(model, images, torch.full((4,), 7), prompts)
    clean = torch.tensor([True, False])
    with pytest.raises(ValueError, match="kept holds index 5, out of range for 2 pairs"):
        keep_precision(torch.tensor([5]), clean)
    with pytest.raises(ValueError, match="kept holds index -1"):
        keep_precision(torch.tensor([-1]), clean)  # read the last pair silently
    with pytest.raises(ValueError, match="kept must be 1-D integer indices or a bool mask"):
        keep_precision(torch.tensor([0.0]), clean)
    with pytest.raises(ValueError, match=r"a kept mask must match is_clean's shape \(2,\)"):
        keep_precision(torch.tensor([True]), clean)
    with pytest.raises(ValueError, match="kept repeats an index"):
        keep_precision(torch.tensor([0, 0]), clean)  # 1.0: one clean pair counted twice


def test_empty_logits_and_infinite_temperature_are_named():
    with pytest.raises(ValueError, match=r"B >= 1, got \(0, 0\)"):
        clip_loss(torch.zeros(0, 0))  # was a NaN loss
    with pytest.raises(ValueError, match="init_temperature must be a positive finite number"):
        DataFilteringNetwork(torch.nn.Identity(), torch.nn.Identity(), float("inf"))


@pytest.mark.parametrize("keep, n, expected", [(0.07, 100, 7), (0.55, 100, 55), (0.07, 10000, 700),
                                               (0.071, 100, 8)])
def test_top_fraction_keeps_the_ceiling_of_the_decimal_share(keep, n, expected):
    # 0.07 * 100 is 7.000000000000001 in floating point: ceil gave 8
    assert top_fraction(torch.rand(n), keep).numel() == expected
