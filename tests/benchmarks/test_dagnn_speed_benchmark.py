"""benchmarks/dagnn_speed.py end to end with --quick: epoch times of DAGNN and PyG's APPNP at
the same K on Cora and on a synthetic graph, the ratio row, and an argparse error for a bad
flag."""

import contextlib
import io
import json
import statistics
import sys

import pytest
from torch_geometric.nn import APPNP

from graphkit.nn.models import DAGNN

FIELDS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def test_quick_run_times_dagnn_against_pyg_appnp_at_the_same_k(import_script, tmp_path,
                                                                monkeypatch):
    speed = import_script("dagnn_speed")
    built = []

    def spy(recipe, *shape, build=speed.build_model):
        built.append(build(recipe, *shape))
        return built[-1]

    monkeypatch.setattr(speed, "build_model", spy)
    out = tmp_path / "dagnn_speed.json"
    monkeypatch.setattr(sys, "argv", ["dagnn_speed.py", "--quick", "--K", "3",
                                      "--json", str(out)])
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        speed.main()
    assert "'nodes': 5000" in log.getvalue()  # the log shows the sizes --quick ran
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    config = report["config"]
    assert (config["runs"], config["epochs"], config["nodes"], config["K"]) == (2, 3, 5000, 3)
    # both models, once per run and graph, propagate K=3 hops: DAGNN's own, PyG's APPNP
    kinds = [type(m.prop).__name__ for m in built]
    assert len(built) == 2 * 2 * 2 and kinds.count("APPNP") == kinds.count("DAGNNProp") == 4
    assert all(isinstance(m, DAGNN) or isinstance(m.prop, APPNP) for m in built)
    assert all(m.prop.K == 3 for m in built)

    rows = report["rows"]
    assert all(FIELDS <= r.keys() for r in rows)
    graphs = list(dict.fromkeys(r["dataset"] for r in rows))
    assert graphs[0] == "Cora" and graphs[1].startswith("random-5k-") and len(graphs) == 2
    for graph in graphs:
        by = {r["system"]: r for r in rows if r["dataset"] == graph}
        assert list(by) == ["dagnn (K=3)", "appnp (K=3)", "dagnn/appnp ratio"]
        for name in ("dagnn (K=3)", "appnp (K=3)"):
            r = by[name]
            assert r["metric"] == "epoch_seconds"
            # runs counts the seeded blocks; per_run keeps every timed epoch of them
            assert r["runs"] == 2 and r["timed_epochs"] == len(r["per_run"]) == 2 * 3
            assert all(t > 0 for t in r["per_run"])
            assert r["seconds"] > r["mean"] > 0 and r["peak_rss_mb"] > 0
        ratio = by["dagnn/appnp ratio"]
        assert ratio["metric"] == "time_ratio"
        assert ratio["mean"] == pytest.approx(
            statistics.median(by["dagnn (K=3)"]["per_run"])
            / statistics.median(by["appnp (K=3)"]["per_run"]))


def test_bad_flag_is_an_argparse_error(usage_error, tmp_path):
    err = usage_error("dagnn_speed", ["--K", "ten", "--json", str(tmp_path / "x.json")])
    assert "argument --K: invalid int value: 'ten'" in err
    assert not (tmp_path / "x.json").exists()


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--K", "-1"],
     "argument --K: must be >= 0, got -1"),
    (["--epochs", "0"],
     "argument --epochs: must be >= 1, got 0"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("dagnn_speed", flags)
