import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Data tests never download: a missing file must fail with the loader's message."""
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")


@pytest.fixture
def mirror(data_root, tmp_path):
    """``mirror(manifest, **overrides)``: a data root in ``tmp_path`` linking to the shared
    files of ``manifest``, where each ``overrides`` path (manifest path -> bytes) is written
    instead; returns the root. The shared folder is never written."""
    import os
    from pathlib import Path

    from graphkit.data.download import read_manifest

    def make(manifest: str, overrides: dict[str, bytes] | None = None) -> str:
        root = tmp_path / "root"
        for f in read_manifest(manifest)["files"]:
            src, dst = Path(data_root) / f["path"], root / f["path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_file() and not dst.exists():
                os.symlink(src, dst)
        for rel, payload in (overrides or {}).items():
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.unlink(missing_ok=True)
            dst.write_bytes(payload)
        return str(root)

    return make


@pytest.fixture
def unchecked(monkeypatch):
    """Manifests without checksums, as for the files missing from the shared data, so that a
    damaged copy reaches the parser instead of failing the checksum test."""
    from graphkit.data import download

    read = download.read_manifest

    def read_unchecked(name):
        m = read(name)
        for f in m["files"]:
            f["sha256"] = None
        return m

    monkeypatch.setattr(download, "read_manifest", read_unchecked)
