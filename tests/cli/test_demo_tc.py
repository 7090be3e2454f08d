"""The TC demo section on real Cora: exact TC agrees with its loop oracle and ATC tracks it."""

from pathlib import Path

import pytest

KEYS = {"method", "dataset", "metric", "value", "seconds"}


def test_tc_demo_matches_the_oracle_and_atc_correlates(data_root, monkeypatch):
    if not (Path(data_root) / "Planetoid" / "Cora").is_dir():
        pytest.skip(f"Cora is not under {data_root}")
    monkeypatch.setenv("GRAPHKIT_DATA", data_root)
    from graphkit.cli.demos import tc

    rows = tc.run()
    assert all(set(r) == KEYS for r in rows) and all(r["seconds"] >= 0 for r in rows)
    by = {(r["method"], r["metric"]): r["value"] for r in rows}
    for k in tc.HOPS:
        # the vectorised TC is the official cal_tc up to float64 round-off
        assert by[(f"TC vs loop oracle K={k}", "max_abs_error")] < 1e-9
        assert 0 < by[(f"TC exact K={k}", "mean_tc_test_nodes")] <= 1
        # ATC approximates TC: a clearly positive correlation (the benchmark's is about 0.6)
        assert by[(f"ATC d={tc.ATC_DIM} vs TC K={k}", "pearson")] > 0.3
