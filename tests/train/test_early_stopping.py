import math

import pytest
import torch

from graphkit.train import EarlyStopping, pyg_citation_stop


def run(stopper, values):
    return [stopper.step(v) for v in values]


def test_max_mode_improvement_and_best_epoch():
    s = EarlyStopping("max")
    assert run(s, [0.1, 0.3, 0.2, 0.5]) == [True, True, False, True]
    assert (s.best, s.best_epoch, s.num_bad, s.num_steps) == (0.5, 4, 0, 4)


def test_min_mode_improvement():
    s = EarlyStopping("min")
    assert run(s, [3.0, 2.0, 2.5, 1.0, 1.5]) == [True, True, False, True, False]
    assert (s.best, s.best_epoch, s.num_bad) == (1.0, 4, 1)


def test_ties_keep_the_first_by_default_or_the_last():
    first = EarlyStopping("max")
    assert run(first, [0.5, 0.5, 0.4]) == [True, False, False]
    assert first.best_epoch == 1 and first.num_bad == 2
    last = EarlyStopping("min", ties="last")
    assert run(last, [0.5, 0.5, 0.6]) == [True, True, False]
    assert last.best_epoch == 2 and last.num_bad == 1


def test_epoch_labels():
    s = EarlyStopping("max")
    s.step(0.2, epoch=10)
    s.step(0.1, epoch=20)
    assert s.best_epoch == 10 and s.num_steps == 2


def test_patience_counts_consecutive_steps_without_improvement():
    s = EarlyStopping("max", patience=2)
    stops = []
    for v in [0.1, 0.2, 0.1, 0.3, 0.2, 0.2]:
        s.step(v)
        stops.append(s.should_stop)
    assert stops == [False, False, False, False, False, True]
    assert s.best_epoch == 4


def test_patience_none_never_stops():
    s = EarlyStopping("min", patience=None)
    run(s, [1.0] + [2.0] * 100)
    assert s.num_bad == 100 and not s.should_stop


@pytest.mark.parametrize("bad", [{"patience": 0}, {"patience": -1}, {"mode": "best"},
                                 {"ties": "any"}, {"copy_mode": "shallow"}])
def test_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        EarlyStopping(**bad)


def test_baseline_makes_the_initial_state_a_candidate():
    s = EarlyStopping("max", baseline=-1.0, baseline_epoch=0)
    assert (s.best, s.best_epoch) == (-1.0, 0)
    assert s.step(-1.0) is False  # strict: equal to the baseline is no improvement
    assert s.step(0.0) is True and s.best_epoch == 2
    loss = EarlyStopping("min", patience=1, baseline=math.inf, baseline_epoch=0)
    assert loss.step(math.nan) is False and loss.should_stop
    assert (loss.best, loss.best_epoch) == (math.inf, 0)


def test_nan_never_improves_and_a_nan_best_is_never_beaten():
    s = EarlyStopping("max")
    assert run(s, [0.3, math.nan, 0.4]) == [True, False, True]
    first_nan = EarlyStopping("max")
    assert run(first_nan, [math.nan, 0.2, 0.3]) == [True, False, False]


@pytest.mark.parametrize("copy_mode", ["deepcopy", "clone"])
def test_snapshot_and_restore(copy_mode):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    s = EarlyStopping("max", copy_mode=copy_mode)
    assert s.restore(model) is False  # nothing kept yet: the model is left as it is
    s.step(1.0)
    s.snapshot(model)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()
    model(torch.randn(5, 3))  # running statistics change too
    assert not torch.equal(model[0].weight, kept["0.weight"])
    # the snapshot is a copy, not a view of the live tensors
    assert all(torch.equal(s.best_state[k], v) for k, v in kept.items())
    assert s.restore(model) is True
    for k, v in model.state_dict().items():
        assert torch.equal(v, kept[k]), k
    if copy_mode == "deepcopy":
        assert hasattr(s.best_state, "_metadata")  # the state dict's version metadata
    else:
        assert type(s.best_state) is dict


def test_deepcopy_keeps_non_tensor_extra_state():
    class WithExtra(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = {1, 2}

        def get_extra_state(self):
            return {"seen": set(self.seen)}

        def set_extra_state(self, state):
            self.seen = set(state["seen"])

    m = WithExtra()
    s = EarlyStopping()
    s.snapshot(m)
    m.seen.add(3)
    s.restore(m)
    assert m.seen == {1, 2}


def test_pyg_citation_stop():
    # before the second half of the epochs: never
    assert not pyg_citation_stop([1.0, 2.0, 3.0], patience=2, epochs=6)
    # epoch 4 > 6 // 2: 3.0 exceeds the mean of the previous two (1.0, 2.0)
    assert pyg_citation_stop([1.0, 1.0, 2.0, 3.0], patience=2, epochs=6)
    assert not pyg_citation_stop([1.0, 1.0, 2.0, 1.5], patience=2, epochs=6)
    assert pyg_citation_stop([1.0, 1.0, 2.0, 1.5], patience=3, epochs=6)  # mean 4/3 < 1.5
    assert pyg_citation_stop([1.0, 1.0, 1.0, 1.5], patience=10, epochs=6)  # fewer recorded
    assert not pyg_citation_stop([1.0], patience=2, epochs=1)  # nothing to compare with
