import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphkit.extras import create_model
from graphkit.extras.training.metric import (
    HypersphericalHead,
    NormalizedSoftmaxLoss,
    PrototypeClassifier,
)


def test_head_gives_cosines_and_loss_logits_are_bounded_by_the_scale():
    torch.manual_seed(0)
    head = create_model("hyperspherical", in_features=6, num_classes=4)
    x = 100 * torch.randn(32, 6)
    cos = head(x)
    want = F.cosine_similarity(x[:, None, :], head.weight[None, :, :], dim=2)
    assert torch.allclose(cos, want, atol=1e-6)
    loss_fn = NormalizedSoftmaxLoss(scale=10.0, margin=0.3)
    target = torch.randint(4, (32,))
    logits = loss_fn.logits(cos, target)
    assert logits.abs().max() <= 10.0 * (1 + 0.3) and loss_fn.logits(cos).abs().max() <= 10.0
    assert sum(p.numel() for p in head.parameters()) == 24  # no bias: a pure direction per class


def test_margin_lowers_only_the_target_cosine():
    cos = torch.tensor([[0.9, 0.1, -0.2], [0.0, 0.5, 0.4]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    s, m = 8.0, 0.25
    got = NormalizedSoftmaxLoss(s, m)(cos, target)
    shifted = cos.clone()
    shifted[0, 0] -= m
    shifted[1, 2] -= m
    assert got.item() == pytest.approx(F.cross_entropy(s * shifted, target).item(), rel=1e-12)
    plain = NormalizedSoftmaxLoss(s)(cos, target)
    assert plain.item() == pytest.approx(F.cross_entropy(s * cos, target).item(), rel=1e-12)
    assert got > plain


def test_prototype_classifier_is_nearest_normalised_mean():
    emb = torch.tensor([[2.0, 0.0], [1.0, 0.1], [0.0, 3.0], [0.2, 1.0]])
    pc = PrototypeClassifier().fit(emb, torch.tensor([0, 0, 1, 1]))
    assert torch.allclose(pc.prototypes.norm(dim=1), torch.ones(2))
    # direction counts, not length: a long vector near class 1's direction is class 1
    assert pc.predict(torch.tensor([[0.05, 50.0], [3.0, -0.1]])).tolist() == [1, 0]


def _clusters(seed: int, classes: int = 25, per: int = 60):
    """Classes as Gaussian clusters in an 8-d latent space, seen through a random tanh map."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, 8, generator=g) * 1.5
    z = centres.repeat_interleave(per, 0) + torch.randn(classes * per, 8, generator=g)
    mix_a = torch.randn(8, 32, generator=g) / math.sqrt(8)
    mix_b = torch.randn(32, 32, generator=g) / math.sqrt(32)
    x = torch.tanh(z @ mix_a) @ mix_b + 0.1 * torch.randn(classes * per, 32, generator=g)
    return x, torch.arange(classes).repeat_interleave(per)


def test_unseen_classes_are_recognised_from_five_labelled_examples():
    """20 seen classes train the embedding; 5 held-out classes get prototypes from 5 shots.

    Measured here (seed 0, 10 epochs, scale 16, margin 0.2): unseen-class accuracy 0.855
    against 0.2 for chance; the test asks for 0.5.

    The spec's comparison (>= 5 points over plain-softmax features, 3 seeds) did not reproduce
    on this data and is not asserted: with the same embedder, 30 epochs and 5 shots, seeds
    0/1/2 gave plain softmax 0.851/0.825/0.793, normalised softmax (m=0) 0.804/0.815/0.731,
    with margin 0.2 0.720/0.760/0.669, batch-hard triplet 0.724/0.709/0.513.
    """
    x, y = _clusters(0)
    torch.manual_seed(0)
    embed = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 16))
    head, loss_fn = HypersphericalHead(16, 20), NormalizedSoftmaxLoss(16.0, margin=0.2)
    opt = torch.optim.Adam([*embed.parameters(), *head.parameters()], lr=3e-3)
    seen = y < 20
    xs, ys = x[seen], y[seen]
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        for batch in torch.randperm(len(xs), generator=g).split(64):
            loss = loss_fn(head(embed(xs[batch])), ys[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    xu, yu = x[~seen], y[~seen] - 20
    with torch.no_grad():
        e = embed(xu)
    support = torch.cat([torch.nonzero(yu == c).flatten()[:5] for c in range(5)])
    query = torch.ones(len(yu), dtype=torch.bool)
    query[support] = False
    acc = (PrototypeClassifier().fit(e[support], yu[support]).predict(e[query]) == yu[query])
    assert acc.float().mean() > 0.5


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="scale must be positive"):
        NormalizedSoftmaxLoss(scale=0.0)
    with pytest.raises(ValueError, match=r"margin must lie in \[0, 1\)"):
        NormalizedSoftmaxLoss(margin=1.0)
    loss = NormalizedSoftmaxLoss()
    with pytest.raises(ValueError, match="pass the head's output"):
        loss(torch.full((2, 3), 5.0), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 3\)"):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"input must be \(B, 4\)"):
        HypersphericalHead(4, 2)(torch.zeros(3, 5))
    with pytest.raises(RuntimeError, match="call fit"):
        PrototypeClassifier()(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="every class"):
        PrototypeClassifier().fit(torch.zeros(2, 2), torch.tensor([0, 2]))


def test_prototype_fit_rejects_nan_embeddings():
    # a NaN embedding made its class prototype NaN silently
    emb = torch.tensor([[1.0, 0.0], [float("nan"), 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="embeddings contain NaN"):
        PrototypeClassifier().fit(emb, torch.tensor([0, 1, 1]))


def test_float_targets_and_boolean_labels_are_named():
    # torch's "expected target dtype to be Long" and bincount's NotImplementedError
    with pytest.raises(ValueError, match="target must hold integer class indices"):
        NormalizedSoftmaxLoss()(torch.rand(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="got a boolean tensor"):
        PrototypeClassifier().fit(torch.rand(3, 2), torch.tensor([True, False, True]))


def test_fitted_prototypes_reload_into_a_fresh_classifier():
    clf = PrototypeClassifier().fit(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2]))
    fresh = PrototypeClassifier()
    fresh.load_state_dict(clf.state_dict())  # the empty buffer was a size mismatch
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), clf(x))
    wide = PrototypeClassifier().double()  # keeps its own dtype, as load_state_dict does
    wide.load_state_dict(clf.state_dict())
    assert wide.prototypes.dtype == torch.float64
    assert wide(x.double()).dtype == torch.float64
