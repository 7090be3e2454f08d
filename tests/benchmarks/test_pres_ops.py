"""benchmarks/pres_ops.py: the timed operations compute what PRES computes, and the script end
to end on the synthetic stream."""

import json
import statistics

import pytest
import torch

from graphkit.data import load
from graphkit.data.temporal import chronological_split
from graphkit.sampling import uniform_negative_destinations
from graphkit.temporal import PRES, MemoryTGN


@pytest.fixture(scope="module")
def ops_module(import_script):
    return import_script("pres_ops")


def _model_and_batch():
    data = load("temporal-sbm", num_nodes=40, num_events=600, seed=2)
    idx = chronological_split(data, seed=0).train_mask.nonzero().view(-1)
    torch.manual_seed(0)
    model = PRES(MemoryTGN(data.num_nodes, data.msg.size(-1), memory_dim=8, time_dim=4,
                           embedding_dim=8, num_neighbors=3)).train()
    with torch.no_grad():  # three batches: stored memories become non-zero
        for b in idx[:150].split(50):
            model.update_state(data.src[b], data.dst[b], data.t[b], data.msg[b])
    b = idx[150:210]
    neg = uniform_negative_destinations(b.numel(), torch.unique(data.dst[idx]),
                                        torch.Generator().manual_seed(0))
    return model, data.src[b], data.dst[b], data.t[b], neg


def test_operations_agree_between_their_paths(ops_module):
    """The timed paths compute the same thing: equal step counts, bit-identical shifted reads
    and gradients, and the closed-form coherence gradient (both paths) equal to the earlier
    autograd formulation's on the updated rows (float32 round-off)."""
    model, src, dst, t, neg = _model_and_batch()
    ops, sizes = ops_module.batch_operations(model, src, dst, t, neg, 0.1)
    assert torch.equal(ops["read_steps/numba"](), ops["read_steps/torch"]())
    assert sizes["reads"] == 3 * src.numel() and 0 < sizes["updated_rows"] <= sizes[
        "memory_rows"]
    fused, ref = ops["shifted_reads/numba"](), ops["shifted_reads/torch"]()
    assert all(torch.equal(a, b) for a, b in zip(fused, ref))
    autograd = ops["coherence/autograd"]()
    assert autograd.abs().sum() > 0
    for path in ("numba", "torch"):
        torch.testing.assert_close(ops[f"coherence/{path}"](), autograd, rtol=1e-5,
                                   atol=1e-9)
    for fn in ops.values():  # every timed operation runs
        fn()


def test_script_writes_one_row_per_operation(ops_module, tmp_path):
    out = tmp_path / "ops.json"
    ops_module.main(["--quick", "--batch-sizes", "100", "--repeats", "3", "--warmup", "1",
                     "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    names = {r["system"] for r in rows}
    assert {"shifted_reads/numba", "shifted_reads/torch", "coherence/numba",
            "coherence/autograd", "observe/numba", "read_steps/numba"} <= names
    assert all(r["metric"] == "cpu_us" and r["mean"] >= 0 for r in rows)
    # the median call, and the row says so
    assert all(r["statistic"] == "median" and r["mean"] == statistics.median(r["per_run"])
               for r in rows)
    assert {r["dataset"] for r in rows} == {"temporal-sbm/bs100"}


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--coherence-weight", "nan"],
     "argument --coherence-weight: must be a finite number"),
    (["--batch-sizes", "-5"],
     "argument --batch-sizes: must be >= 1, got -5"),
    (["--dataset", "nope"],
     "argument --dataset: unknown dataset 'nope'"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("pres_ops", flags)
