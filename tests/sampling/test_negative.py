import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphkit.sampling import (
    HistoricalNegativeSampler,
    InductiveNegativeSampler,
    negative_edges,
    uniform_negative_destinations,
)


def test_uniform_destinations():
    g = torch.Generator().manual_seed(0)
    d = uniform_negative_destinations(5000, 10, generator=g)
    assert d.shape == (5000,) and int(d.min()) == 0 and int(d.max()) == 9
    freq = torch.bincount(d, minlength=10).float() / 5000
    assert torch.allclose(freq, torch.full((10,), 0.1), atol=0.03)
    pool = torch.tensor([3, 7, 11])
    d = uniform_negative_destinations(100, pool, generator=g)
    assert bool(torch.isin(d, pool).all())
    with pytest.raises(ValueError, match="pool"):
        uniform_negative_destinations(3, torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        uniform_negative_destinations(3, 0)
    with pytest.raises(ValueError, match="num"):
        uniform_negative_destinations(-1, 5)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 12), e=st.integers(0, 80), frac=st.floats(0, 1),
       loops=st.booleans(), seed=st.integers(0, 1000))
def test_property_negative_edges_are_distinct_non_edges(n, e, frac, loops, seed):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    existing = set(map(tuple, ei.t().tolist()))
    available = n * n - (0 if loops else n) - len({p for p in existing if loops or p[0] != p[1]})
    num = int(frac * available)
    neg = negative_edges(ei, n, num, generator=g, allow_self_loops=loops)
    pairs = list(map(tuple, neg.t().tolist()))
    assert neg.shape == (2, num) and len(set(pairs)) == num
    assert not (set(pairs) & existing)
    assert loops or all(u != v for u, v in pairs)
    assert all(0 <= u < n and 0 <= v < n for u, v in pairs)


def test_negative_edges_large_sparse_and_too_many():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 5000, (2, 20000), generator=g)
    neg = negative_edges(ei, 5000, 3000, generator=g)
    keys = ei[0] * 5000 + ei[1]
    assert not bool(torch.isin(neg[0] * 5000 + neg[1], keys).any())
    full = torch.cartesian_prod(torch.arange(3), torch.arange(3)).t()
    with pytest.raises(ValueError, match="only 0"):
        negative_edges(full, 3, 1)


def stream():
    # (src, dst, t): training ends at t=3
    src = torch.tensor([0, 1, 0, 2, 3, 0, 4, 1])
    dst = torch.tensor([1, 2, 1, 3, 4, 4, 0, 2])
    t = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    return src, dst, t


def test_historical_pool_is_seen_edges_minus_batch():
    src, dst, t = stream()
    sampler = HistoricalNegativeSampler(src, dst, t, num_nodes=5,
                                        generator=torch.Generator().manual_seed(0))
    # batch at t=5..7: edges seen before t=5 are (0,1), (1,2), (2,3), (3,4); (1,2) is in batch
    ns, nd = sampler.sample(src[5:], dst[5:], start_time=5, size=3)
    assert set(zip(ns.tolist(), nd.tolist())) == {(0, 1), (2, 3), (3, 4)}
    ns, nd = sampler.sample(src[5:], dst[5:], start_time=5, size=2)
    assert set(zip(ns.tolist(), nd.tolist())) < {(0, 1), (2, 3), (3, 4)}
    # too few historical edges: all of them plus random non-batch pairs
    ns, nd = sampler.sample(src[5:], dst[5:], start_time=5, size=10)
    pairs = list(zip(ns.tolist(), nd.tolist()))
    assert len(pairs) == 10 and {(0, 1), (2, 3), (3, 4)} <= set(pairs)
    batch = set(zip(src[5:].tolist(), dst[5:].tolist()))
    assert not (set(pairs) & batch)


def test_inductive_pool_excludes_training_edges():
    src, dst, t = stream()
    sampler = InductiveNegativeSampler(src, dst, t, last_observed_time=3, num_nodes=5,
                                       generator=torch.Generator().manual_seed(0))
    # before t=7: edges first seen after training are (3,4) at 4, (0,4) at 5, (4,0) at 6
    ns, nd = sampler.sample(src[7:], dst[7:], start_time=7, size=3)
    assert set(zip(ns.tolist(), nd.tolist())) == {(3, 4), (0, 4), (4, 0)}
    # (0,4) is in this batch, so it is excluded; float times on an integer clock are exact
    ns, nd = sampler.sample(src[5:6], dst[5:6], start_time=6.5, size=2)
    assert set(zip(ns.tolist(), nd.tolist())) == {(3, 4), (4, 0)}
    # during training there are no inductive edges: everything is random
    ns, nd = sampler.sample(src[:2], dst[:2], start_time=2, size=4)
    assert ns.numel() == 4
    assert not (set(zip(ns.tolist(), nd.tolist())) & {(0, 1), (1, 2)})


def test_temporal_negative_bad_inputs():
    src, dst, t = stream()
    with pytest.raises(ValueError, match="not sorted"):
        HistoricalNegativeSampler(src, dst, t.flip(0))
    with pytest.raises(ValueError, match="equal length"):
        HistoricalNegativeSampler(src, dst[:3], t)
    with pytest.raises(ValueError, match="empty"):
        InductiveNegativeSampler(src[:0], dst[:0], t[:0], last_observed_time=0)
    with pytest.raises(ValueError, match="out of range"):
        HistoricalNegativeSampler(src, dst, t, num_nodes=3)
    # the batch's positives: out-of-range ids used to exclude other pairs' keys silently
    h = HistoricalNegativeSampler(src, dst, t)
    n = h._history.num_nodes
    with pytest.raises(ValueError, match=rf"\(batch_src, batch_dst\) holds node id {n}"):
        h.sample(torch.tensor([0]), torch.tensor([n]), start_time=2)
    with pytest.raises(ValueError, match="negative node id"):
        h.sample(torch.tensor([-1]), torch.tensor([0]), start_time=2)
    with pytest.raises(ValueError, match="batch_src has 2 events but batch_dst has 1"):
        h.sample(torch.tensor([0, 1]), torch.tensor([1]), start_time=2)
    with pytest.raises(ValueError, match="must hold integers"):
        h.sample(torch.tensor([0.0]), torch.tensor([1.0]), start_time=2)
    with pytest.raises(ValueError, match="size must be non-negative"):
        h.sample(torch.tensor([0]), torch.tensor([1]), start_time=2, size=-1)
    with pytest.raises(ValueError, match="start_time is NaN"):
        h.sample(torch.tensor([0]), torch.tensor([1]), start_time=float("nan"))
    with pytest.raises(ValueError, match="last_observed_time is NaN"):
        InductiveNegativeSampler(src, dst, t, last_observed_time=float("nan"))
    # an infinite start time is after every edge (it raised an OverflowError)
    ns, _ = h.sample(torch.tensor([0]), torch.tensor([1]), start_time=float("inf"), size=2)
    assert ns.numel() == 2


def test_uniform_and_static_negatives_bad_inputs():
    # a float or boolean pool used to be sampled as if it held node ids
    with pytest.raises(ValueError, match="pool must hold integer node ids"):
        uniform_negative_destinations(3, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="pool must hold integer node ids"):
        uniform_negative_destinations(3, torch.tensor([True, False]))
    with pytest.raises(ValueError, match="num must be a non-negative integer, got 2.7"):
        uniform_negative_destinations(2.7, 5)  # drew 2
    # a negative node count drew pairs with negative ids from an empty graph
    with pytest.raises(ValueError, match="num_nodes must be non-negative"):
        negative_edges(torch.empty(2, 0, dtype=torch.long), -3, 1)
    with pytest.raises(ValueError, match="must be integers, got 5 and 2.7"):
        negative_edges(torch.empty(2, 0, dtype=torch.long), 5, 2.7)  # drew 2


def test_top_up_counts_only_batch_edges_inside_the_pools():
    # the batch edge (0, 1) lies outside the pools {4} x {3}: the pair (4, 3) is still free
    # (the old count-based check said "every possible pair is a positive edge")
    src, dst, t = torch.tensor([4, 4]), torch.tensor([3, 3]), torch.tensor([0.0, 1.0])
    for sampler in (HistoricalNegativeSampler(src, dst, t, num_nodes=7),
                    InductiveNegativeSampler(src, dst, t, -1.0, num_nodes=7)):
        ns, nd = sampler.sample(torch.tensor([0]), torch.tensor([1]), start_time=5.0, size=2)
        assert ns.tolist() == [4, 4] and nd.tolist() == [3, 3]
        with pytest.raises(ValueError, match=r"cannot top up with 2 random negatives"):
            sampler.sample(torch.tensor([4]), torch.tensor([3]), start_time=5.0, size=2)


@settings(max_examples=40, deadline=None)
@given(e=st.integers(4, 60), n=st.integers(2, 8), cut=st.floats(0.1, 0.9),
       size=st.integers(1, 20), seed=st.integers(0, 1000))
def test_property_historical_and_inductive_pools(e, n, cut, size, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (e,), generator=g)
    dst = torch.randint(0, n, (e,), generator=g)
    t = torch.randint(0, 30, (e,), generator=g).sort().values
    last_train = int(t[int(cut * (e - 1))])
    start = int(t[-1]) - 3
    batch = t >= start
    bs, bd = src[batch], dst[batch]
    batch_edges = set(zip(bs.tolist(), bd.tolist()))
    seen = {(int(a), int(b)) for a, b, x in zip(src, dst, t) if int(x) < start}
    train = {(int(a), int(b)) for a, b, x in zip(src, dst, t) if int(x) <= last_train}
    pools = {
        "historical": seen - batch_edges,
        "inductive": seen - train - batch_edges,
    }
    samplers = {
        "historical": HistoricalNegativeSampler(src, dst, t, n, generator=g),
        "inductive": InductiveNegativeSampler(src, dst, t, last_train, n, generator=g),
    }
    possible = {(a, b) for a in set(src.tolist()) for b in set(dst.tolist())}
    for name, sampler in samplers.items():
        if len(pools[name]) < size and possible <= batch_edges:
            with pytest.raises(ValueError, match=r"every \(source, destination\) pair"):
                sampler.sample(bs, bd, start, size=size)
            continue
        ns, nd = sampler.sample(bs, bd, start, size=size)
        pairs = list(zip(ns.tolist(), nd.tolist()))
        pool = pools[name]
        assert len(pairs) == size and not (set(pairs) & batch_edges)
        if len(pool) >= size:  # drawn from the pool without replacement
            assert set(pairs) <= pool and len(set(pairs)) == size
        else:  # the whole pool, topped up at random
            assert pool <= set(pairs)
