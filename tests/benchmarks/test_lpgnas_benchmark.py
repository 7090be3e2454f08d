"""benchmarks/lpgnas.py --merge: reports of separate runs joined, candidates of one gamma
united and reselected on validation accuracy only."""

import json

import pytest

from graphkit.benchmarking import summarize, write_report


@pytest.fixture(scope="module")
def bench(import_script):
    return import_script("lpgnas")


def _cand(seed, val, test, size):
    return {"search_seed": seed, "specs": [{"seed": seed}], "probs": {}, "search_seconds": 10.0,
            "size_bytes": size, "val_accs": [val, val], "val_mean": val,
            "test_accs": test, "key": None}


def _report(path, only, lpgnas=(), base=()):
    """``lpgnas``: (gamma, candidates); the row is the best validation candidate, as in main."""
    rows, searched = [], {}
    for name, accs, size in base:
        rows.append(summarize(name, "Cora", "accuracy", accs, 1.0, 1.0, size_bytes=size))
    gammas = []
    for g, cands in lpgnas:
        best = max(cands, key=lambda c: (c["val_mean"], -c["search_seed"]))
        searched[str(g)] = {"rule": "best val", "selected_search_seed": best["search_seed"],
                            "specs": best["specs"], "probs": {}, "candidates": cands}
        rows.append(summarize(f"lpgnas-gamma{g}", "Cora", "accuracy", best["test_accs"], 2.0,
                              1.0, size_bytes=best["size_bytes"],
                              search_seed=best["search_seed"],
                              search_seconds=10.0 * len(cands)))
        gammas.append(g)
    config = {"dataset": "Cora", "gamma": gammas, "only": only, "searched": searched,
              "search_seeds": sorted({c["search_seed"] for _, cs in lpgnas for c in cs})}
    write_report(path, "benchmarks/lpgnas.py", config, rows)
    return path


def test_merge_unites_candidates_and_reselects_on_validation(bench, tmp_path):
    base = [("gcn-w8a8", [0.80, 0.81], 1000.0), ("gcn-w2a8", [0.79, 0.79], 300.0)]
    a = _report(tmp_path / "a.json", ["gcn", "lpgnas"], base=base, lpgnas=[
        (0.5, [_cand(0, 0.70, [0.78, 0.78], 400.0), _cand(1, 0.75, [0.76, 0.76], 900.0)]),
        (1.0, [_cand(0, 0.72, [0.80, 0.80], 350.0)])])
    # seeds 2, 3 added later: at gamma 0.5 seed 3 wins on validation although its test
    # accuracy is lower than seed 0's; at gamma 1.0 the earlier candidate stays selected
    b = _report(tmp_path / "b.json", ["lpgnas"], lpgnas=[
        (0.5, [_cand(2, 0.60, [0.90, 0.90], 200.0), _cand(3, 0.80, [0.77, 0.77], 500.0)]),
        (1.0, [_cand(2, 0.71, [0.81, 0.81], 250.0)])])
    out = tmp_path / "m.json"
    bench.merge([str(a), str(b)], str(out))
    rep = json.loads(out.read_text())
    rows = {r["system"]: r for r in rep["rows"]}
    assert list(rows) == ["gcn-w8a8", "gcn-w2a8", "lpgnas-gamma0.5", "lpgnas-gamma1.0"]
    s = rep["config"]["searched"]
    assert [c["search_seed"] for c in s["0.5"]["candidates"]] == [0, 1, 2, 3]
    assert s["0.5"]["selected_search_seed"] == 3 and rows["lpgnas-gamma0.5"]["search_seed"] == 3
    assert rows["lpgnas-gamma0.5"]["mean"] == pytest.approx(0.77)
    assert rows["lpgnas-gamma0.5"]["search_seconds"] == pytest.approx(40.0)
    assert s["1.0"]["selected_search_seed"] == 0 and rows["lpgnas-gamma1.0"]["size_bytes"] == 350
    assert rep["config"]["search_seeds"] == {"0.5": [0, 1, 2, 3], "1.0": [0, 2]}
    assert rep["config"]["gamma"] == [0.5, 1.0]
    pts = rep["config"]["analysis"]["points"]
    # gamma 0.5: 500 bytes, 0.77 < gcn-w2a8's 0.79; gamma 1.0: 350 bytes, 0.80 >= 0.79
    assert not pts["lpgnas-gamma0.5"]["dominates"] and pts["lpgnas-gamma1.0"]["dominates"]
    assert rep["config"]["analysis"]["dominating"] == 1
    assert out.with_suffix(".png").exists()


def test_merge_refuses_repeats(bench, tmp_path):
    a = _report(tmp_path / "a.json", ["lpgnas"], lpgnas=[(0.5, [_cand(0, 0.7, [0.7], 1.0)])])
    b = _report(tmp_path / "b.json", ["lpgnas"], lpgnas=[(0.5, [_cand(0, 0.7, [0.7], 1.0)])])
    with pytest.raises(ValueError, match="search seed"):
        bench.merge([str(a), str(b)], None)
    base = [("gcn-w8a8", [0.8], 1.0)]
    c = _report(tmp_path / "c.json", ["gcn"], base=base)
    d = _report(tmp_path / "d.json", ["gcn"], base=base)
    with pytest.raises(ValueError, match="baseline"):
        bench.merge([str(c), str(d)], None)
