"""End to end: benchmarks/ogb/node_property.py on a tiny OGB-format dataset (DatasetSaver)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ogb" / "node_property.py"


@pytest.fixture(scope="module")
def tiny_ogb(tmp_path_factory):
    """A 60-node, 3-class ogbn-style dataset: features carry the class, edges join classes."""
    from ogb.io import DatasetSaver

    root = tmp_path_factory.mktemp("ogb")
    rng = np.random.default_rng(0)
    n, f, c = 60, 8, 3
    y = np.arange(n) % c
    x = (rng.normal(size=(n, f)) + 2.0 * np.eye(c, f)[y]).astype(np.float32)
    src = rng.integers(0, n, 200)
    dst = (src + c * rng.integers(1, 5, 200)) % n  # same class
    saver = DatasetSaver("ogbn-tiny", is_hetero=False, version=1, root=str(root / "submission"))
    saver.save_graph_list([{"edge_index": np.stack([src, dst]), "node_feat": x,
                            "edge_feat": None, "num_nodes": n}])
    saver.save_target_labels(y.reshape(-1, 1))
    perm = rng.permutation(n)
    saver.save_split({"train": perm[:30], "valid": perm[30:45], "test": perm[45:]},
                     split_name="random")
    mapping = root / "mapping"
    mapping.mkdir()
    (mapping / "README.md").write_text("node ids are row numbers\n")
    saver.copy_mapping_dir(str(mapping))
    saver.save_task_info(task_type="multiclass classification", eval_metric="acc",
                         num_classes=c)
    meta = saver.get_meta_dict()
    saver.zip()
    saver.cleanup()
    meta_path = root / "meta.json"
    meta_path.write_text(json.dumps(meta))
    return root, meta_path


@pytest.mark.parametrize("model", ["dagnn", "sgc_air"])
def test_node_property_script_end_to_end(tiny_ogb, tmp_path, model):
    root, meta_path = tiny_ogb
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(SCRIPT), "--dataset", "ogbn-tiny", "--model", model,
           "--meta-dict", str(meta_path), "--recipe", "ogbn-arxiv", "--evaluator", "ogbn-arxiv",
           "--root", str(root), "--runs", "2", "--epochs", "10", "--hidden", "16",
           "--threads", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "GRAPHKIT_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Final Test" in proc.stdout
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["system"] == model and row["dataset"] == "ogbn-tiny"
    assert row["metric"] == "accuracy" and row["runs"] == 2
    assert 0.0 <= row["mean"] <= 1.0
    # Each run's OGB-Evaluator test accuracy is printed and agrees with the logger's selection.
    assert proc.stdout.count("Run 0") == 2
    assert report["config"]["dataset"] == "ogbn-tiny"


def test_node_property_script_rejects_unknown_model(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model", "gat"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--eval-batch-size", "0"],
     "argument --eval-batch-size: must be >= 1, got 0"),
    (["--log-steps", "-1"],
     "argument --log-steps: must be >= 0, got -1"),
    (["--meta-dict", "/nonexistent-graphkit-dir/meta.json"],
     "--meta-dict /nonexistent-graphkit-dir/meta.json: [Errno 2] No such file"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("ogb/node_property", flags)


def test_malformed_meta_dict_is_named(usage_error, tmp_path):
    (tmp_path / "meta.json").write_text("{oops")
    err = usage_error("ogb/node_property", ["--meta-dict", str(tmp_path / "meta.json")])
    assert f"--meta-dict {tmp_path / 'meta.json'}: Expecting property name" in err
    (tmp_path / "meta.json").write_text("[1]")
    err = usage_error("ogb/node_property", ["--meta-dict", str(tmp_path / "meta.json")])
    assert "must hold a JSON object" in err
