import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphkit.sampling import CSRGraph


def test_small_graph_exact():
    # edges: 0->1, 2->0, 0->2, 1->2, 0->1 (duplicate), 2->2 (self-loop)
    ei = torch.tensor([[0, 2, 0, 1, 0, 2], [1, 0, 2, 2, 1, 2]])
    csr = CSRGraph.from_edge_index(ei, 4)
    assert csr.rowptr.tolist() == [0, 3, 4, 6, 6]
    assert csr.col.tolist() == [1, 2, 1, 2, 0, 2]
    assert csr.edge_id.tolist() == [0, 2, 4, 3, 1, 5]  # stable: input order within a row
    assert csr.degree().tolist() == [3, 1, 2, 0]
    assert csr.neighbors(3).numel() == 0
    csc = csr.transpose()
    assert csc.degree().tolist() == [1, 2, 3, 0]  # in-degrees
    assert csc.neighbors(2).tolist() == [0, 1, 2]
    assert csc.transpose() is csr and csr.transpose() is csc  # cached


def test_empty_graph():
    csr = CSRGraph.from_edge_index(torch.empty((2, 0), dtype=torch.long), 3)
    assert csr.rowptr.tolist() == [0, 0, 0, 0] and csr.num_edges == 0
    assert csr.transpose().num_edges == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        CSRGraph.from_edge_index(torch.zeros(3, 2, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="out of range"):
        CSRGraph.from_edge_index(torch.tensor([[0], [5]]), 3)
    with pytest.raises(ValueError, match="integers"):
        CSRGraph.from_edge_index(torch.zeros(2, 2), 3)
    csr = CSRGraph.from_edge_index(torch.tensor([[0], [1]]), 2)
    with pytest.raises(ValueError, match="out of range"):
        csr.neighbors(2)
    with pytest.raises(ValueError, match="rowptr"):
        CSRGraph(torch.tensor([0, 2]), torch.tensor([1]), torch.tensor([0]))
    # rows that start elsewhere or run backwards gave empty or wrong neighbour lists
    col, eid = torch.tensor([0, 1]), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="rowptr must start at 0 and never decrease"):
        CSRGraph(torch.tensor([0, 2, 1, 2]), col, eid)
    with pytest.raises(ValueError, match=r"rowptr\[0\] = 1"):
        CSRGraph(torch.tensor([1, 1, 2]), col, eid)
    with pytest.raises(ValueError, match="rowptr must hold integers"):
        CSRGraph(torch.tensor([0.0, 1.0, 2.0]), col, eid)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)),
                                    max_size=40))
def test_property_rows_hold_exactly_the_out_edges(n, pairs):
    pairs = [(u % n, v % n) for u, v in pairs]
    ei = torch.tensor(pairs, dtype=torch.long).view(-1, 2).t()
    csr = CSRGraph.from_edge_index(ei, n)
    for graph, (a, b) in ((csr, (0, 1)), (csr.transpose(), (1, 0))):
        for v in range(n):
            lo, hi = int(graph.rowptr[v]), int(graph.rowptr[v + 1])
            ids = graph.edge_id[lo:hi].tolist()
            assert ids == [e for e, p in enumerate(pairs) if p[a] == v]
            assert graph.col[lo:hi].tolist() == [pairs[e][b] for e in ids]
