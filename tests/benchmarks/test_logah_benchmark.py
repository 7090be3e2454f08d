"""benchmarks/logah.py end to end with --quick: the three initialisations of every held-out ViT,
the paired margins, the decoder sizes and the width-2048 layer statistics in the shared JSON."""

import json

import pytest
import torch

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def test_quick_run_writes_every_row(import_script, tmp_path):
    bench = import_script("logah")
    out = tmp_path / "logah.json"
    bench.main(["--quick", "--runs", "1", "--json", str(out)])
    rep = json.loads(out.read_text())
    assert rep["script"] == "benchmarks/logah.py"
    assert all(ROW_KEYS <= set(r) for r in rep["rows"])
    rows = {(r["system"], r["dataset"].split("/")[-1], r["metric"]): r for r in rep["rows"]}
    held = [k for k in rows if k[2] == "test_accuracy" and k[1] != "held-out-mean"]
    assert len(held) == 3 * len(bench.HELD_OUT)
    for init in bench.INITS:
        mean = rows[f"{init}-init", "held-out-mean", "test_accuracy"]["mean"]
        per = [rows[k]["mean"] for k in held if k[0] == f"{init}-init"]
        assert mean == pytest.approx(sum(per) / len(per))
        assert all(0.0 <= v <= 1.0 for v in per)
    for init in bench.INITS:  # the fine-tune curve: --quick evaluates at steps 0 and 2
        assert {(f"{init}-init", "held-out-mean", f"test_accuracy@{k}") for k in (0, 2)} <= set(
            rows)
    diff = rows["logah-minus-random", "held-out-mean", "test_accuracy_diff"]["mean"]
    assert diff == pytest.approx(rows["logah-init", "held-out-mean", "test_accuracy"]["mean"]
                                 - rows["random-init", "held-out-mean", "test_accuracy"]["mean"])
    # the quick large model: width 512, MLP ratio 4, so fc1 is 2048 x 512
    lo = rows["logah", rep["config"]["dataset"], "row_norm_cv_width2048"]
    ti = rows["ghn3", rep["config"]["dataset"], "row_norm_cv_width2048"]
    assert lo["shape"] == ti["shape"] == [2048, 512]
    assert lo["rank"][0] <= rep["config"]["rank"]
    assert ti["distinct_rows"][0] <= rep["config"]["tile"]  # a tiled matrix repeats its block
    dec = rows["logah-decoder", rep["config"]["dataset"], "params"]
    large = bench.LARGE_QUICK.build()
    assert dec["largest_model_params"] == sum(p.numel() for p in large.parameters())
    assert dec["decoder_ratio"] == pytest.approx(dec["mean"] / dec["largest_model_params"])
    acc = rep["config"]["acceptance"]
    assert acc["decoder_params_le_1pct"] == (dec["decoder_ratio"] <= 0.01)
    assert acc["logah_row_norm_cv_lt_0.5_every_run"] == all(v < 0.5 for v in lo["per_run"])
    assert set(acc["margin_vs_random_at_step"]) == {"0", "2"}


def test_row_stats_sees_tiling(import_script):
    bench = import_script("logah")
    block = torch.randn(4, 4)
    stats = bench.row_stats(block.repeat(3, 2))
    assert stats["distinct_rows"] == 4 and stats["rank"] == 4 and stats["shape"] == [12, 8]
    ones = bench.row_stats(torch.ones(5, 3))
    assert ones["row_norm_cv"] == pytest.approx(0.0, abs=1e-7)


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--meta-lr", "nan"],
     "argument --meta-lr: must be a finite number, got nan"),
    (["--hid", "0"],
     "argument --hid: must be >= 1, got 0"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("logah", flags)
