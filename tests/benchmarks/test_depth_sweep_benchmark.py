"""End to end: benchmarks/depth_sweep.py chooses settings on validation before the sweep."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "depth_sweep.py"


@pytest.mark.slow
def test_grid_selects_on_validation_then_sweeps(tmp_path):
    out = tmp_path / "ds.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(SCRIPT), "--models", "sgc", "--sgc-depths", "1", "2",
                    "--grid", "sgc:weight_decay=5e-5|5e-1", "--grid-runs", "1", "--runs", "1",
                    "--tag", "chosen", "--json", str(out)],
                   check=True, env=env, capture_output=True, text=True, timeout=300)
    rows = json.loads(out.read_text())["rows"]
    grid = [r for r in rows if r["depth_kind"] == "selection"]
    sweep = [r for r in rows if r["depth_kind"] == "propagation"]
    # every candidate at the deepest depth, on seeds after the sweep's
    assert [(r["depth"], r["candidate"]) for r in grid] == [
        (2, {"weight_decay": 5e-5}), (2, {"weight_decay": 0.5})]
    best = max(grid, key=lambda r: r["val_mean"])["candidate"]
    assert [r["depth"] for r in sweep] == [1, 2]
    assert all(r["selected"] == best and r["recipe"]["weight_decay"] == best["weight_decay"]
               and r["system"].startswith("sgc (chosen)") for r in sweep)
