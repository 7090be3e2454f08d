import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.cli import main
from graphkit.embed import fastrp


@pytest.fixture()
def edge_file(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("# ring with a chord, ids from 1\n1 2\n2 3\n3 4\n4 5\n5 1\n1 3\n")
    return p


def _adj(pairs, n):
    a = sp.csr_matrix((np.ones(len(pairs)), tuple(np.array(pairs).T)), shape=(n, n))
    return ((a + a.T) > 0).astype(np.float64)


def _standardized(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit population std (a constant column only centred)."""
    std = x.std(0)
    return (x - x.mean(0)) / np.where(std > 0, std, 1.0)


def test_edge_list_ids_as_given_match_the_python_api(edge_file, tmp_path, capsys):
    out = tmp_path / "e.npy"
    assert main(["embed", "fastrp", str(edge_file), "-o", str(out), "--dim", "8"]) == 0
    e = np.load(out)
    assert e.shape == (6, 8) and e.dtype == np.float32  # ids 1..5 -> 6 rows, row 0 empty
    # row 0 stays all zero (standardised with the rest it was -mean/std) and is left out of
    # the columns' mean and std
    assert not e[0].any()
    raw = fastrp(_adj([(1, 2), (2, 3), (3, 4), (4, 5), (5, 1), (1, 3)], 6), dim=8,
                 standardize=False)[1:].astype(np.float64)
    np.testing.assert_allclose(e[1:], _standardized(raw), atol=1e-5)
    err = capsys.readouterr().err
    assert "6 nodes" in err and "wrote" in err


@pytest.mark.parametrize("extra", [[], ["--backend", "torch"], ["--block-size", "3"]])
def test_ids_no_edge_names_keep_zero_rows_outside_the_standardisation(edge_file, tmp_path,
                                                                       extra):
    out, ref_out = tmp_path / "e.npy", tmp_path / "ref.npy"
    # --num-nodes 9 adds ids 6..8 after row 0: all four rows empty, the rest as without them
    assert main(["embed", "fastrp", str(edge_file), "-o", str(out), "--dim", "8",
                 "--num-nodes", "9", *extra]) == 0
    e = np.load(out)
    assert e.shape == (9, 8) and not e[[0, 6, 7, 8]].any()
    np.testing.assert_allclose(e[1:6].mean(0), 0, atol=1e-5)
    assert main(["embed", "fastrp", str(edge_file), "-o", str(ref_out), "--dim", "8",
                 "--no-standardize", "--num-nodes", "9", *extra]) == 0
    raw = np.load(ref_out)
    assert not raw[[0, 6, 7, 8]].any()
    np.testing.assert_allclose(e[1:6], _standardized(raw[1:6]), atol=1e-5)


def test_isolated_rows_of_a_matrix_are_nodes_and_standardised(tmp_path):
    path, out = tmp_path / "g.npz", tmp_path / "e.npy"
    sp.save_npz(path, sp.csr_matrix(_adj([(1, 2), (2, 3), (3, 1), (3, 4)], 5)))
    assert main(["embed", "fastrp", str(path), "-o", str(out), "--dim", "8"]) == 0
    e = np.load(out)
    np.testing.assert_allclose(e, fastrp(_adj([(1, 2), (2, 3), (3, 1), (3, 4)], 5), dim=8),
                               atol=1e-6)
    assert e[0].any()  # node 0 of a matrix is a node with no edges, not an unused id


def test_relabel_writes_the_label_map(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("b,a\na,c\nc,b\nc,d\n")
    out = tmp_path / "emb.csv"
    assert main(["embed", "fastrp", str(p), "-o", str(out), "--dim", "4", "--relabel",
                 "--quiet"]) == 0
    assert np.loadtxt(out, delimiter=",").shape == (4, 4)
    lines = (tmp_path / "emb.labels.tsv").read_text().splitlines()
    assert lines == ["row\tlabel", "0\ta", "1\tb", "2\tc", "3\td"]


@pytest.mark.parametrize("text", ["b,a\na,c\nc,b\nc,d\n", "10 2\n2 7\n7 -1\n"])
def test_relabel_numbers_rows_as_graphkit_graphlets_does(tmp_path, text):
    # embed numbered labels by first appearance, graphlets in sorted order: the rows of the
    # two commands' outputs for one file did not line up
    p = tmp_path / "g.txt"
    p.write_text(text)
    assert main(["embed", "fastrp", str(p), "-o", str(tmp_path / "emb.csv"), "--dim", "4",
                 "--relabel", "--quiet"]) == 0
    assert main(["graphlets", "gdv", str(p), "-o", str(tmp_path / "gdv.csv"), "--relabel",
                 "--quiet"]) == 0
    rows = [line.split("\t")[1] for line in
            (tmp_path / "emb.labels.tsv").read_text().splitlines()[1:]]
    nodes = [line.split("\t")[1] for line in
             (tmp_path / "gdv.csv.nodes.tsv").read_text().splitlines()[1:]]
    assert rows == nodes


def test_npz_and_pyg_inputs_and_options(tmp_path):
    a = _adj([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)], 4)
    sp.save_npz(tmp_path / "a.npz", sp.csr_matrix(a))
    from torch_geometric.data import Data

    coo = a.tocoo()
    torch.save(Data(edge_index=torch.tensor(np.vstack([coo.row, coo.col])), num_nodes=4),
               tmp_path / "d.pt")
    ref = fastrp(a, dim=6, dtype="float64", beta=0.0, iteration_weights=(1.0, 2.0))
    for name in ("a.npz", "d.pt"):
        out = tmp_path / f"{name}.npz"
        assert main(["embed", "fastrp", str(tmp_path / name), "-o", str(out), "--dim", "6",
                     "--dtype", "float64", "--beta", "0", "--weights", "1", "2", "-q"]) == 0
        np.testing.assert_allclose(np.load(out)["embedding"], ref, atol=1e-12)
    out = tmp_path / "gds.npy"
    assert main(["embed", "fastrp", str(tmp_path / "a.npz"), "-o", str(out), "--dim", "6",
                 "--gds", "-q"]) == 0
    assert np.load(out).shape == (4, 6)


@pytest.mark.parametrize("text, match", [
    ("1 2\n2 x\n", "line 2: node id 'x' is not an integer"),
    ("1 2\n2 3 4 5\n", "line 2: expected"),
    ("# only a comment\n", "holds no edges"),
])
def test_bad_input_reports_the_line(tmp_path, capsys, text, match):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    assert main(["embed", "fastrp", str(p), "-o", str(tmp_path / "e.npy"), "-q"]) == 1
    err = capsys.readouterr().err
    assert match in err and "graphkit: error:" in err
    assert not (tmp_path / "e.npy").exists()


def test_bad_arguments(edge_file, tmp_path, capsys):
    assert main(["embed", "fastrp", str(edge_file), "-o", str(tmp_path / "e.txt")]) == 1
    assert "must end in .npy, .npz or .csv" in capsys.readouterr().err
    assert main(["embed", "fastrp", str(tmp_path / "nope.txt"), "-o",
                 str(tmp_path / "e.npy")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["embed", "fastrp", str(edge_file), "-o", str(tmp_path / "e.npy"),
                 "--dim", "0"]) == 1
    assert "--dim must be positive" in capsys.readouterr().err
    assert main(["embed", "fastrp", str(edge_file), "-o", str(tmp_path / "e.npy"),
                 "--seed", "-1"]) == 1
    assert "--seed must lie in [0, 2**32)" in capsys.readouterr().err


def test_sparse_integer_ids_need_relabel(tmp_path, capsys):
    # a raw key as a node id asked for a 745 GiB array (or wrote a mostly empty embedding)
    p = tmp_path / "keys.txt"
    p.write_text("0 1\n1 99999999999\n")
    out = tmp_path / "e.npy"
    assert main(["embed", "fastrp", str(p), "-o", str(out), "--dim", "4", "-q"]) == 1
    err = capsys.readouterr().err
    assert "node id 99999999999 would give 100000000000 embedding rows for 3 distinct" in err
    assert "--relabel" in err and not out.exists()
    assert main(["embed", "fastrp", str(p), "-o", str(out), "--dim", "4", "-q",
                 "--relabel"]) == 0
    assert np.load(out).shape == (3, 4)


def test_module_entry_point(edge_file, tmp_path):
    out = tmp_path / "e.npy"
    r = subprocess.run([sys.executable, "-m", "graphkit", "embed", "fastrp", str(edge_file),
                        "-o", str(out), "--dim", "4", "--backend", "scipy"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "graphkit embed: wrote" in r.stderr and r.stdout == ""
    assert np.load(out).shape == (6, 4)


@pytest.mark.parametrize("extra, match", [
    (["--gds", "--block-size", "2"], "--block-size: not an option of the GDS variant"),
    (["--gds", "--no-standardize", "--projection", "gaussian"],
     "--no-standardize, --projection: not an option of the GDS variant"),
    (["--self-influence", "0.5"], "--self-influence is an option of the GDS variant"),
])
def test_options_of_the_other_variant_are_rejected(edge_file, tmp_path, capsys, extra, match):
    # they used to be ignored silently
    out = tmp_path / "e.npy"
    assert main(["embed", "fastrp", str(edge_file), "-o", str(out), "--dim", "4", "-q",
                 *extra]) == 1
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_an_orca_file_is_read_as_graphkit_graphlets_reads_it(tmp_path):
    # its 'n e' first line used to become an edge n - e, and node n a row of its own
    orca, plain = tmp_path / "g.in", tmp_path / "g.txt"
    orca.write_text("5 2\n0 1\n1 2\n")
    plain.write_text("0 1\n1 2\n")
    flags = ["--dim", "8", "--seed", "3", "-q"]
    assert main(["embed", "fastrp", str(orca), "-o", str(tmp_path / "a.npy"), *flags]) == 0
    assert main(["embed", "fastrp", str(plain), "-o", str(tmp_path / "b.npy"), "--num-nodes",
                 "5", *flags]) == 0
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (5, 8) and not a[3:].any()
    np.testing.assert_array_equal(a, np.load(tmp_path / "b.npy"))
    other = tmp_path / "g.csv"  # another suffix: read so as well, and said
    other.write_text("5 2\n0 1\n1 2\n")
    with pytest.warns(UserWarning, match="read as ORCA's format"):
        assert main(["embed", "fastrp", str(other), "-o", str(tmp_path / "c.npy"), *flags]) == 0
    np.testing.assert_array_equal(a, np.load(tmp_path / "c.npy"))
    wrong = tmp_path / "w.in"  # the count does not match: an edge, with a warning
    wrong.write_text("2 5\n0 1\n1 2\n")
    with pytest.warns(UserWarning, match="not ORCA's 'n e' header"):
        assert main(["embed", "fastrp", str(wrong), "-o", str(tmp_path / "d.npy"), *flags]) == 0
    assert np.load(tmp_path / "d.npy").shape == (6, 8)
    # --num-nodes counts against ORCA's n, not against the header line read as an edge
    assert main(["embed", "fastrp", str(orca), "-o", str(tmp_path / "e.npy"), "--num-nodes",
                 "5", *flags]) == 0
    np.testing.assert_array_equal(a, np.load(tmp_path / "e.npy"))
