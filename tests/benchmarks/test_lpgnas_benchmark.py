"""benchmarks/lpgnas.py: --merge (reports of separate runs joined, candidates of one gamma
united and reselected on validation accuracy only), the recipe rule, stored candidates;
benchmarks/lpgnas_bits_probe.py's forced-width probe."""

import json
import sys

import pytest
import torch

from graphkit.benchmarking import summarize, write_report


@pytest.fixture(scope="module")
def bench(import_script):
    return import_script("lpgnas")


def _cand(seed, val, test, size, bits=(8, 4)):
    return {"search_seed": seed, "specs": [{"seed": seed, "weight_bits": b} for b in bits],
            "probs": {}, "search_seconds": 10.0,
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
        (1.0, [_cand(2, 0.71, [0.81, 0.81], 250.0, bits=(16, 8))])])
    out = tmp_path / "m.json"
    bench.merge([str(a), str(b)], str(out))
    rep = json.loads(out.read_text())
    rows = {r["system"]: r for r in rep["rows"] if r["metric"] == "accuracy"}
    assert list(rows) == ["gcn-w8a8", "gcn-w2a8", "lpgnas-gamma0.5", "lpgnas-gamma1.0"]
    sizes = {r["system"]: r["mean"] for r in rep["rows"] if r["metric"] == "size_bytes"}
    assert sizes == {"gcn-w8a8": 1000, "gcn-w2a8": 300, "lpgnas-gamma0.5": 500,
                     "lpgnas-gamma1.0": 350}
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
    # every search described: 2x smaller than W8A8 GCN (1000 bytes) means <= 500 bytes
    srch = rep["config"]["analysis"]["search"]
    assert [c["search_seed"] for c in srch["0.5"]["within_2x_of_w8a8"]] == [0, 2, 3]
    assert srch["0.5"]["within_2x_of_w8a8"][1]["accuracy_diff"] == pytest.approx(0.90 - 0.805)
    assert srch["1.0"]["within_2x_of_w8a8"][0]["size_ratio"] == pytest.approx(1000 / 350)
    assert (srch["1.0"]["layers_ge8"], srch["1.0"]["layers"]) == (3, 4)
    assert (srch["1.0"]["searches_all_ge8"], srch["1.0"]["searches"]) == (1, 2)
    assert srch["1.0"]["weight_bits"] == {"0": [8, 4], "2": [16, 8]}
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


def test_merge_refuses_mixed_bias_accounting(bench, tmp_path):
    # a report without the key predates --bias-bits: biases were 32-bit words
    old = _report(tmp_path / "a.json", ["gcn"], base=[("gcn-w8a8", [0.8], 1.0)])
    new = _report(tmp_path / "b.json", ["lpgnas"], lpgnas=[(0.5, [_cand(0, 0.7, [0.7], 1.0)])])
    rep = json.loads(open(new).read())
    rep["config"]["bias_bits"] = None
    open(new, "w").write(json.dumps(rep))
    with pytest.raises(ValueError, match="bias accounting"):
        bench.merge([str(old), str(new)], None)
    rep["config"]["bias_bits"] = 32
    open(new, "w").write(json.dumps(rep))
    bench.merge([str(old), str(new)], None)


def test_merge_refuses_mixed_splits(bench, tmp_path):
    # a report without the key predates --split: the public split
    old = _report(tmp_path / "a.json", ["gcn"], base=[("gcn-w8a8", [0.8], 1.0)])
    new = _report(tmp_path / "b.json", ["lpgnas"], lpgnas=[(0.5, [_cand(0, 0.7, [0.7], 1.0)])])
    rep = json.loads(open(new).read())
    for split, seed, ok in (("supervised", 0, False), ("public", 1, False), ("public", 0, True)):
        rep["config"]["split"], rep["config"]["split_seed"] = split, seed
        open(new, "w").write(json.dumps(rep))
        if ok:
            bench.merge([str(old), str(new)], None)
        else:
            with pytest.raises(ValueError, match="different splits"):
                bench.merge([str(old), str(new)], None)


def test_quick_run_on_the_supervised_split(bench, monkeypatch, tmp_path):
    out = tmp_path / "q.json"
    monkeypatch.setattr(sys, "argv", ["lpgnas.py", "--quick", "--dataset", "Cora", "--split",
                                      "supervised", "--only", "gcn", "--json", str(out)])
    bench.main()
    rep = json.loads(out.read_text())
    assert rep["config"]["split"] == "supervised" and rep["config"]["split_seed"] == 0
    assert {r["system"] for r in rep["rows"]} >= {"gcn-w32a32", "gcn-w8a8"}
    # 1,708 training nodes: the full-supervised GCN is far above the public split's ~0.8
    assert min(r["mean"] for r in rep["rows"]
               if r["system"] == "gcn-w32a32" and r["metric"] == "accuracy") > 0.83


def test_every_system_has_an_accuracy_and_a_size_bytes_row(bench, monkeypatch, tmp_path,
                                                           capsys):
    out = tmp_path / "q.json"
    monkeypatch.setattr(sys, "argv", ["lpgnas.py", "--quick", "--dataset", "cora", "--only",
                                      "gcn", "lpgnas", "--gamma", "1", "--search-seeds", "0",
                                      "--json", str(out)])
    bench.main()
    assert "Row(" not in capsys.readouterr().out  # a debug print of every row's repr
    rows = json.loads(out.read_text())["rows"]
    systems = ["gcn-w32a32", "gcn-w8a8", "gcn-w4a8", "gcn-w4a4", "gcn-w2a8", "lpgnas-gamma1.0"]
    assert [(r["system"], r["metric"]) for r in rows] == [
        (s, m) for s in systems for m in ("accuracy", "size_bytes")]
    assert {r["dataset"] for r in rows} == {"Cora"}  # the registered spelling
    for acc, size in zip(rows[::2], rows[1::2]):
        assert size["mean"] == acc["size_bytes"] > 0 and size["std"] == 0
        assert size["runs"] == acc["runs"] == 1 and "size_bytes" not in size
    assert rows[3]["mean"] == 23063.0  # W8A8 GCN: 1433*16 + 16 + 16*7 + 7 parameters at 8 bits
    # a report with size rows merges again (its size rows are not repeated baselines), and
    # its accuracy rows alone enter the analysis and the recipe rule
    merged = tmp_path / "m.json"
    bench.merge([str(out)], str(merged))
    again = json.loads(merged.read_text())
    assert [(r["system"], r["metric"], r["mean"]) for r in again["rows"]] == \
        [(r["system"], r["metric"], r["mean"]) for r in rows]
    assert set(again["config"]["analysis"]["points"]) == {"lpgnas-gamma1.0"}
    assert bench.compare_recipes([str(out)], None)["systems"] == sorted(systems)


def test_dataset_takes_registered_node_classification_names(bench, usage_error, monkeypatch,
                                                            tmp_path):
    # PubMed was an argparse choice error; its loader now says which file is missing
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    monkeypatch.setattr(sys, "argv", ["lpgnas.py", "--quick", "--dataset", "PubMed", "--root",
                                      str(tmp_path)])
    with pytest.raises(FileNotFoundError, match=r"dataset 'PubMed' needs the file ind\.pubmed"):
        bench.main()
    assert "dataset 'uci' is for temporal link prediction" in usage_error(
        "lpgnas", ["--dataset", "uci"])
    assert "unknown dataset 'pubmedd'" in usage_error("lpgnas", ["--dataset", "pubmedd"])


def test_merge_refuses_mixed_search_settings(bench, tmp_path):
    # baselines merge with any search; two searches only with the same --gumbel / --arch-loss
    base = _report(tmp_path / "base.json", ["gcn"], base=[("gcn-w8a8", [0.8], 1.0)])
    val = _report(tmp_path / "val.json", ["lpgnas"], lpgnas=[(0.5, [_cand(0, 0.7, [0.7], 1.0)])])
    train = _report(tmp_path / "train.json", ["lpgnas"],
                    lpgnas=[(0.5, [_cand(1, 0.7, [0.7], 1.0)])])
    rep = json.loads(open(train).read())
    rep["config"]["arch_loss"] = "train"
    open(train, "w").write(json.dumps(rep))
    bench.merge([str(base), str(train)], None)
    with pytest.raises(ValueError, match="different settings"):
        bench.merge([str(val), str(train)], None)


def _recipe_report(path, recipe, vals):
    rows = [summarize(name, "Cora", "accuracy", [0.5], 1.0, 1.0, size_bytes=1.0,
                      val_accs=[v], val_mean=v) for name, v in vals.items()]
    write_report(path, "benchmarks/lpgnas.py", {"dataset": "Cora", "recipe": recipe}, rows)
    return str(path)


def test_compare_recipes_needs_the_margin(bench, tmp_path):
    qat = _recipe_report(tmp_path / "a.json", "qat", {"gcn-w8a8": 0.78, "gcn-w2a8": 0.76})
    # + 0.0015 on average: below the margin, qat stays
    small = _recipe_report(tmp_path / "b.json", "qat-fp-warmup",
                           {"gcn-w8a8": 0.781, "gcn-w2a8": 0.762})
    assert bench.compare_recipes([qat, small], None)["chosen"] == "qat"
    big = _recipe_report(tmp_path / "c.json", "qat-first-layer-wd",
                         {"gcn-w8a8": 0.79, "gcn-w2a8": 0.77})
    out = tmp_path / "choice.json"
    res = bench.compare_recipes([qat, small, big], str(out))
    assert res["chosen"] == "qat-first-layer-wd"
    assert json.loads(out.read_text())["scores"]["qat"] == pytest.approx(0.77)
    other = _recipe_report(tmp_path / "d.json", "qat-fp-warmup", {"gcn-w8a8": 0.9})
    with pytest.raises(ValueError, match="other systems"):
        bench.compare_recipes([qat, other], None)
    with pytest.raises(ValueError, match="qat recipe"):
        bench.compare_recipes([small, big], None)


def test_load_searched_returns_layer_specs(bench, tmp_path):
    spec = {"conv": "gcn", "out_channels": 16, "act": "relu", "skip": False,
            "weight_bits": 2, "act_bits": 8, "heads": 1}
    cand = {**_cand(3, 0.7, [0.7], 10.0), "specs": [spec, {**spec, "out_channels": 7}]}
    path = _report(tmp_path / "a.json", ["lpgnas"], lpgnas=[(0.5, [cand])])
    import argparse

    config = json.loads(open(path).read())["config"]
    args = argparse.Namespace(dataset="Cora", gamma=[0.5], search_seeds=[3], only=["lpgnas"],
                              **{k: config.get(k, d) for k, d in (
                                  ("split", "public"), ("split_seed", 0), ("bias_bits", 32),
                                  ("gumbel", False), ("arch_loss", "val"))})
    found = bench.load_searched(path, args)[0.5][3]
    assert found.specs[0].weight_bits == 2 and found.specs[1].out_channels == 7
    assert found.seconds == 10.0
    with pytest.raises(ValueError, match="CiteSeer"):
        bench.load_searched(path, argparse.Namespace(**{**vars(args), "dataset": "CiteSeer"}))


def test_bits_probe_forces_each_width_and_restores_logits(import_script):
    probe = import_script("lpgnas_bits_probe")
    from torch_geometric.data import Data

    from graphkit.nn.quant import SearchSpace, Supernet
    g = torch.Generator().manual_seed(0)
    n = 40
    data = Data(x=torch.rand(n, 6, generator=g), y=torch.arange(n) % 3,
                edge_index=torch.randint(0, n, (2, 120), generator=g),
                train_mask=torch.arange(n) < 20, val_mask=torch.arange(n) >= 20)
    net = Supernet(6, 3, SearchSpace(hidden=(4, 8)), gumbel=True)
    with torch.no_grad():
        for p in net.arch_parameters():
            p.normal_(generator=g)
    before = {k: v.detach().clone() for k, v in net.arch.items()}
    net.train()
    table = probe.forced_bits(net, data)
    assert net.training and net.gumbel
    assert all(torch.equal(before[k], v) for k, v in net.arch.items())
    assert set(table) == {0, 1} and set(table[0]) == set(net.space.weight_bits)
    # 16 and 32 bits give (nearly) the same network; 2 bits does not
    r = table[1]
    assert r[16]["val_ce"] == pytest.approx(r[32]["val_ce"], abs=1e-3)
    assert r[2]["train_ce"] != pytest.approx(r[32]["train_ce"], abs=1e-4)
    assert all(v["val_ce_best_t"] <= v["val_ce"] + 1e-6 for v in r.values())


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--gamma", "0.1", "nan"],
     "argument --gamma: must be a finite number, got nan"),
    (["--merge", "/nonexistent-graphkit-dir/r.json"],
     "argument --merge: cannot read report"),
    (["--specs-from", "/nonexistent-graphkit-dir/r.json"],
     "argument --specs-from: cannot read report"),
    (["--search-epochs", "0"],
     "argument --search-epochs: must be >= 1, got 0"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("lpgnas", flags)


@pytest.mark.parametrize("flags, message", [
    (["--arch-lr", "nan"], "argument --arch-lr: must be a finite number, got nan"),
    (["--search-seeds", "0", "-1"], "argument --search-seeds: must be >= 0, got -1"),
])
def test_bits_probe_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("lpgnas_bits_probe", flags)


def test_merge_names_a_report_of_another_script(bench, tmp_path):
    # another script's config has no "dataset": a bare KeyError
    path = tmp_path / "other.json"
    write_report(path, "benchmarks/forward_learning.py", {},
                 [summarize("gcn", "Cora", "acc", [0.8], 1, 1)])
    with pytest.raises(ValueError, match="other.json is a report of "
                                         "benchmarks/forward_learning.py, not of "
                                         "benchmarks/lpgnas.py"):
        bench.merge([str(path)], None)


def test_specs_from_checks_the_stored_search_before_training(bench, tmp_path):
    import argparse
    import json

    path = tmp_path / "searched.json"
    cand = {"search_seed": 0, "specs": [], "probs": [], "search_seconds": 1.0}
    path.write_text(json.dumps({"config": {"dataset": "Cora", "bias_bits": None,
                                           "searched": {"0.5": {"candidates": [cand]}}}}))
    args = argparse.Namespace(dataset="Cora", gamma=[0.5], search_seeds=[0], only=["lpgnas"],
                              split="public", split_seed=0, bias_bits=None, gumbel=False,
                              arch_loss="val")
    assert set(bench.load_searched(str(path), args)) == {0.5}
    # a bare KeyError after the 25 baseline trainings, before
    with pytest.raises(ValueError, match=r"no search at gamma 0.3 for search seed\(s\) \[0\]"):
        bench.load_searched(str(path), argparse.Namespace(**{**vars(args), "gamma": [0.3]}))
    with pytest.raises(ValueError, match=r"seed\(s\) \[7\]"):
        bench.load_searched(str(path), argparse.Namespace(**{**vars(args), "search_seeds": [7]}))
    with pytest.raises(ValueError, match="searched with --split public, this run uses supervised"):
        bench.load_searched(str(path), argparse.Namespace(**{**vars(args), "split": "supervised"}))
