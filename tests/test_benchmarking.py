import argparse
import io
import json
import math
import os
import statistics
import sys
import time

import pytest
import torch

from graphkit.benchmarking import (
    QUICK_TEMPORAL,
    Row,
    benchmark_parser,
    check_recipe,
    count,
    dataset_name,
    figure_file,
    measure,
    print_table,
    read_report,
    read_rows,
    real,
    report_file,
    report_of,
    summarize,
    temporal_stream,
    write_report,
)


def test_parser_has_the_shared_flags(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    args = benchmark_parser("x", runs=3).parse_args([])
    assert (args.runs, args.seed, args.device, args.json, args.quick) == (3, 0, "cpu", None, False)
    args = benchmark_parser("x").parse_args(
        ["--runs", "2", "--seed", "5", "--device", "cuda:0", "--json", "o.json", "--quick",
         "--root", "/data"])
    assert (args.runs, args.seed, args.device, args.json, args.quick, args.root) == (
        2, 5, "cuda:0", "o.json", True, "/data")


@pytest.mark.parametrize("argv, message", [
    (["--runs", "0"], "argument --runs: must be >= 1, got 0"),
    (["--runs", "two"], "argument --runs: invalid int value: 'two'"),
    (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["--device", "gpu0"], "argument --device: 'gpu0' is not a torch device"),
    (["--json", "/nonexistent-graphkit-dir/r.json"], "output folder /nonexistent-graphkit-dir "
                                                     "does not exist"),
])
def test_parser_rejects_bad_shared_flags_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit):
        benchmark_parser("x").parse_args(argv)
    assert message in capsys.readouterr().err


def test_parser_rejects_a_cuda_device_this_machine_lacks(monkeypatch, capsys):
    # used to fail with torch's "Torch not compiled with CUDA enabled" after loading the data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        benchmark_parser("x").parse_args(["--device", "cuda"])
    assert "argument --device: cuda: CUDA is not available" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert benchmark_parser("x").parse_args(["--device", "cuda:1"]).device == "cuda:1"
    with pytest.raises(SystemExit):
        benchmark_parser("x").parse_args(["--device", "cuda:2"])
    assert "cuda:2: this machine has 2 CUDA device(s)" in capsys.readouterr().err


def test_parser_accepts_a_json_path_in_an_existing_folder(tmp_path):
    args = benchmark_parser("x").parse_args(["--json", str(tmp_path / "r.json"), "--seed", "0"])
    assert args.json == str(tmp_path / "r.json") and args.runs == 10


def test_summarize_mean_and_sample_std():
    row = summarize("sys", "ds", "acc", [0.5, 0.7, 0.9], seconds=1.5, peak_rss_mb=10.0, k=3)
    assert row.mean == pytest.approx(0.7)
    assert row.std == pytest.approx(0.2)
    assert row.runs == 3
    assert row.to_dict() == {"system": "sys", "dataset": "ds", "metric": "acc",
                             "mean": row.mean, "std": row.std, "runs": 3, "seconds": 1.5,
                             "peak_rss_mb": 10.0, "k": 3, "per_run": [0.5, 0.7, 0.9]}
    assert summarize("s", "d", "m", [0.25], 0.0, 0.0).std == 0.0
    # a caller's own per-run record wins over the values
    assert summarize("s", "d", "m", [0.25], 0.0, 0.0, per_run=[1]).extra["per_run"] == [1]


def test_a_median_row_says_so():
    row = summarize("sys", "ds", "seconds", [1.0, 2.0, 9.0], 12.0, 1.0, statistic="median")
    assert row.mean == 2.0 and row.std == pytest.approx(statistics.stdev([1.0, 2.0, 9.0]))
    assert row.to_dict()["statistic"] == "median"
    assert "statistic" not in summarize("s", "d", "m", [1.0], 0.0, 0.0).to_dict()
    assert summarize("s", "d", "m", [1.0, math.nan], 0.0, 0.0,
                     statistic="median").extra["statistic"] == "median"
    with pytest.raises(ValueError, match="statistic must be"):
        summarize("s", "d", "m", [1.0], 0.0, 0.0, statistic="max")


def test_a_diverged_run_is_reported_not_fatal(tmp_path):
    row = summarize("sys", "ds", "acc", [0.5, float("nan"), float("inf")], 1.0, 1.0)
    assert math.isnan(row.mean) and math.isnan(row.std)
    assert row.extra["non_finite_runs"] == 2
    path = tmp_path / "r.json"
    write_report(path, "x.py", {"lr": float("nan")}, [row])

    def strict(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    report = json.loads(path.read_text(), parse_constant=strict)
    assert report["config"]["lr"] is None
    assert report["rows"][0]["mean"] is None and report["rows"][0]["per_run"] == [0.5, None, None]
    # read back (a --merge does), the nulls are NaN again and the table prints
    back = Row.from_dict(report["rows"][0])
    assert math.isnan(back.mean) and math.isnan(back.std)
    assert back.extra["per_run"][0] == 0.5 and math.isnan(back.extra["per_run"][1])
    out = io.StringIO()
    print_table([back], file=out)
    assert "nan" in out.getvalue()


def test_a_script_can_leave_out_shared_flags_it_does_not_use():
    p = benchmark_parser("x", omit=("device", "runs"))
    with pytest.raises(SystemExit):
        p.parse_args(["--device", "cuda"])
    assert not hasattr(p.parse_args([]), "runs")
    for flag in ("threads", "json"):
        with pytest.raises(ValueError, match="cannot be left out"):
            benchmark_parser("x", omit=(flag,))


def test_summarize_rejects_no_values():
    with pytest.raises(ValueError, match="no measured values"):
        summarize("sys", "ds", "acc", [], 0.0, 0.0)


def test_measure_times_the_block_and_records_rss():
    with measure() as m:
        time.sleep(0.05)
        block = bytearray(32 * 2**20)
    assert m.seconds >= 0.05
    assert m.peak_rss_mb > 32
    assert m.peak_cuda_mb is None
    del block


def test_write_report_shared_format(tmp_path):
    rows = [Row("a", "d", "acc", 0.5, 0.1, 2, 1.0, 3.0, {"note": "x"})]
    config = argparse.Namespace(runs=2, fn=print)  # a function is not JSON: left out
    path = tmp_path / "out" / "r.json"
    report = write_report(path, "benchmarks/x.py", config, rows,
                          paper=[{"dataset": "d", "value": 0.6}])
    on_disk = json.loads(path.read_text())
    assert on_disk == report
    assert set(on_disk) == {"script", "config", "rows", "paper", "machine"}
    assert on_disk["machine"]["cpu_count"] == os.cpu_count() and on_disk["machine"]["torch"]
    assert on_disk["config"] == {"runs": 2}
    assert on_disk["rows"][0]["note"] == "x" and on_disk["rows"][0]["mean"] == 0.5
    assert write_report(None, "s", {}, rows)["rows"] == on_disk["rows"]


def test_read_rows_inverts_write_report(tmp_path):
    a = [Row("a", "d", "acc", 0.5, 0.1, 2, 1.0, 3.0, {"note": "x", "run_values": [0.4, 0.6]})]
    b = [Row("b", "d", "acc", 0.7, 0.0, 1, 2.0, 4.0)]
    write_report(tmp_path / "a.json", "s", {}, a)
    write_report(tmp_path / "b.json", "s", {}, b)
    assert read_rows(tmp_path / "a.json", tmp_path / "b.json") == a + b


def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=count(1))
    p.add_argument("--warmup", type=count(0))
    p.add_argument("--lr", type=real(0, open_low=True))
    p.add_argument("--rate", type=real(0, 1))
    p.add_argument("--merge", type=report_file, nargs="+")
    p.add_argument("--plot", type=figure_file)
    p.add_argument("--dataset", type=dataset_name, nargs="+")
    return p


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
    (["--warmup", "-1"], "argument --warmup: must be >= 0, got -1"),
    (["--lr", "0"], "argument --lr: must be > 0, got 0"),
    (["--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--rate", "1.5"], "argument --rate: must be <= 1, got 1.5"),
    (["--rate", "-0.1"], "argument --rate: must be >= 0, got -0.1"),
    (["--merge", "/nonexistent-graphkit-dir/a.json"],
     "argument --merge: cannot read report /nonexistent-graphkit-dir/a.json"),
    (["--plot", "/nonexistent-graphkit-dir/p.png"],
     "argument --plot: output folder /nonexistent-graphkit-dir does not exist"),
    (["--plot", "p.docx"], "argument --plot: output p.docx must end in"),
    (["--dataset", "Cora", "Coraa"], "argument --dataset: unknown dataset 'Coraa'; did you mean"),
])
def test_count_real_and_report_file_name_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_count_real_and_report_file_accept_valid_values(tmp_path):
    write_report(tmp_path / "a.json", "s", {}, [])
    args = _parser().parse_args(["--epochs", "1_000", "--warmup", "0", "--lr", "1e-3", "--rate",
                                 "1", "--merge", str(tmp_path / "a.json"), "--plot",
                                 str(tmp_path / "p.PNG"), "--dataset", "cora", "prognn-cora"])
    assert (args.epochs, args.warmup, args.lr, args.rate) == (1000, 0, 1e-3, 1.0)
    assert args.merge == [str(tmp_path / "a.json")]
    assert args.dataset == ["cora", "prognn-cora"]


@pytest.mark.parametrize("text, message", [
    ("{not json", "report .*a.json is not JSON"),
    ("[1, 2]", "a.json is not a benchmark report"),
    ('{"rows": []}', "a.json is not a benchmark report"),
])
def test_read_report_and_read_rows_name_a_malformed_file(tmp_path, text, message):
    (tmp_path / "a.json").write_text(text)
    for read in (read_report, read_rows):
        with pytest.raises(ValueError, match=message):
            read(tmp_path / "a.json")


def test_read_report_of_another_script_is_named(tmp_path):
    write_report(tmp_path / "a.json", "benchmarks/x.py", {}, [])
    assert read_report(tmp_path / "a.json", "benchmarks/x.py")["script"] == "benchmarks/x.py"
    with pytest.raises(ValueError, match="a.json is a report of benchmarks/x.py, not of "
                                         "benchmarks/y.py"):
        read_report(tmp_path / "a.json", "benchmarks/y.py")
    p = argparse.ArgumentParser()
    p.add_argument("--merge", type=report_of("benchmarks/y.py"))
    with pytest.raises(SystemExit):
        p.parse_args(["--merge", str(tmp_path / "a.json")])


@pytest.mark.parametrize("settings, message", [
    ({"nokey": 1}, "--model x: .*unexpected keyword argument 'nokey'"),
    ({"lr": "abc"}, "--model x: lr must be a number, got 'abc'"),
    ({"epochs": True}, "--model x: epochs must be a number, got True"),
])
def test_check_recipe_names_a_setting_that_cannot_be_built(settings, message):
    with pytest.raises(ValueError, match=message):
        check_recipe("gcn", "Cora", settings, "--model x")


def test_check_recipe_accepts_valid_settings_and_keeps_the_random_state():
    import torch

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_recipe("gcn", "Cora", {"lr": 0.1, "patience": None, "dropout": 0.3}, "--model x")
    check_recipe("dagnn", "cora", {}, "--model x")
    assert torch.equal(torch.rand(3), expected)


def test_row_from_dict_names_missing_fields():
    with pytest.raises(ValueError, match="lacks.*'std'"):
        Row.from_dict({"system": "a", "dataset": "d", "metric": "acc", "mean": 0.5, "runs": 1,
                       "seconds": 0.0, "peak_rss_mb": 0.0})


def test_print_table_one_line_per_row():
    out = io.StringIO()
    print_table([Row("a", "d", "acc", 0.5, 0.1, 2, 1.0, 3.0)], file=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["system", "dataset", "metric", "mean", "std", "runs", "seconds",
                                "rss", "MB"]
    assert lines[2].split() == ["a", "d", "acc", "0.5000", "0.1000", "2", "1.000", "3.0"]


def test_temporal_stream_quick_is_small_and_named(tmp_path):
    data = temporal_stream("uci", root=str(tmp_path), quick=True)
    assert data.num_events == 4000 and int(data.src.max()) < 200
    assert QUICK_TEMPORAL == "temporal-sbm"


def test_temporal_stream_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="uci"):
        temporal_stream("uci", root=str(tmp_path))


def test_print_table_writes_to_the_current_stdout(monkeypatch):
    # the default stream is looked up per call, not frozen when the module was imported
    rows = [Row("a", "d", "acc", 0.5, 0.1, 2, 1.0, 3.0)]
    buf = io.StringIO()
    monkeypatch.setattr("sys.stdout", buf)
    print_table(rows)
    assert "a" in buf.getvalue().splitlines()[2]


def test_run_main_turns_a_refused_input_into_one_line(capsys, monkeypatch):
    # a missing data file ended the benchmark scripts in a 20-line traceback
    from graphkit.benchmarking import run_main

    monkeypatch.setattr(sys, "argv", ["bench.py"])

    def missing():
        raise FileNotFoundError("dataset 'Cora' needs the file ind.cora.x")

    with pytest.raises(SystemExit) as exc:
        run_main(missing)
    assert exc.value.code == 1
    assert capsys.readouterr().err == "bench.py: error: dataset 'Cora' needs the file ind.cora.x\n"
    monkeypatch.setenv("GRAPHKIT_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        run_main(missing)
    run_main(lambda: None)  # a normal run returns


def test_every_benchmark_script_runs_its_main_through_run_main():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "benchmarks"
    scripts = [p for p in [*root.glob("*.py"), *root.glob("ogb/*.py")]
               if not p.name.startswith("_") and not p.stem.endswith("_worker")]
    assert len(scripts) >= 20
    missing = [p.name for p in scripts if "    run_main(main)\n" not in p.read_text()]
    assert not missing, f"these scripts call main() directly: {missing}"


def test_quick_says_which_stream_stands_in_for_the_dataset(capsys):
    # --quick replaced --dataset without a word (the rows named temporal-sbm, the config uci)
    from graphkit.benchmarking import QUICK_TEMPORAL, temporal_stream

    data = temporal_stream("uci", None, quick=True)
    assert data.num_nodes == 200
    assert f"--quick: a 200-node {QUICK_TEMPORAL} stream stands in for uci" in \
        capsys.readouterr().err
    temporal_stream(QUICK_TEMPORAL, None, quick=True)
    assert capsys.readouterr().err == ""


def test_a_script_can_say_what_a_shared_flag_means_there(capsys):
    p = benchmark_parser("x", helps={"runs": "timed calls per operation"})
    with pytest.raises(SystemExit):
        p.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "timed calls per operation" in out and "first seed" in out
    with pytest.raises(ValueError, match="does not offer"):
        benchmark_parser("x", helps={"epochs": "?"})
    with pytest.raises(ValueError, match="does not offer"):
        benchmark_parser("x", omit=("device",), helps={"device": "?"})
