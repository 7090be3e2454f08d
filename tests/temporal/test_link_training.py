import pytest
import torch
from torch_geometric.data import TemporalData

from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.metrics import average_precision, roc_auc
from graphkit.temporal import NAT, TGN, chronological_batches, fit, link_metrics


@pytest.fixture(scope="module")
def stream():
    data = load("temporal-sbm", num_nodes=60, num_events=1200, seed=1)
    return data, chronological_split(data, seed=0)


def test_link_metrics_per_batch_and_pooled():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(25, generator=g) + 1, torch.randn(25, generator=g)
    m = link_metrics(pos, neg, batch_size=10)
    aps, aucs = [], []
    for s in (0, 10, 20):
        y = torch.cat([torch.ones(len(pos[s:s + 10])), torch.zeros(len(neg[s:s + 10]))])
        x = torch.cat([pos[s:s + 10], neg[s:s + 10]])
        aps.append(average_precision(y, x))
        aucs.append(roc_auc(y, x))
    assert m.ap == pytest.approx(sum(aps) / 3) and m.auc == pytest.approx(sum(aucs) / 3)
    whole = link_metrics(pos, neg, batch_size=100)
    assert whole.ap == whole.ap_pooled == m.ap_pooled
    assert m.num_events == 25
    with pytest.raises(ValueError, match="same length"):
        link_metrics(pos, neg[:3], 10)


def test_chronological_batches():
    idx = torch.arange(7)
    assert [b.tolist() for b in chronological_batches(idx, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match="batch_size"):
        list(chronological_batches(idx, 0))


@pytest.mark.parametrize("make", [
    lambda n: NAT(n, sizes=(1, 8, 4), out_channels=16, self_dim=8, seed=3),
    lambda n: TGN(n, memory_dim=16, time_dim=8, embedding_dim=16, num_neighbors=5),
])
def test_resume_gives_identical_predictions(stream, tmp_path, make):
    data, split = stream
    kw = {"batch_size": 100, "lr": 1e-3, "patience": None, "seed": 4}
    torch.manual_seed(0)
    full = fit(make(data.num_nodes), data, split, epochs=2, **kw)

    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt.pt"
    fit(make(data.num_nodes), data, split, epochs=1, checkpoint=ckpt, **kw)
    torch.manual_seed(123)  # the checkpoint must restore every random state
    resumed = fit(make(data.num_nodes), data, split, epochs=2, checkpoint=ckpt, resume=True,
                  **kw)
    assert torch.equal(full.test_pos, resumed.test_pos)
    assert torch.equal(full.test_neg, resumed.test_neg)
    assert full.best_epoch == resumed.best_epoch
    assert len(resumed.history) == 2
    assert full.test_inductive is not None and 0.0 <= full.test_inductive.ap <= 1.0
    # one training CPU time per epoch, also for the epoch restored from the checkpoint
    assert len(full.epoch_cpu_seconds) == len(resumed.epoch_cpu_seconds) == 2
    assert all(c > 0 for c in full.epoch_cpu_seconds + resumed.epoch_cpu_seconds)
    # resuming a finished run trains nothing and restores the best state exactly: PyG's
    # TGNMemory must not apply the stored messages a second time when it enters eval mode
    again = fit(make(data.num_nodes), data, split, epochs=2, checkpoint=ckpt, resume=True,
                **kw)
    assert torch.equal(full.test_pos, again.test_pos)
    assert torch.equal(full.test_neg, again.test_neg)


def test_nat_learns_recurrence(stream):
    data, split = stream
    torch.manual_seed(0)
    out = fit(NAT(data.num_nodes, sizes=(1, 8, 4), out_channels=32, self_dim=16), data, split,
              epochs=2, batch_size=50, lr=1e-3)
    assert out.test.ap > 0.65  # half the events repeat an earlier pair: the caches see them
    assert out.test.num_events == int(split.test_mask.sum())


def test_bad_inputs(stream):
    data, split = stream
    model = NAT(data.num_nodes, sizes=(1, 2, 2))
    with pytest.raises(ValueError, match="epochs"):
        fit(model, data, split, epochs=0)
    with pytest.raises(ValueError, match="checkpoint"):
        fit(model, data, split, resume=True)
    with pytest.raises(ValueError, match="reset_state"):
        fit(torch.nn.Linear(2, 2), data, split)
    with pytest.raises(ValueError, match="events"):
        fit(model, data[:100], split)
    # the stream itself: node ids beyond the model's memory, NaN messages
    small = NAT(data.num_nodes - 1, sizes=(1, 2, 2))
    with pytest.raises(ValueError, match=f"out of range for num_nodes={data.num_nodes - 1}"):
        fit(small, data, split)
    bad = data.clone()
    bad.msg = torch.zeros(data.num_events, 2)
    bad.msg[7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"msg holds NaN values \(first in row 7\)"):
        fit(model, bad, split)


def test_bad_fit_arguments(stream, tmp_path):
    import dataclasses

    data, split = stream
    model = NAT(data.num_nodes, sizes=(1, 2, 2))
    # a stream without msg failed with an AttributeError deep in the loop
    no_msg = TemporalData(src=data.src, dst=data.dst, t=data.t)
    with pytest.raises(ValueError, match="data has no msg"):
        fit(model, no_msg, split)
    # a mask of another length (or an index vector) selected the wrong events
    short = dataclasses.replace(split, val_mask=split.val_mask[:10])
    with pytest.raises(ValueError, match=r"the split has 10 events \(val_mask\)"):
        fit(model, data, short)
    index = dataclasses.replace(split, test_mask=split.test_mask.nonzero().view(-1))
    with pytest.raises(ValueError, match="split.test_mask must be a one-dimensional boolean"):
        fit(model, data, index)
    # patience 0 or below trained nothing and blamed the checkpoint
    with pytest.raises(ValueError, match="patience must be positive"):
        fit(model, data, split, patience=0)
    with pytest.raises(ValueError, match="eval_batch_size must be positive"):
        fit(model, data, split, eval_batch_size=-1)
    # a corrupt checkpoint raised an UnpicklingError naming no file
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot resume from .*ckpt.pt"):
        fit(model, data, split, checkpoint=bad, resume=True)
    torch.save({"weights": 1}, bad)
    with pytest.raises(ValueError, match="not a checkpoint written by fit"):
        fit(model, data, split, checkpoint=bad, resume=True)


def test_train_epoch_and_stream_scores_check_the_event_ids(stream):
    from graphkit.temporal import stream_scores, train_epoch

    data, _ = stream
    model = NAT(data.num_nodes, sizes=(1, 2, 2))
    opt = torch.optim.Adam(model.parameters())
    pool = torch.tensor([0, 1])
    n = data.num_events
    # an IndexError "index 1200 is out of bounds for dimension 0" named neither
    with pytest.raises(ValueError, match=f"index holds event id {n}, out of range .* {n} events"):
        train_epoch(model, opt, data, torch.tensor([0, n]), 10, pool)
    with pytest.raises(ValueError, match="index must be a one-dimensional tensor of event ids"):
        stream_scores(model, data, torch.tensor([1.0]), 10, pool)
    with pytest.raises(ValueError, match="event ids"):
        stream_scores(model, data, torch.ones(n, dtype=torch.bool), 10, pool)


def test_link_metrics_bad_arguments():
    pos, neg = torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.5])
    with pytest.raises(ValueError, match="batch_size must be positive"):
        link_metrics(pos, neg, 0)  # was "range() arg 3 must not be zero"
    with pytest.raises(ValueError, match="one-dimensional logits"):
        link_metrics(pos.view(2, 1), neg.view(2, 1), 2)  # was "y_true is empty"


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_models_device(stream, tmp_path,
                                                                    monkeypatch):
    # torch.load without map_location put a GPU checkpoint's tensors back on CUDA: a CPU-only
    # machine raised "Attempting to deserialize object on a CUDA device"
    import torch.serialization

    data, split = stream
    kw = {"batch_size": 100, "lr": 1e-3, "patience": None, "seed": 4}

    def make():
        torch.manual_seed(0)  # the same initial weights in both runs
        return NAT(data.num_nodes, sizes=(1, 8, 4), out_channels=16, self_dim=8, seed=3)

    full = fit(make(), data, split, epochs=2, **kw)
    ckpt = tmp_path / "ckpt.pt"
    fit(make(), data, split, epochs=1, checkpoint=ckpt, **kw)
    state = torch.load(ckpt, weights_only=False)
    with monkeypatch.context() as m:  # tag every storage as a GPU's, as a CUDA run writes it
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, ckpt)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(ckpt, weights_only=False)
    resumed = fit(make(), data, split, epochs=2, checkpoint=ckpt, resume=True, **kw)
    assert torch.equal(full.test_pos, resumed.test_pos) and len(resumed.history) == 2
