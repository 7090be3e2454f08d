"""The Auto-GNN demo section: a 4-child search on Cora learns and reports parameter sharing."""

import pytest

from graphkit.cli.demos import autognn

KEYS = {"method", "dataset", "metric", "value", "seconds"}


def test_autognn_demo_finds_a_child_well_above_chance(data_root):
    rows = autognn.run()
    assert all(set(r) == KEYS for r in rows)
    by = {r["metric"]: r["value"] for r in rows}
    assert set(by) == {"best_val_acc", "best_test_acc", "inherited_children"}
    # Cora: 7 classes, the majority class is about 0.32 of validation and test nodes; a broken
    # search, operator or trainer stays near chance
    assert by["best_val_acc"] > 0.5 and by["best_test_acc"] > 0.5
    inherited = by["inherited_children"]
    assert inherited == int(inherited) and 0 <= inherited < autognn.BUDGET  # never the first
    assert all(0 < r["seconds"] < 60 for r in rows)


def test_autognn_demo_lets_a_missing_dataset_propagate(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_DATA", str(tmp_path))
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="Cora"):
        autognn.run()
