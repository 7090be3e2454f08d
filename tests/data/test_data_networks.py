import shutil

import pytest
import torch

import graphkit.data as gd
from graphkit.data.datasets.networks import read_airports


def _undirected_count(d):
    loops = int((d.edge_index[0] == d.edge_index[1]).sum())
    return (d.edge_index.size(1) - loops) // 2 + loops, loops


def test_blogcatalog(data_root):
    d = gd.load("blogcatalog", root=data_root)
    assert d.num_nodes == 10312 and d.y.shape == (10312, 39) and d.y.dtype == torch.float32
    assert _undirected_count(d) == (333983, 0)
    assert int(d.y.sum()) == 14476 and bool((d.y.sum(1) >= 1).all())
    assert int(d.y.sum(1).max()) == 11
    assert d.node_ids[:3].tolist() == [1, 2, 3]  # ids 1..N became 0..N-1
    assert d.x is None


def test_ppi_self_loop_rule(data_root):
    d = gd.load("ppi", root=data_root)
    assert d.num_nodes == 3890 and d.y.shape == (3890, 50)
    assert _undirected_count(d) == (38739, 894)  # kept by default, stored once each
    assert d.cleaning["input_pairs"] == 76584 and d.cleaning["self_loops"] == 894
    r = gd.load("ppi", root=data_root, self_loops="remove")
    assert _undirected_count(r) == (38739 - 894, 0)
    assert r.cleaning["self_loops_removed"] is True
    with pytest.raises(ValueError, match="self_loops must be"):
        gd.load("ppi", root=data_root, self_loops="drop")


@pytest.mark.parametrize(
    "name,n,edges,loops", [("brazil", 131, 1074, 71), ("europe", 399, 5995, 2),
                           ("usa", 1190, 13599, 0)],
)
def test_airports(name, n, edges, loops, data_root):
    d = gd.load(f"airports-{name}", root=data_root)
    assert d.num_nodes == n and _undirected_count(d) == (edges, loops)
    assert sorted(d.y.unique().tolist()) == [0, 1, 2, 3]
    assert bool((d.node_ids[1:] > d.node_ids[:-1]).all())


def _corrupt_copy(tmp_path, data_root, country, edit):
    src = f"{data_root}/networks/airports"
    labels = tmp_path / f"labels-{country}-airports.txt"
    shutil.copy(f"{src}/labels-{country}-airports.txt", labels)
    lines = open(f"{src}/{country}-airports.edgelist").read().splitlines()
    edges = tmp_path / f"{country}-airports.edgelist"
    edges.write_text("\n".join(edit(lines)) + "\n")
    return edges, labels


def test_malformed_line_is_reported_with_its_number(tmp_path, data_root):
    def edit(lines):
        lines[6] = "12 x"
        return lines

    edges, labels = _corrupt_copy(tmp_path, data_root, "europe", edit)
    with pytest.raises(ValueError, match="europe-airports.edgelist, line 7: expected integers"):
        read_airports(edges, labels)


def test_unknown_node_in_edges_is_an_error(tmp_path, data_root):
    edges, labels = _corrupt_copy(tmp_path, data_root, "brazil", lambda ls: ls + ["0 99999"])
    with pytest.raises(ValueError, match="node id 99999"):
        read_airports(edges, labels)


def test_duplicate_and_reversed_edges_are_merged_and_counted(tmp_path, data_root):
    edges, labels = _corrupt_copy(tmp_path, data_root, "brazil", lambda ls: ls + ls[:3]
                                  + [" ".join(reversed(ls[3].split()))])
    d = read_airports(edges, labels)
    assert d.cleaning["input_pairs"] == 1078 and d.cleaning["unique_edges"] == 1074
    assert d.edge_index.equal(gd.load("airports-brazil", root=data_root).edge_index)


def test_empty_or_binary_files_are_named(tmp_path, data_root):
    edges, labels = _corrupt_copy(tmp_path, data_root, "brazil", lambda ls: ls)
    labels.write_text("node label\n")  # truncated after the header
    with pytest.raises(ValueError, match=r"labels-brazil-airports\.txt holds no labelled nodes"):
        read_airports(edges, labels)
    edges, labels = _corrupt_copy(tmp_path, data_root, "brazil", lambda ls: [])
    with pytest.raises(ValueError, match=r"brazil-airports\.edgelist holds no edges"):
        read_airports(edges, labels)
    edges.write_bytes(b"\x00\x01\xff binary\n")
    with pytest.raises(ValueError, match=r"brazil-airports\.edgelist, line 1: not UTF-8 text"):
        read_airports(edges, labels)


@pytest.mark.parametrize(
    "name,rel,payload,message",
    [
        ("blogcatalog", "networks/BlogCatalog/data/group-edges.csv", b"",
         r"group-edges\.csv holds no group memberships"),
        ("ppi", "networks/PPI_node2vec/node2vec_PPI_labels.txt", b"",
         r"node2vec_PPI_labels\.txt holds no labels"),
        ("ppi", "networks/PPI_node2vec/node2vec_PPI.edgelist", b"1 2 nan\n2 1 1.0\n",
         r"node2vec_PPI\.edgelist: edge weights must be finite"),
    ],
)
def test_damaged_loader_files_are_named(name, rel, payload, message, mirror, unchecked):
    with pytest.raises(ValueError, match=message):
        gd.load(name, root=mirror(name, {rel: payload}))
