import re
import subprocess
import sys

import pytest

import graphkit
from graphkit.cli import main
from graphkit.cli.demos import foundation


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"graphkit {graphkit.__version__}"


def test_python_dash_m_graphkit_version():
    out = subprocess.run([sys.executable, "-m", "graphkit", "--version"], capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0
    assert out.stdout.strip() == f"graphkit {graphkit.__version__}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: graphkit" in capsys.readouterr().err


def test_datasets_list_names_embedded_datasets(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    names = {line.split()[0] for line in out.splitlines()[1:] if line and not line[0].isspace()}
    assert {"karate", "csbm", "Cora"} <= names
    assert "citation:" in out and "license:" in out
    # columns line up: every row has the header's column gaps (a long task used to push on)
    header, *rows = out.splitlines()
    for column in ("task", "size", "source"):
        at = header.index(column)
        for row in rows:
            if row and not row[0].isspace():
                assert row[at - 2:at] == "  " and row[at] != " ", (column, row)


def test_datasets_info(capsys):
    assert main(["datasets", "info", "karate"]) == 0
    assert "karate" in capsys.readouterr().out


def test_datasets_info_unknown_name_is_a_clear_error(capsys):
    assert main(["datasets", "info", "no-such-dataset"]) == 1
    assert "no-such-dataset" in capsys.readouterr().err


@pytest.mark.parametrize("name, match", [
    ("prognn-foo", "unknown dataset 'prognn-foo': the prognn-\\* family holds prognn-citeseer, "
                   "prognn-cora"),
    ("ogbn-foo", "unknown OGB dataset 'ogbn-foo'; known: .*ogbn-arxiv"),
])
def test_datasets_info_of_a_name_outside_its_family_is_an_error(capsys, name, match):
    # the family's facts were printed for a dataset that does not exist
    assert main(["datasets", "info", name]) == 1
    out, err = capsys.readouterr()
    assert out == "" and re.search(match, err), err


@pytest.mark.parametrize("name", ["prognn-cora", "ogbn-arxiv", "prognn-*"])
def test_datasets_info_of_a_family_member_or_the_family(capsys, name):
    assert main(["datasets", "info", name]) == 0
    assert f"name         {name}" in capsys.readouterr().out


def test_foundation_demo_rows():
    rows = foundation.run("cpu")
    assert [r["dataset"].split()[0] for r in rows] == ["karate", "csbm"]
    for r in rows:
        assert set(r) == {"method", "dataset", "metric", "value", "seconds"}
        assert 0.0 <= r["value"] <= 1.0 and r["seconds"] > 0
        assert r["value"] > 0.6  # far above chance (0.5) on both embedded datasets


def test_demo_command_prints_table(capsys):
    assert main(["demo", "--only", "foundation"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["method", "dataset", "metric", "value", "seconds"]
    assert "GCN (graphkit)" in out and "karate" in out and "csbm" in out
