import pytest
import torch

from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.temporal import APAN, JODIE, PRES, MemoryTGN, fit
from graphkit.temporal.mdgnn import _MemoryModel

MODELS = {
    "tgn": lambda n, d: MemoryTGN(n, d, memory_dim=8, time_dim=4, embedding_dim=8,
                                  num_neighbors=3),
    "jodie": lambda n, d: JODIE(n, d, memory_dim=8, time_dim=4),
    "apan": lambda n, d: APAN(n, d, memory_dim=8, time_dim=4, mailbox_size=3),
}


@pytest.fixture(scope="module")
def stream():
    data = load("temporal-sbm", num_nodes=40, num_events=600, seed=2)
    return data, chronological_split(data, seed=0)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("pres", [False, True])
def test_fit_and_state_restore(stream, name, pres):
    data, split = stream
    torch.manual_seed(0)
    model = MODELS[name](data.num_nodes, data.msg.size(-1))
    if pres:
        model = PRES(model, coherence_weight=0.1)
    out = fit(model, data, split, epochs=1, batch_size=100, lr=1e-3, patience=None, seed=1)
    assert 0.0 <= out.test.ap <= 1.0 and torch.isfinite(out.test_pos).all()
    # the state after the stream round-trips through state_dict
    state = model.state_dict()
    model.reset_state()
    model.load_state_dict(state)
    for k, v in model.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, state[k]), k


def test_apan_mailbox_keeps_latest_mails():
    model = APAN(4, 1, memory_dim=4, time_dim=2, mailbox_size=2)
    src, dst = torch.tensor([0, 0, 0]), torch.tensor([1, 2, 3])
    t, msg = torch.tensor([1, 2, 3]), torch.tensor([[1.0], [2.0], [3.0]])
    model.update_state(src, dst, t, msg)
    assert sorted(model.mail_t[0].tolist()) == [2, 3]
    assert sorted(model.mail[0, :, -1].tolist()) == [2.0, 3.0]
    assert model.mail_count.tolist() == [3, 1, 1, 1]
    with pytest.raises(ValueError, match="mailbox_size"):
        APAN(4, 1, mailbox_size=0)
    with pytest.raises(ValueError, match="columns"):
        model.update_state(src, dst, t, torch.ones(3, 2))


def test_apan_mailbox_keeps_the_latest_mails_of_a_node_that_is_source_and_destination():
    # node 0 receives mail as the destination at t=10, then as the source at t=20: the
    # mailbox of one keeps t=20; with two, a later batch's mail evicts t=10, not t=20
    model = APAN(3, 1, memory_dim=4, time_dim=2, mailbox_size=1)
    model.update_state(torch.tensor([1, 0]), torch.tensor([0, 2]), torch.tensor([10, 20]),
                       torch.tensor([[1.0], [2.0]]))
    assert model.mail_t[0].tolist() == [20]
    model = APAN(3, 1, memory_dim=4, time_dim=2, mailbox_size=2)
    model.update_state(torch.tensor([1, 0]), torch.tensor([0, 2]), torch.tensor([10, 20]),
                       torch.tensor([[1.0], [2.0]]))
    model.update_state(torch.tensor([0]), torch.tensor([1]), torch.tensor([30]),
                       torch.tensor([[3.0]]))
    assert sorted(model.mail_t[0].tolist()) == [20, 30]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("pres", [False, True])
def test_double_moves_the_stream_state(name, pres):
    # the state is no buffer; .double() (or .to(device)) must still carry it along
    torch.manual_seed(0)
    model = MODELS[name](6, 2)
    if pres:
        model = PRES(model)
    src, dst, t = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    model.update_state(src, dst, t, torch.randn(3, 2))
    model.double()
    model.update_state(dst, src, t + 3, torch.randn(3, 2, dtype=torch.float64))
    pos, neg = model.score(src, dst, t + 6, torch.zeros(3, 2, dtype=torch.float64), dst.flip(0))
    assert pos.dtype == neg.dtype == torch.float64 and torch.isfinite(pos).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int32_ids_and_timestamps_score_like_int64(name):
    """APAN's mailbox refused int32 timestamps ("Index put requires the source and
    destination dtypes match"), and the memory's flush int32 node ids from the second batch
    on (index_copy_ takes int64 rows only); both are cast to int64."""
    torch.manual_seed(0)
    model = MODELS[name](6, 2).eval()
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(6, (4,), generator=g), torch.randint(6, (4,), generator=g),
                torch.arange(4) + 5 * b, torch.randn(4, 2, generator=g)) for b in range(3)]
    scores = []
    for dtype in (torch.int64, torch.int32):
        model.reset_state()
        with torch.no_grad():
            for src, dst, t, msg in batches:
                src, dst, t = src.to(dtype), dst.to(dtype), t.to(dtype)
                out = model.score(src, dst, t, msg, dst.flip(0))
                model.update_state(src, dst, t, msg)
        scores.append(torch.cat(out))
    assert torch.equal(scores[0], scores[1])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_nan_event_features_are_refused_before_any_state_is_written(name):
    model = MODELS[name](6, 2)
    msg = torch.randn(3, 2)
    msg[1, 0] = float("nan")
    before = {k: v.clone() for k, v in model.memory.get_extra_state().items()}
    with pytest.raises(ValueError, match=r"msg holds NaN or infinite values \(first in event 1"):
        model.update_state(torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]),
                           torch.tensor([1, 2, 3]), msg)
    for k, v in model.memory.get_extra_state().items():
        assert torch.equal(v, before[k]), k


PER_EVENT = {**MODELS, "tgn-attention": lambda n, d: MemoryTGN(
    n, d, memory_dim=8, time_dim=4, embedding_dim=8, num_neighbors=3, event_attention=True),
    "apan-attention": lambda n, d: APAN(n, d, memory_dim=8, time_dim=4, mailbox_size=3,
                                        event_attention=True)}


@pytest.mark.parametrize("name", sorted(PER_EVENT))
def test_per_event_pres_with_gamma_zero_scores_like_the_plain_model(stream, name):
    """The per-event path (one embedding per node and intra-batch step) changes nothing but
    the memory it reads: with gamma 0 it gives the plain model's logits."""
    data, _ = stream
    torch.manual_seed(0)
    plain = PER_EVENT[name](data.num_nodes, data.msg.size(-1)).eval()
    wrapped = PRES(PER_EVENT[name](data.num_nodes, data.msg.size(-1)), gamma=0.0).eval()
    wrapped.model.load_state_dict(plain.state_dict(), strict=False)
    for model in (plain, wrapped):
        model.update_state(data.src[:200], data.dst[:200], data.t[:200], data.msg[:200])
    b = slice(200, 300)
    neg = data.dst[b].roll(1)
    with torch.no_grad():
        expect = plain.score(data.src[b], data.dst[b], data.t[b], data.msg[b], neg)
        got = wrapped.score(data.src[b], data.dst[b], data.t[b], data.msg[b], neg)
    for e, g in zip(expect, got):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)


def test_self_term_shift_equals_exact_attention_for_a_node_without_neighbours():
    """With no earlier events the attention is empty, so both per-event embeddings agree."""
    torch.manual_seed(0)
    exact = MemoryTGN(5, 2, memory_dim=4, time_dim=3, embedding_dim=4, num_neighbors=2,
                      event_attention=True)
    shifted = MemoryTGN(5, 2, memory_dim=4, time_dim=3, embedding_dim=4, num_neighbors=2)
    shifted.load_state_dict(exact.state_dict())
    for model in (exact, shifted):
        PRES(model, gamma=1.0).eval()
        model.memory.corrector.stats.observe(torch.arange(5), torch.randn(
            5, 4, generator=torch.Generator().manual_seed(3)))
    ends, step = torch.tensor([0, 0, 3, 3]), torch.tensor([0, 2, 1, 0])
    t = torch.tensor(5)
    torch.testing.assert_close(shifted.embed_events(ends, step, t),
                               exact.embed_events(ends, step, t))


def test_linear_jodie_reads_equal_one_embedding_per_pair():
    """JODIE's fast per-read embedding equals embedding every (node, step) pair."""
    torch.manual_seed(0)
    model = PRES(JODIE(5, 2, memory_dim=4, time_dim=3), gamma=0.7).model
    model.update_state(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([1, 2]),
                       torch.randn(2, 2))
    model.memory.corrector.stats.observe(torch.arange(5), torch.randn(5, 4))
    ends, step = torch.tensor([0, 2, 0, 4, 2]), torch.tensor([0, 0, 3, 1, 2])
    t = torch.tensor(7)
    pairs = _MemoryModel.embed_events(model, ends, step, t)
    torch.testing.assert_close(model.embed_events(ends, step, t), pairs)


def test_apan_residual_shift_equals_pair_embedding_without_mail():
    """Without mail the attention is zero, so shifting the residual is the exact read."""
    torch.manual_seed(0)
    model = PRES(APAN(5, 2, memory_dim=4, time_dim=2, mailbox_size=2), gamma=0.5).model
    model.memory.corrector.stats.observe(torch.arange(5), torch.randn(5, 4))
    ends, step = torch.tensor([1, 3, 1, 1]), torch.tensor([0, 0, 2, 4])
    t = torch.tensor(3)
    torch.testing.assert_close(model.embed_events(ends, step, t),
                               _MemoryModel.embed_events(model, ends, step, t))


def test_apan_event_attention_reads_attend_with_the_shifted_memory():
    """Per-read mailbox attention: a read after k events of its node is
    LN(s_k + MHA(s_k, mailbox)) with s_k = s + k * gamma * mu, the mail of earlier batches."""
    torch.manual_seed(0)
    model = PRES(APAN(6, 2, memory_dim=4, time_dim=2, mailbox_size=2, event_attention=True),
                 gamma=0.5).model.eval()
    model.update_state(torch.tensor([0, 1, 0]), torch.tensor([2, 3, 4]),
                       torch.tensor([1, 2, 3]), torch.randn(3, 2))
    model.memory.corrector.stats.observe(torch.arange(6), torch.randn(6, 4))
    ends, step = torch.tensor([0, 2, 0, 5, 2, 0]), torch.tensor([0, 0, 3, 1, 2, 3])
    t = torch.tensor(7)
    with torch.no_grad():
        got = model.embed_events(ends, step, t)
        nodes, inv = torch.unique(ends, return_inverse=True)
        s = model.memory(nodes)[0].index_select(0, inv)  # pending messages applied
        s_k = s + 0.5 * step.unsqueeze(-1) * model.memory.corrector.stats.expected(ends)
        expect = model.norm(s_k + model._mail_attention(s_k, ends, t.expand(ends.numel())))
    assert bool(model.mail_count[0] > 0) and not torch.allclose(got[0], got[2])
    torch.testing.assert_close(got, expect)
    torch.testing.assert_close(got[2], got[5])  # the same (node, step) read twice


@pytest.mark.parametrize("name", sorted(MODELS))
def test_plain_scores_are_the_embeddings_of_the_reads(stream, name):
    """Without PRES a batch is scored from one embedding per distinct read, exactly: JODIE and
    APAN embed a read at its own event's time, TGN every read after the batch's last event."""
    data, _ = stream
    torch.manual_seed(0)
    model = MODELS[name](data.num_nodes, data.msg.size(-1)).eval()
    model.update_state(data.src[:200], data.dst[:200], data.t[:200], data.msg[:200])
    b = slice(200, 300)
    src, dst, t, neg = data.src[b], data.dst[b], data.t[b], data.dst[b].roll(1)
    with torch.no_grad():
        pos, negs = model.score(src, dst, t, data.msg[b], neg)
        if model.reads_at_event_time:
            z_src, z_dst, z_neg = (model.embed(v, t) for v in (src, dst, neg))
        else:
            n_id = torch.unique(torch.cat([src, dst, neg]))
            z = model.embed(n_id, t.max().expand(n_id.numel()) + 1)
            z_src, z_dst, z_neg = (z[torch.searchsorted(n_id, v)] for v in (src, dst, neg))
        assert torch.equal(pos, model.link_pred(z_src, z_dst))
        assert torch.equal(negs, model.link_pred(z_src, z_neg))


@pytest.mark.parametrize("pres", [False, True])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_read_does_not_see_the_time_of_a_later_event(name, pres):
    # JODIE and APAN read every event at the batch's last time + 1: event 0's ranking of its
    # positive against its negative flipped with the time of event 1
    torch.manual_seed(0)
    model = MODELS[name](4, 0)
    model = (PRES(model) if pres else model).eval()
    none = torch.zeros(2, 0)
    model.update_state(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2]), none)
    src, dst, neg = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([3, 0])
    with torch.no_grad():
        early = model.score(src, dst, torch.tensor([10, 11]), none, neg)
        late = model.score(src, dst, torch.tensor([10, 100_000]), none, neg)
    assert torch.equal(early[0][0], late[0][0]) and torch.equal(early[1][0], late[1][0])


def test_bad_constructor_arguments():
    # heads not dividing memory_dim failed in torch's attention with a bare AssertionError
    with pytest.raises(ValueError, match="heads must be positive and divide memory_dim=8"):
        APAN(5, 2, memory_dim=8, heads=3)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_empty_batch_and_time_order(name):
    model = MODELS[name](4, 2)
    src, dst, msg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.zeros(2, 2)
    # an empty batch scores nothing (t.max() of no events raised a RuntimeError)
    pos, neg = model.score(src[:0], dst[:0], torch.zeros(0, dtype=torch.long), msg[:0], src[:0])
    assert pos.shape == neg.shape == (0,)
    # JODIE and APAN wrote unsorted, negative or earlier-than-held events into the memory
    with pytest.raises(ValueError, match="not sorted"):
        model.update_state(src, dst, torch.tensor([5, 3]), msg)
    with pytest.raises(ValueError, match="negative timestamp"):
        model.update_state(src, dst, torch.tensor([-1, 3]), msg)
    model.update_state(src, dst, torch.tensor([5, 6]), msg)
    before = {k: v.clone() for k, v in model.memory.get_extra_state().items()}
    with pytest.raises(ValueError, match=r"t\[0\] = 2 is earlier than the last event held \(6\)"):
        model.update_state(src, dst, torch.tensor([2, 7]), msg)
    for k, v in model.memory.get_extra_state().items():
        assert torch.equal(v, before[k]), k
    model.update_state(src, dst, torch.tensor([6, 7]), msg)  # the last time again is fine
