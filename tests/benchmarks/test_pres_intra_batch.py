"""benchmarks/pres_intra_batch.py: statistics of a hand-checked stream, and the script end to
end on the synthetic stream."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pres_intra_batch.py"


@pytest.fixture(scope="module")
def intra(import_script):
    return import_script("pres_intra_batch")


def test_statistics_of_a_small_stream(intra):
    # batch 1: (0,1) (0,1); batch 2: (1,2) (0,1)
    src, dst = torch.tensor([0, 0, 1, 0]), torch.tensor([1, 1, 2, 1])
    stats = intra.batch_statistics(src, dst, 3, 2)
    assert stats["distinct_nodes"] == 2.5 and stats["max_node_events"] == 2
    # reads (source, then destination): batch 1 k = 0 1 | 0 1, batch 2 k = 0 0 | 0 1
    assert stats["mean_step"] == pytest.approx(3 / 8)
    assert stats["pair_repeat_in_batch"] == 0.25  # the second (0,1) of batch 1
    assert stats["pair_repeat_visible"] == 0.25  # (0,1) of batch 2


@pytest.mark.slow
def test_script_writes_one_row_per_metric(tmp_path):
    out = tmp_path / "ib.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--batch-sizes", "50", "200",
                    "--json", str(out)], check=True, env=env, capture_output=True, text=True,
                   timeout=300)
    rows = json.loads(out.read_text())["rows"]
    assert {r["dataset"] for r in rows} == {"temporal-sbm/bs50", "temporal-sbm/bs200"}
    assert len(rows) == 10


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--batch-sizes", "0"],
     "argument --batch-sizes: must be >= 1, got 0"),
    (["--dataset", "nope"],
     "argument --dataset: unknown dataset 'nope'"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("pres_intra_batch", flags)
