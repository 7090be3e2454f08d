import copy
import warnings

import pytest
import torch

from graphkit.temporal import NAT, CosineTimeEncoding, joint_codes


def _stream(model: NAT, num_nodes: int, num_events: int, batch: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_events,), generator=g)
    dst = torch.randint(0, num_nodes, (num_events,), generator=g)
    t = torch.arange(num_events)
    msg = torch.zeros(num_events, model.msg_dim)
    for i in range(0, num_events, batch):
        s, d, tt = src[i:i + batch], dst[i:i + batch], t[i:i + batch]
        with torch.no_grad():
            model.score(s, d, tt, msg[i:i + batch], d.flip(0))
            model.update_state(s, d, tt, msg[i:i + batch])


def test_update_rule_hops_0_1_2():
    model = NAT(10, sizes=(1, 8, 8), seed=3)
    model.eval()
    for s, d, t in ((1, 2, 1), (2, 3, 2)):
        model.update_state(torch.tensor([s]), torch.tensor([d]), torch.tensor([t]),
                           torch.zeros(1, 0))

    def keys(hop: int, node: int) -> set[int]:
        k = model.cache.read(hop, torch.tensor([node]))[0][0]
        return {int(x) for x in k if x >= 0}

    assert keys(0, 1) == {1} and keys(0, 2) == {2} and keys(0, 3) == {3}
    assert keys(1, 1) == {2} and keys(1, 2) == {1, 3} and keys(1, 3) == {2}
    # (2, 3): 2's hop-1 entries before the event ({1}) are copied into 3's hop 2, and 3's
    # (empty) into 2's
    assert keys(2, 3) == {1} and keys(2, 2) == set()
    assert model.prev_opp[[1, 2, 3]].tolist() == [2, 3, 2]
    assert model.prev_eid[[1, 2, 3]].tolist() == [0, 1, 1]


def test_joint_code_equals_brute_force_membership():
    n = 40
    model = NAT(n, sizes=(1, 8, 4), seed=7)
    _stream(model, n, 600, 20)
    u = torch.randint(0, n, (30,), generator=torch.Generator().manual_seed(1))
    w = torch.randint(0, n, (30,), generator=torch.Generator().manual_seed(2))
    pair, key, code = model.structural_codes(u, w)

    def members(node: int, hop: int) -> set[int]:
        k = model.cache.read(hop, torch.tensor([node]))[0][0]
        return {int(x) for x in k if x >= 0}

    expected = {}
    for p in range(30):
        for side, node in ((0, int(u[p])), (1, int(w[p]))):
            for hop in range(3):
                for x in members(node, hop):
                    expected[(p, x)] = expected.get((p, x), 0) | ((1 << hop) << (3 * side))
    got = {(int(a), int(b)): int(c) for a, b, c in zip(pair, key, code)}
    assert got == expected
    assert bool((key >= 0).all())  # empty slots never enter the join
    assert any(c & 7 and c >> 3 for c in got.values())  # some common neighbours exist


def test_joint_codes_groups_and_ors():
    pair = torch.tensor([0, 0, 0, 1, 1])
    key = torch.tensor([5, 5, 3, 5, 2])
    code = torch.tensor([1, 16, 2, 8, 4])
    g_pair, g_key, g_code, inverse = joint_codes(pair, key, code, 10)
    assert list(zip(g_pair.tolist(), g_key.tolist(), g_code.tolist())) == \
        [(0, 3, 2), (0, 5, 17), (1, 2, 4), (1, 5, 8)]
    assert inverse.tolist() == [1, 1, 0, 3, 2]


def test_state_dict_restores_predictions_and_gradients_flow():
    n = 30
    torch.manual_seed(0)
    a = NAT(n, sizes=(1, 8, 4), seed=5, out_channels=16, self_dim=8)
    _stream(a, n, 300, 25)
    b = NAT(n, sizes=(1, 8, 4), seed=0, out_channels=16, self_dim=8)
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    src, dst, neg = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]), torch.tensor([7, 8, 9])
    t = torch.tensor([400, 400, 401])
    out_a = a.score(src, dst, t, torch.zeros(3, 0), neg)
    out_b = b.score(src, dst, t, torch.zeros(3, 0), neg)
    assert torch.equal(out_a[0], out_b[0]) and torch.equal(out_a[1], out_b[1])
    a.update_state(src, dst, t, torch.zeros(3, 0))
    b.update_state(src, dst, t, torch.zeros(3, 0))
    for x, y in zip(a.cache.buffers(), b.cache.buffers()):
        assert torch.equal(x, y)
    a.train()
    pos, neg_out = a.score(src, dst, t + 1, torch.zeros(3, 0), neg)
    (pos.sum() - neg_out.sum()).backward()
    for name in ("ngh_gru", "ngh_in", "pos_emb", "self_gru", "pool", "dec1"):
        grad = sum(p.grad.abs().sum() for p in getattr(a, name).parameters()
                   if p.grad is not None)
        assert grad > 0, name


def test_update_writes_the_scored_representations_for_equal_ids():
    # the scored batch's representations were reused only when update_state got the very same
    # tensor objects: a loop indexing the stream again recomputed them with the stepped weights
    n = 20
    g = torch.Generator().manual_seed(0)
    src, dst = torch.randint(0, n, (60,), generator=g), torch.randint(0, n, (60,), generator=g)
    t, msg = torch.arange(60), torch.zeros(60, 0)
    states = []
    for fresh_tensors in (False, True):
        torch.manual_seed(0)
        model = NAT(n, sizes=(1, 4, 2), seed=1, out_channels=8, self_dim=8)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for i in range(0, 60, 20):
            s, d = src[i:i + 20], dst[i:i + 20]
            pos, neg = model.score(s, d, t[i:i + 20], msg[i:i + 20], d.flip(0))
            opt.zero_grad()
            (neg.sum() - pos.sum()).backward()
            opt.step()
            if fresh_tensors:
                s, d = s.clone(), d.clone()
            model.update_state(s, d, t[i:i + 20], msg[i:i + 20])
        states.append(model.self_rep.clone())
    assert torch.equal(states[0], states[1])


def test_disabled_caches_use_self_representations_only():
    model = NAT(10, sizes=(0, 0, 0), out_channels=8, self_dim=4)
    _stream(model, 10, 100, 10)
    assert model.cache.memory_bytes() == 0
    pair, key, code = model.structural_codes(torch.tensor([1]), torch.tensor([2]))
    assert pair.numel() == 0


def test_event_features_are_used():
    torch.manual_seed(0)
    model = NAT(6, msg_dim=3, sizes=(1, 4, 2), out_channels=8, self_dim=4).eval()
    other = copy.deepcopy(model)
    src, dst, t = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2])
    msg = torch.randn(2, 3)
    model.update_state(src, dst, t, msg)
    other.update_state(src, dst, t, msg + 1.0)  # the same events with other features
    query = (torch.tensor([1]), torch.tensor([0]), torch.tensor([3]), torch.zeros(1, 3),
             torch.tensor([5]))
    with torch.no_grad():
        pos, neg = model.score(*query)
        pos_other, _ = other.score(*query)
    assert pos.shape == neg.shape == (1,)
    assert model.get_extra_state()["msgs"].shape == (2, 3)
    assert not torch.allclose(pos, pos_other)  # the features reach the scores


def test_double_keeps_event_features_in_float64():
    model = NAT(6, msg_dim=3, sizes=(1, 4, 2), out_channels=8, self_dim=4).double()
    msg = torch.randn(2, 3, dtype=torch.float64)
    model.update_state(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2]), msg)
    assert torch.equal(model.get_extra_state()["msgs"], msg)


@pytest.mark.parametrize("cast", ["float", "half", "double then float"])
def test_a_dtype_cast_keeps_timestamps_in_float64(cast):
    # .float() cast prev_t and the N-cache's times to float32, and the next update failed
    # (index_put of float64 into float32); float32 would also round epoch seconds
    model = NAT(6, msg_dim=3, sizes=(1, 4, 2), out_channels=8, self_dim=4)
    t0 = 1_600_000_001.0
    model.update_state(torch.tensor([0, 1]), torch.tensor([1, 2]),
                       torch.tensor([t0, t0 + 1], dtype=torch.float64), torch.randn(2, 3))
    for step in cast.split(" then "):
        model = getattr(model, step)()
    times = [model.prev_t] + [model.cache.table(h)[2] for h in range(model.cache.num_hops)]
    assert all(t.dtype == torch.float64 for t in times)
    assert model.prev_t[2].item() == t0 + 1  # not rounded to float32's 128 s
    if cast != "half":  # half-precision layers do not run on the CPU
        model.update_state(torch.tensor([2]), torch.tensor([3]),
                           torch.tensor([t0 + 2], dtype=torch.float64),
                           torch.randn(1, 3, dtype=model.self_rep.dtype))
        assert model.prev_t[3].item() == t0 + 2


def test_unused_event_features_are_named_once():
    model = NAT(6, sizes=(1, 4, 2), out_channels=8, self_dim=4)  # msg_dim=0
    src, dst, t = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2])
    with pytest.warns(UserWarning, match="3-wide event features are not used; pass msg_dim=3"):
        model.update_state(src, dst, t, torch.randn(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per model, and never for a featureless stream
        model.update_state(src, dst, t + 2, torch.randn(2, 3))
        NAT(6, sizes=(1, 4, 2)).update_state(src, dst, t, torch.zeros(2, 0))


def test_bad_inputs():
    with pytest.raises(ValueError, match="sizes"):
        NAT(5, sizes=(1, 2))
    with pytest.raises(ValueError, match="msg_dim"):
        NAT(5, msg_dim=-1)
    with pytest.raises(ValueError, match="node_features"):
        NAT(5, node_features=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="dropout"):
        NAT(5, dropout=1.0)
    nan_features = torch.zeros(5, 2)
    nan_features[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"node_features holds NaN values \(first in row 3\)"):
        NAT(5, node_features=nan_features)
    with pytest.raises(ValueError, match="dim must be non-negative"):
        CosineTimeEncoding(-1)
    model = NAT(5)
    with pytest.raises(ValueError, match="same length"):
        model.score(torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([1, 2]),
                    torch.zeros(2, 0), torch.tensor([2, 3]))


def test_update_state_needs_time_order():
    model = NAT(5, sizes=(1, 2, 2))
    src, dst, msg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.zeros(2, 0)
    # unsorted, NaN or earlier-than-held times were written into the state without a word
    with pytest.raises(ValueError, match="not sorted"):
        model.update_state(src, dst, torch.tensor([4.0, 2.0]), msg)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.update_state(src, dst, torch.tensor([1.0, float("nan")]), msg)
    model.update_state(src, dst, torch.tensor([4.0, 5.0]), msg)
    prev_t = model.prev_t.clone()
    with pytest.raises(ValueError, match=r"earlier than the last event held \(5.0\)"):
        model.update_state(src, dst, torch.tensor([3.0, 6.0]), msg)
    assert torch.equal(model.prev_t, prev_t)


def test_scores_equal_the_per_pair_formula():
    # eval mode: the batched join (grouping, code embedding, sum pooling, decoder) equals the
    # formula evaluated one pair and one key at a time from single-node dictionary reads
    n = 40
    torch.manual_seed(0)
    model = NAT(n, sizes=(1, 8, 4), seed=7, out_channels=16, self_dim=8,
                node_features=torch.randn(n, 3)).eval()
    _stream(model, n, 600, 20)
    g = torch.Generator().manual_seed(3)
    src, dst, neg = (torch.randint(0, n, (12,), generator=g) for _ in range(3))
    t = torch.full((12,), 700)
    with torch.no_grad():
        pos, neg_out = model.score(src, dst, t, torch.zeros(12, 0), neg)

        def entries(node: int) -> dict[int, tuple[int, torch.Tensor, int]]:
            out = {}
            for hop in range(3):
                key, _, _, rep = model.refreshed_dictionary(hop, torch.tensor([node]))
                for k, r in zip(key[0].tolist(), rep[0]):
                    if k >= 0:
                        out[(hop, k)] = r
            return out

        def logit(u: int, w: int) -> torch.Tensor:
            groups: dict[int, list] = {}
            for side, node in ((0, u), (1, w)):
                for (hop, k), r in entries(node).items():
                    c, s, code = groups.get(k, (0, torch.zeros(4), 0))
                    groups[k] = (c + 1, s + r, code | ((1 << hop) << (3 * side)))
            pooled = torch.zeros(3 + 4 + 16)
            for k, (c, s, code) in groups.items():
                pooled += torch.cat([model.node_features[k] * c, s, model.pos_emb.weight[code]])
            gvec = model.pool(pooled).view(model.heads, -1).mean(0) + model.pool_bias
            h = model.self_representation(torch.tensor([u, w]))
            z = torch.cat([gvec, h[0], h[1]])
            return model.dec2(torch.relu(model.dec1(z)))[0]

        want_pos = torch.stack([logit(int(a), int(b)) for a, b in zip(src, dst)])
        want_neg = torch.stack([logit(int(a), int(b)) for a, b in zip(src, neg)])
    torch.testing.assert_close(pos, want_pos, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(neg_out, want_neg, rtol=1e-5, atol=1e-5)


def test_unsorted_joint_codes_give_the_same_groups():
    g = torch.Generator().manual_seed(0)
    pair = torch.randint(0, 7, (300,), generator=g)  # in no particular order
    key = torch.randint(0, 25, (300,), generator=g)
    code = 1 << torch.randint(0, 6, (300,), generator=g)
    ref = joint_codes(pair, key, code, 25)
    got = joint_codes(pair, key, code, 25, sorted=False)

    def groups(out):
        g_pair, g_key, g_code, inverse = out
        table = {(int(a), int(b)): int(c) for a, b, c in zip(g_pair, g_key, g_code)}
        # each entry points at its own (pair, key) group
        assert all((int(g_pair[i]), int(g_key[i])) == (int(p), int(k))
                   for i, p, k in zip(inverse, pair, key))
        return table

    assert groups(got) == groups(ref)
    assert len(groups(got)) == got[0].numel()



def test_unsorted_joint_codes_sort_when_the_key_range_is_huge(monkeypatch):
    from graphkit.temporal import _nat_numba

    pair, key = torch.tensor([0, 0, 1]), torch.tensor([4, 4, 9])
    code = torch.tensor([1, 8, 2])
    calls = []
    real = _nat_numba.group_pairs
    monkeypatch.setattr(_nat_numba, "group_pairs", lambda *a: calls.append(a) or real(*a))
    small = joint_codes(pair, key, code, 10, sorted=False)
    assert len(calls) == 1  # a small key range takes the kernel
    big = joint_codes(pair, key, code, 10**7, sorted=False)  # the kernel would allocate 160 MB
    assert len(calls) == 1
    for a, b in zip(small, big):
        assert torch.equal(a, b)


@pytest.mark.parametrize("sorted", [True, False])
def test_joint_codes_refuse_keys_out_of_range(sorted):
    pair, code = torch.tensor([0, 0]), torch.tensor([1, 8])
    for bad in (-1, 5, 10**10):
        with pytest.raises(ValueError, match=r"keys must lie in \[0, 5\)"):
            joint_codes(pair, torch.tensor([0, bad]), code, 5, sorted=sorted)
    with pytest.raises(ValueError, match="pair ids must be non-negative"):
        joint_codes(torch.tensor([-1, 0]), torch.tensor([0, 1]), code, 5, sorted=sorted)
    empty = torch.zeros(0, dtype=torch.long)
    assert all(x.numel() == 0 for x in joint_codes(empty, empty, empty, 25, sorted=False))


def test_all_hops_side_by_side_equal_each_hop():
    n = 30
    torch.manual_seed(0)
    model = NAT(n, sizes=(1, 8, 4), seed=2, out_channels=16, self_dim=8)
    _stream(model, n, 400, 20)
    nodes = torch.tensor([0, 3, 3, 17, 29])
    key, eid, time, rep = model.refreshed_dictionaries(nodes)
    assert key.shape == (5, 13) and rep.shape == (5, 13, model.ngh_dim)
    assert model.slot_hop.tolist() == [0] + [1] * 8 + [2] * 4
    start = 0
    for hop, m in enumerate(model.sizes):
        want = model.refreshed_dictionary(hop, nodes)
        got = (x[:, start:start + m] for x in (key, eid, time, rep))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        start += m
