"""Bad input to ``graphkit graphlets`` and ``graphkit embed``: one clear error line, exit code 1,
no output (partial or temporary) left behind and an existing output untouched."""

import os
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphkit.cli import main
from graphkit.embed import fastrp
from graphkit.graphlets import gdv

GDV = ["graphlets", "gdv"]
OA = ["graphlets", "orbit-adjacency"]
EMBED = ["embed", "fastrp"]


def _fails(argv, capsys, match):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphkit: error:") and err.count("\n") == 1, err
    assert match in err, err


def _only(folder, *names):
    """Nothing but ``names`` in ``folder``: no temporary or partial file."""
    assert sorted(os.listdir(folder)) == sorted(names)


# --- graphlets: reading the graph ---------------------------------------------------------


@pytest.mark.parametrize("text, edges", [
    ("0 1\n1 2\n", [(0, 1), (1, 2)]),              # header-like "0 1": one line follows
    ("1 2\n2 3\n3 4\n", [(1, 2), (2, 3), (3, 4)]),  # "1 2": two lines follow
])
def test_edge_list_matching_the_orca_line_count_is_an_edge_list(tmp_path, text, edges):
    src = tmp_path / "g.txt"
    src.write_text(text)
    out = tmp_path / "gdv.npy"
    with pytest.warns(UserWarning, match="looks like ORCA's header"):
        assert main(GDV + [str(src), "-o", str(out)]) == 0
    g = nx.empty_graph(max(map(max, edges)) + 1)  # ids as given: node 0 may be isolated
    g.add_edges_from(edges)
    np.testing.assert_array_equal(np.load(out), gdv(g))


def test_orca_file_is_still_detected_without_warning(tmp_path, recwarn):
    src = tmp_path / "g.in"
    src.write_text("4 3\n0 1\n1 2\n2 3\n")
    out = tmp_path / "gdv.npy"
    assert main(GDV + [str(src), "-o", str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out), gdv(nx.path_graph(4)))
    assert not [w for w in recwarn if "ORCA" in str(w.message)]


@pytest.mark.parametrize("text, match", [
    ("3 2\n0 1\n1 3\n", "line 3: node id 3 is out of range for the header's 3 nodes"),
    ("3 5\n0 1\n1 2\n", "the header announces 5 edges but 2 edge lines follow"),
    ("3 1\n0 x\n", "ORCA's node ids must be integers"),
    ("3 1\n0 1 2\n", "line 2: ORCA's edge lines hold two node ids"),
    ("a 1\n0 1\n", "line 1: ORCA's first line is 'n e'"),
    ("99999999999999999999 1\n0 1\n", "line 1: node count 99999999999999999999 is too large"),
])
def test_explicit_orca_format_errors_name_the_problem(tmp_path, capsys, text, match):
    src = tmp_path / "g.in"
    src.write_text(text)
    _fails(GDV + [str(src), "-o", str(tmp_path / "x.npy"), "--input-format", "orca"],
           capsys, match)
    if text[0].isdigit() and len(text.split("\n")[0].split()) == 2:
        # ORCA's own suffix and an 'n e' first line: read as ORCA without being told (a
        # truncated file was read as an edge list, its header an edge)
        _fails(GDV + [str(src), "-o", str(tmp_path / "x.npy")], capsys, match)
    _only(tmp_path, "g.in")


@pytest.mark.parametrize("text, match", [
    ("0 1\n-1 2\n", "line 2: negative node id -1"),
    ("# c\n0 1\n1 99999999999999999999\n", "line 3: node id 99999999999999999999 is too large"),
    ("0 1\n\n2\n", "line 3: needs two node labels"),
])
def test_graphlets_bad_ids_name_the_line(tmp_path, capsys, text, match):
    src = tmp_path / "g.txt"
    src.write_text(text)
    for cmd, out in ((GDV, "x.npy"), (OA, "x.npz")):
        _fails(cmd + [str(src), "-o", str(tmp_path / out), "--quiet"], capsys, match)
    _only(tmp_path, "g.txt")


def test_graphlets_binary_and_directory_inputs(tmp_path, capsys):
    src = tmp_path / "g.txt"
    src.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    _fails(GDV + [str(src), "-o", str(tmp_path / "x.npy")], capsys, "is not a UTF-8 text graph")
    _fails(GDV + [str(tmp_path), "-o", str(tmp_path / "x.npy")], capsys, "is a directory")
    _only(tmp_path, "g.txt")


def test_graphlets_bad_npz_inputs(tmp_path, capsys):
    cases = {
        "rect.npz": (sp.csr_matrix(np.ones((2, 3))), "must be square, got shape (2, 3)"),
        "nan.npz": (sp.csr_matrix(np.array([[0, np.nan], [1, 0]])), "NaN or infinite"),
        "empty.npz": (sp.csr_matrix((0, 0)), "holds an empty graph"),
    }
    for name, (m, match) in cases.items():
        sp.save_npz(tmp_path / name, m)
        _fails(GDV + [str(tmp_path / name), "-o", str(tmp_path / "x.npy")], capsys, match)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    _fails(GDV + [str(tmp_path / "bad.npz"), "-o", str(tmp_path / "x.npy")], capsys,
           "is not a SciPy sparse .npz matrix")
    (tmp_path / "text.npz").write_bytes(b"hello")  # NumPy would advise unpickling it
    assert main(GDV + [str(tmp_path / "text.npz"), "-o", str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert "is not a SciPy sparse .npz matrix" in err and "pickle" not in err, err
    _only(tmp_path, *cases, "bad.npz", "text.npz")


def test_npz_stored_zeros_are_no_edges_in_orca_edge_output(tmp_path):
    a = sp.coo_matrix(nx.to_scipy_sparse_array(nx.path_graph(4)), dtype=np.float64)
    a = sp.csr_matrix((np.r_[a.data, 0.0, 0.0], (np.r_[a.row, 0, 3], np.r_[a.col, 3, 0])))
    assert a.nnz == 8  # two stored zeros
    sp.save_npz(tmp_path / "a.npz", a)
    out = tmp_path / "e.orca"
    assert main(GDV + [str(tmp_path / "a.npz"), "-o", str(out), "--format", "orca", "--edges",
                       "--quiet"]) == 0
    assert len(out.read_text().splitlines()) == 3


# --- graphlets: the output path -------------------------------------------------------------


@pytest.fixture()
def graph_file(tmp_path):
    src = tmp_path / "g.txt"
    src.write_text("0 1\n1 2\n2 0\n2 3\n")
    return src


def test_orbit_adjacency_output_must_be_npz(graph_file, tmp_path, capsys):
    _fails(OA + [str(graph_file), "-o", str(tmp_path / "oa.bin")], capsys, "must end in .npz")
    _only(tmp_path, "g.txt")


@pytest.mark.parametrize("cmd, name", [(GDV, "x.npy"), (OA, "x.npz"), (EMBED, "x.npy")])
def test_output_folder_must_exist_and_output_not_a_directory(graph_file, tmp_path, capsys,
                                                             cmd, name):
    missing = tmp_path / "no" / "such"
    _fails(cmd + [str(graph_file), "-o", str(missing / name)], capsys,
           f"output folder {missing} does not exist")
    assert not (tmp_path / "no").exists()
    folder = tmp_path / name  # a directory with the output's name
    folder.mkdir()
    _fails(cmd + [str(graph_file), "-o", str(folder)], capsys, "is a directory, not a file")
    _only(folder)


@pytest.mark.parametrize("cmd, name", [(GDV, "x.npy"), (OA, "x.npz"), (EMBED, "x.npy")])
def test_failure_leaves_an_existing_output_untouched(tmp_path, capsys, cmd, name):
    src = tmp_path / "g.txt"
    src.write_text("0 1\n1 -2\n")
    out = tmp_path / name
    out.write_bytes(b"previous result")
    _fails(cmd + [str(src), "-o", str(out)], capsys, "negative node id -2")
    assert out.read_bytes() == b"previous result"
    _only(tmp_path, "g.txt", name)


@pytest.mark.parametrize("cmd, name", [(GDV, "x.npy"), (EMBED, "x.npy")])
def test_write_error_is_one_line_and_keeps_the_old_output(graph_file, tmp_path, capsys,
                                                          monkeypatch, cmd, name):
    out = tmp_path / name
    out.write_bytes(b"previous result")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    _fails(cmd + [str(graph_file), "-o", str(out), "--quiet"], capsys,
           "No space left on device")
    assert out.read_bytes() == b"previous result"
    _only(tmp_path, "g.txt", name)


@pytest.mark.parametrize("cmd, name", [(GDV, "g.csv"), (OA, "g.npz"), (EMBED, "g.csv"),
                                       (EMBED, "g.npz")])
def test_output_over_the_input_is_refused(tmp_path, capsys, cmd, name):
    # the command used to replace the user's graph with its result, exit code 0
    src = tmp_path / name
    if name.endswith(".npz"):
        sp.save_npz(src, sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]])))
    else:
        src.write_text("0,1\n1,2\n2,0\n")
    before = src.read_bytes()
    spelled = tmp_path / "." / name  # another spelling of the same path
    _fails(cmd + [str(src), "-o", str(spelled)], capsys, "is the input file")
    assert src.read_bytes() == before
    _only(tmp_path, name)


@pytest.mark.parametrize("cmd, table", [(GDV, "x.csv.nodes.tsv"), (EMBED, "x.labels.tsv")])
def test_a_run_without_labels_removes_the_earlier_label_table(tmp_path, capsys, cmd, table):
    # the earlier run's table stayed beside the new rows and named them wrongly
    (tmp_path / "names.txt").write_text("alice bob\nbob carol\ncarol alice\n")
    (tmp_path / "ids.txt").write_text("0 1\n1 2\n2 0\n")
    out = str(tmp_path / "x.csv")
    assert main(cmd + [str(tmp_path / "names.txt"), "-o", out, "--relabel"]) == 0
    assert "alice" in (tmp_path / table).read_text()
    assert main(cmd + [str(tmp_path / "ids.txt"), "-o", out]) == 0
    assert not (tmp_path / table).exists()
    assert f"removed {tmp_path / table}" in capsys.readouterr().err


def test_quiet_silences_the_label_map_notice(tmp_path, capsys):
    src = tmp_path / "g.txt"
    src.write_text("a b\nb c\n")
    assert main(GDV + [str(src), "-o", str(tmp_path / "x.npy"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "x.npy.nodes.tsv").exists()


# --- embed ----------------------------------------------------------------------------------


def test_negative_weight_is_caught_before_symmetrising(tmp_path, capsys):
    src = tmp_path / "g.txt"
    src.write_text("0 1 -1\n1 2 1\n")  # max(A, A^T) would turn -1 into no edge
    _fails(EMBED + [str(src), "-o", str(tmp_path / "e.npy"), "--weighted"], capsys,
           "edge weights must be non-negative, edge (0, 1) has weight -1.0")
    assert main(EMBED + [str(src), "-o", str(tmp_path / "e.npy"), "-q", "--dim", "4"]) == 0


def test_npz_stored_zero_is_no_edge_and_nan_is_an_error(tmp_path, capsys):
    path4 = sp.coo_matrix(nx.to_scipy_sparse_array(nx.path_graph(4)), dtype=np.float64)
    a = sp.csr_matrix((np.r_[path4.data, 0.0, 0.0],
                       (np.r_[path4.row, 0, 3], np.r_[path4.col, 3, 0])))
    assert a.nnz == 8  # two stored zeros
    sp.save_npz(tmp_path / "a.npz", a)
    out = tmp_path / "e.npy"
    assert main(EMBED + [str(tmp_path / "a.npz"), "-o", str(out), "--dim", "4", "-q"]) == 0
    np.testing.assert_allclose(np.load(out), fastrp(sp.csr_matrix(path4), dim=4), atol=1e-6)
    a.data[a.data == 0] = np.nan
    sp.save_npz(tmp_path / "nan.npz", a)
    _fails(EMBED + [str(tmp_path / "nan.npz"), "-o", str(tmp_path / "f.npy")], capsys,
           "nan.npz: the adjacency holds NaN or infinite edge weights")


def test_embed_bad_binary_and_text_inputs(tmp_path, capsys):
    (tmp_path / "g.pt").write_bytes(b"not a torch file")
    _fails(EMBED + [str(tmp_path / "g.pt"), "-o", str(tmp_path / "e.npy")], capsys,
           "g.pt is not a saved PyG Data object")
    (tmp_path / "g.txt").write_bytes(b"\x80\x81 binary")
    _fails(EMBED + [str(tmp_path / "g.txt"), "-o", str(tmp_path / "e.npy")], capsys,
           "g.txt, line 1: not UTF-8 text")
    (tmp_path / "big.txt").write_text("0 1\n1 99999999999999999999\n")
    _fails(EMBED + [str(tmp_path / "big.txt"), "-o", str(tmp_path / "e.npy")], capsys,
           "big.txt, line 2: node id 99999999999999999999 does not fit in 64 bits")
    _fails(EMBED + [str(tmp_path), "-o", str(tmp_path / "e.npy")], capsys, "is a directory")
    from torch_geometric.data import Data

    torch.save(Data(edge_index=torch.tensor([[0, 1], [1, 7]]), num_nodes=3), tmp_path / "d.pt")
    _fails(EMBED + [str(tmp_path / "d.pt"), "-o", str(tmp_path / "e.npy")], capsys,
           "d.pt: edge_index holds node id 7, out of range for num_nodes=3")
    _only(tmp_path, "g.pt", "g.txt", "big.txt", "d.pt")


def test_embed_rejects_bad_devices_before_reading(graph_file, tmp_path, capsys, monkeypatch):
    _fails(EMBED + [str(graph_file), "-o", str(tmp_path / "e.npy"), "--device", "gpu0"],
           capsys, "--device 'gpu0' is not a torch device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(EMBED + [str(graph_file), "-o", str(tmp_path / "e.npy"), "--device", "cuda",
                    "--backend", "torch"], capsys, "CUDA is not available")
    _fails(EMBED + [str(graph_file), "-o", str(tmp_path / "e.npy"), "--device", "xpu",
                    "--backend", "torch"], capsys, "--device xpu: this machine or PyTorch")
    _only(tmp_path, "g.txt")


def test_out_of_memory_is_reported(graph_file, tmp_path, capsys, monkeypatch):
    import graphkit.embed

    def huge(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 TiB")

    monkeypatch.setattr(graphkit.embed, "fastrp", huge)
    _fails(EMBED + [str(graph_file), "-o", str(tmp_path / "e.npy"), "-q"], capsys,
           "out of memory (Unable to allocate 7.28 TiB)")


def test_no_traceback_from_the_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "graphkit", "graphlets", "orbit-adjacency",
                        str(tmp_path), "-o", str(tmp_path / "x.npz")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr == f"graphkit: error: input {tmp_path} is a directory, not a graph file\n"


# --- demo -----------------------------------------------------------------------------------


def test_demo_rejects_unknown_sections_and_devices(capsys, monkeypatch):
    with pytest.raises(SystemExit) as exc:  # argparse: a typo used to run nothing, exit 0
        main(["demo", "--only", "fastrpp"])
    assert exc.value.code == 2 and "invalid choice: 'fastrpp'" in capsys.readouterr().err
    _fails(["demo", "--only", "foundation", "--device", "gpu0"], capsys,
           "--device 'gpu0' is not a torch device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(["demo", "--only", "foundation", "--device", "cuda:0"], capsys,
           "--device cuda:0: CUDA is not available")
    # other device types torch parses used to pass and fail later with a traceback
    _fails(["demo", "--only", "foundation", "--device", "meta"], capsys,
           "--device meta: tensors on the meta device hold no data")
    if not torch.backends.mps.is_available():
        _fails(["demo", "--only", "foundation", "--device", "mps"], capsys,
               "--device mps: this machine or PyTorch build has no mps device")


def test_graphlets_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    src = tmp_path / "g.txt"
    src.write_bytes(b"\xef\xbb\xbf0 1\r\n1 2\r\n2 0\r\n")  # as saved by some Windows editors
    out = tmp_path / "gdv.npy"
    assert main(GDV + [str(src), "-o", str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out), gdv(nx.cycle_graph(3)))
    _only(tmp_path, "g.txt", "gdv.npy")  # ids, not labels: no label map


def test_embed_flags_are_named_as_typed(graph_file, tmp_path, capsys):
    out = str(tmp_path / "e.npy")
    _fails(EMBED + [str(graph_file), "-o", out, "--block-size", "0"], capsys,
           "--block-size must be positive, got 0")
    _fails(EMBED + [str(graph_file), "-o", out, "--weights", "nan", "1"], capsys,
           "--weights must be finite numbers")
    labels = tmp_path / "labels.txt"
    labels.write_text("a b\nb c\n")
    _fails(EMBED + [str(labels), "-o", out], capsys, "--relabel on the command line")
