import pytest
import torch

from graphkit.temporal import NCache
from graphkit.temporal.ncache import last_occurrence
from graphkit.temporal.ncache_reference import NCacheReference

SIZES = (1, 8, 4)


def _entries(cache: NCache, hop: int) -> dict:
    key, eid, time, rep = cache.table(hop)
    m = cache.sizes[hop]
    out = {}
    for i in (key >= 0).nonzero().view(-1).tolist():
        out[(i // m, i % m)] = (int(key[i]), int(eid[i]), float(time[i]),
                                tuple(float(v) for v in rep[i].tolist()))
    return out


def _stream(num_nodes: int, num_events: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_events,), generator=g)
    dst = torch.randint(0, num_nodes, (num_events,), generator=g)
    t = torch.arange(num_events, dtype=torch.float64)
    return src, dst, t


def _hop2_candidates(cache_read, u: int, v: int):
    """Copy u's hop-1 entries into v's hop-2 dictionary (NAT's 2-hop rule), as candidates."""
    key, eid, time, rep = cache_read(u)
    return (torch.full_like(key, v), key, eid, time, rep)


def _ref_read(ref: NCacheReference, u: int, rep_dim: int):
    m = ref.sizes[1]
    key = torch.full((m,), -1, dtype=torch.long)
    eid = torch.full((m,), -1, dtype=torch.long)
    time = torch.zeros(m, dtype=torch.float64)
    rep = torch.zeros(m, rep_dim)
    for j, (k, e, tt, r) in ref.slots[1].get(u, {}).items():
        key[j], eid[j], time[j], rep[j] = k, e, tt, torch.tensor(r)
    return key, eid, time, rep


def test_batch_size_one_equals_reference_over_10k_events():
    n, rep_dim = 1000, 2
    cache = NCache(n, SIZES, rep_dim=rep_dim, replace_prob=0.7, seed=37)
    ref = NCacheReference(n, SIZES, replace_prob=0.7, seed=37)
    src, dst, t = _stream(n, 10_000, 0)
    reps = torch.randn(10_000, rep_dim)
    for i in range(src.numel()):
        u, v, e = int(src[i]), int(dst[i]), i
        for hop, (owner, key) in ((0, (u, u)), (0, (v, v)), (1, (u, v)), (1, (v, u))):
            args = (torch.tensor([owner]), torch.tensor([key]), torch.tensor([e]), t[i:i + 1],
                    reps[i:i + 1])
            cache.write(hop, *args)
            ref.write(hop, *args)
        if i % 10 == 0:  # hop-2 copies, one candidate per write
            mine = _hop2_candidates(lambda w: [x[0] for x in cache.read(1, torch.tensor([w]))],
                                    u, v)
            theirs = _hop2_candidates(lambda w: _ref_read(ref, w, rep_dim), u, v)
            for j in range(SIZES[1]):
                cache.write(2, *(x[j:j + 1] for x in mine))
                ref.write(2, *(x[j:j + 1] for x in theirs))
    for hop in range(3):
        assert _entries(cache, hop) == ref.entries(hop)
    assert len(ref.entries(1)) > 1000  # the stream really filled the cache
    assert len(ref.entries(2)) > 100


def test_batches_without_slot_conflicts_equal_reference():
    n, rep_dim = 300, 3
    cache = NCache(n, SIZES, rep_dim=rep_dim, replace_prob=0.5, seed=5)
    ref = NCacheReference(n, SIZES, replace_prob=0.5, seed=5)
    g = torch.Generator().manual_seed(1)
    written = 0
    for step in range(200):
        owner = torch.randint(0, n, (64,), generator=g)
        key = torch.randint(-1, n, (64,), generator=g)  # includes empty keys (-1)
        slot = owner * SIZES[1] + cache.slot(1, key.clamp(min=0))
        _, inverse, counts = torch.unique(slot, return_inverse=True, return_counts=True)
        keep = counts[inverse] == 1
        owner, key = owner[keep], key[keep]
        eid = torch.arange(key.numel()) + 1000 * step
        time = eid.double()
        rep = torch.randn(key.numel(), rep_dim, generator=g)
        cache.write(1, owner, key, eid, time, rep)
        ref.write(1, owner, key, eid, time, rep)
        written += key.numel()
    assert written > 5000
    assert _entries(cache, 1) == ref.entries(1)


def test_conflicts_last_candidate_wins_and_no_duplicate_keys():
    cache = NCache(10, (1, 4), rep_dim=1, replace_prob=1.0, seed=3)
    # keys 1 and 5 share a slot when (x*s + x^2*(s+1)) % 4 agrees; find two such keys
    keys = torch.arange(1, 10)
    slot = cache.slot(1, keys)
    a, b = [int(k) for k in keys[slot == slot[0]][:2]]
    owner = torch.tensor([2, 2, 2])
    cache.write(1, owner, torch.tensor([a, b, a]), torch.tensor([0, 1, 2]),
                torch.zeros(3), torch.tensor([[1.0], [2.0], [3.0]]))
    key, eid, _, rep = cache.read(1, torch.tensor([2]))
    assert key[0].tolist().count(a) == 1 and b not in key[0].tolist()
    assert eid[0][key[0] == a].item() == 2 and rep[0][key[0] == a].item() == 3.0
    # random stream: no owner ever holds a key twice
    g = torch.Generator().manual_seed(0)
    big = NCache(50, (1, 8, 4), rep_dim=1, seed=11)
    for _ in range(50):
        o = torch.randint(0, 50, (100,), generator=g)
        k = torch.randint(0, 50, (100,), generator=g)
        for hop in (1, 2):
            big.write(hop, o, k, torch.zeros(100, dtype=torch.long), torch.ones(100),
                      torch.zeros(100, 1))
    for hop in (1, 2):
        key = big.table(hop)[0].view(50, -1)
        for row in key.tolist():
            held = [x for x in row if x >= 0]
            assert len(held) == len(set(held))


def test_replace_prob_zero_keeps_first_key():
    cache = NCache(4, (1, 1), rep_dim=1, replace_prob=0.0)
    for k in (1, 2, 3):
        cache.write(1, torch.tensor([0]), torch.tensor([k]), torch.tensor([k]),
                    torch.tensor([float(k)]), torch.zeros(1, 1))
    assert cache.read(1, torch.tensor([0]))[0].tolist() == [[1]]
    cache.write(1, torch.tensor([0]), torch.tensor([1]), torch.tensor([9]),
                torch.tensor([9.0]), torch.ones(1, 1))  # same key: always refreshed
    assert cache.read(1, torch.tensor([0]))[1].tolist() == [[9]]


def test_memory_equals_layout_formula():
    for sizes, d in (((1, 32, 16), 4), ((1, 8), 2), ((0, 0, 0), 4)):
        cache = NCache(123, sizes, rep_dim=d)
        assert cache.memory_bytes() == NCache.layout_bytes(123, sizes, d)
        assert cache.memory_bytes() == 123 * sum(sizes) * (24 + 4 * d)


def test_state_dict_roundtrip_keeps_seed_and_draws():
    a = NCache(20, (1, 4, 2), rep_dim=2, replace_prob=0.5, seed=42)
    g = torch.Generator().manual_seed(0)

    def step(c: NCache) -> None:
        o = torch.randint(0, 20, (30,), generator=g)
        k = torch.randint(0, 20, (30,), generator=g)
        c.write(1, o, k, torch.arange(30), torch.ones(30), torch.ones(30, 2))

    step(a)
    b = NCache(20, (1, 4, 2), rep_dim=2, replace_prob=0.5, seed=0)
    b.load_state_dict(a.state_dict())
    assert b.seed == 42 and b.hash_seed == a.hash_seed == 85
    state = g.get_state()
    step(a)
    g.set_state(state)
    step(b)
    for x, y in zip(a.table(1), b.table(1)):
        assert torch.equal(x, y)


def test_the_hash_mapping_travels_with_the_state():
    official = NCache(20, (1, 4, 2), seed=42, official_hash=True)
    fresh = NCache(20, (1, 4, 2), seed=0)
    fresh.load_state_dict(official.state_dict())
    assert fresh.official_hash and fresh.hash_seed == official.hash_seed == 42
    state = NCache(20, (1, 4, 2), seed=42).state_dict()
    del state["_extra_state"]["official_hash"]  # saved before the option existed
    fresh.load_state_dict(state)
    assert fresh.official_hash and fresh.hash_seed == 42


@pytest.mark.parametrize("seed", [0, 1, 2, 37, 98])
def test_every_seed_reaches_every_slot(seed):
    # the official s = seed % 100 is even for half the seeds, and an even s reaches only
    # the squares' residues: 7 of 32 slots, 4 of 16
    keys = torch.arange(1000)
    for m in (32, 16):
        cache = NCache(3, (1, m), seed=seed)
        assert cache.slot(1, keys).unique().numel() == m
        official = NCache(3, (1, m), seed=seed, official_hash=True)
        assert official.hash_seed == seed % 100
        reached = official.slot(1, keys).unique().numel()
        assert reached == (m if seed % 2 else {32: 7, 16: 4}[m])


def test_last_occurrence():
    idx = torch.tensor([3, 1, 3, 2, 1])
    assert last_occurrence(idx).tolist() == [2, 3, 4]
    assert last_occurrence(torch.empty(0, dtype=torch.long)).numel() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_nodes"):
        NCache(0)
    with pytest.raises(ValueError, match="sizes"):
        NCache(5, (1, -2))
    with pytest.raises(ValueError, match="replace_prob"):
        NCache(5, replace_prob=1.5)
    cache = NCache(5, (1, 2), rep_dim=1)
    with pytest.raises(ValueError, match="hop"):
        cache.read(2, torch.tensor([0]))
    with pytest.raises(ValueError, match="owner ids"):
        cache.write(1, torch.tensor([7]), torch.tensor([1]), torch.tensor([0]),
                    torch.zeros(1), torch.zeros(1, 1))
    with pytest.raises(ValueError, match="rep must have shape"):
        cache.write(1, torch.tensor([1]), torch.tensor([1]), torch.tensor([0]),
                    torch.zeros(1), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="key 9 out of range"):
        cache.write(1, torch.tensor([1]), torch.tensor([9]), torch.tensor([0]),
                    torch.zeros(1), torch.zeros(1, 1))
    # a float key was truncated to a node id (1.5 -> 1)
    with pytest.raises(ValueError, match="key must hold integer node ids"):
        cache.write(1, torch.tensor([1]), torch.tensor([1.5]), torch.tensor([0]),
                    torch.zeros(1), torch.zeros(1, 1))


def test_cpu_kernel_equals_the_tensor_rule(monkeypatch):
    # the Numba pass on CPU tables and the tensor operations used on other devices give the
    # same tables and the same `stored` flags, on batches full of slot conflicts and empty keys
    from graphkit.temporal import _nat_numba

    def run() -> tuple[NCache, list[torch.Tensor]]:
        g = torch.Generator().manual_seed(4)
        cache = NCache(30, SIZES, rep_dim=2, replace_prob=0.6, seed=9)
        stored = []
        for _ in range(40):
            o = torch.randint(0, 30, (64,), generator=g)
            k = torch.randint(-3, 30, (64,), generator=g)  # some empty (negative) keys
            e = torch.randint(0, 1000, (64,), generator=g)
            for hop in range(3):
                rep = torch.randn(64, 2, generator=g)
                stored.append(cache.write(hop, o, k, e, e.double() / 7, rep))
        return cache, stored

    fast, fast_stored = run()
    reference = NCache(1, SIZES, rep_dim=2, replace_prob=0.6)

    def tensor_rule(t_key, t_eid, t_time, t_rep, slot, key, eid, time, rep, draw, prob, stored):
        tensors = (torch.from_numpy(x) for x in (t_key, t_eid, t_time, t_rep, slot, key, eid,
                                                  time, rep, draw))
        stored[:] = reference._write_tensors(*tensors).numpy()

    monkeypatch.setattr(_nat_numba, "apply_writes", tensor_rule)
    slow, slow_stored = run()
    assert all(torch.equal(a, b) for a, b in zip(fast_stored, slow_stored))
    assert sum(int(s.sum()) for s in fast_stored) > 0
    for x, y in zip(fast.buffers(), slow.buffers()):
        assert torch.equal(x, y)


def test_candidates_read_from_the_tables_themselves(monkeypatch):
    # swapping two owners' hop-1 slots in one batch, from views of the tables: the CPU pass
    # must read every candidate before it writes, as the tensor rule does
    from graphkit.temporal import _nat_numba

    def swap() -> NCache:
        cache = NCache(4, (1, 4), rep_dim=1, replace_prob=1.0, seed=1)
        for owner, base in ((0, 1.0), (1, 11.0)):
            keys = torch.tensor([0, 1])
            cache.write(1, torch.full((2,), owner), keys, keys, torch.full((2,), base * 10),
                        torch.tensor([[base], [base + 1]]))
        k, e, t, r = cache.table(1)
        cache.write(1, torch.tensor([1] * 4 + [0] * 4), k[0:8], e[0:8], t[0:8], r[0:8])
        return cache

    fast = swap()
    reference = NCache(1, (1, 4), rep_dim=1)

    def tensor_rule(t_key, t_eid, t_time, t_rep, slot, key, eid, time, rep, draw, prob, stored):
        tensors = (torch.from_numpy(x) for x in (t_key, t_eid, t_time, t_rep, slot, key, eid,
                                                  time, rep, draw))
        stored[:] = reference._write_tensors(*tensors).numpy()

    monkeypatch.setattr(_nat_numba, "apply_writes", tensor_rule)
    slow = swap()
    for x, y in zip(fast.buffers(), slow.buffers()):
        assert torch.equal(x, y)
    rep = fast.read(1, torch.tensor([0, 1]))[3].view(2, 4)
    assert sorted(rep[0][rep[0] != 0].tolist()) == [11.0, 12.0]  # owner 0 now holds 1's values


def test_write_keeps_the_tables_out_of_autograd():
    cache = NCache(4, (1, 4), rep_dim=2)
    time = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    rep = torch.ones(2, 2, requires_grad=True)
    stored = cache.write(1, torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([0, 1]),
                         time, rep)
    assert stored.all()
    assert not any(b.requires_grad for b in cache.buffers())
