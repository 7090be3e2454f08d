import numpy as np
import pytest
import scipy.sparse as sp
import torch

import graphkit.data as gd
from graphkit.data import largest_connected_component, random_planetoid_split, read_npz


def _write_npz(path, adj, attr=None, labels=None):
    adj = sp.csr_matrix(adj)
    arrays = dict(adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr,
                  adj_shape=adj.shape)
    if attr is not None:
        attr = sp.csr_matrix(attr)
        arrays.update(attr_data=attr.data, attr_indices=attr.indices, attr_indptr=attr.indptr,
                      attr_shape=attr.shape)
    if labels is not None:
        arrays["labels"] = labels
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "name,n,edges,feats,classes",
    [("cora", 2708, 5278, 1433, 7), ("citeseer", 3312, 4536, 3703, 6)],
)
def test_gnn_benchmark_sizes(name, n, edges, feats, classes, data_root):
    d = gd.load(f"gnn-benchmark-{name}", root=data_root)
    assert d.num_nodes == n and d.x.shape == (n, feats) and int(d.y.max()) + 1 == classes
    assert d.edge_index.size(1) == 2 * edges
    assert not bool((d.edge_index[0] == d.edge_index[1]).any())


def test_read_npz_rule_symmetrise_merge_drop_self_loops(tmp_path):
    # 0->1 and 1->0 (one edge), 1->2 twice-weighted, self-loop on 3, node 4 isolated
    adj = np.zeros((5, 5))
    adj[0, 1] = adj[1, 0] = 1
    adj[1, 2] = 2
    adj[3, 3] = 1
    _write_npz(tmp_path / "g.npz", adj, attr=np.eye(5), labels=np.array([0, 0, 1, 1, 1]))
    d = read_npz(tmp_path / "g.npz")
    assert d.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    assert d.cleaning == {"input_pairs": 4, "unique_edges": 3, "self_loops": 1,
                          "self_loops_removed": True}
    assert d.x.dtype == torch.float32 and d.y.tolist() == [0, 0, 1, 1, 1]


def test_read_npz_bad_inputs(tmp_path):
    _write_npz(tmp_path / "a.npz", np.eye(3), attr=np.eye(4))
    with pytest.raises(ValueError, match="node-count mismatch"):
        read_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", adj_data=np.ones(1))
    with pytest.raises(ValueError, match="lacks the array adj_indices"):
        read_npz(tmp_path / "b.npz")
    _write_npz(tmp_path / "c.npz", np.ones((2, 3)))
    with pytest.raises(ValueError, match="square"):
        read_npz(tmp_path / "c.npz")
    _write_npz(tmp_path / "d.npz", np.eye(2), attr=np.array([[np.nan], [1.0]]))
    with pytest.raises(ValueError, match="NaN"):
        read_npz(tmp_path / "d.npz")


def test_largest_connected_component_relabels_and_slices():
    from torch_geometric.data import Data

    # components {0, 2, 5} (largest), {1, 3}, {4}
    ei = torch.tensor([[0, 2, 2, 5, 1, 3], [2, 0, 5, 2, 3, 1]])
    d = Data(edge_index=ei, x=torch.arange(6.0).view(6, 1), y=torch.arange(6),
             train_mask=torch.tensor([True, False, False, False, False, True]))
    lcc = largest_connected_component(d)
    assert lcc.lcc_nodes.tolist() == [0, 2, 5]
    assert lcc.num_nodes == 3 and lcc.x.view(-1).tolist() == [0.0, 2.0, 5.0]
    assert lcc.y.tolist() == [0, 2, 5] and lcc.train_mask.tolist() == [True, False, True]
    assert sorted(map(tuple, lcc.edge_index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    # mapping back: every LCC edge is an original edge
    orig = set(map(tuple, ei.t().tolist()))
    back = lcc.lcc_nodes[lcc.edge_index]
    assert all(tuple(e) in orig for e in back.t().tolist())


def test_lcc_of_gnn_benchmark_cora_matches_deeprobust_size(data_root):
    lcc = largest_connected_component(gd.load("gnn-benchmark-cora", root=data_root))
    assert lcc.num_nodes == 2485 and lcc.edge_index.size(1) == 2 * 5069
    assert bool((lcc.lcc_nodes[1:] > lcc.lcc_nodes[:-1]).all())


def test_random_planetoid_split_properties(data_root):
    d = largest_connected_component(gd.load("gnn-benchmark-citeseer", root=data_root))
    s = random_planetoid_split(d, 20, 30, seed=1)
    classes = int(d.y.max()) + 1
    assert torch.equal(s.y[s.train_mask].bincount(minlength=classes), torch.full((classes,), 20))
    assert torch.equal(s.y[s.val_mask].bincount(minlength=classes), torch.full((classes,), 30))
    total = s.train_mask.int() + s.val_mask.int() + s.test_mask.int()
    assert bool((total == 1).all())
    again = random_planetoid_split(d, 20, 30, seed=1)
    other = random_planetoid_split(d, 20, 30, seed=2)
    assert torch.equal(s.train_mask, again.train_mask)
    assert not torch.equal(s.train_mask, other.train_mask)
    assert "train_mask" not in d  # the input is not modified


def test_random_planetoid_split_bad_inputs():
    from torch_geometric.data import Data

    d = Data(y=torch.tensor([0, 0, 1]), num_nodes=3)
    with pytest.raises(ValueError, match="class 0 has 2 nodes"):
        random_planetoid_split(d, 2, 1)
    with pytest.raises(ValueError, match=">= 0"):
        random_planetoid_split(d, -1, 0)
    with pytest.raises(ValueError, match="integer class ids"):
        random_planetoid_split(Data(y=torch.rand(3, 2)), 1, 0)


def test_gnn_benchmark_loader_options(data_root):
    d = gd.load("gnn-benchmark-cora", root=data_root, lcc=True, split_seed=0)
    assert d.num_nodes == 2485 and int(d.train_mask.sum()) == 140 and int(d.val_mask.sum()) == 210
    assert "train_mask" not in gd.load("gnn-benchmark-cora", root=data_root)


def _npz_bytes(tmp_path):
    _write_npz(tmp_path / "ok.npz", np.eye(3)[[1, 2, 0]], labels=np.array([0, 1, 0]))
    return (tmp_path / "ok.npz").read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_zip"])
def test_damaged_npz_is_a_value_error_naming_the_file(damage, tmp_path):
    good = _npz_bytes(tmp_path)
    payload = {"truncated": good[: len(good) // 2], "empty": b"",
               "not_a_zip": b"\x01\x02 not an archive" * 20}[damage]
    path = tmp_path / "bad.npz"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=r"bad\.npz is not a valid NumPy \.npz file"):
        read_npz(path)


def test_npz_never_unpickles(tmp_path):
    # np.load(allow_pickle=True) would run this pickle's payload: the reader must refuse it.
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match=r"evil\.npz is not a valid NumPy \.npz file"):
        read_npz(path)
    assert not marker.exists()


def test_npz_with_a_single_array_or_without_adjacency(tmp_path):
    np.save(tmp_path / "one.npy", np.eye(2))
    (tmp_path / "one.npz").write_bytes((tmp_path / "one.npy").read_bytes())
    with pytest.raises(ValueError, match="single .npy array"):
        read_npz(tmp_path / "one.npz")
    np.savez(tmp_path / "noadj.npz", labels=np.zeros(3))
    with pytest.raises(ValueError, match="noadj.npz lacks the array adj_data"):
        read_npz(tmp_path / "noadj.npz")


def test_nan_labels_nan_attributes_and_bad_indices_name_the_file(tmp_path):
    ring = np.eye(3)[[1, 2, 0]]
    _write_npz(tmp_path / "y.npz", ring, labels=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"y\.npz: labels must be integers"):
        read_npz(tmp_path / "y.npz")  # NaN was cast to a junk int64 label
    _write_npz(tmp_path / "x.npz", ring, attr=np.array([[1.0, np.nan], [0, 1], [1, 0]]))
    with pytest.raises(ValueError, match=r"x\.npz: attributes: x holds NaN"):
        read_npz(tmp_path / "x.npz")
    adj = sp.csr_matrix(ring)
    np.savez(tmp_path / "ids.npz", adj_data=adj.data, adj_indices=adj.indices + 5,
             adj_indptr=adj.indptr, adj_shape=adj.shape)
    with pytest.raises(ValueError, match=r"ids\.npz: malformed 'adj' CSR matrix"):
        read_npz(tmp_path / "ids.npz")


def test_float_ids_nan_weights_bad_label_shapes_and_empty_graphs_name_the_file(tmp_path):
    ring = sp.csr_matrix(np.eye(3)[[1, 2, 0]])
    parts = dict(adj_data=ring.data, adj_indices=ring.indices, adj_indptr=ring.indptr,
                 adj_shape=ring.shape)
    # SciPy used to truncate float column ids (1.5 became node 1)
    np.savez(tmp_path / "f.npz", **{**parts, "adj_indices": ring.indices + 0.5})
    with pytest.raises(ValueError, match=r"f\.npz: adj_indices must hold integers"):
        read_npz(tmp_path / "f.npz")
    # a NaN entry used to become an edge (weights are dropped)
    np.savez(tmp_path / "w.npz", **{**parts, "adj_data": np.array([1.0, np.nan, 1.0])})
    with pytest.raises(ValueError, match=r"w\.npz: the adjacency holds NaN"):
        read_npz(tmp_path / "w.npz")
    # a 3-D label array used to come back as a float y of that shape
    _write_npz(tmp_path / "l3.npz", ring, labels=np.zeros((3, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"l3\.npz: labels must be a vector"):
        read_npz(tmp_path / "l3.npz")
    _write_npz(tmp_path / "l2.npz", ring, labels=np.array([[0, 2], [1, 0], [0, 1]]))
    with pytest.raises(ValueError, match=r"l2\.npz: multi-label labels \[N, C\] must hold only"):
        read_npz(tmp_path / "l2.npz")
    _write_npz(tmp_path / "e.npz", sp.csr_matrix((0, 0)))
    with pytest.raises(ValueError, match=r"e\.npz: the graph is empty"):
        read_npz(tmp_path / "e.npz")
