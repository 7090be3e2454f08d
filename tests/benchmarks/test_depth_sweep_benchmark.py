"""End to end: benchmarks/depth_sweep.py chooses settings on validation before the sweep."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "depth_sweep.py"


def _grid_sweep(tmp_path, *extra: str) -> tuple[list[dict], list[dict]]:
    """Run a two-depth SGC sweep after a two-candidate weight-decay grid; returns the
    selection rows and the sweep rows."""
    out = tmp_path / "ds.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(SCRIPT), "--models", "sgc", "--sgc-depths", "1", "2",
                    "--grid", "sgc:weight_decay=5e-5|5e-1", "--grid-runs", "1", "--runs", "1",
                    *extra, "--json", str(out)],
                   check=True, env=env, capture_output=True, text=True, timeout=300)
    rows = json.loads(out.read_text())["rows"]
    return ([r for r in rows if r["depth_kind"] == "selection"],
            [r for r in rows if r["depth_kind"] == "propagation"])


@pytest.mark.slow
def test_grid_selects_on_validation_then_sweeps(tmp_path):
    grid, sweep = _grid_sweep(tmp_path, "--tag", "chosen")
    # every candidate at the deepest depth, on seeds after the sweep's
    assert [(r["depth"], r["candidate"]) for r in grid] == [
        (2, {"weight_decay": 5e-5}), (2, {"weight_decay": 0.5})]
    best = max(grid, key=lambda r: r["val_mean"])["candidate"]
    assert [r["depth"] for r in sweep] == [1, 2]
    assert all(r["selected"] == best and r["recipe"]["weight_decay"] == best["weight_decay"]
               and r["system"].startswith("sgc (chosen)") for r in sweep)


@pytest.mark.slow
def test_grid_each_depth_selects_per_depth(tmp_path):
    grid, sweep = _grid_sweep(tmp_path, "--grid-depths", "each")
    # every candidate at every depth, the best validation accuracy at each depth kept there
    assert sorted((r["depth"], r["candidate"]["weight_decay"]) for r in grid) == [
        (1, 5e-5), (1, 0.5), (2, 5e-5), (2, 0.5)]
    assert [r["depth"] for r in sweep] == [1, 2]
    for r in sweep:
        here = [g for g in grid if g["depth"] == r["depth"]]
        best = max(here, key=lambda g: g["val_mean"])["candidate"]  # first of equals
        assert r["selected"] == best and r["recipe"]["weight_decay"] == best["weight_decay"]


@pytest.mark.slow
def test_sgc_air_rows_record_hop_weights(tmp_path):
    out = tmp_path / "ds.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(SCRIPT), "--models", "sgc_air", "sgc", "--quick",
                    "--override", "sgc_air:first_hop=1,skip_last_hop=False",
                    "--json", str(out)],
                   check=True, env=env, capture_output=True, text=True, timeout=300)
    rows = json.loads(out.read_text())["rows"]
    air = [r for r in rows if r["model"] == "sgc_air"]
    assert [r["depth"] for r in air] == [2, 10]  # --quick depths
    for r in air:  # hops 1..K with first_hop=1: K weights summing to 1
        assert len(r["hop_weights"]) == r["depth"]
        assert abs(sum(r["hop_weights"]) - 1) < 1e-3
        assert r["recipe"]["model_kwargs"]["first_hop"] == 1
    assert all("hop_weights" not in r for r in rows if r["model"] == "sgc")


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--merge", "/nonexistent-graphkit-dir/r.json"],
     "argument --merge: cannot read report"),
    (["--gcn-depths", "4", "0"],
     "argument --gcn-depths: must be >= 1, got 0"),
    (["--plot", "/nonexistent-graphkit-dir/p.png"],
     "argument --plot: output folder /nonexistent-graphkit-dir does not exist"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("depth_sweep", flags)


@pytest.mark.parametrize("flags, message", [
    # each failed when the sweep first built that model, after the other models' sweeps
    (["--override", "gcn:nokey=1"],
     "--override gcn:nokey=1: .*unexpected keyword argument 'nokey'"),
    (["--grid", "dagnn:weight_decay=5e-3|high"],
     r"--grid dagnn:weight_decay=5e-3\|high: weight_decay must be a number, got 'high'"),
])
def test_bad_settings_fail_before_the_sweep(import_script, monkeypatch, flags, message):
    script = import_script("depth_sweep")
    monkeypatch.setattr(sys, "argv", ["depth_sweep.py", "--runs", "1", *flags])
    monkeypatch.setattr(script, "sweep", lambda *a: pytest.fail("the sweep started"))
    with pytest.raises(ValueError, match=message):
        script.main()


def test_merge_of_another_scripts_report_is_a_usage_error(usage_error, tmp_path):
    from graphkit.benchmarking import write_report

    write_report(tmp_path / "r.json", "benchmarks/robustness.py", {}, [])
    err = usage_error("depth_sweep", ["--merge", str(tmp_path / "r.json")])
    assert "r.json is a report of benchmarks/robustness.py, not of benchmarks/depth_sweep.py" in err


def test_default_dagnn_depths_span_2_to_100(import_script, monkeypatch):
    # issue 3's "propagation depth (2 to 100)": DAGNN's default sweep started at K=5
    monkeypatch.setattr(sys, "argv", ["depth_sweep.py"])
    args = import_script("depth_sweep").parse_args()
    assert args.dagnn_depths == [2, 5, 10, 20, 50, 100]
    assert min(args.sgc_depths) == 2 and min(args.gcn_depths) == 2
