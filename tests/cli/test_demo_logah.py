"""The LoGAH demo section: every ViT parameter predicted with its shape, a decoder far smaller
than a ViT-S-sized target, and a briefly meta-trained prediction that beats random init."""

from graphkit.cli.demos import logah

KEYS = {"method", "dataset", "metric", "value", "seconds"}


def test_logah_demo_predicts_every_parameter_and_beats_random_init(monkeypatch):
    synced = []  # on CUDA, a ViT's seconds timed the launch of the GHN's kernels only
    monkeypatch.setattr(logah, "synchronize", synced.append)
    rows = logah.run()
    assert synced == ["cpu"] * 4  # before and after each of the two ViTs
    assert all(set(r) == KEYS for r in rows)
    per_model = {}
    for r in rows:
        per_model.setdefault(r["dataset"], {})[r["metric"]] = r["value"]
    small, large = per_model["ViT d32 x1"], per_model["ViT d512 x8"]
    assert small["shapes_right"] == large["shapes_right"] == 1.0
    assert large["graph_nodes"] > small["graph_nodes"] > 1
    assert large["decoder_share"] <= 0.01 < small["decoder_share"]  # LoGAH's 1/100 claim
    acc = {r["method"].split()[0]: r["value"] for r in rows if r["metric"] == "test_acc"}
    # 10 balanced classes: random init sits near 0.1; the prediction must be far from chance
    assert acc["LoGAH"] > max(0.3, acc["random"] + 0.2)
