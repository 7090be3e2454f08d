"""benchmarks/pres_batch_sweep.py: --pres-torch-path runs PRES's torch operations, which give
the Numba kernels' results exactly when the coherence term (the one round-off difference) is
off."""

import json

import pytest

import graphkit.temporal.pres as pres
from graphkit.typing import WITH_NUMBA


def test_torch_path_matches_the_kernels_without_coherence(import_script, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr(pres, "WITH_NUMBA", WITH_NUMBA)  # restored after the test
    sweep = import_script("pres_batch_sweep")
    aps = []
    for extra in ([], ["--pres-torch-path"]):
        out = tmp_path / f"sweep{len(extra)}.json"
        sweep.main(["--quick", "--model", "tgn", "--batch-sizes", "100", "--no-plain",
                    "--runs", "1", "--pres-config", "paper:1:0", "--json", str(out), *extra])
        assert pres.WITH_NUMBA == (WITH_NUMBA and not extra)
        rows = json.loads(out.read_text())["rows"]
        aps.append([(r["mean"], r["val_ap"]) for r in rows if r["metric"] == "ap"])
    assert aps[0] and aps[0] == aps[1]


def test_pres_increment_option_reaches_the_wrapper(import_script, tmp_path):
    sweep = import_script("pres_batch_sweep")
    out = tmp_path / "update.json"
    sweep.main(["--quick", "--model", "jodie", "--batch-sizes", "100", "--no-plain", "--runs",
                "1", "--pres-increment", "update", "--json", str(out)])
    rows = [r for r in json.loads(out.read_text())["rows"] if r["metric"] == "ap"]
    assert rows and all(r["increment"] == "update" for r in rows)


def test_quick_runs_the_quick_stream_once(import_script, tmp_path, capsys):
    # both default datasets (uci, enron) became the quick stream: every row was written twice
    sweep = import_script("pres_batch_sweep")
    out = tmp_path / "quick.json"
    sweep.main(["--quick", "--model", "jodie", "--batch-sizes", "100", "--runs", "1",
                "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["system"], r["dataset"]) for r in rows] == [
        ("jodie", "temporal-sbm/bs100"), ("jodie+pres", "temporal-sbm/bs100")]
    assert capsys.readouterr().out.count("temporal-sbm bs 100 seed 0") == 2


def test_freeze_time_encoder_keeps_the_frequencies_out_of_training(import_script):
    import argparse

    sweep = import_script("pres_batch_sweep")
    data = sweep._data("uci", None, True)
    for freeze in (False, True):
        args = argparse.Namespace(event_attention=False, freeze_time_encoder=freeze,
                                  pres_increment="event")
        for setting in (None, sweep.PresConfig("paper", 1.0, 0.1)):
            model = sweep.build_model(sweep.RunSpec("tgn", "uci", 800, setting, 0), args, data)
            inner = model.model if setting is not None else model
            trained = [p.requires_grad for p in inner.memory.time_enc.parameters()]
            assert trained and all(t != freeze for t in trained)
            assert all(p.requires_grad for p in inner.memory.updater.parameters())


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--batch-sizes", "200", "0"],
     "argument --batch-sizes: must be >= 1, got 0"),
    (["--lr", "nan"],
     "argument --lr: must be a finite number, got nan"),
    (["--dataset", "uci", "enronn"],
     "argument --dataset: unknown dataset 'enronn'"),
    (["--pres-config", "paper:1:0.1", "paper:2:0.1"],
     "bad PRES setting 'paper:2:0.1': GAMMA must be <= 1, got 2"),
    (["--pres-config", "paper:1:nan"],
     "bad PRES setting 'paper:1:nan': BETA must be a finite number, got nan"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("pres_batch_sweep", flags)
