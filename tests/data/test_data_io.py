"""``graphkit.data.io``: atomic output files and the matrix writer."""

import os
import stat

import numpy as np
import pytest
import scipy.sparse as sp

from graphkit.data.io import atomic_write, save_matrix


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(path) as f:
        f.write("partial new content")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_new_file_gets_the_umask_mode_and_a_replaced_file_keeps_its_mode(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640  # not mkstemp's 0600
    kept = tmp_path / "kept.txt"
    kept.write_text("old")
    kept.chmod(0o604)
    with atomic_write(kept) as f:
        f.write("new")
    assert kept.read_text() == "new" and stat.S_IMODE(os.stat(kept).st_mode) == 0o604


def test_save_matrix_formats_roundtrip(tmp_path):
    m = np.arange(6, dtype=np.int64).reshape(2, 3)
    save_matrix(tmp_path / "m.npy", m)
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), m)
    save_matrix(tmp_path / "m.csv", m)
    assert (tmp_path / "m.csv").read_text() == "0,1,2\n3,4,5\n"
    save_matrix(tmp_path / "d.npz", m / 2)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npz")["embedding"], m / 2)
    save_matrix(tmp_path / "s.npz", sp.csr_matrix(m))
    assert (sp.load_npz(tmp_path / "s.npz") != sp.csr_matrix(m)).nnz == 0
    assert sorted(os.listdir(tmp_path)) == ["d.npz", "m.csv", "m.npy", "s.npz"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csv_float_matrix_reads_back_exactly(tmp_path, dtype):
    m = np.random.default_rng(0).standard_normal((200, 8)).astype(dtype)
    m[0, :3] = [1 / 3, 1e-300 if dtype == np.float64 else 1e-40, -0.0]
    save_matrix(tmp_path / "m.csv", m)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "m.csv", delimiter=",", dtype=dtype), m)


def test_text_is_written_as_utf8_whatever_the_locale(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "labels.tsv"
    code = ("from graphkit.data.io import atomic_write\n"
            f"with atomic_write({str(out)!r}) as f:\n    f.write('0\\tcaf\\u00e9\\n')\n")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert out.read_bytes() == "0\tcaf\u00e9\n".encode("utf-8")


def test_save_matrix_unknown_format_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="unsupported output format 'txt'"):
        save_matrix(tmp_path / "m.txt", np.ones(2))
    assert os.listdir(tmp_path) == []
