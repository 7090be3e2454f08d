"""benchmarks/pres_batch_sweep.py: --pres-torch-path runs PRES's torch operations, which give
the Numba kernels' results exactly when the coherence term (the one round-off difference) is
off."""

import json

import graphkit.temporal.pres as pres
from graphkit.typing import WITH_NUMBA


def test_torch_path_matches_the_kernels_without_coherence(import_script, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr(pres, "WITH_NUMBA", WITH_NUMBA)  # restored after the test
    sweep = import_script("pres_batch_sweep")
    aps = []
    for extra in ([], ["--pres-torch-path"]):
        out = tmp_path / f"sweep{len(extra)}.json"
        sweep.main(["--quick", "--model", "tgn", "--batch-sizes", "100", "--no-plain",
                    "--runs", "1", "--pres-config", "paper:1:0", "--json", str(out), *extra])
        assert pres.WITH_NUMBA == (WITH_NUMBA and not extra)
        rows = json.loads(out.read_text())["rows"]
        aps.append([(r["mean"], r["val_ap"]) for r in rows if r["metric"] == "ap"])
    assert aps[0] and aps[0] == aps[1]


def test_pres_increment_option_reaches_the_wrapper(import_script, tmp_path):
    sweep = import_script("pres_batch_sweep")
    out = tmp_path / "update.json"
    sweep.main(["--quick", "--model", "jodie", "--batch-sizes", "100", "--no-plain", "--runs",
                "1", "--pres-increment", "update", "--json", str(out)])
    rows = [r for r in json.loads(out.read_text())["rows"] if r["metric"] == "ap"]
    assert rows and all(r["increment"] == "update" for r in rows)
