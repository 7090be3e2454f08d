"""benchmarks/temporal_link.py end to end on the --quick stream: the shared report, NAT against
TGN in the same run, --setting, --pres, and argparse errors for bad flags."""

import json

import pytest
import torch
from torch_geometric.data import TemporalData

from graphkit.temporal import PRES, TGN

FIELDS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def _run(script, tmp_path, *flags):
    out = tmp_path / "temporal_link.json"
    script.main(["--quick", "--json", str(out), *flags])
    return json.loads(out.read_text())


def test_quick_run_reports_ap_and_auc_of_nat_and_tgn(import_script, tmp_path):
    report = _run(import_script("temporal_link"), tmp_path, "--runs", "2")
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert report["config"]["epochs"] == 1  # --quick trains one epoch and says so
    assert {(p["system"], p["metric"]) for p in report["paper"]} == {("tgn (PyG, issue 7)", "ap")}
    rows = report["rows"]
    assert all(FIELDS <= r.keys() for r in rows)
    # both models of the default comparison, each in both settings with both metrics
    assert sorted((r["system"], r["dataset"], r["metric"]) for r in rows) == sorted(
        (model, f"temporal-sbm/{setting}", metric) for model in ("nat", "tgn")
        for setting in ("transductive", "inductive") for metric in ("ap", "auc"))
    for r in rows:
        assert r["runs"] == 2 and len(r["per_run"]) == 2
        assert all(0.0 <= v <= 1.0 for v in r["per_run"]) and 0.0 <= r["pooled_mean"] <= 1.0
        assert r["epochs"] == 1 and r["setting"] == r["dataset"].split("/")[1]
        # seconds: training wall time of a run, here one epoch
        assert r["seconds"] > 0 and r["seconds"] == pytest.approx(r["epoch_seconds"])
        assert r["peak_rss_mb"] > 0
    # the synthetic stream has structure: NAT learns it in one epoch
    (nat_ap,) = [r["mean"] for r in rows
                 if r["system"] == "nat" and r["dataset"].endswith("transductive")
                 and r["metric"] == "ap"]
    assert nat_ap > 0.6


def test_setting_flag_keeps_only_that_setting(import_script, tmp_path):
    report = _run(import_script("temporal_link"), tmp_path, "--runs", "1", "--model", "nat",
                  "--setting", "inductive")
    assert [(r["dataset"], r["metric"]) for r in report["rows"]] == [
        ("temporal-sbm/inductive", "ap"), ("temporal-sbm/inductive", "auc")]


def test_run_r_uses_seed_plus_r(import_script, tmp_path):
    tl = import_script("temporal_link")
    flags = ["--model", "nat", "--setting", "transductive"]
    two = _run(tl, tmp_path, *flags, "--runs", "2", "--seed", "0")["rows"]
    one = _run(tl, tmp_path, *flags, "--runs", "1", "--seed", "1")["rows"]
    assert [r["metric"] for r in one] == [r["metric"] for r in two] == ["ap", "auc"]
    assert [r["per_run"] for r in one] == [r["per_run"][1:] for r in two]
    assert two[0]["per_run"][0] != two[0]["per_run"][1]


def test_pres_wraps_the_model_and_names_the_row(import_script, tmp_path, monkeypatch):
    tl = import_script("temporal_link")
    built = []

    def spy(data, args, factory=tl.MODELS["jodie"]):
        built.append(factory(data, args))
        return built[-1]

    monkeypatch.setitem(tl.MODELS, "jodie", spy)
    report = _run(tl, tmp_path, "--runs", "1", "--model", "jodie", "--pres",
                  "--setting", "transductive")
    assert len(built) == 1 and isinstance(built[0], PRES)
    assert {r["system"] for r in report["rows"]} == {"jodie+pres"}
    assert report["config"]["pres"] is True



def test_issue_model_names_run_under_pres(import_script, tmp_path):
    # issue 8 names `--model {tgn,jodie,apan}` with `--pres`: tgn is the family's TGN on
    # graphkit's TemporalMemory (PyG's TGNMemory cannot be wrapped), run once with tgn-memory
    tl = import_script("temporal_link")
    report = _run(tl, tmp_path, "--runs", "1", "--model", "tgn", "tgn-memory", "jodie", "apan",
                  "--pres", "--setting", "transductive", "--max-events", "400")
    systems = [r["system"] for r in report["rows"] if r["metric"] == "ap"]
    assert systems == ["tgn-memory+pres", "jodie+pres", "apan+pres"]
    assert report["config"]["model"] == ["tgn-memory", "jodie", "apan"]
    # without --pres, tgn stays PyG's TGNMemory baseline of the NAT issue
    data = TemporalData(src=torch.tensor([0]), dst=torch.tensor([1]), t=torch.tensor([0]),
                        msg=torch.zeros(1, 2))
    assert type(tl.MODELS["tgn"](data, None)) is TGN

@pytest.mark.parametrize("flags, message", [
    (["--dataset", "nosuch"], "invalid choice: 'nosuch'"),
    (["--dataset", "Cora"], "invalid choice: 'Cora'"),  # a static graph, not an event stream
    (["--model", "nosuch"], "unknown model(s) ['nosuch']"),
    (["--model", "nat", "--pres"], "--pres wraps only"),  # NAT has no memory for PRES
    (["--setting", "both"], "invalid choice: 'both'"),
])
def test_bad_flags_are_argparse_errors(usage_error, tmp_path, flags, message):
    assert message in usage_error("temporal_link", ["--json", str(tmp_path / "x.json"), *flags])
    assert not (tmp_path / "x.json").exists()


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"],
     "argument --batch-size: must be >= 1, got 0"),
    (["--replace-prob", "nan"],
     "argument --replace-prob: must be a finite number"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("temporal_link", flags)
