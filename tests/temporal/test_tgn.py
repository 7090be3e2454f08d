import pytest
import torch

from graphkit.temporal import TGN


def _tgn():
    torch.manual_seed(0)
    return TGN(4, 2, memory_dim=8, time_dim=4, embedding_dim=8, num_neighbors=3)


def _tensors(model):
    return {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}


def test_seeded_models_have_identical_state_dicts():
    """PyG's memory keeps a torch.empty scratch buffer (_assoc) in the state dict: seeded
    constructions differed, and reset_state kept the ids of the last update."""
    a, b = _tgn(), _tgn()
    assert _tensors(a).keys() == _tensors(b).keys()
    for k, v in _tensors(a).items():
        assert torch.equal(v, _tensors(b)[k]), k
    src, dst, t = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([1, 2])
    a.update_state(src, dst, t, torch.randn(2, 2))
    a.score(src, dst, t + 2, torch.zeros(2, 2), dst.flip(0))
    a.update_state(dst, src, t + 2, torch.randn(2, 2))
    a.reset_state()
    for (k, v), w in zip(a.named_buffers(), b.buffers()):
        assert torch.equal(v, w), k


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="msg_dim must be non-negative"):
        TGN(4, -1)  # was taken for a stream without features


def test_empty_batch():
    model = _tgn()
    src, msg = torch.zeros(0, dtype=torch.long), torch.zeros(0, 2)
    # score used to fail in t.max() and update_state inside PyG's memory
    pos, neg = model.score(src, src, src, msg, src)
    assert pos.shape == neg.shape == (0,)
    model.update_state(src, src, src, msg)
    assert model.event_graph.sampler is None


def test_update_state_needs_time_order():
    model = _tgn()
    src, dst, msg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="not sorted"):
        model.update_state(src, dst, torch.tensor([4, 2]), msg)
    model.update_state(src, dst, torch.tensor([4, 5]), msg)
    last = model.memory.last_update.clone()
    # the memory was updated before the neighbour buffer found the time order wrong
    with pytest.raises(ValueError, match=r"earlier than the last event held \(5\)"):
        model.update_state(src, dst, torch.tensor([3, 6]), msg)
    assert torch.equal(model.memory.last_update, last)
    assert model.event_graph.sampler.num_events == 2


def test_double_moves_the_message_stores_and_event_features():
    torch.manual_seed(0)
    model = TGN(6, msg_dim=2, memory_dim=8, time_dim=4, embedding_dim=8, num_neighbors=3)
    src, dst, t = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    model.update_state(src, dst, t, torch.randn(3, 2))
    model.double()
    model.update_state(dst, src, t + 3, torch.randn(3, 2, dtype=torch.float64))
    pos, _ = model.score(src, dst, t + 6, torch.zeros(3, 2, dtype=torch.float64), dst.flip(0))
    assert pos.dtype == torch.float64 and torch.isfinite(pos).all()
