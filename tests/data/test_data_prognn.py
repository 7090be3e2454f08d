import numpy as np
import pytest
import scipy.sparse as sp
import torch

import graphkit.data as gd

SIZES = {"cora": 2485, "citeseer": 2110, "cora_ml": 2810, "polblogs": 1222}
SPLITS = {"cora": (247, 249, 1988), "citeseer": (210, 211, 1688), "cora_ml": (280, 282, 2248),
          "polblogs": (121, 123, 978), "pubmed": (1971, 1972, 15774)}
TARGETS = {"cora": 83, "citeseer": 63, "polblogs": 540, "pubmed": 186}


def _upper(d):
    ei = d.edge_index.numpy()
    a = sp.csr_matrix((np.ones(ei.shape[1]), ei), shape=(d.num_nodes, d.num_nodes))
    return sp.triu(a, k=1).tocsr()


@pytest.mark.parametrize("name", list(SIZES))
def test_clean_lcc_sizes_splits_and_features(name, data_root):
    d = gd.load(f"prognn-{name}", root=data_root)
    n = SIZES[name]
    assert d.num_nodes == n and d.y.shape == (n,) and d.lcc_nodes.shape == (n,)
    assert bool((d.lcc_nodes[1:] > d.lcc_nodes[:-1]).all())  # DeepRobust keeps sorted order
    counts = tuple(int(d[k].sum()) for k in ("train_mask", "val_mask", "test_mask"))
    assert counts == SPLITS[name]
    assert not bool((d.edge_index[0] == d.edge_index[1]).any())  # zero diagonal
    if name == "polblogs":
        assert torch.equal(d.x, torch.eye(n))  # no features: identity, as Pro-GNN
    else:
        assert d.x.size(0) == n


@pytest.mark.parametrize("name", ["cora", "citeseer", "cora_ml", "polblogs", "pubmed"])
def test_metattack_changes_exactly_rate_share_of_clean_edges(name, data_root):
    # The attacked graphs are in the clean LCC node order iff the change share is exact:
    # metattack flips int(rate * |E|) undirected entries.
    clean = _upper(gd.load(f"prognn-{name}", root=data_root, features=False))
    m = clean.nnz
    for rate in (0.05, 0.1, 0.15, 0.2, 0.25):
        d = gd.load(f"prognn-{name}", root=data_root, attack="meta", rate=rate, features=False)
        assert (_upper(d) != clean).nnz == int(rate * m), rate
        counts = tuple(int(d[k].sum()) for k in ("train_mask", "val_mask", "test_mask"))
        assert counts == SPLITS[name]


@pytest.mark.parametrize("name", list(TARGETS))
def test_nettack_targets_and_budget(name, data_root):
    clean = _upper(gd.load(f"prognn-{name}", root=data_root, features=False))
    for rate in (1, 5):
        d = gd.load(f"prognn-{name}", root=data_root, attack="nettack", rate=rate,
                    features=False)
        targets = TARGETS[name]
        assert int(d.target_mask.sum()) == targets
        assert not bool((d.target_mask & ~d.test_mask).any())  # targets are test nodes
        changed = (_upper(d) != clean).nnz
        assert 0.95 * rate * targets <= changed <= rate * targets


def test_pubmed_needs_allx_for_features_and_loads_without(data_root):
    with pytest.raises(FileNotFoundError, match="ind.pubmed.allx.*features=False"):
        gd.load("prognn-pubmed", root=data_root)
    d = gd.load("prognn-pubmed", root=data_root, attack="meta", rate=0.05, features=False)
    assert d.num_nodes == 19717 and d.x is None


def test_bad_attack_and_rate(data_root):
    with pytest.raises(ValueError, match="attack must be one of"):
        gd.load("prognn-cora", root=data_root, attack="random")
    with pytest.raises(ValueError, match="must be one of \\(0.05"):
        gd.load("prognn-cora", root=data_root, attack="meta", rate=0.3)
    with pytest.raises(ValueError, match="needs a rate"):
        gd.load("prognn-cora", root=data_root, attack="nettack")
    with pytest.raises(ValueError, match="takes no rate"):
        gd.load("prognn-cora", root=data_root, rate=0.1)
    with pytest.raises(ValueError, match="no nettack graphs for cora_ml"):
        gd.load("prognn-cora_ml", root=data_root, attack="nettack", rate=1)
    with pytest.raises(ValueError, match="unknown Pro-GNN dataset"):
        gd.load("prognn-flickr", root=data_root)
    # used to be float()'s bare "could not convert string to float: 'high'"
    with pytest.raises(ValueError, match="rate for attack='meta' must be a number"):
        gd.load("prognn-cora", root=data_root, attack="meta", rate="high")


ATTACKED = "prognn/meta/cora_meta_adj_0.05.npz"
SPLIT = "prognn/splits/cora_prognn_splits.json"


@pytest.mark.parametrize(
    "rel,payload,message",
    [
        (ATTACKED, b"PK\x03\x04 truncated", r"cora_meta_adj_0\.05\.npz is not a valid SciPy"),
        (SPLIT, b'{"idx_train": [1, 2', r"cora_prognn_splits\.json is not a valid JSON"),
        (SPLIT, b'{"idx_train": [1], "idx_val": [2]}', r"splits\.json lacks the key 'idx_test'"),
        (SPLIT, b'{"idx_train": [1], "idx_val": [2], "idx_test": [99999]}',
         r"'idx_test' holds node id 99999, out of range for 2485 nodes"),
        (SPLIT, b"[1, 2, 3]", r"splits\.json must hold a JSON object"),
    ],
)
def test_damaged_files_are_named(rel, payload, message, mirror, unchecked):
    root = mirror("prognn-cora", {rel: payload})
    with pytest.raises(ValueError, match=message):
        gd.load("prognn-cora", root=root, attack="meta", rate=0.05)
