import warnings

import networkx as nx
import numpy as np
import pytest

from graphkit.cli import main
from graphkit.graphlets import edge_gdv, gdv, load_orbit_adjacency, orbit_adjacency


@pytest.fixture
def paw_tail(tmp_path):
    """A paw with a longer tail: triangle a-b-c, then c-d-e; labels are strings."""
    path = tmp_path / "g.txt"
    path.write_text("# a comment\nA,B\nB C\nC,A  # trailing comment\nC D\nD,E\n")
    g = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)])
    return path, g


def test_gdv_csv_and_label_mapping(paw_tail, tmp_path):
    path, g = paw_tail
    out = tmp_path / "gdv.csv"
    assert main(["graphlets", "gdv", str(path), "-o", str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(np.loadtxt(out, delimiter=",", dtype=np.int64), gdv(g))
    mapping = (tmp_path / "gdv.csv.nodes.tsv").read_text().splitlines()
    assert mapping == ["node\tlabel", "0\tA", "1\tB", "2\tC", "3\tD", "4\tE"]


def test_orca_input_and_output_formats(tmp_path):
    g = nx.gnp_random_graph(12, 0.4, seed=0)
    edges = list(g.edges)[::-1]  # an order ORCA must preserve
    src = tmp_path / "g.in"
    src.write_text(f"12 {len(edges)}\n" + "".join(f"{u} {v}\n" for u, v in edges))
    out = tmp_path / "node.orca"
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--format", "orca",
                 "--quiet"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 12
    np.testing.assert_array_equal(np.array([list(map(int, s.split())) for s in lines]), gdv(g))
    out_e = tmp_path / "edge.orca"
    assert main(["graphlets", "gdv", str(src), "-o", str(out_e), "--format", "orca", "--edges",
                 "--quiet"]) == 0
    rows = np.array([list(map(int, s.split())) for s in out_e.read_text().splitlines()])
    pairs, counts = edge_gdv(g)
    index = {(int(u), int(v)): i for i, (u, v) in enumerate(pairs)}
    expected = counts[[index[(min(u, v), max(u, v))] for u, v in edges]]
    np.testing.assert_array_equal(rows, expected)


def test_orbit_adjacency_npz_roundtrip(paw_tail, tmp_path):
    path, g = paw_tail
    out = tmp_path / "oa.npz"
    assert main(["graphlets", "orbit-adjacency", str(path), "-o", str(out), "--quiet"]) == 0
    got = load_orbit_adjacency(out)
    ref = orbit_adjacency(g)
    assert set(got) == set(ref) and all((got[k] != ref[k]).nnz == 0 for k in ref)
    assert main(["graphlets", "orbit-adjacency", str(path), "-o", str(out), "--hops", "3",
                 "--quiet"]) == 0
    assert list(load_orbit_adjacency(out)) == [(3, 4, 4)]


def test_npz_input_and_self_loop_warning(tmp_path, capsys):
    import scipy.sparse as sp

    g = nx.cycle_graph(6)
    a = nx.to_scipy_sparse_array(g, nodelist=range(6), format="csr").tolil()
    a[0, 0] = 1
    src = tmp_path / "a.npz"
    sp.save_npz(src, sp.csr_matrix(a))
    out = tmp_path / "gdv.npy"
    with pytest.warns(UserWarning, match="self-loop"):
        assert main(["graphlets", "gdv", str(src), "-o", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out), gdv(g))
    assert "wrote node GDVs" in capsys.readouterr().err


def test_bad_inputs_fail_with_messages(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main(["graphlets", "gdv", str(missing), "-o", str(tmp_path / "x.npy")]) == 1
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n3\n")
    assert main(["graphlets", "gdv", str(bad), "-o", str(tmp_path / "x.npy")]) == 1
    assert "needs two node labels" in capsys.readouterr().err
    good = tmp_path / "good.txt"
    good.write_text("0 1\n1 2\n")
    assert main(["graphlets", "gdv", str(good), "-o", str(tmp_path / "x.txt")]) == 1
    assert "output format" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


def test_demo_rows_report_exactness():
    from graphkit.cli.demos.gradco import run

    rows = run("cpu")
    assert [r["value"] for r in rows[:2]] == [1.0, 1.0]
    assert all(0.0 <= r["value"] <= 1.0 and r["seconds"] >= 0 for r in rows)
    assert {"method", "dataset", "metric", "value", "seconds"} <= set(rows[0])


def test_sparse_integer_ids_need_relabel(tmp_path, capsys):
    src = tmp_path / "sparse.txt"
    src.write_text("7 10000000000\n10000000000 42\n42 7\n42 5\n")
    out = tmp_path / "gdv.npy"
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err and "--relabel" in err and "4 distinct nodes" in err
    assert not out.exists()
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--quiet", "--relabel"]) == 0
    # numbered in numeric order: 5, 7, 42, 10**10 -> a triangle 1-2-3 with a pendant 0 on 2
    g = nx.empty_graph(4)
    g.add_edges_from([(1, 3), (3, 2), (2, 1), (2, 0)])
    np.testing.assert_array_equal(np.load(out), gdv(g))
    mapping = (tmp_path / "gdv.npy.nodes.tsv").read_text().splitlines()
    assert mapping == ["node\tlabel", "0\t5", "1\t7", "2\t42", "3\t10000000000"]
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--relabel",
                 "--input-format", "orca"]) == 1
    assert "edge lists" in capsys.readouterr().err


def test_relabel_numbers_negative_integer_labels(tmp_path):
    src = tmp_path / "neg.txt"
    src.write_text("10 20\n20 30\n-1 5\n")
    out = tmp_path / "gdv.npy"
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--quiet", "--relabel"]) == 0
    mapping = (tmp_path / "gdv.npy.nodes.tsv").read_text().splitlines()
    assert mapping == ["node\tlabel", "0\t-1", "1\t5", "2\t10", "3\t20", "4\t30"]
    g = nx.empty_graph(5)
    g.add_edges_from([(2, 3), (3, 4), (0, 1)])
    np.testing.assert_array_equal(np.load(out), gdv(g))


def test_a_signed_id_is_the_id_as_graphkit_embed_reads_it(tmp_path):
    # "+2" was a text label: every id became a label, and node 2 appeared twice (4 nodes)
    src = tmp_path / "tri.txt"
    src.write_text("0 1\n1 +2\n2 0\n")
    out = tmp_path / "gdv.npy"
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out), gdv(nx.complete_graph(3)))
    assert not (tmp_path / "gdv.npy.nodes.tsv").exists()


def test_an_edge_list_read_as_orca_says_so(tmp_path):
    # "4 3" matches the three lines after it: ORCA's header, or the edge 4-3?
    src = tmp_path / "amb.txt"
    src.write_text("4 3\n0 1\n1 2\n2 0\n")
    out = tmp_path / "gdv.npy"
    with pytest.warns(UserWarning, match="read as ORCA's format"):
        assert main(["graphlets", "gdv", str(src), "-o", str(out)]) == 0
    assert np.load(out).shape[0] == 4
    assert main(["graphlets", "gdv", str(src), "-o", str(out), "--quiet",
                 "--input-format", "edgelist"]) == 0
    assert np.load(out).shape[0] == 5
    orca = tmp_path / "amb.in"  # ORCA's own suffix: no notice
    orca.write_text(src.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["graphlets", "gdv", str(orca), "-o", str(out)]) == 0


def test_warnings_print_without_source_locations(tmp_path):
    # a user sees the message, not graphkit's file and line and the warn() call
    import subprocess
    import sys

    src = tmp_path / "amb.txt"
    src.write_text("4 3\n0 1\n1 2\n2 0\n")
    proc = subprocess.run([sys.executable, "-m", "graphkit", "graphlets", "gdv", str(src),
                           "-o", str(tmp_path / "gdv.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("graphkit: warning: ") and "read as ORCA's format" in proc.stderr
    assert ".py:" not in proc.stderr and "warnings.warn" not in proc.stderr
    # in process, main restores the format whether the command succeeds or fails
    before = warnings.formatwarning
    with pytest.warns(UserWarning, match="read as ORCA's format"):
        assert main(["graphlets", "gdv", str(src), "-o", str(tmp_path / "gdv.npy")]) == 0
    assert main(["graphlets", "gdv", str(tmp_path / "nope.txt"), "-o", str(src)]) == 1
    assert warnings.formatwarning is before


def test_orca_fallback_is_said_only_when_the_edge_list_reads(tmp_path, capsys):
    # '3 2' looks like ORCA's header but node 4 is out of its range: an edge list, said once
    src = tmp_path / "g.txt"
    src.write_text("3 2\n0 1\n1 4\n")
    out = tmp_path / "gdv.npy"
    with pytest.warns(UserWarning, match="read as an edge list instead"):
        assert main(["graphlets", "gdv", str(src), "-o", str(out)]) == 0
    assert np.load(out).shape[0] == 5
    # when the edge list fails too, its error alone names the problem (the warning repeated it)
    src.write_text("0 1\n1 -2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["graphlets", "gdv", str(src), "-o", str(out)]) == 1
    assert capsys.readouterr().err.count("negative node id -2") == 1


def test_a_column_header_is_skipped_with_a_warning(tmp_path):
    # before, `source target` became an edge between two extra nodes, every id a label
    plain, headed = tmp_path / "plain.txt", tmp_path / "headed.csv"
    plain.write_text("0 1\n1 2\n2 0\n2 3\n")
    headed.write_text("source,target\n0,1\n1,2\n2,0\n2,3\n")
    assert main(["graphlets", "gdv", str(plain), "-o", str(tmp_path / "a.npy"), "--quiet"]) == 0
    with pytest.warns(UserWarning, match="line 1: 'source target' skipped as a column header"):
        assert main(["graphlets", "gdv", str(headed), "-o", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert not (tmp_path / "b.npy.nodes.tsv").exists()
