import numpy as np
import pytest
import torch

from graphkit.temporal import _pres_numba  # numba is a required dependency
from graphkit.temporal.memory import TemporalMemory
from graphkit.temporal.pres import PRES, IncrementStatistics, PredictionCorrection


def _numpy_mixture(updates, num_nodes, dim, k):
    """Sequential reference: hard-assignment online mixture with Welford updates."""
    count = np.zeros((num_nodes, k))
    mean = np.zeros((num_nodes, k, dim))
    m2 = np.zeros((num_nodes, k, dim))
    for nodes, delta in updates:
        for v, x in zip(nodes, delta):
            empty = np.flatnonzero(count[v] == 0)
            if empty.size:
                j = empty[0]
            else:
                j = int(np.argmin(((mean[v] - x) ** 2).sum(-1)))
            count[v, j] += 1
            d = x - mean[v, j]
            mean[v, j] += d / count[v, j]
            m2[v, j] += d * (x - mean[v, j])
    return count, mean, m2


@pytest.mark.parametrize("k", [1, 3])
def test_increment_statistics_equal_numpy_reference(k):
    rng = np.random.default_rng(0)
    stats = IncrementStatistics(7, 4, components=k).double()
    updates = []
    for _ in range(40):
        nodes = rng.choice(7, size=rng.integers(1, 6), replace=False)
        delta = rng.normal(size=(nodes.size, 4)) + rng.integers(0, 3)
        updates.append((nodes, delta))
        stats.observe(torch.from_numpy(nodes), torch.from_numpy(delta))
    count, mean, m2 = _numpy_mixture(updates, 7, 4, k)
    np.testing.assert_allclose(stats.count.numpy(), count)
    np.testing.assert_allclose(stats.mean.numpy(), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.variance.numpy(), m2 / np.maximum(count, 1)[..., None],
                               rtol=1e-10, atol=1e-12)
    w = count / np.maximum(count.sum(-1, keepdims=True), 1)
    np.testing.assert_allclose(stats.expected(torch.arange(7)).numpy(),
                               (w[..., None] * mean).sum(1), rtol=1e-10, atol=1e-12)


def _memory_with_history():
    torch.manual_seed(0)
    mem = TemporalMemory(6, 2, memory_dim=4, time_dim=3)
    g = torch.Generator().manual_seed(1)
    for step in range(4):
        src = torch.randint(0, 6, (5,), generator=g)
        dst = torch.randint(0, 6, (5,), generator=g)
        mem.update_state(src, dst, torch.full((5,), step + 1), torch.randn(5, 2, generator=g))
    return mem


class _Toy(torch.nn.Module):
    """A minimal memory-based model: the logit is the sum of the two memories' dot product."""

    def __init__(self, memory):
        super().__init__()
        self.memory = memory

    def reset_state(self):
        self.memory.reset_state()

    def score(self, src, dst, t, msg, neg_dst):
        n_id = torch.unique(torch.cat([src, dst, neg_dst]))
        z, _ = self.memory(n_id)
        pos = (z[torch.searchsorted(n_id, src)] * z[torch.searchsorted(n_id, dst)]).sum(-1)
        neg = (z[torch.searchsorted(n_id, src)] * z[torch.searchsorted(n_id, neg_dst)]).sum(-1)
        return pos, neg

    def update_state(self, src, dst, t, msg):
        self.memory.update_state(src, dst, t, msg)


def test_node_mode_corrected_memory_equals_formula_exactly():
    mem = _memory_with_history()
    PRES(_Toy(mem), gamma=0.3, components=2, mode="node")
    corr = mem.corrector
    corr.stats.observe(torch.arange(6), torch.randn(6, 4))
    corr.stats.observe(torch.tensor([1, 4]), torch.randn(2, 4))
    n_id = torch.arange(6)
    s_prev, s_new, _, has = mem.compute(n_id)
    fused, _ = mem(n_id)
    mu = corr.stats.expected(n_id)
    expect = 0.3 * (s_prev + mu) + (1 - 0.3) * s_new
    assert has.any()
    assert torch.equal(fused[has], expect[has])
    assert torch.equal(fused[~has], s_new[~has])


@pytest.mark.parametrize("mode,increment", [("paper", "event"), ("paper", "update"),
                                            ("node", "event")])
@pytest.mark.parametrize("numba", [True, False])
def test_flush_feeds_true_increments_to_statistics(monkeypatch, mode, increment, numba):
    """``node`` and ``increment="update"`` record the increment of an update, ``paper``
    (``increment="event"``) that increment per event; the Numba and torch paths alike."""
    import graphkit.temporal.pres as pres

    monkeypatch.setattr(pres, "WITH_NUMBA", pres.WITH_NUMBA and numba)
    mem = _memory_with_history()
    PRES(_Toy(mem), mode=mode, increment=increment)
    before = mem.memory.clone()
    n_id = torch.arange(6)
    _, s_new, _, has = mem.compute(n_id)
    events = torch.bincount(mem.pend_node, minlength=6).float()
    mem.flush(n_id)
    stats = mem.corrector.stats
    assert torch.equal(stats.count[:, 0], has.double().to(stats.count.dtype))
    per = events.clamp(min=1).unsqueeze(-1) if increment == "event" and mode == "paper" \
        else 1.0
    torch.testing.assert_close(stats.mean[has, 0], ((s_new - before) / per)[has].detach())


def test_event_preceded_by_k_events_reads_k_expected_increments():
    mem = _memory_with_history()
    PRES(_Toy(mem), gamma=1.0)
    mu = torch.randn(4)
    for _ in range(3):  # a constant increment: the mean is mu exactly
        mem.corrector.stats.observe(torch.arange(6), mu.expand(6, 4).clone())
    n_id, step = torch.tensor([2, 2, 2, 5, 0]), torch.tensor([0, 1, 3, 2, 0])
    s, last = mem(n_id, step)
    nodes, inv = torch.unique(n_id, return_inverse=True)
    _, s_new, last_new, _ = mem.compute(nodes)
    assert torch.equal(s, s_new[inv] + step.unsqueeze(-1) * mu)
    assert torch.equal(last, last_new[inv])
    assert torch.equal(s[0], s_new[inv[0]])  # the node's first event reads the computed memory


def test_update_increment_reads_k_over_k_plus_one_of_the_mean_update():
    """``increment="update"``: a read preceded by ``k`` of its node's events in the batch is
    ``s + gamma * k / (k + 1) * mu`` with ``mu`` the mean increment of an update."""
    mem = _memory_with_history()
    PRES(_Toy(mem), gamma=0.5, increment="update")
    mu = torch.randn(4)
    for _ in range(3):
        mem.corrector.stats.observe(torch.arange(6), mu.expand(6, 4).clone())
    n_id, step = torch.tensor([2, 2, 2, 5, 0, 3]), torch.tensor([0, 1, 3, 2, 0, 0])
    s, _ = mem(n_id, step)
    nodes, inv = torch.unique(n_id, return_inverse=True)
    _, s_new, _, _ = mem.compute(nodes)
    k = step.unsqueeze(-1).float()
    torch.testing.assert_close(s, s_new[inv] + 0.5 * k / (k + 1) * mu)
    assert torch.equal(s[0], s_new[inv[0]])
    # the largest shift is less than one mean update, whatever the step count
    assert ((s - s_new[inv]).abs() < 0.5 * mu.abs() + 1e-6).all()


@pytest.mark.parametrize("increment", ["event", "update"])
def test_a_read_does_not_see_whether_its_event_is_the_true_one(increment):
    """The logit of a pair is the same as the batch's true event and as a negative: a read
    depends on the node's earlier events only (dividing by its events in the whole batch
    counted the scored event itself)."""
    from graphkit.temporal import JODIE

    torch.manual_seed(0)
    model = PRES(JODIE(6, 2, memory_dim=4, time_dim=3), increment=increment).eval()
    g = torch.Generator().manual_seed(1)
    for step in range(4):
        src, dst = torch.randint(0, 6, (5,), generator=g), torch.randint(0, 6, (5,), generator=g)
        model.update_state(src, dst, torch.full((5,), step + 1), torch.randn(5, 2, generator=g))
    for c in model.model.memory.corrector.stats.buffers():
        c.add_(torch.rand(c.shape, generator=g))  # a non-zero increment for every node
    t, msg = torch.full((2,), 9), torch.zeros(2, 2)
    with torch.no_grad():
        # event 1 is (1, 3): as the true event, node 3 has an event at step 1; as a
        # negative, (1, 3) is scored against the true event (1, 4)
        pos, _ = model.score(torch.tensor([0, 1]), torch.tensor([3, 3]), t, msg,
                             torch.tensor([2, 2]))
        _, neg = model.score(torch.tensor([0, 1]), torch.tensor([3, 4]), t, msg,
                             torch.tensor([2, 3]))
    torch.testing.assert_close(pos[1], neg[1])


@pytest.mark.parametrize("name", ["tgn", "jodie", "apan"])
def test_update_increment_trains_every_model(name):
    """The wrapper with ``increment="update"`` trains TGN, JODIE and APAN unchanged, and its
    reads differ from the default's."""
    from graphkit.data import load
    from graphkit.data.temporal import chronological_split
    from graphkit.temporal import APAN, JODIE, MemoryTGN, fit

    data = load("temporal-sbm", num_nodes=40, num_events=600, seed=2)
    split = chronological_split(data, seed=0)
    make = {"tgn": lambda: MemoryTGN(40, data.msg.size(-1), memory_dim=8, time_dim=4,
                                     embedding_dim=8, num_neighbors=3),
            "jodie": lambda: JODIE(40, data.msg.size(-1), memory_dim=8, time_dim=4),
            "apan": lambda: APAN(40, data.msg.size(-1), memory_dim=8, time_dim=4,
                                 mailbox_size=3)}[name]
    logits = []
    for increment in ("event", "update"):
        torch.manual_seed(0)
        model = PRES(make(), increment=increment)
        out = fit(model, data, split, epochs=1, batch_size=100, lr=1e-3, patience=None,
                  seed=1)
        assert torch.isfinite(out.test_pos).all() and 0.0 <= out.test.ap <= 1.0
        logits.append(out.test_pos)
    assert not torch.equal(*logits)


def test_per_event_fusion_equals_formula():
    mem = _memory_with_history()
    PRES(_Toy(mem), gamma=0.3, components=2)
    mem.corrector.stats.observe(torch.arange(6), torch.randn(6, 4))
    mem.corrector.stats.observe(torch.tensor([1, 4]), torch.randn(2, 4))
    n_id, step = torch.tensor([1, 4, 4, 3]), torch.tensor([2, 0, 5, 1])
    s, _ = mem(n_id, step)
    nodes, inv = torch.unique(n_id, return_inverse=True)
    _, s_new, _, _ = mem.compute(nodes)
    mu = mem.corrector.stats.expected(n_id)
    k = step.unsqueeze(-1).float()
    torch.testing.assert_close(s, 0.3 * (s_new[inv] + k * mu) + 0.7 * s_new[inv])
    with pytest.raises(ValueError, match="step"):
        mem(n_id, step[:2])


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_coherence_gradient_reaches_memory_updater(weight):
    model = PRES(_Toy(_memory_with_history()), coherence_weight=weight)
    model.train()
    src, dst = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    pos, neg = model.score(src, dst, torch.full((3,), 9), torch.zeros(3, 2), dst.flip(0))
    (0 * pos.sum() + 0 * neg.sum()).backward()  # only the coherence term carries gradient
    grad = model.model.memory.updater.weight_ih.grad
    assert grad is not None
    assert (grad.abs().sum() > 0) == (weight > 0)


@pytest.mark.parametrize("mode", ["paper", "node"])
def test_coherence_term_only_where_it_carries_gradient(mode):
    """Evaluation (no gradient) skips the coherence term; the scores do not depend on it."""
    model = PRES(_Toy(_memory_with_history()), mode=mode, coherence_weight=0.1)
    src, dst = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    args = (src, dst, torch.full((3,), 9), torch.zeros(3, 2), dst.flip(0))
    pos, neg = model.score(*args)
    assert model.corrector.last_coherence.requires_grad
    with torch.no_grad():
        pos_eval, neg_eval = model.score(*args)
    assert model.corrector.last_coherence is None
    assert torch.equal(pos_eval, pos.detach()) and torch.equal(neg_eval, neg.detach())


def test_repo_mode_has_no_coherence_gradient_and_blends():
    model = PRES(_Toy(_memory_with_history()), gamma=0.9, mode="repo", coherence_weight=0.1)
    n_id = torch.arange(6)
    s_prev, s_new, _, _ = model.model.memory.compute(n_id)
    fused, _ = model.model.memory(n_id)  # accumulator is zero: plain blend
    torch.testing.assert_close(fused, 0.9 * s_prev + 0.1 * s_new)
    assert not model.corrector.last_coherence.requires_grad


def test_bad_inputs():
    with pytest.raises(ValueError, match="TemporalMemory"):
        PRES(torch.nn.Linear(2, 2))
    mem = _memory_with_history()
    with pytest.raises(ValueError, match="mode"):
        PRES(_Toy(mem), mode="fast")
    with pytest.raises(ValueError, match="step"):
        mem(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="gamma"):
        PredictionCorrection(6, 4, gamma=1.5)
    with pytest.raises(ValueError, match="coherence_weight"):
        PRES(_Toy(mem), coherence_weight=-1)
    with pytest.raises(ValueError, match="coherence_weight must be non-negative, got nan"):
        PRES(_Toy(mem), coherence_weight=float("nan"))  # was accepted: a NaN gradient
    with pytest.raises(ValueError, match="increment"):
        PredictionCorrection(6, 4, increment="batch")
    with pytest.raises(ValueError, match="paper"):
        PredictionCorrection(6, 4, mode="node", increment="update")
    stats = IncrementStatistics(3, 2)
    with pytest.raises(ValueError, match="distinct"):
        stats.observe(torch.tensor([1, 1]), torch.zeros(2, 2))


def test_masked_coherence_equals_the_selected_rows():
    from graphkit.temporal.pres import coherence_loss

    a, b = torch.randn(5, 3), torch.randn(5, 3)
    mask = torch.tensor([True, False, True, True, False])
    torch.testing.assert_close(coherence_loss(a, b, mask), coherence_loss(a[mask], b[mask]))
    assert coherence_loss(a, b, torch.zeros(5, dtype=torch.bool)) == 0


def test_numba_read_steps_equal_earlier_events():
    """The Numba kernel behind a batch's per-read step counts gives earlier_events' integers
    (self-loops, repeated pairs, negatives that are also endpoints) and leaves its scratch
    zeroed."""
    nb = _pres_numba
    from graphkit.temporal.event_graph import earlier_events

    gen = torch.Generator().manual_seed(0)
    counter = np.zeros(12, dtype=np.int64)
    for b in (1, 5, 40):
        src, dst, neg = (torch.randint(0, 12, (b,), generator=gen) for _ in range(3))
        dst[::4] = src[::4]  # self-loops
        ends = torch.cat([src, dst, neg])
        expect = earlier_events(src, dst, ends, torch.arange(b).repeat(3))
        out = np.empty(3 * b, dtype=np.int64)
        assert nb.read_steps(src.numpy(), dst.numpy(), neg.numpy(), counter, out) == 0
        assert torch.equal(torch.from_numpy(out), expect)
        assert not counter.any()
    bad = torch.tensor([12])
    assert nb.read_steps(bad.numpy(), bad.numpy(), bad.numpy(), counter, np.empty(3, np.int64)) == 1


def test_numba_observe_equals_the_torch_path_bit_for_bit():
    """observe_update's Numba path (paper mode, one component, float32) leaves exactly the
    statistics of observe(nodes, s_new - s_prev, events)."""
    fast, ref = PredictionCorrection(9, 6), PredictionCorrection(9, 6)
    gen = torch.Generator().manual_seed(1)
    for _ in range(30):
        nodes = torch.randperm(9, generator=gen)[:int(torch.randint(1, 9, (1,), generator=gen))]
        s_prev = torch.randn(nodes.numel(), 6, generator=gen)
        s_new = s_prev + torch.randn(nodes.numel(), 6, generator=gen) / 3
        events = torch.randint(1, 50, (nodes.numel(),), generator=gen)
        fast.observe_update(nodes, s_prev, s_new, events)
        ref.observe(nodes, s_new - s_prev, events)
    for name in ("count", "mean", "m2"):
        assert torch.equal(getattr(fast.stats, name), getattr(ref.stats, name)), name
    assert fast.stats.count.sum() > 30


def test_pres_training_is_the_same_with_and_without_the_numba_kernels(monkeypatch):
    """A short TGN+PRES fit gives bit-identical test logits with the kernels (read steps,
    Welford update, shifted reads) and with the torch path. The coherence weight is 0 here:
    the closed-form coherence gradient differs between its two paths by float round-off
    (:func:`test_coherence_gradient_equals_autograd`), which a fit of this tiny model at lr
    1e-2 amplifies to visible differences after two epochs."""
    import graphkit.temporal.mdgnn as mdgnn
    import graphkit.temporal.pres as pres
    from graphkit.data import load
    from graphkit.data.temporal import chronological_split
    from graphkit.temporal import MemoryTGN, fit

    data = load("temporal-sbm", num_nodes=40, num_events=600, seed=2)
    split = chronological_split(data, seed=0)

    def run():
        torch.manual_seed(0)
        model = PRES(MemoryTGN(data.num_nodes, data.msg.size(-1), memory_dim=8, time_dim=4,
                               embedding_dim=8, num_neighbors=3), coherence_weight=0.0)
        out = fit(model, data, split, epochs=2, batch_size=100, lr=1e-2, patience=None, seed=1)
        return out.test_pos, out.test_neg

    fast = run()
    monkeypatch.setattr(mdgnn, "WITH_NUMBA", False)
    monkeypatch.setattr(pres, "WITH_NUMBA", False)
    slow = run()
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


@pytest.mark.parametrize("numba", [True, False])
def test_coherence_gradient_equals_autograd(monkeypatch, numba):
    """The closed-form gradient of the coherence term (Numba kernel and torch path) equals
    autograd's through coherence_loss up to float32 round-off, zero rows included."""
    import graphkit.temporal.pres as pres

    monkeypatch.setattr(pres, "WITH_NUMBA", numba)
    gen = torch.Generator().manual_seed(3)
    for n in (1, 4, 60):
        s_new = torch.randn(n, 17, generator=gen) * 3
        s_prev = s_new + torch.randn(n, 17, generator=gen)
        s_prev[0] = 0  # a node's first update starts from the zero memory
        x = s_new.clone().requires_grad_()
        (0.3 * pres.coherence_loss(x, s_prev)).backward()
        got = pres.coherence_gradient(s_new, s_prev, 0.3)
        torch.testing.assert_close(got, x.grad, rtol=1e-5, atol=1e-9)
        assert torch.equal(got[0], torch.zeros(17))
    assert pres.coherence_gradient(torch.zeros(0, 3), torch.zeros(0, 3)).shape == (0, 3)


@pytest.mark.parametrize("name", ["tgn", "jodie", "apan"])
def test_injected_coherence_gradient_equals_the_loss_term(name):
    """Training gradients of every parameter with PRES's injected coherence gradient equal
    those of ``BCE + beta * coherence_loss`` by autograd (to float32 round-off), and the
    logits do not depend on it."""
    import torch.nn.functional as F

    from graphkit.temporal import APAN, JODIE, MemoryTGN

    base = {"tgn": MemoryTGN, "jodie": JODIE, "apan": APAN}[name]
    torch.manual_seed(0)
    model = PRES(base(12, 2, memory_dim=8, time_dim=4), coherence_weight=0.5).train()
    gen = torch.Generator().manual_seed(4)
    for step in range(3):  # build up memories, statistics, neighbours and mailboxes
        src, dst = (torch.randint(0, 12, (30,), generator=gen) for _ in range(2))
        with torch.no_grad():
            model.update_state(src, dst, torch.full((30,), step + 1),
                               torch.randn(30, 2, generator=gen))
    src, dst, neg = (torch.randint(0, 12, (30,), generator=gen) for _ in range(3))
    args = (src, dst, torch.full((30,), 9), torch.zeros(30, 2), neg)

    def grads(extra):
        model.zero_grad()
        torch.manual_seed(1)  # the same attention dropout
        pos, negl = model.score(*args)
        loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + \
            F.binary_cross_entropy_with_logits(negl, torch.zeros_like(negl))
        (loss + extra()).backward()
        return pos.detach(), {k: p.grad.clone() for k, p in model.named_parameters()
                              if p.grad is not None}

    pos, injected = grads(lambda: 0)
    assert model.corrector.coherence_rows[0].size(0) > 0
    model.coherence_weight = 0.0
    pos_ref, reference = grads(lambda: 0.5 * model.corrector.last_coherence)
    assert torch.equal(pos, pos_ref)
    assert injected.keys() == reference.keys()
    for k in reference:
        torch.testing.assert_close(injected[k], reference[k], rtol=1e-5, atol=1e-7, msg=k)
    assert reference["model.memory.updater.weight_hh"].abs().sum() > 0


def test_coherence_rows_from_the_mask_equal_the_update():
    """Without the memory's Update the corrector takes the updated rows from ``has``."""
    mem = _memory_with_history()
    PRES(_Toy(mem))
    n_id = torch.arange(6)
    s_prev, s_new, _, has, update = mem._apply_pending(n_id)
    corr = mem.corrector
    for args in ((), (update,)):
        corr.correct(n_id, s_prev, s_new, has, *args)
        rows = corr.coherence_rows
        assert torch.equal(rows[0], s_new[has]) and torch.equal(rows[1], s_prev[has])


@pytest.mark.parametrize("fraction", [False, True])
@pytest.mark.parametrize("numba", [True, False])
def test_shifted_reads_equal_the_torch_expression_bit_for_bit(monkeypatch, numba, fraction):
    """shifted_reads (Numba pass, and its torch fallback) gives exactly
    ``z[inv] + step * shift[inv]`` and exactly its autograd gradients, for integer steps and
    for the float32 fractions ``k / (k + 1)`` of ``increment="update"``."""
    import graphkit.temporal.pres as pres

    monkeypatch.setattr(pres, "WITH_NUMBA", numba)
    gen = torch.Generator().manual_seed(5)
    for rows, reads, shift_grad in ((1, 1, True), (7, 40, True), (30, 500, False)):
        z = torch.randn(rows, 11, generator=gen).requires_grad_()
        shift = torch.randn(rows, 11, generator=gen).requires_grad_(shift_grad)
        inv = torch.randint(0, rows, (reads,), generator=gen)
        step = torch.randint(0, 300, (reads,), generator=gen)
        if fraction:
            step = step / (step + 1.0)
        grad = torch.randn(reads, 11, generator=gen)
        out = pres.shifted_reads(z, shift, inv, step)
        out.backward(grad)
        got = (out.detach(), z.grad, shift.grad)
        z.grad = shift.grad = None
        ref = z.index_select(0, inv) + step.to(z).unsqueeze(-1) * shift.index_select(0, inv)
        ref.backward(grad)
        assert torch.equal(got[0], ref.detach()) and torch.equal(got[1], z.grad)
        assert (got[2] is None) == (not shift_grad)
        if shift_grad:
            assert torch.equal(got[2], shift.grad)
    if numba:
        with pytest.raises(IndexError, match="rows"):
            pres.shifted_reads(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([2]),
                               torch.tensor([0]))


def test_deepcopy_after_a_training_step_and_in_eval_with_grad():
    """``best = copy.deepcopy(model)`` after a training step failed: the corrector kept the
    batch's coherence rows with their autograd graph (eval mode did not stop it either)."""
    import copy

    from graphkit.temporal import JODIE

    torch.manual_seed(0)
    model = PRES(JODIE(12, 3, memory_dim=8, time_dim=4)).train()
    src, dst, neg = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    for k in (0, 10):
        t, msg = torch.tensor([1, 2, 3]) + k, torch.randn(3, 3)
        pos, negl = model.score(src, dst, t, msg, neg)
        (pos.sum() - negl.sum()).backward()
        model.update_state(src, dst, t, msg)
    assert model.corrector.coherence_rows is not None  # the training read keeps them
    clone = copy.deepcopy(model)
    assert clone.corrector.coherence_rows is None
    model.eval()
    model.score(src, dst, torch.tensor([30, 31, 32]), torch.randn(3, 3), neg)  # grad enabled
    assert model.corrector.coherence_rows is None  # evaluation keeps no rows
    copy.deepcopy(model)
    clone.eval()
    with torch.no_grad():
        args = (src, dst, torch.tensor([30, 31, 32]), torch.zeros(3, 3), neg)
        assert all(torch.equal(a, b) for a, b in zip(clone.score(*args), model.score(*args)))
