import numpy as np
import pytest

from graphkit.data.edgelist import read_edgelist


def _write(tmp_path, text, name="g.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_whitespace_comments_and_ids_as_given(tmp_path):
    p = _write(tmp_path, "# header\n1 2\n\n2\t3  # trailing comment\n3 1\n")
    e = read_edgelist(p)
    assert e.num_nodes == 4 and e.labels is None and e.weight is None  # row 0 has no edges
    np.testing.assert_array_equal(e.src, [1, 2, 3])
    np.testing.assert_array_equal(e.dst, [2, 3, 1])
    a = e.to_csr()
    assert a.shape == (4, 4) and a.nnz == 6 and (a != a.T).nnz == 0
    assert a[0].nnz == 0


def test_comma_separated_weights_and_symmetrisation(tmp_path):
    p = _write(tmp_path, "0,1,0.5\n1,0,0.5\n1,2,2.0\n1,2,1.0\n", "g.csv")
    e = read_edgelist(p)
    np.testing.assert_allclose(e.weight, [0.5, 0.5, 2.0, 1.0])
    a = e.to_csr().toarray()
    # both directions listed -> not doubled; duplicate lines summed
    np.testing.assert_allclose(a, [[0, 0.5, 0], [0.5, 0, 3.0], [0, 3.0, 0]])
    directed = e.to_csr(symmetric=False).toarray()
    assert directed[2, 1] == 0 and directed[1, 2] == 3.0


def test_symmetrisation_keeps_negative_weights_listed_once(tmp_path):
    once = read_edgelist(_write(tmp_path, "0 1 -2.0\n1 2 3.0\n2 2 -1.0\n", "once.txt"))
    both = read_edgelist(_write(tmp_path, "0 1 -2.0\n1 0 -2.0\n1 2 3.0\n2 1 3.0\n2 2 -1.0\n",
                                "both.txt"))
    expected = [[0, -2.0, 0], [-2.0, 0, 3.0], [0, 3.0, -1.0]]
    np.testing.assert_array_equal(once.to_csr().toarray(), expected)
    np.testing.assert_array_equal(both.to_csr().toarray(), expected)
    # two directions with different weights: the larger, as before
    mixed = read_edgelist(_write(tmp_path, "0 1 -2.0\n1 0 -5.0\n", "mixed.txt"))
    np.testing.assert_array_equal(mixed.to_csr().toarray(), [[0, -2.0], [-2.0, 0]])


def test_relabel_numbers_tokens_in_sorted_order(tmp_path):
    # as text when a label is not an integer ("10" < "alice"), by value when all are
    p = _write(tmp_path, "alice bob\nbob carol\n10 alice\n")
    e = read_edgelist(p, relabel=True)
    assert e.labels == ["10", "alice", "bob", "carol"] and e.num_nodes == 4
    np.testing.assert_array_equal(e.src, [1, 2, 0])
    np.testing.assert_array_equal(e.dst, [2, 3, 1])
    e = read_edgelist(_write(tmp_path, "10 2\n2 -7\n", "n.txt"), relabel=True)
    assert e.labels == ["-7", "2", "10"]
    np.testing.assert_array_equal(e.src, [2, 1])
    np.testing.assert_array_equal(e.dst, [1, 0])


def test_num_nodes_and_empty_file(tmp_path):
    assert read_edgelist(_write(tmp_path, "0 1\n"), num_nodes=5).num_nodes == 5
    empty = read_edgelist(_write(tmp_path, "# nothing\n", "e.txt"))
    assert empty.num_nodes == 0 and empty.num_edges == 0


@pytest.mark.parametrize("text, match", [
    ("0 1\n1 2 3 4\n", "line 2: expected 'u v' or 'u v weight'"),
    ("0 1\n\n1 x\n", "line 3: node id 'x' is not an integer"),
    ("0 1 1.0\n1 2\n", "line 2: 2 fields, but earlier lines have 3"),
    ("0 1 heavy\n", "line 1: weight 'heavy' is not a number"),
    ("0 1 nan\n", "line 1: weight 'nan' is not finite"),
    ("0 -1\n", "line 1: negative node id -1"),
    ("0,\n", "line 1: expected"),
    ("0 1\n1 99999999999999999999\n", "line 2: node id 99999999999999999999 does not fit"),
])
def test_bad_lines_name_the_line(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_edgelist(_write(tmp_path, text))


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_edgelist(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="out of range for num_nodes=2"):
        read_edgelist(_write(tmp_path, "0 5\n"), num_nodes=2)
    with pytest.raises(ValueError, match="cannot be combined"):
        read_edgelist(_write(tmp_path, "a b\n"), relabel=True, num_nodes=3)



def test_binary_file_and_byte_order_mark(tmp_path):
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"0 1\n\x80\x81 2\n")
    with pytest.raises(ValueError, match="b.txt, line 2: not UTF-8 text"):
        read_edgelist(binary)
    bom = tmp_path / "bom.txt"
    bom.write_text("\ufeff0 1\n1 2\n", encoding="utf-8")
    e = read_edgelist(bom)
    assert e.num_nodes == 3 and e.src.tolist() == [0, 1]


def test_num_nodes_must_be_a_non_negative_integer(tmp_path):
    path = _write(tmp_path, "0 1\n1 2\n")
    # 3.5 used to be truncated to 3 nodes; -2 gave "node id -1 is out of range"
    for bad in (3.5, -2, "3"):
        with pytest.raises(ValueError, match="num_nodes must be a non-negative integer"):
            read_edgelist(path, num_nodes=bad)


@pytest.mark.parametrize(("text", "name"), [("src\tdst\n1\t2\n2\t0\n", "g.tsv"),
                                            ("source,target,weight\n1,2,0.5\n2,0,1\n", "g.csv")])
def test_a_column_header_is_skipped_and_said(tmp_path, text, name):
    # read as an edge, `source,target` was a spurious edge between two extra nodes
    p = _write(tmp_path, text, name)
    for relabel in (False, True):
        with pytest.warns(UserWarning, match=r"line 1: .*skipped as a column header"):
            e = read_edgelist(p, relabel=relabel)
        assert e.num_edges == 2
        if relabel:
            assert e.labels == ["0", "1", "2"]
            np.testing.assert_array_equal(e.src, [1, 2])
            np.testing.assert_array_equal(e.dst, [2, 0])
        else:
            np.testing.assert_array_equal(e.src, [1, 2])
            np.testing.assert_array_equal(e.dst, [2, 0])
    if "weight" in text:
        np.testing.assert_allclose(e.weight, [0.5, 1.0])


def test_a_label_first_line_among_labels_stays_an_edge(tmp_path, recwarn):
    e = read_edgelist(_write(tmp_path, "alice bob\nbob 7\n"), relabel=True)
    assert e.labels == ["7", "alice", "bob"] and e.num_edges == 2 and not recwarn.list
    with pytest.raises(ValueError, match=r"line 1: weight 'w' is not a number"):
        read_edgelist(_write(tmp_path, "a b w\nb c 1\n", "w.txt"), relabel=True)
    # integer ids expected: after the header, a label line is named
    with pytest.raises(ValueError, match=r"line 3: node id 'x' is not an integer"):
        read_edgelist(_write(tmp_path, "u v\n0 1\nx 2\n", "bad.txt"))
