import math

import pytest
import torch

from graphkit.robust import jaccard_prune, jaccard_similarity
from graphkit.robust.jaccard import split_edges

X = torch.tensor([
    [1, 1, 0, 0],  # 0
    [1, 0, 0, 0],  # 1: J(0,1) = 1/2
    [0, 0, 1, 1],  # 2: J(0,2) = 0
    [1, 1, 1, 0],  # 3: J(0,3) = 2/3, J(1,3) = 1/3
    [0, 0, 0, 0],  # 4: featureless
], dtype=torch.float)


def test_similarity_values():
    ei = torch.tensor([[0, 0, 0, 1, 4, 2], [1, 2, 3, 3, 4, 4]])
    sim = jaccard_similarity(X, ei)
    assert torch.allclose(sim[:4], torch.tensor([0.5, 0.0, 2 / 3, 1 / 3]))
    assert math.isnan(float(sim[4]))  # 0/0: undefined
    assert float(sim[5]) == 0.0  # one featureless end


def test_non_binary_features_are_binarised():
    assert torch.equal(jaccard_similarity(3.5 * X, torch.tensor([[0], [3]])),
                       jaccard_similarity(X, torch.tensor([[0], [3]])))


def test_prune_is_strictly_below_threshold():
    ei = torch.tensor([[0, 1, 0, 2, 0, 3, 1, 3], [1, 0, 2, 0, 3, 0, 3, 1]])
    kept, removed = jaccard_prune(ei, X, threshold=0.5)  # J = .5 is kept (strict <)
    assert {tuple(e) for e in kept.t().tolist()} == {(0, 1), (1, 0), (0, 3), (3, 0)}
    assert {tuple(e) for e in removed.t().tolist()} == {(0, 2), (2, 0), (1, 3), (3, 1)}
    kept0, removed0 = jaccard_prune(ei, X, threshold=0.0)
    assert kept0.size(1) == ei.size(1) and removed0.size(1) == 0


def test_featureless_pair_is_never_pruned():
    kept, removed = jaccard_prune(torch.tensor([[4], [4]]), X, threshold=1.0)
    assert kept.size(1) == 1 and removed.size(1) == 0


def test_sparse_features_and_chunks():
    ei = torch.tensor([[0, 0, 0, 1], [1, 2, 3, 3]])
    dense = jaccard_similarity(X, ei)
    assert torch.allclose(jaccard_similarity(X.to_sparse(), ei, chunk_size=1), dense)


def test_bad_inputs():
    ei = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="threshold"):
        jaccard_prune(ei, X, 1.5)
    with pytest.raises(ValueError, match="out of range"):
        jaccard_prune(torch.tensor([[0], [9]]), X, 0.1)
    with pytest.raises(ValueError, match="shape"):
        jaccard_similarity(X[0], ei)
    with pytest.raises(ValueError, match="boolean mask"):
        split_edges(ei, torch.tensor([1]))


def test_chunk_size_must_be_positive():
    ei = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="chunk_size must be positive, got 0"):
        jaccard_similarity(X, ei, chunk_size=0)  # was range()'s "arg 3 must not be zero"


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_csr_features_equal_dense():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    # CSR features failed with torch's "unsupported tensor layout: SparseCsr"
    got = jaccard_similarity(X.to_sparse_csr(), ei)
    assert torch.equal(got, jaccard_similarity(X, ei))
