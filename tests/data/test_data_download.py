import json
import os
import shutil
import socket
import threading
import time

import pytest

import graphkit.data as gd
from graphkit.data import registry
from graphkit.data.download import (
    download_file,
    ensure_files,
    manifest_dir,
    read_manifest,
    sha256sum,
)

MANIFESTS = sorted(p.stem for p in manifest_dir().glob("*.json"))

# Concrete names standing for each pattern entry of the registry.
PATTERN_NAMES = {
    "prognn-*": ["prognn-cora", "prognn-citeseer", "prognn-cora_ml", "prognn-polblogs",
                 "prognn-pubmed"],
    "ogbn-*": ["ogbn-arxiv"],
    "ogbl-*": ["ogbl-collab"],
}
ALL_NAMES = [
    name
    for e in registry.list_datasets()
    for name in (PATTERN_NAMES.get(e.name, [e.name]) if e.is_pattern else [e.name])
]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_complete_and_matches_the_shared_files(name, data_root):
    m = read_manifest(name)
    assert m["name"] == name and m["source"].startswith("http")
    for f in m["files"]:
        path = f"{data_root}/{f['path']}"
        assert f["url"].startswith("https://") and f["url"].endswith("/" + os.path.basename(path))
        if f["sha256"] is None:  # documented as missing from the shared data
            assert os.path.basename(path) in m.get("missing", ""), f["path"]
            assert not os.path.exists(path), f"{f['path']} is shared now: record its sha256"
            continue
        assert sha256sum(path) == f["sha256"], f["path"]
        assert os.path.getsize(path) == f["bytes"], f["path"]


def test_every_registered_dataset_has_a_manifest_and_every_manifest_a_dataset():
    used = {registry.get(name).manifest for name in ALL_NAMES} - {None}
    assert used == set(MANIFESTS)
    for name in ALL_NAMES:  # file-backed names have their own manifest (OGB manages its own)
        e = registry.get(name)
        assert e.manifest == name or e.manifest is None, name


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
    reason = download_file("http://127.0.0.1:9/ind.pubmed.allx", tmp_path / "f", timeout=2.0)
    assert reason is not None and time.perf_counter() - start < 5
    assert not (tmp_path / "f").exists()


def test_every_pattern_entry_has_concrete_names_to_check():
    patterns = {e.name for e in registry.list_datasets() if e.is_pattern}
    assert patterns == set(PATTERN_NAMES)


@pytest.mark.parametrize("network", ["offline", "unreachable"])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_dataset_fails_fast_on_an_empty_root(name, network, tmp_path, monkeypatch):
    """Every registered dataset, from an empty root without a network: generated data loads,
    file-backed data fails at once naming a missing file and its folder, and the root stays
    empty."""
    if network == "unreachable":  # downloads are attempted, against a closed local port
        monkeypatch.delenv("GRAPHKIT_OFFLINE")
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(var, "http://127.0.0.1:9")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
    entry = registry.get(name)
    start = time.perf_counter()
    if entry.manifest is None and not name.startswith(("ogbn-", "ogbl-")):
        assert gd.load(name, root=str(tmp_path)) is not None  # generated: needs no files
    else:
        with pytest.raises(FileNotFoundError) as err:
            gd.load(name, root=str(tmp_path))
        msg = str(err.value)
        if entry.manifest is None:  # OGB: the dataset folder is the missing file
            assert str(tmp_path / name.replace("-", "_")) in msg
        else:
            files = [f["path"] for f in read_manifest(entry.manifest)["files"]]
            if name == "prognn-pubmed":  # built on Planetoid PubMed's files
                files = [f["path"] for f in read_manifest("PubMed")["files"]]
            named = [f for f in files if f"needs the file {os.path.basename(f)}" in msg]
            assert named, msg
            assert str((tmp_path / named[0]).parent) in msg and named[0] in msg
        assert "could not be downloaded" in msg
        assert ("GRAPHKIT_OFFLINE" in msg) == (network == "offline")
    assert time.perf_counter() - start < 5
    assert not any(tmp_path.iterdir())


class _Server:
    """A local HTTP server that never answers ("silent"), sends a byte a second ("trickle")
    or hangs up after a tenth of the body it announced ("short")."""

    def __init__(self, mode):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/file.bin"
        self.stop = threading.Event()
        self.mode = mode
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            if self.mode == "short":  # announces 1000 bytes, sends 100 and hangs up
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
            elif self.mode == "trickle":
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                for _ in range(20):  # ends after 10 s, so a missing stall rule fails, not hangs
                    if self.stop.wait(0.5):
                        break
                    conn.sendall(b"x")
            else:
                self.stop.wait(30)

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_download_gives_up_on_a_silent_or_stalled_server(mode, tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHKIT_OFFLINE")
    server = _Server(mode)
    try:
        start = time.perf_counter()
        reason = download_file(server.url, tmp_path / "sub" / "f", timeout=1.0)
        assert time.perf_counter() - start < 4
    finally:
        server.close()
    assert reason is not None and ("timed out" in reason or "stalled" in reason), reason
    assert not (tmp_path / "sub" / "f").exists()
    time.sleep(0.2)  # the abandoned attempt leaves no temporary file either
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_download_that_ends_early_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHKIT_OFFLINE")
    server = _Server("short")
    try:
        reason = download_file(server.url, tmp_path / "f", timeout=2.0)
    finally:
        server.close()
    assert reason is not None and "ended early: 100 of the 1000 bytes" in reason, reason
    assert not any(tmp_path.iterdir())


def test_download_does_not_wait_for_a_stuck_name_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHKIT_OFFLINE")
    release = threading.Event()

    def stuck(*args, **kwargs):  # getaddrinfo ignores socket timeouts
        release.wait(30)
        raise OSError("lookup released by the test")

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    start = time.perf_counter()
    try:
        reason = download_file("http://data.invalid/f", tmp_path / "f", timeout=0.5)
    finally:
        release.set()
    assert time.perf_counter() - start < 3
    assert reason is not None and reason.startswith("no answer within")
    assert not (tmp_path / "f").exists()


def test_download_writes_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHKIT_OFFLINE")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(200_000))
    assert download_file(src.as_uri(), tmp_path / "out" / "dst.bin", timeout=2.0) is None
    assert (tmp_path / "out" / "dst.bin").read_bytes() == src.read_bytes()


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


def test_a_single_path_string_and_a_corrupt_manifest_are_named(tmp_path, monkeypatch):
    from graphkit.data import download

    # a bare string used to be split into characters: "does not list P, l, a, ..."
    with pytest.raises(ValueError, match="files must be a list of manifest paths"):
        ensure_files("Cora", tmp_path, "Planetoid/Cora/raw/ind.cora.x")
    (tmp_path / "broken.json").write_text('{"name": "broken", ')
    monkeypatch.setattr(download, "manifest_dir", lambda: tmp_path)
    # used to be a bare JSONDecodeError naming no file
    with pytest.raises(ValueError, match=r"broken\.json is not a valid JSON manifest file"):
        download.read_manifest("broken")


def test_manifests_are_valid_json_with_license_and_citation():
    for name in MANIFESTS:
        m = json.loads((manifest_dir() / f"{name}.json").read_text())
        assert m["license"] and m["citation"] and m["format"]


def test_download_with_a_wrong_checksum_is_not_kept(tmp_path, monkeypatch):
    # A "download" of the wrong file (served from a file:// URL) must not poison the root.
    from graphkit.data import download

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("0 1\n")
    read = download.read_manifest

    def pointing_at_wrong(name):
        m = read(name)
        for f in m["files"]:
            f["url"] = wrong.as_uri()
        return m

    monkeypatch.setattr(download, "read_manifest", pointing_at_wrong)
    monkeypatch.delenv("GRAPHKIT_OFFLINE")
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="brazil-airports.edgelist from .* has sha256 .*not kept"):
        ensure_files("airports-brazil", root)
    assert not (root / "networks" / "airports" / "brazil-airports.edgelist").exists()


def test_download_reads_the_proxy_settings_at_each_attempt(tmp_path, monkeypatch):
    """urlopen's module-wide opener kept the proxies of the process's first download, so a
    download after ``http_proxy`` changed still went through the old proxy."""
    monkeypatch.delenv("GRAPHKIT_OFFLINE")
    for var in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)

    def attempt() -> str:
        server = _Server("silent")
        try:
            return str(download_file(server.url, tmp_path / "f", timeout=1.0))
        finally:
            server.close()

    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a closed port
    assert "refused" in attempt()
    monkeypatch.delenv("http_proxy")
    assert "timed out" in attempt()


def _fake_install(tmp_path, monkeypatch, checkout: bool, packaged: bool):
    """A graphkit package at tmp_path/graphkit, as a checkout or as site-packages."""
    import graphkit

    package = tmp_path / "graphkit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # site-packages may hold another package called `datasets` (Hugging Face's)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "__init__.py").write_text("")
    if checkout:
        (tmp_path / "pyproject.toml").write_text("[project]\nname = 'graphkit'\n")
    if packaged:
        (package / "_datasets").mkdir()
    monkeypatch.setattr(graphkit, "__file__", str(package / "__init__.py"))
    return package


def test_manifests_come_from_the_checkout_or_the_wheels_copy(tmp_path, monkeypatch):
    assert (manifest_dir() / "Cora.json").is_file()
    package = _fake_install(tmp_path, monkeypatch, checkout=False, packaged=True)
    # an installed wheel: its own copy, not the foreign `datasets` package beside it
    assert manifest_dir() == package.resolve() / "_datasets"
    (tmp_path / "pyproject.toml").write_text("")
    assert manifest_dir() == tmp_path.resolve() / "datasets"  # a checkout reads datasets/


def test_missing_manifests_name_both_places(tmp_path, monkeypatch):
    _fake_install(tmp_path, monkeypatch, checkout=False, packaged=False)
    with pytest.raises(FileNotFoundError, match=r"_datasets \(an installed wheel\)"):
        manifest_dir()
