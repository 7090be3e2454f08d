"""Issue 2's convention: every script in ``benchmarks/`` accepts ``--runs``, ``--seed``,
``--device``, ``--json PATH`` and ``--quick``, and, as benchmarks/README says, ``--root``
(internal helpers, ``*_worker.py``, are not
benchmarks and take their own arguments)."""

import argparse
import inspect
import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
# not benchmarks: the workers (``*_worker.py``) and helper modules (``_*.py``)
SCRIPTS = sorted(str(p.relative_to(BENCHMARKS).with_suffix("")) for p in BENCHMARKS.rglob("*.py")
                 if not p.stem.endswith("_worker") and not p.stem.startswith("_"))
# scripts whose work runs on the CPU only: they refuse another --device when parsing
CPU_ONLY = ["graphlets", "graphlet_embeddings", "logah", "pres_intra_batch", "pres_ops"]


class Parsed(Exception):
    """Raised in place of returning the parsed namespace: the script stops before any work."""


def shared_flags(tmp_path) -> list[str]:
    return ["--runs", "2", "--seed", "3", "--device", "cpu", "--json",
            str(tmp_path / "out.json"), "--quick", "--root", str(tmp_path)]


def call_main(module, argv: list[str], monkeypatch) -> None:
    main = module.main
    if inspect.signature(main).parameters:
        main(argv)
    else:
        monkeypatch.setattr(sys, "argv", ["script.py", *argv])
        main()


def test_the_list_holds_every_benchmark():
    assert {"graphlets", "fastrp", "pres_ops", "ogb/node_property"} <= set(SCRIPTS)
    assert not {"graphlets_worker", "fastrp_peer_worker"} & set(SCRIPTS)  # helpers, not benchmarks


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_accepts_the_five_shared_flags(import_script, monkeypatch, tmp_path, name):
    module = import_script(name)
    parse = argparse.ArgumentParser.parse_args

    def stop_after_parsing(self, args=None, namespace=None):
        raise Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop_after_parsing)
    with pytest.raises(Parsed) as parsed:
        call_main(module, shared_flags(tmp_path), monkeypatch)
    args = parsed.value.args[0]
    assert (args.runs, args.seed, args.device, args.quick) == (2, 3, "cpu", True)
    assert str(args.json) == str(tmp_path / "out.json")
    assert str(args.root) == str(tmp_path)


@pytest.mark.parametrize("name", CPU_ONLY)
def test_cpu_only_scripts_name_why_they_refuse_another_device(usage_error, monkeypatch, name):
    # pretend a GPU is present, so that --device cuda passes the shared machine check
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    err = usage_error(name, ["--quick", "--device", "cuda"])
    assert "--device cuda:" in err and "CPU only (use cpu)" in err


def test_bits_probe_runs_and_seed_choose_the_search_seeds(import_script, monkeypatch):
    probe = import_script("lpgnas_bits_probe")
    monkeypatch.setattr(sys, "argv", ["lpgnas_bits_probe.py", "--runs", "2", "--seed", "3"])
    assert probe.parse_args().search_seeds == [3, 4]
    monkeypatch.setattr(sys, "argv", ["lpgnas_bits_probe.py"])
    assert probe.parse_args().search_seeds == [0, 1, 2, 3, 4]  # the earlier default
    monkeypatch.setattr(sys, "argv", ["lpgnas_bits_probe.py", "--search-seeds", "7", "9"])
    assert probe.parse_args().search_seeds == [7, 9]


def test_hypergraph_speed_runs_are_the_timed_passes(import_script, monkeypatch):
    speed = import_script("hypergraph_speed")
    for argv, expected in ((["--runs", "4"], 4), (["--repeats", "6"], 6), ([], 21)):
        monkeypatch.setattr(sys, "argv", ["hypergraph_speed.py", *argv])
        args = speed.parse_args()
        assert args.runs == args.repeats == expected


def test_intra_batch_runs_average_over_split_seeds(import_script, tmp_path):
    intra = import_script("pres_intra_batch")
    out = tmp_path / "ib.json"
    intra.main(["--quick", "--runs", "2", "--batch-sizes", "200", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert rows and all(r["runs"] == 2 and len(r["train_events"]) == 2 for r in rows)


@pytest.mark.parametrize(("name", "kind", "example"), [
    ("hypergraph", "hypergraph", "cocitation-cora"), ("hypergraph_kd_terms", "hypergraph", "hsbm"),
    ("pres_ops", "temporal", "uci"), ("pres_overhead", "temporal", "enron"),
    ("pres_intra_batch", "temporal", "uci"), ("pres_batch_sweep", "temporal", "collegemsg")])
def test_a_dataset_of_another_kind_is_refused_when_parsing(usage_error, name, kind, example):
    # `hypergraph.py --dataset Cora` failed with an AttributeError after parsing
    err = usage_error(name, ["--quick", "--dataset", "Cora"])
    assert f"'Cora' is a node classification dataset; this script needs a {kind} one" in err
    assert example in err


# scripts whose --runs is not "seeds per system": their --help says what a run is there
RUNS_MEAN_ELSE = ["dagnn_speed", "fastrp", "forward_learning", "graphlets", "hypergraph_speed",
                  "pres_ops", "pres_overhead", "sampling", "temporal_link_speed"]


@pytest.mark.parametrize("name", RUNS_MEAN_ELSE)
def test_help_says_what_a_run_is(import_script, monkeypatch, capsys, name):
    module = import_script(name)
    with pytest.raises(SystemExit):
        call_main(module, ["--help"], monkeypatch)
    text = " ".join(capsys.readouterr().out.split())
    assert "--runs RUNS" in text and "repetitions (seeds) per system" not in text
