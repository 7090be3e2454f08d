"""Data roots, dataset manifests and checksummed files.

A manifest ``datasets/<name>.json`` (repository root; a wheel carries a copy in
``graphkit/_datasets``) lists the files a dataset needs::

    {"name", "task", "source", "format", "citation", "license",
     "files": [{"path", "sha256", "bytes", "url"}], "missing": "optional notes"}

``path`` is relative to the data root (the same layout as the shared data folder).
:func:`ensure_files` checks each file's SHA-256; a missing file gets one download attempt from
its ``url`` with a short timeout, then a :class:`FileNotFoundError` naming the file and the
folder to put it in. The root is treated as read-only apart from that download.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from graphkit.data.io import atomic_write

__all__ = [
    "DEFAULT_ROOT",
    "build_manifest",
    "download_file",
    "ensure_files",
    "manifest_dir",
    "parsing",
    "read_manifest",
    "resolve_root",
    "sha256sum",
]

DEFAULT_ROOT = Path("~/.cache/graphkit")
DOWNLOAD_TIMEOUT_S = 5.0
MIN_RATE = 1024  # bytes/s below which a transfer counts as stalled


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$GRAPHKIT_DATA``, else ``~/.cache/graphkit``."""
    if root is None:
        root = os.environ.get("GRAPHKIT_DATA") or DEFAULT_ROOT
    return Path(root).expanduser()


def manifest_dir() -> Path:
    """The folder of dataset manifests: ``datasets/`` of the graphkit checkout this package sits
    in (an editable install), else the copy an installed wheel carries, ``graphkit/_datasets``.

    A checkout is recognised by its ``pyproject.toml``: in ``site-packages`` a ``datasets/``
    beside ``graphkit/`` is another package's (Hugging Face's ``datasets``)."""
    import graphkit

    package = Path(graphkit.__file__).resolve().parent
    checkout = package.parent / "datasets"
    if (package.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    packaged = package / "_datasets"
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError(
        f"graphkit's dataset manifests were not found: neither {checkout} (a checkout) nor "
        f"{packaged} (an installed wheel) holds them; reinstall graphkit from its repository "
        "(pip install . or pip install -e .)"
    )


def read_manifest(name: str) -> dict[str, Any]:
    """Read and sanity-check ``datasets/<name>.json``."""
    path = manifest_dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest for dataset '{name}': expected {path}")
    with parsing(path, "JSON manifest"), open(path) as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest {path} must hold a JSON object")
    for key in ("name", "source", "files", "format", "citation", "license"):
        if key not in manifest:
            raise ValueError(f"manifest {path} lacks the key '{key}'")
    return manifest


_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (memoised on path, size and modification time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


@contextlib.contextmanager
def parsing(path: str | os.PathLike, fmt: str) -> Iterator[None]:
    """Report a corrupt file as a ``ValueError`` naming it, not the parser's bare error.

    Wrap only the deserialising call (``pickle.load``, ``np.load``, ``json.load``, ...): any
    failure there (``UnpicklingError``, ``EOFError``, ``BadZipFile``, ``JSONDecodeError``, a
    ``KeyError`` from a half-written pickle) means the file is not valid ``fmt``. File-system
    errors (``OSError``) pass through unchanged, as they already name the file.
    """
    try:
        yield
    except OSError:
        raise
    except Exception as e:
        raise ValueError(
            f"{path} is not a valid {fmt} file (truncated or corrupt?): {type(e).__name__}: {e}"
        ) from e


def _copy_body(response: Any, out: BinaryIO, timeout: float, last: list[float],
               cancelled: threading.Event) -> int:
    """Stream an HTTP ``response`` into ``out``, recording in ``last[0]`` when data arrived;
    returns the number of bytes written.

    ``timeout`` bounds every socket operation; a transfer that trickles in below
    ``MIN_RATE`` bytes/s over a window of ``timeout`` seconds is abandoned as stalled, since a
    per-read timeout alone never fires on a server that sends one byte a second.
    """
    read = getattr(response, "read1", response.read)  # read1: what has arrived, not a block
    window_start, window_bytes, total = time.monotonic(), 0, 0
    while chunk := read(1 << 16):
        if cancelled.is_set():
            raise TimeoutError("abandoned by the caller")
        out.write(chunk)
        now = last[0] = time.monotonic()
        window_bytes += len(chunk)
        total += len(chunk)
        if now - window_start >= timeout:
            if window_bytes < MIN_RATE * (now - window_start):
                raise TimeoutError(
                    f"the transfer stalled ({window_bytes} bytes in the last "
                    f"{now - window_start:.0f} s)"
                )
            window_start, window_bytes = now, 0
    return total


def download_file(url: str, dest: str | os.PathLike, timeout: float = DOWNLOAD_TIMEOUT_S
                  ) -> str | None:
    """Try once to fetch ``url`` into ``dest`` (atomically); ``None`` on success, else why not.

    Never hangs: every socket operation has ``timeout``, a stalled transfer is abandoned, and
    the fetch runs in a daemon thread that the caller stops waiting for once nothing has
    happened for ``timeout + 1`` seconds (a stuck DNS lookup ignores socket timeouts).
    ``$GRAPHKIT_OFFLINE`` disables downloads. ``dest``'s folder is only created once the server
    has answered, so a failed attempt leaves the data root as it was.
    """
    if os.environ.get("GRAPHKIT_OFFLINE"):
        return "GRAPHKIT_OFFLINE is set"
    outcome: list[str | None] = []
    last = [time.monotonic()]
    cancelled = threading.Event()

    def fetch() -> None:
        try:
            # A fresh opener: urlopen's module-wide one keeps the proxy settings of the
            # process's first download, ignoring a later change of http(s)_proxy.
            opener = urllib.request.build_opener()
            with opener.open(url, timeout=timeout) as response:
                last[0] = time.monotonic()
                if cancelled.is_set():
                    raise TimeoutError("abandoned by the caller")
                # Opened only now: a dead link leaves no folder or temporary file behind.
                announced = response.headers.get("Content-Length", "")
                with atomic_write(dest, "wb") as f:
                    got = _copy_body(response, f, timeout, last, cancelled)
                    # read1 returns b"" when the server closes early instead of raising
                    # IncompleteRead: a short body would otherwise be kept as the file
                    if announced.isdigit() and got != int(announced):
                        raise OSError(f"the transfer ended early: {got} of the "
                                      f"{announced} bytes announced")
            outcome.append(None)
        except Exception as e:  # network, HTTP and file-system errors all end the attempt
            outcome.append(f"{type(e).__name__}: {e}")

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if worker.is_alive() and time.monotonic() - last[0] > timeout + 1.0:
            cancelled.set()
            return f"no answer within {timeout:.0f} s"
    return outcome[0]


def ensure_files(
    manifest_name: str,
    root: str | os.PathLike | None = None,
    files: list[str] | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> dict[str, Path]:
    """Check (and, if missing, try once to download) the files of a manifest.

    Args:
        manifest_name: the manifest, ``datasets/<manifest_name>.json``.
        root: the data root (see :func:`resolve_root`).
        files: only these manifest paths (default: all of them).
        timeout: seconds allowed for each download attempt.

    Returns:
        A dict from manifest path to the absolute path of the verified file.

    Raises:
        FileNotFoundError: a file is absent and could not be downloaded; the message names the
            file, the folder to put it in and the source.
        ValueError: a file's SHA-256 differs from the manifest's, or ``files`` names a path the
            manifest does not list.
    """
    root = resolve_root(root)
    manifest = read_manifest(manifest_name)
    entries = {f["path"]: f for f in manifest["files"]}
    if isinstance(files, str):  # list("a/b.npz") would ask for the files "a", "/", "b", ...
        raise ValueError(f"files must be a list of manifest paths, got the string {files!r}")
    wanted = list(entries) if files is None else list(files)
    unknown = [p for p in wanted if p not in entries]
    if unknown:
        raise ValueError(f"manifest '{manifest_name}' does not list {', '.join(unknown)}")
    out: dict[str, Path] = {}
    for rel in wanted:
        entry = entries[rel]
        path = root / rel
        downloaded = False
        if not path.is_file():
            url = entry.get("url")
            reason = download_file(url, path, timeout) if url else "the manifest gives no URL"
            if reason is not None:
                note = f" Note: {manifest['missing']}" if manifest.get("missing") else ""
                raise FileNotFoundError(
                    f"dataset '{manifest['name']}' needs the file {path.name}, which is missing "
                    f"and could not be downloaded ({reason}). Put it in the folder "
                    f"{path.parent} ({rel} under the data root; source: "
                    f"{url or manifest['source']}).{note}"
                )
            downloaded = True
        expected = entry.get("sha256")
        if expected:
            actual = sha256sum(path)
            if actual != expected and downloaded:  # don't leave a bad download in the root
                path.unlink()
                raise ValueError(
                    f"the download of {path.name} from {entry['url']} has sha256 {actual}, but "
                    f"the manifest datasets/{manifest_name}.json expects {expected}; the file "
                    "was not kept. Fetch it by hand from the source pinned in the manifest "
                    f"into {path.parent}"
                )
            if actual != expected:
                raise ValueError(
                    f"checksum mismatch for {path}: sha256 {actual}, the manifest "
                    f"datasets/{manifest_name}.json expects {expected}; the file is corrupt or "
                    "a different version"
                )
        out[rel] = path
    return out


def build_manifest(
    name: str,
    root: str | os.PathLike,
    paths: list[str],
    *,
    url_base: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Build a manifest dict (checksums and sizes) for files under ``root``.

    Each file's ``url`` is ``urls[path]`` when given in ``fields['urls']``, else
    ``url_base/<file name>``; files absent from ``root`` get ``sha256`` and ``bytes`` of ``None``.
    """
    root = Path(root)
    urls: dict[str, str] = fields.pop("urls", {})
    files = []
    for rel in paths:
        p = root / rel
        entry: dict[str, Any] = {"path": rel}
        if p.is_file():
            entry.update(sha256=sha256sum(p), bytes=p.stat().st_size)
        else:
            entry.update(sha256=None, bytes=None)
        url = urls.get(rel) or (f"{url_base}/{Path(rel).name}" if url_base else None)
        if url:
            entry["url"] = url
        files.append(entry)
    return {"name": name, **fields, "files": files}
