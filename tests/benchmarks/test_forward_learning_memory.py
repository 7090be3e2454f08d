"""benchmarks/forward_learning.py --memory: the worker measures the library's own fit, and the
row-split ``sf`` (the default) allocates less at its peak than ``sf`` over the whole graph."""

import argparse

import pytest


@pytest.fixture(scope="module")
def bench(import_script):
    return import_script("forward_learning")


def _args(**kw):
    base = dict(device="cpu", root=None, adjacency="edges", dense_input=False, memory_epochs=2,
                lr=1e-3, model=["gcn"], hidden=128, layers=4, seed=0, memory_trace=False,
                memory_repeats=1)
    return argparse.Namespace(**{**base, **kw})


def test_row_split_lowers_the_tensor_peak_of_sf(bench):
    name = "csbm:num_nodes=2000"
    peaks = {s: bench.memory_worker(s, name, _args())["epoch_tensor_mb"]
             for s in ("sf", "sf-whole")}
    # the same training (tests/train/forward/test_forward_rowsplit.py); a training step's
    # per-edge tensors cover the edges into the training and class nodes only
    assert 0 < peaks["sf"] < peaks["sf-whole"]


def test_repeats_report_the_median_of_each_figure(bench):
    runs = [{"epoch_tensor_mb": t, "epoch_rss_mb": r, "peak_cuda_mb": None, "seconds": 1.0,
             "peak_site": f"site {i}"} for i, (t, r) in enumerate([(3.0, 9.0), (1.0, 7.0),
                                                                   (2.0, 30.0)])]
    out = bench.median_measurements(runs)
    assert (out["epoch_tensor_mb"], out["epoch_rss_mb"]) == (2.0, 9.0)
    assert out["peak_cuda_mb"] is None and out["peak_site"] == "site 0"
    assert out["epoch_rss_mb_repeats"] == [9.0, 7.0, 30.0]
    assert "peak_cuda_mb_repeats" not in out
    # one run: the figures unchanged, no repeat lists
    assert bench.median_measurements(runs[:1]) == runs[0]


def test_repeats_must_be_positive(bench):
    with pytest.raises(ValueError, match="memory-repeats"):
        bench.memory_rows("Cora", "gcn", _args(memory_repeats=0))


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--lr", "0"],
     "argument --lr: must be > 0, got 0"),
    (["--merge", "/nonexistent-graphkit-dir/r.json"],
     "argument --merge: cannot read report"),
    (["--patience", "0"],
     "argument --patience: must be >= 1, got 0"),
    (["--dataset", "Cora", "csbm:num_nodes=many"],
     "argument --dataset: 'csbm:num_nodes=many': options are key=number pairs"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("forward_learning", flags)


def test_merge_names_a_report_of_another_script(bench, tmp_path):
    # another script's rows lack run_values / per_layer_mean: a bare KeyError
    from graphkit.benchmarking import summarize, write_report

    path = tmp_path / "other.json"
    write_report(path, "benchmarks/lpgnas.py", {}, [summarize("gcn", "Cora", "acc", [0.8], 1, 1)])
    with pytest.raises(ValueError, match="other.json is a report of benchmarks/lpgnas.py, not of "
                                         "benchmarks/forward_learning.py"):
        bench.merge([str(path)], None)


def _fl_report(path, splits, **config):
    from graphkit.benchmarking import summarize, write_report

    row = summarize("sf (gcn)", "Cora", "accuracy", [0.8] * len(splits), 1.0, 1.0, task="node",
                    run_values=[0.8] * len(splits), per_layer_mean=[0.8], epochs_mean=[10.0])
    write_report(path, "benchmarks/forward_learning.py",
                 {"splits": splits, "lr": 1e-3, "epochs": 1000, "device": "cpu", **config}, [row])
    return str(path)


def test_merge_refuses_a_repeated_split_and_mixed_protocols(bench, tmp_path):
    a = _fl_report(tmp_path / "a.json", [0, 1])
    merged = tmp_path / "ab.json"
    bench.merge([a, _fl_report(tmp_path / "b.json", [2, 3])], str(merged))  # disjoint: pooled
    # a merged report's splits are its rows' (its config has none)
    bench.merge([str(merged), _fl_report(tmp_path / "e.json", [4])], None)
    with pytest.raises(ValueError, match=r"repeats split\(s\) \[2\]"):
        bench.merge([_fl_report(tmp_path / "f.json", [2]), str(merged)], None)
    with pytest.raises(ValueError, match=r"repeats split\(s\) \[1\]"):
        bench.merge([a, _fl_report(tmp_path / "c.json", [1, 2])], None)
    with pytest.raises(ValueError, match="different protocols \\(epochs, lr differ\\)"):
        bench.merge([a, _fl_report(tmp_path / "d.json", [2], lr=0.01, epochs=60)], None)
