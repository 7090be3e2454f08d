"""graphkit.train.link_prediction: the shared static link-prediction loop and ranking."""

import pytest
import torch

from graphkit.metrics import hits_at_k
from graphkit.metrics.per_node import per_node_ranking
from graphkit.nn.models import GCNLinkPredictor
from graphkit.train import rank_candidates, seed_everything, train_link_predictor


def _planted(n: int = 60, groups: int = 3, seed: int = 0):
    """Dense within groups, no edges across; features are noisy group indicators."""
    g = torch.Generator().manual_seed(seed)
    group = torch.arange(n) % groups
    pairs = torch.combinations(torch.arange(n))
    same = group[pairs[:, 0]] == group[pairs[:, 1]]
    keep = same & (torch.rand(pairs.size(0), generator=g) < 0.3)
    edges = pairs[keep].t()
    perm = torch.randperm(edges.size(1), generator=g)
    val, train = edges[:, perm[:20]], edges[:, perm[20:]]
    x = torch.nn.functional.one_hot(group, groups).float() + 0.5 * torch.randn(n, groups,
                                                                                 generator=g)
    cross = pairs[group[pairs[:, 0]] != group[pairs[:, 1]]]
    val_neg = cross[torch.randperm(cross.size(0), generator=g)[:200]].t()
    return x, torch.cat([train, train.flip(0)], dim=1), train, val, val_neg


def test_training_learns_and_keeps_the_best_validation_state():
    x, mp, train, val, val_neg = _planted()
    seed_everything(0)
    model = GCNLinkPredictor(x.size(1), 16)
    with torch.no_grad():
        h = model.encode(x, mp)
        before = hits_at_k(model.score(h[val[0]], h[val[1]]), model.score(h[val_neg[0]],
                                                                         h[val_neg[1]]), 20)
    res = train_link_predictor(model, x, mp, train, val, val_neg, epochs=30, batch_size=64,
                               lr=0.01, eval_every=3, k=20)
    assert [e for e, _ in res.history] == list(range(3, 31, 3))
    assert res.best_val == max(v for _, v in res.history)
    first_best = next(e for e, v in res.history if v == res.best_val)
    assert res.best_epoch == first_best
    assert not model.training
    with torch.no_grad():
        h = model.encode(x, mp)
        kept = hits_at_k(model.score(h[val[0]], h[val[1]]), model.score(h[val_neg[0]],
                                                                       h[val_neg[1]]), 20)
    assert kept == pytest.approx(res.best_val)
    assert res.best_val > before
    assert res.best_val > 0.5


def test_training_is_reproducible_for_a_seed():
    x, mp, train, val, val_neg = _planted()
    states = []
    for _ in range(2):
        seed_everything(3)
        model = GCNLinkPredictor(x.size(1), 8)
        train_link_predictor(model, x, mp, train, val, val_neg, epochs=4, batch_size=32,
                             eval_every=2, k=10)
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_rank_candidates_equals_a_brute_force_ranking():
    x, mp, train, val, _ = _planted(n=30)
    seed_everything(1)
    model = GCNLinkPredictor(x.size(1), 8).eval()
    nodes, ranking = rank_candidates(model, x, mp, val, known=train, k=5, rows_per_batch=4)
    with torch.no_grad():
        h = model.encode(x, mp)
        scores = model.score(h.unsqueeze(1), h.unsqueeze(0))  # [N, N]
    both = torch.cat([val, val.flip(0)], dim=1)
    known = torch.cat([train, train.flip(0)], dim=1)
    assert torch.equal(nodes, torch.unique(both[0]))
    for i, node in enumerate(nodes.tolist()):
        truth = both[1, both[0] == node]
        excl = known[1, known[0] == node]
        one = per_node_ranking(scores[node:node + 1],
                               torch.stack([torch.zeros_like(truth), truth]), 5,
                               torch.stack([torch.zeros_like(excl), excl]))
        for got, want in zip(ranking, one, strict=True):
            assert got[i].item() == pytest.approx(want[0].item())


def test_bad_inputs_name_the_problem():
    x, mp, train, val, val_neg = _planted(n=30)
    model = GCNLinkPredictor(x.size(1), 8)
    bad = train.clone()
    bad[0, 0] = 30
    with pytest.raises(ValueError, match="train_pos holds node id 30"):
        train_link_predictor(model, x, mp, bad, val, val_neg, epochs=1)
    nan_x = x.clone()
    nan_x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="x"):
        train_link_predictor(model, nan_x, mp, train, val, val_neg, epochs=1)
    with pytest.raises(ValueError, match=r"val_neg must have shape \[2, num_edges\]"):
        train_link_predictor(model, x, mp, train, val, val_neg.t(), epochs=1)
    with pytest.raises(ValueError, match="epochs, batch_size and eval_every"):
        train_link_predictor(model, x, mp, train, val, val_neg, epochs=0)
    with pytest.raises(ValueError, match="lr must be positive, got 0"):
        train_link_predictor(model, x, mp, train, val, val_neg, lr=0.0)  # trained nothing
    for name in ("val_pos", "val_neg"):  # failed in Hits@K after the first epochs
        args = {"val_pos": val, "val_neg": val_neg, name: torch.empty(2, 0, dtype=torch.long)}
        with pytest.raises(ValueError, match=f"{name} is empty"):
            train_link_predictor(model, x, mp, train, epochs=1, **args)
    with pytest.raises(ValueError, match="query is empty"):
        rank_candidates(model, x, mp, torch.empty(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="known holds a negative node id"):
        rank_candidates(model, x, mp, val, known=-train)
