"""benchmarks/forward_learning.py --ff-trace / --no-stop-layers: the diagnosis of FF layers
records what early stopping with --patience would have done on a layer trained without it."""

import argparse

import pytest


@pytest.fixture(scope="module")
def bench(import_script):
    return import_script("forward_learning")


def test_stop_point_is_early_stopping_replayed(bench):
    # strict improvement: a tie is a bad check
    assert bench.stop_point([0.1, 0.3, 0.3, 0.2, 0.4], patience=2) == (4, 2)
    assert bench.stop_point([0.5, 0.4, 0.6, 0.6], patience=3) == (4, 3)  # never stopped
    assert bench.stop_point([0.2], patience=1) == (1, 1)


def test_ff_trace_with_an_unstopped_layer(bench):
    data = bench.load_dataset("csbm:num_nodes=300", None)
    args = argparse.Namespace(device="cpu", seed=0, hidden=16, layers=2, epochs=16, lr=0.01,
                              val_every=2, patience=2, ff_trace=True, no_stop_layers=[2],
                              whole_graph=False)
    out = bench.run_node("ff-vn", "gcn", data, 0, args)
    first, second = out["trace"]
    assert out["epochs"][1] == second["epochs"] == 16 and second["no_stop"]
    assert not first["no_stop"] and first["stop_epoch_with_patience"] == first["epochs"]
    for layer, gap in zip(out["trace"], out["goodness_gap_last"]):
        assert len(layer["pos_goodness"]) == len(layer["neg_goodness"]) == layer["epochs"]
        assert len(layer["val_scores"]) == layer["epochs"] // 2
        assert layer["gap_last"] == pytest.approx(gap, abs=1e-6)
        checks, best = bench.stop_point(layer["val_scores"], 2)
        assert layer["stop_epoch_with_patience"] == 2 * checks
        assert layer["best_epoch_with_patience"] == 2 * best
    # the unstopped layer's replayed stop lies within its run
    assert second["stop_epoch_with_patience"] <= 16
    assert out["fit_seconds"] > 0
