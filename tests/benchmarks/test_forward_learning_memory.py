"""benchmarks/forward_learning.py --memory: the worker measures the library's own fit, and the
row-split ``sf`` (the default) allocates less at its peak than ``sf`` over the whole graph."""

import argparse

import pytest


@pytest.fixture(scope="module")
def bench(import_script):
    return import_script("forward_learning")


def _args(**kw):
    base = dict(device="cpu", root=None, adjacency="edges", dense_input=False, memory_epochs=2,
                lr=1e-3, model=["gcn"], hidden=128, layers=4, seed=0, memory_trace=False)
    return argparse.Namespace(**{**base, **kw})


def test_row_split_lowers_the_tensor_peak_of_sf(bench):
    name = "csbm:num_nodes=2000"
    peaks = {s: bench.memory_worker(s, name, _args())["epoch_tensor_mb"]
             for s in ("sf", "sf-whole")}
    # the same training (tests/train/forward/test_forward_rowsplit.py); a training step's
    # per-edge tensors cover the edges into the training and class nodes only
    assert 0 < peaks["sf"] < peaks["sf-whole"]
