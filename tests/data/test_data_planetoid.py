import pytest
import torch

import graphkit.data as gd
from graphkit.data.datasets.planetoid import read_planetoid_structure


@pytest.mark.parametrize(
    "name,n,edges,feats,classes,loops",
    [("Cora", 2708, 5278, 1433, 7, 0), ("CiteSeer", 3327, 4552, 3703, 6, 124)],
)
def test_public_split_sizes(name, n, edges, feats, classes, loops, data_root):
    d = gd.load(name, root=data_root)
    assert d.cleaning["self_loops"] == loops and d.cleaning["unique_edges"] == edges + loops
    assert not bool((d.edge_index[0] == d.edge_index[1]).any())  # removed, as PyG
    assert d.num_nodes == n and d.x.shape == (n, feats)
    assert d.edge_index.size(1) == 2 * edges  # both directions, as PyG
    assert int(d.y.max()) + 1 == classes
    assert int(d.train_mask.sum()) == 20 * classes
    assert int(d.val_mask.sum()) == 500 and int(d.test_mask.sum()) == 1000
    assert not bool((d.train_mask & d.test_mask).any())
    # undirected: every edge has its reverse
    pairs = set(map(tuple, d.edge_index.t().tolist()))
    assert all((v, u) in pairs for u, v in pairs)


def test_pubmed_structure_loads_without_features(data_root):
    adj, y = read_planetoid_structure(data_root, "PubMed")
    assert adj.shape == (19717, 19717) and y.shape == (19717,)
    assert int(y.max()) == 2
    off_diagonal = adj.nnz - int(adj.diagonal().astype(bool).sum())
    assert off_diagonal == 2 * 44324


def test_planetoid_structure_agrees_with_pyg_reader(data_root):
    adj, y = read_planetoid_structure(data_root, "Cora")
    d = gd.load("Cora", root=data_root)
    assert torch.equal(y, d.y)
    assert adj.nnz == d.edge_index.size(1)


def test_damaged_hand_downloaded_allx_is_named(mirror):
    # ind.pubmed.allx is not in the shared data and has no checksum: a truncated download must
    # be named, not surface as PyG's bare UnpicklingError.
    root = mirror("PubMed", {"Planetoid/PubMed/raw/ind.pubmed.allx": b"\x80\x02ccopy_reg\n"})
    with pytest.raises(ValueError, match=r"ind\.pubmed\.allx is not a valid Planetoid pickle"):
        gd.load("PubMed", root=root)


def test_short_test_index_is_an_error_not_fewer_test_nodes(mirror, unchecked, data_root):
    rel = "Planetoid/Cora/raw/ind.cora.test.index"
    lines = open(f"{data_root}/{rel}").read().splitlines()
    root = mirror("Cora", {rel: "\n".join(lines[:500]).encode()})
    with pytest.raises(ValueError, match=r"test\.index lists 500 test nodes but .*ind\.cora\.ty "
                                         r"has 1000 rows"):
        gd.load("Cora", root=root)
    root = mirror("Cora", {rel: b"\xff\xfe\x00binary"})
    with pytest.raises(ValueError, match=r"ind\.cora\.test\.index, line 1: not UTF-8 text"):
        gd.load("Cora", root=root)
