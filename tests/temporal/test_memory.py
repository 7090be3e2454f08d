import pytest
import torch

from graphkit.temporal.memory import TemporalMemory, last_per_group


def _mem(**kw):
    torch.manual_seed(0)
    return TemporalMemory(5, 3, memory_dim=4, time_dim=2, **kw)


def _feed(mem):
    src, dst = torch.tensor([0, 0]), torch.tensor([1, 2])
    t, msg = torch.tensor([1, 2]), torch.arange(6.0).view(2, 3)
    mem.update_state(src, dst, t, msg)
    return src, dst, t, msg


def test_last_per_group_takes_latest_with_later_tie():
    groups, idx = last_per_group(torch.tensor([1, 0, 1, 1, 0]), torch.tensor([5, 3, 7, 7, 1]))
    assert groups.tolist() == [0, 1] and idx.tolist() == [1, 3]


@pytest.mark.parametrize("aggregator", ["last", "mean"])
def test_pending_messages_match_the_formula(aggregator):
    mem = _mem(aggregator=aggregator)
    _, _, t, msg = _feed(mem)
    n_id = torch.tensor([0, 1, 3])
    s_prev, s_new, last, has = mem.compute(n_id)
    zero = torch.zeros(4)
    m = [torch.cat([zero, zero, msg[i], mem.time_enc(t[i:i + 1].float()).view(-1)])
         for i in range(2)]
    agg0 = m[1] if aggregator == "last" else (m[0] + m[1]) / 2
    expect0 = mem.updater(agg0.view(1, -1), zero.view(1, -1)).view(-1)
    expect1 = mem.updater(torch.cat([zero, zero, msg[0], mem.time_enc(t[:1].float()).view(-1)]
                                    ).view(1, -1), zero.view(1, -1)).view(-1)
    torch.testing.assert_close(s_new[0], expect0)
    torch.testing.assert_close(s_new[1], expect1)
    assert torch.equal(s_new[2], s_prev[2]) and has.tolist() == [True, True, False]
    assert last.tolist() == [2, 1, 0]
    assert s_new.requires_grad  # the updater learns from the link loss


@pytest.mark.parametrize("aggregator", ["last", "mean"])
def test_applied_update_lists_the_updated_rows_and_their_message_counts(aggregator):
    mem = _mem(aggregator=aggregator)
    _feed(mem)
    n_id = torch.tensor([0, 1, 3, 2])
    s_prev, s_new, _, has, update = mem._apply_pending(n_id, count=True)
    assert update.rows.tolist() == has.nonzero().view(-1).tolist() == [0, 1, 3]
    assert torch.equal(update.s_prev, s_prev[has]) and torch.equal(update.s_new, s_new[has])
    assert update.events.tolist() == [2, 1, 1]  # node 0 has two pending messages
    assert mem._apply_pending(torch.tensor([4]))[4] is None


def test_update_state_flushes_then_stores_and_chunks_agree():
    a, b = _mem(chunk_size=1), _mem()
    b.load_state_dict(a.state_dict())
    for mem in (a, b):
        _feed(mem)
        expect = mem.compute(torch.arange(5))[1].detach()
        mem.update_state(torch.tensor([1, 3]), torch.tensor([2, 4]), torch.tensor([3, 3]),
                         torch.ones(2, 3))
        torch.testing.assert_close(mem.memory[[1, 2]], expect[[1, 2]])
        assert mem.last_update.tolist() == [0, 1, 2, 0, 0]  # node 0 not flushed
        assert sorted(mem.pend_node.tolist()) == [0, 0, 1, 2, 3, 4]  # node 0 still pending
    torch.testing.assert_close(a.memory, b.memory)


def test_state_round_trip_and_cpu_storage():
    mem = _mem()
    _feed(mem)
    state = mem.state_dict()
    other = _mem(storage_device="cpu")
    other.load_state_dict(state)
    n_id = torch.arange(5)
    torch.testing.assert_close(other(n_id)[0], mem(n_id)[0])
    mem.reset_state()
    assert mem.memory.abs().sum() == 0 and mem.pend_node.numel() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="aggregator"):
        TemporalMemory(5, 3, 4, 2, aggregator="max")
    with pytest.raises(ValueError, match="updater"):
        TemporalMemory(5, 3, 4, 2, updater="lstm")
    with pytest.raises(ValueError, match="num_nodes"):
        TemporalMemory(0, 3, 4, 2)
    mem = _mem()
    with pytest.raises(ValueError, match="columns"):
        mem.update_state(torch.tensor([0]), torch.tensor([1]), torch.tensor([1]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="node ids"):
        mem.update_state(torch.tensor([0]), torch.tensor([9]), torch.tensor([1]), torch.ones(1, 3))


def test_time_encoding_starts_at_tgn_frequencies():
    mem = _mem()
    w = mem.time_enc.lin.weight.view(-1)
    torch.testing.assert_close(w, 10.0 ** -torch.linspace(0, 9, 2))
    assert mem.time_enc.lin.bias.abs().max() == 0
    # a gap of 1e5 seconds maps to cos(1e5 * w): the slowest frequency still resolves it
    assert mem.time_enc(torch.tensor([1e5]))[0, -1] > 0.99


def test_update_state_needs_time_order():
    mem = _mem()
    src, dst, msg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.ones(2, 3)
    with pytest.raises(ValueError, match="not sorted"):
        mem.update_state(src, dst, torch.tensor([4, 2]), msg)
    mem.update_state(src, dst, torch.tensor([4, 5]), msg)
    with pytest.raises(ValueError, match="earlier than the last event held"):
        mem.update_state(src, dst, torch.tensor([3, 6]), msg)
    assert mem.pend_t.tolist() == [4, 5, 4, 5]  # nothing of the rejected batch was stored


def test_reads_need_integer_ids():
    mem = _mem()
    # float ids failed inside index_select; boolean ones were read as ids 0 and 1
    with pytest.raises(ValueError, match="n_id must be a one-dimensional tensor of integer"):
        mem(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="dtype torch.bool"):
        mem.flush(torch.tensor([True, False]))


def test_a_repeated_id_reads_the_same_updated_memory():
    torch.manual_seed(0)
    mem = TemporalMemory(4, 2, memory_dim=3, time_dim=2)
    mem.update_state(torch.tensor([0]), torch.tensor([1]), torch.tensor([3]), torch.randn(1, 2))
    s, last = mem(torch.tensor([0, 0, 1]))
    once, last_once = mem(torch.tensor([0, 1]))
    torch.testing.assert_close(s, once[[0, 0, 1]])
    assert last.tolist() == [3, 3, 3] and last_once.tolist() == [3, 3]
