"""benchmarks/hypergraph.py: the PyG peer teacher computes graphkit's HGNN exactly."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from graphkit.data.hypergraph import add_singleton_hyperedges, hyperedge_index_from_list
from graphkit.nn import HGNN

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hypergraph.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("hypergraph_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hg():
    # 7 vertices, vertex 6 isolated (gets a singleton); sizes 3, 2, 4, 1.
    index, m = hyperedge_index_from_list([[0, 1, 2], [2, 3], [3, 4, 5, 0], [1]], num_nodes=7)
    return add_singleton_hyperedges(index, 7, m)


def _copy_weights(pyg, hgnn):
    with torch.no_grad():
        pyg.conv1.lin.weight.copy_(hgnn.conv1.lin.weight)
        pyg.conv2.lin.weight.copy_(hgnn.conv2.lin.weight)
        pyg.bias1.copy_(torch.randn_like(pyg.bias1))
        pyg.bias2.copy_(torch.randn_like(pyg.bias2))
        hgnn.conv1.bias.copy_(pyg.bias1)
        hgnn.conv2.bias.copy_(pyg.bias2)


@pytest.mark.parametrize("sparse", [False, True])
def test_symmetric_pyg_teacher_equals_hgnn(bench, hg, sparse):
    index, m = hg
    torch.manual_seed(0)
    x = torch.rand(7, 5)
    hgnn, pyg = HGNN(5, 8, 3).eval(), bench.PyGHGNN(5, 8, 3).eval()
    _copy_weights(pyg, hgnn)
    xin = x.to_sparse_csr() if sparse else x
    torch.testing.assert_close(pyg(xin, index, num_hyperedges=m), hgnn(x, index, num_hyperedges=m))
    torch.testing.assert_close(pyg.embed(xin, index, num_hyperedges=m),
                               hgnn.embed(x, index, num_hyperedges=m))


def test_native_pyg_teacher_uses_left_normalisation(bench, hg):
    index, m = hg
    torch.manual_seed(0)
    x = torch.rand(7, 5)
    native = bench.PyGHGNNNative(5, 4, 2, dropout=0.0).eval()
    H = torch.zeros(7, m)
    H[index[0], index[1]] = 1.0
    L = torch.diag(1 / H.sum(1)) @ H @ torch.diag(1 / H.sum(0)) @ H.T
    h = torch.relu(L @ native.conv1.lin(x) + native.bias1)
    torch.testing.assert_close(native(x, index, num_hyperedges=m),
                               L @ native.conv2.lin(h) + native.bias2)


def test_structure_merges_repeated_hyperedges_then_adds_singletons(bench):
    index, m = hyperedge_index_from_list([[0, 1], [1, 0], [2, 3]], num_nodes=5)
    args = type("Args", (), {"keep_duplicates": False})()
    out, k = bench.structure(index, 5, m, args)
    assert k == 3 and out[:, -1].tolist() == [4, 2]  # {0,1}, {2,3}, singleton {4}
    args.keep_duplicates = True
    assert bench.structure(index, 5, m, args)[1] == 4
