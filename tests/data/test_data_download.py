import json
import shutil
import time

import pytest

import graphkit.data as gd
from graphkit.data.download import (
    _download,
    ensure_files,
    manifest_dir,
    read_manifest,
    sha256sum,
)

MANIFESTS = sorted(p.stem for p in manifest_dir().glob("*.json"))


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_complete_and_matches_the_shared_files(name, data_root):
    m = read_manifest(name)
    assert m["name"] == name and m["source"].startswith("http")
    for f in m["files"]:
        path = f"{data_root}/{f['path']}"
        if f["sha256"] is None:  # documented as missing from the shared data
            assert m.get("missing"), f["path"]
            continue
        assert sha256sum(path) == f["sha256"], f["path"]


def _copy_brazil(root, tmp_path):
    dst = tmp_path / "networks" / "airports"
    dst.mkdir(parents=True)
    for name in ("brazil-airports.edgelist", "labels-brazil-airports.txt"):
        shutil.copy(f"{root}/networks/airports/{name}", dst / name)
    return dst


def test_missing_file_fails_fast_naming_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")  # deterministic with or without a network
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        gd.load("airports-brazil", root=str(tmp_path))
    assert time.perf_counter() - start < 10
    msg = str(err.value)
    assert "brazil-airports.edgelist" in msg
    assert str(tmp_path / "networks" / "airports") in msg


def test_offline_mode_skips_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="GRAPHKIT_OFFLINE"):
        ensure_files("airports-brazil", tmp_path)


def test_download_attempt_fails_within_its_timeout(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHKIT_OFFLINE")  # a real attempt, against a closed local port
    start = time.perf_counter()
    reason = _download("http://127.0.0.1:9/ind.pubmed.allx", tmp_path / "f", timeout=2.0)
    assert reason is not None and time.perf_counter() - start < 5
    assert not (tmp_path / "f").exists()


def test_pubmed_fails_immediately_on_missing_allx(data_root, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="ind.pubmed.allx"):
        gd.load("PubMed", root=data_root)
    assert time.perf_counter() - start < 10


def test_checksum_mismatch_is_reported(tmp_path, data_root):
    dst = _copy_brazil(data_root, tmp_path)
    assert gd.load("airports-brazil", root=str(tmp_path)).num_nodes == 131
    with open(dst / "labels-brazil-airports.txt", "a") as f:
        f.write("\n")
    with pytest.raises(ValueError, match="checksum mismatch.*labels-brazil-airports.txt"):
        gd.load("airports-brazil", root=str(tmp_path))


def test_unknown_manifest_and_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest"):
        ensure_files("no-such-dataset", tmp_path)
    with pytest.raises(ValueError, match="does not list"):
        ensure_files("Cora", tmp_path, ["Planetoid/Cora/raw/nope"])


def test_manifests_are_valid_json_with_license_and_citation():
    for name in MANIFESTS:
        m = json.loads((manifest_dir() / f"{name}.json").read_text())
        assert m["license"] and m["citation"] and m["format"]
