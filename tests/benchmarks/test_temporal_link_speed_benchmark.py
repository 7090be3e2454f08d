"""benchmarks/temporal_link_speed.py end to end on the --quick stream: round-robin epoch times
of NAT and TGN in one run, the TGN/NAT speedup row, and argparse errors for bad flags."""

import json
import statistics

import pytest

FIELDS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def test_quick_run_times_both_models_and_their_ratio(import_script, tmp_path):
    out = tmp_path / "speed.json"
    import_script("temporal_link_speed").main(["--quick", "--runs", "2", "--json", str(out)])
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    rows = {r["system"]: r for r in report["rows"]}
    assert list(rows) == ["nat", "tgn", "tgn/nat"]
    assert all(FIELDS <= r.keys() and r["dataset"] == "temporal-sbm" for r in rows.values())
    nat, tgn, ratio = rows["nat"], rows["tgn"], rows["tgn/nat"]
    for r in (nat, tgn):
        assert r["metric"] == "epoch_seconds" and r["runs"] == 2
        assert len(r["rounds"]) == 2 and all(t > 0 for t in r["rounds"])
        assert r["mean"] == pytest.approx(statistics.fmean(r["rounds"]))
        assert r["seconds"] == r["median"] == statistics.median(r["rounds"])
    assert ratio["metric"] == "speedup" and ratio["runs"] == 2
    # the speedup pairs the two models' epochs of the same round
    assert ratio["rounds"] == pytest.approx([t / n for t, n in zip(tgn["rounds"],
                                                                    nat["rounds"])])
    # a measured peak, not a placeholder
    assert all(r["peak_rss_mb"] > 10 for r in rows.values())


@pytest.mark.parametrize("flags, message", [
    (["--model", "nat", "nosuch"], "unknown model(s) ['nosuch']"),
    (["--dataset", "nosuch"], "invalid choice: 'nosuch'"),
    (["--dataset", "Cora"], "invalid choice: 'Cora'"),
])
def test_bad_flags_are_argparse_errors(usage_error, tmp_path, flags, message):
    err = usage_error("temporal_link_speed", ["--json", str(tmp_path / "x.json"), *flags])
    assert message in err
    assert not (tmp_path / "x.json").exists()


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--m1", "0"],
     "argument --m1: must be >= 1, got 0"),
    (["--lr", "-1"],
     "argument --lr: must be > 0, got -1"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("temporal_link_speed", flags)
