import re

import numpy as np
import pytest
import torch

import graphkit.data as gd

TABLE = {  # nodes, hyperedges, sum |e|, |e| range, features, classes, train/test
    "cocitation-cora": (2708, 1579, 4786, (2, 5), 1433, 7, (140, 2568)),
    "cocitation-citeseer": (3312, 1079, 3453, (2, 26), 3703, 6, (138, 3174)),
    "cocitation-pubmed": (19717, 7963, 34629, (2, 171), None, 3, (78, 19639)),
    "coauthorship-cora": (2708, 1072, 4585, (2, 43), 1433, 7, (140, 2568)),
    "coauthorship-dblp": (41302, 22363, 99561, (2, 202), None, 6, (1740, 39562)),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_sizes_match_sources(name, data_root):
    n, m, nnz, (lo, hi), feats, classes, (tr, te) = TABLE[name]
    d = gd.load(name, root=data_root, features=feats is not None)
    assert d.num_nodes == n and d.num_hyperedges == m
    assert d.hyperedge_index.shape == (2, nnz)
    size = torch.bincount(d.hyperedge_index[1], minlength=m)
    assert int(size.min()) == lo and int(size.max()) == hi
    assert int(d.y.max()) + 1 == classes
    assert (int(d.train_mask.sum()), int(d.test_mask.sum())) == (tr, te)
    if feats is not None:
        assert d.x.shape == (n, feats)


def test_splits_differ_and_are_disjoint(data_root):
    a = gd.load("cocitation-cora", root=data_root, split=1)
    b = gd.load("cocitation-cora", root=data_root, split=10)
    assert not torch.equal(a.train_mask, b.train_mask)
    assert not bool((a.train_mask & a.test_mask).any())


def test_missing_features_error_names_the_file(data_root):
    with pytest.raises(FileNotFoundError, match="features.pickle.*features=False"):
        gd.load("coauthorship-dblp", root=data_root)


@pytest.mark.parametrize("split", [0, 11, "1", 1.5])
def test_bad_split(split, data_root):
    with pytest.raises(ValueError, match="split must be an integer from 1 to 10"):
        gd.load("cocitation-cora", root=data_root, split=split)


def test_features_hint_only_when_features_are_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        gd.load("coauthorship-dblp", root=str(tmp_path))
    assert "needs the file hypergraph.pickle" in str(err.value)
    assert "features=False" not in str(err.value)


def test_damaged_hand_downloaded_features_are_named(mirror):
    # cocitation-pubmed's features.pickle is not in the shared data: users fetch it by hand,
    # and the manifest has no checksum for it, so a truncated download reaches the parser.
    import pickle

    import scipy.sparse as sp

    rel = "hypergraph/hypergcn/cocitation/pubmed/features.pickle"
    good = pickle.dumps(sp.csr_matrix(np.eye(19717, 4, dtype=np.float32)))
    root = mirror("cocitation-pubmed", {rel: good[: len(good) // 2]})
    with pytest.raises(ValueError, match=r"features\.pickle is not a valid pickle file"):
        gd.load("cocitation-pubmed", root=root)
    root = mirror("cocitation-pubmed", {rel: pickle.dumps({"not": "a matrix"})})
    with pytest.raises(ValueError, match=r"features\.pickle must hold a feature matrix, got dict"):
        gd.load("cocitation-pubmed", root=root)
    root = mirror("cocitation-pubmed", {rel: good})
    assert gd.load("cocitation-pubmed", root=root).x.shape == (19717, 4)


@pytest.mark.parametrize(
    "file,obj,message",
    [
        ("hypergraph.pickle", [[0, 1]], "must hold a dict of hyperedges"),
        ("hypergraph.pickle", {"a": [0, 99999]}, "hyperedge 0 holds vertex id 99999"),
        ("labels.pickle", [], "holds no labels"),
        ("splits/1.pickle", {"train": [0]}, "lacks the key 'test'"),
    ],
)
def test_malformed_pickles_are_named(file, obj, message, mirror, unchecked):
    import pickle

    rel = f"hypergraph/hypergcn/cocitation/cora/{file}"
    root = mirror("cocitation-cora", {rel: pickle.dumps(obj)})
    with pytest.raises(ValueError, match=f"{re.escape(file)}.*{message}"):
        gd.load("cocitation-cora", root=root)
