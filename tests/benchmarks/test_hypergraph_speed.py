"""benchmarks/hypergraph_speed.py: the timing loop and the CPU copies of trained models."""

import json
import sys

import pytest
import torch

from graphkit.data.hypergraph import hyperedge_index_from_list
from graphkit.nn import HGNN


@pytest.fixture(scope="module")
def speed(import_script):
    return import_script("hypergraph_speed")


def test_latency_warms_up_then_times_each_call_round_robin(speed):
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = speed.latency(fns, repeats=3, device=torch.device("cpu"), warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_hyperedge_lists_round_trip(speed):
    edges = [[0, 1, 2], [2, 3], [4]]
    index, m = hyperedge_index_from_list(edges, num_nodes=5)
    assert speed.hyperedge_lists(index, m) == edges


def test_moved_copy_drops_the_cached_normalisation(speed):
    index, m = hyperedge_index_from_list([[0, 1, 2], [2, 3], [3, 4]], num_nodes=5)
    model = HGNN(4, 8, 2, cached=True).eval()
    x = torch.rand(5, 4)
    out = model(x, index, num_hyperedges=m)
    copy = speed.moved(model, torch.device("cpu"))
    assert copy is not model
    assert all(getattr(mod, "_cache", None) is None for mod in copy.modules())
    assert any(getattr(mod, "_cache", None) is not None for mod in model.modules())
    torch.testing.assert_close(copy(x, index, num_hyperedges=m), out)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_run_times_every_system_and_the_layerwise_student_with_batch_norm(speed, monkeypatch,
                                                                          tmp_path, norm):
    out = tmp_path / "speed.json"
    monkeypatch.setattr(sys, "argv", ["hypergraph_speed.py", "--vertices", "1500", "--epochs",
                                      "5", "--repeats", "3", "--warmup", "1", "--student-norm",
                                      norm, "--json", str(out)])
    speed.main()
    rows = json.loads(out.read_text())["rows"]
    timed = {r["system"] for r in rows if r["metric"] == "latency_ms"}
    students = {"lighthgnn", "lighthgnn-h32"} | ({"lighthgnn-layerwise"} if norm == "batch"
                                                  else set())
    assert timed == {"hgnn-pyg", "hgnn", "hgnn-cached", "hgnn-pyg-end2end", "hgnn-end2end"} \
        | students
    speedups = {r["system"] for r in rows if r["metric"] == "speedup"}
    assert speedups == {f"{s}-vs-{t}" for s in students
                        for t in ("hgnn-pyg", "hgnn", "hgnn-cached", "hgnn-pyg-end2end",
                                  "hgnn-end2end")}
    assert all(r["mean"] > 0 for r in rows if r["metric"] == "speedup")
    assert {r["system"] for r in rows if r["metric"] == "accuracy"} == {
        "hgnn-pyg", "hgnn", "lighthgnn", "lighthgnn-h32"}


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--vertices", "100", "0"],
     "argument --vertices: must be >= 1, got 0"),
    (["--warmup", "-1"],
     "argument --warmup: must be >= 0, got -1"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("hypergraph_speed", flags)
