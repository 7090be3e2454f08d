"""benchmarks/robustness.py end to end with --quick on Pro-GNN's Cora: the four defences on the
20% metattack graph in one run, STABLE's ablations, the accuracy-against-rate plot (from a run
and from its JSON), and argparse errors for bad flags."""

import json
import sys

import pytest
import torch

from graphkit.robust import undirected_pairs

FIELDS = {"system", "dataset", "metric", "mean", "std", "runs", "seconds", "peak_rss_mb"}


def _main(script, monkeypatch, *flags):
    monkeypatch.setattr(sys, "argv", ["robustness.py", *flags])
    script.main()


def test_quick_run_compares_the_four_defenses(import_script, tmp_path, monkeypatch):
    rb = import_script("robustness")
    out = tmp_path / "rob.json"
    _main(rb, monkeypatch, "--quick", "--runs", "1", "--defense", "stable", "gcn", "jaccard",
          "svd", "--dataset", "cora", "--attack", "meta", "--rate", "0.2", "--json", str(out))
    report = json.loads(out.read_text())
    assert set(report) == {"script", "config", "rows", "paper", "machine"}
    assert {(p["system"], p["dataset"]) for p in report["paper"]} >= {("gcn", "cora:meta@0.2"),
                                                                     ("jaccard", "cora:meta@0.2")}
    rows = {r["system"]: r for r in report["rows"]}
    assert list(rows) == ["stable", "gcn", "jaccard", "svd"]
    for r in rows.values():
        assert FIELDS <= r.keys()
        assert (r["dataset"], r["metric"], r["runs"]) == ("cora:meta@0.2", "accuracy", 1)
        assert (r["name"], r["attack"], r["rate"]) == ("cora", "meta", 0.2)
        assert 0.0 <= r["mean"] <= 1.0 and r["seconds"] > 0 and r["peak_rss_mb"] > 0
    stable = rows["stable"]
    assert stable["config"]["epochs"] == rb.QUICK_EPOCHS
    assert 1 <= stable["refine"]["contrastive_epochs"] <= rb.QUICK_EPOCHS
    assert stable["adversarial_edges"] > 0 and stable["cosine_deleted"] > 0
    assert 0.0 <= stable["cosine_precision"] <= 1.0
    assert rows["jaccard"]["threshold"] in (0.01, 0.03)  # --quick's grid, tuned on validation
    assert set(rows["jaccard"]["val_acc_by_threshold"]) == {"0.01", "0.03"}
    assert rows["svd"]["rank"] == 15
    # the attack works and the Jaccard defence undoes much of it, even in a quick run
    assert rows["jaccard"]["mean"] > rows["gcn"]["mean"] + 0.05


def test_ablations_add_four_stable_variants(import_script, tmp_path, monkeypatch):
    out = tmp_path / "abl.json"
    _main(import_script("robustness"), monkeypatch, "--quick", "--runs", "1", "--defense",
          "gcn", "--attack", "clean", "--ablations", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [r["system"] for r in rows] == ["gcn", "stable-no-recover", "stable-alpha-0.5",
                                           "stable-k0", "stable-raw-features"]
    assert all(r["dataset"] == "cora:clean@0" and 0.0 <= r["mean"] <= 1.0 for r in rows)
    by = {r["system"]: r for r in rows}
    assert by["stable-no-recover"]["config"]["recover_ratio"] == 0.0
    assert by["stable-alpha-0.5"]["config"]["alpha"] == -0.5
    assert by["stable-k0"]["config"]["k"] == 0
    assert by["stable-raw-features"]["config"]["use_embeddings"] is False


def test_random_attack_adds_rate_times_the_edges(import_script, tmp_path, monkeypatch,
                                                 data_root):
    rb = import_script("robustness")
    clean = rb.load_graph("cora", "clean", 0.0, data_root, 0)
    attacked = rb.load_graph("cora", "random", 0.5, data_root, 0)
    edges = undirected_pairs(clean.edge_index, clean.num_nodes).size(1)
    assert undirected_pairs(attacked.edge_index, clean.num_nodes).size(1) == edges + edges // 2
    # seeded by --seed: the same seed draws the same graph, another seed another one
    assert torch.equal(attacked.edge_index,
                       rb.load_graph("cora", "random", 0.5, data_root, 0).edge_index)
    assert not torch.equal(attacked.edge_index,
                           rb.load_graph("cora", "random", 0.5, data_root, 1).edge_index)
    out = tmp_path / "random.json"
    _main(rb, monkeypatch, "--quick", "--runs", "1", "--defense", "gcn", "--attack", "random",
          "--rate", "0.5", "--json", str(out))
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["system"], row["dataset"], row["attack"], row["rate"]) == (
        "gcn", "cora:random@0.5", "random", 0.5)
    assert 0.0 <= row["mean"] <= 1.0


def test_nettack_scores_the_target_nodes_and_a_bad_rate_fails_first(import_script, tmp_path,
                                                                     monkeypatch, data_root):
    rb = import_script("robustness")
    out = tmp_path / "nettack.json"
    _main(rb, monkeypatch, "--quick", "--runs", "1", "--defense", "gcn", "--attack", "nettack",
          "--rate", "1", "--json", str(out))
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["dataset"], row["attack"], row["rate"]) == ("cora:nettack@1", "nettack", 1.0)
    targets = int(rb.load_graph("cora", "nettack", 1.0, data_root, 0).target_mask.sum())
    assert 0 < targets < 100  # accuracy over the attacked targets, not the 1,988 test nodes
    assert row["mean"] * targets == pytest.approx(round(row["mean"] * targets))
    # nettack's rates are perturbations per target: 0.2 fails before the meta graph trains
    out.unlink()
    with pytest.raises(ValueError, match="attack='nettack'.*must be one of"):
        _main(rb, monkeypatch, "--quick", "--runs", "1", "--defense", "gcn", "--attack", "meta",
              "nettack", "--rate", "0.2", "--json", str(out))
    assert not out.exists()


def _plotted(monkeypatch, rb, path):
    """Run ``rb.main`` through a save_figure that records each series before writing."""
    series, save = {}, rb.save_figure

    def spy(fig, out, **kwargs):
        for ax in fig.axes:
            for c in ax.containers:  # one errorbar per defence
                line = c.lines[0]
                series[(ax.get_title(), c.get_label())] = (list(line.get_xdata()),
                                                           list(line.get_ydata()))
        save(fig, out, **kwargs)

    monkeypatch.setattr(rb, "save_figure", spy)
    return series


def test_plot_shows_accuracy_against_rate(import_script, tmp_path, monkeypatch):
    rb = import_script("robustness")
    out, png = tmp_path / "rob.json", tmp_path / "rob.png"
    series = _plotted(monkeypatch, rb, png)
    _main(rb, monkeypatch, "--quick", "--runs", "1", "--defense", "gcn", "svd", "--attack",
          "clean", "meta", "--rate", "0.2", "--json", str(out), "--plot", str(png))
    rows = json.loads(out.read_text())["rows"]
    assert [(r["system"], r["dataset"]) for r in rows] == [
        ("gcn", "cora:clean@0"), ("svd", "cora:clean@0"),
        ("gcn", "cora:meta@0.2"), ("svd", "cora:meta@0.2")]
    expected = {("cora, meta attack", s): ([0.0, 20.0], [100 * r["mean"] for r in rows
                                                        if r["system"] == s])
                for s in ("gcn", "svd")}
    assert series.keys() == expected.keys()
    for key, (xs, ys) in expected.items():
        assert series[key][0] == pytest.approx(xs) and series[key][1] == pytest.approx(ys)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --plot-from draws the same figure from the JSON alone
    again = tmp_path / "again.png"
    replot = _plotted(monkeypatch, rb, again)
    _main(rb, monkeypatch, "--plot-from", str(out), "--plot", str(again))
    assert replot == series and again.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("flags, message", [
    (["--dataset", "pubmed"], "invalid choice: 'pubmed'"),
    (["--defense", "prognn"], "invalid choice: 'prognn'"),
    (["--attack", "pgd"], "invalid choice: 'pgd'"),
    (["--rate", "high"], "invalid float value: 'high'"),
    (["--plot-from", "r.json"], "--plot-from needs --plot PNG"),
])
def test_bad_flags_are_argparse_errors(usage_error, tmp_path, flags, message):
    assert message in usage_error("robustness", ["--json", str(tmp_path / "x.json"), *flags])
    assert not (tmp_path / "x.json").exists()


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--rate", "0.2", "nan"],
     "argument --rate: must be a finite number, got nan"),
    (["--rate", "-0.1"],
     "argument --rate: must be >= 0, got -0.1"),
    (["--jaccard-grid", "nan"],
     "argument --jaccard-grid: must be a finite number"),
    (["--plot-from", "/nonexistent-graphkit-dir/r.json", "--plot", "/tmp/x.png"],
     "--plot-from: cannot read report /nonexistent-graphkit-dir/r.json"),
    (["--plot", "/tmp/x.txt"], "argument --plot: output /tmp/x.txt must end in"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("robustness", flags)
