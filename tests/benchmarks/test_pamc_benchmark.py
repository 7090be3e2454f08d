"""benchmarks/pamc.py end to end on a small contextual SBM: both losses from one pretrained
encoder in one run, their clustering, time and memory rows, and the ratios between them."""

import json

import pytest

ROW_KEYS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}
PER_SYSTEM = {"acc", "nmi", "ari", "f1", "acc_best_epoch", "nmi_best_epoch", "ari_best_epoch",
              "f1_best_epoch", "epoch_seconds", "peak_rss_mb", "rss_increase_mb", "loss_seconds",
              "loss_rss_increase_mb"}
FLAGS = ["--quick", "--dataset", "csbm", "--nodes", "240", "--features", "12", "--classes", "3",
         "--hidden", "32", "32"]


def run(import_script, tmp_path, *flags):
    out = tmp_path / "pamc.json"
    import_script("pamc").main([*FLAGS, *flags, "--json", str(out)])
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["script"] == "benchmarks/pamc.py"
    assert all(ROW_KEYS <= set(r) for r in report["rows"])
    return report


def test_quick_run_compares_both_losses(import_script, tmp_path):
    report = run(import_script, tmp_path)
    rows = report["rows"]
    assert report["config"]["epochs"] == 3 and report["config"]["runs"] == 1
    assert report["config"]["hidden"] == [32, 32]
    for system, loss in [("PamC (meta-node loss)", "pamc"), ("SCGC* (dense InfoNCE)", "infonce")]:
        mine = {r["metric"]: r for r in rows if r["system"] == system}
        assert set(mine) == PER_SYSTEM
        assert all(r["dataset"] == "csbm-240n" and r["runs"] == 1 for r in mine.values())
        assert all(r["loss"] == loss for r in mine.values())
        for m in ("acc", "nmi", "f1", "acc_best_epoch"):
            assert 0.0 <= mine[m]["mean"] <= 1.0
        assert mine["epoch_seconds"]["mean"] > 0 and mine["peak_rss_mb"]["mean"] > 0
    assert {r["alpha"] for r in rows if r["system"].startswith("SCGC")} == {1.0}  # SCGC* config
    ratios = {r["metric"]: r for r in rows if r["system"] == "pamc vs infonce"}
    assert {"train_speedup", "peak_rss_ratio", "loss_speedup"} <= set(ratios)
    for r in ratios.values():
        assert r["mean"] >= 0 and r["numerator"] == "infonce" and r["denominator"] == "pamc"
    assert {p["dataset"] for p in report["paper"]} >= {"usps"}


def test_one_loss_and_same_config(import_script, tmp_path):
    report = run(import_script, tmp_path, "--loss", "infonce", "--same-config")
    systems = {r["system"] for r in report["rows"]}
    assert systems == {"SCGC* (dense InfoNCE)"}  # no ratio rows without the other loss
    assert {r["alpha"] for r in report["rows"]} == {2.0}  # PamC's settings


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "PubMed"], "invalid choice: 'PubMed'"),
    (["--epochs", "0"], "--epochs must be a positive integer"),
    (["--pretrain-epochs", "-1"], "--pretrain-epochs must be >= 0"),
    (["--hidden", "0"], "--hidden widths must be positive integers"),
])
def test_bad_flags_are_argparse_errors(usage_error, flags, message):
    assert message in usage_error("pamc", flags)
