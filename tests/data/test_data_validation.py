import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from graphkit.data.edges import relabel, undirected_edge_index
from graphkit.data.text import read_ragged, read_table
from graphkit.data.validation import (
    check_data,
    check_edge_index,
    check_edge_weight,
    check_features,
    check_graph,
    check_num_nodes,
    check_temporal_data,
    check_timestamps,
    is_integer,
)

FAST = settings(max_examples=40, deadline=None)


@st.composite
def graphs(draw, max_nodes=12, max_edges=40):
    n = draw(st.integers(1, max_nodes))
    e = draw(st.integers(0, max_edges))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          min_size=e, max_size=e))
    return n, np.array(pairs, dtype=np.int64).reshape(-1, 2)


@FAST
@given(graphs())
def test_valid_edge_index_passes_unchanged(g):
    n, pairs = g
    ei = torch.from_numpy(pairs.T.copy()).int()
    out = check_edge_index(ei, n)
    assert out.dtype == torch.long and torch.equal(out, ei.long())


@FAST
@given(graphs(), st.integers(0, 5))
def test_out_of_range_and_negative_ids_are_named(g, excess):
    n, pairs = g
    bad = np.vstack([pairs, [[0, n + excess]]]).T
    with pytest.raises(ValueError, match=f"node id {n + excess}, out of range for num_nodes={n}"):
        check_edge_index(torch.from_numpy(bad.copy()), n)
    neg = np.vstack([pairs, [[-1 - excess, 0]]]).T
    with pytest.raises(ValueError, match="negative node id"):
        check_edge_index(neg.copy(), n)


@pytest.mark.parametrize(
    "bad,match",
    [(torch.zeros(3, 4, dtype=torch.long), "shape \\[2, num_edges\\]"),
     (torch.zeros(4, dtype=torch.long), "shape"),
     (torch.zeros(2, 4), "must hold integers"),
     (np.zeros((2, 3), dtype=np.float64), "must hold integers"),
     ([[0, 1], [1, 0]], "tensor or array")],
)
def test_edge_index_shape_and_dtype(bad, match):
    with pytest.raises(ValueError, match=match):
        check_edge_index(bad, 5)


def test_empty_graphs():
    with pytest.raises(ValueError, match="no edges"):
        check_edge_index(torch.empty(2, 0, dtype=torch.long), 3, allow_empty=False)
    with pytest.raises(ValueError, match="empty"):
        check_num_nodes(0)
    with pytest.raises(ValueError, match="node-count mismatch"):
        check_num_nodes(3, torch.zeros(4, 2))


@FAST
@given(st.integers(1, 20), st.integers(1, 6), st.data(), st.sampled_from([np.nan, np.inf]))
def test_non_finite_features_are_located(n, f, data, value):
    x = torch.randn(n, f)
    check_features(x)
    row = data.draw(st.integers(0, n - 1))
    x[row, data.draw(st.integers(0, f - 1))] = float(value)
    kind = "NaN" if np.isnan(value) else "infinite"
    with pytest.raises(ValueError, match=f"{kind} values \\(first in row {row}\\)"):
        check_features(x)


def test_check_data_whole_object():
    ok = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.arange(3),
              train_mask=torch.ones(3, dtype=torch.bool))
    check_data(ok)
    with pytest.raises(ValueError, match="train_mask has 2 rows"):
        check_data(Data(x=torch.ones(3, 2), train_mask=torch.ones(2, dtype=torch.bool)))
    with pytest.raises(ValueError, match="val_mask must be a one-dimensional boolean"):
        check_data(Data(x=torch.ones(3, 2), val_mask=torch.ones(3)))
    with pytest.raises(ValueError, match="y has 4 rows"):
        check_data(Data(x=torch.ones(3, 2), y=torch.zeros(4)))
    with pytest.raises(ValueError, match="out of range"):
        check_data(Data(edge_index=torch.tensor([[0], [3]]), num_nodes=3))
    with pytest.raises(ValueError, match="hyperedge id"):
        check_data(Data(hyperedge_index=torch.tensor([[0], [2]]), num_hyperedges=2, num_nodes=1))


@FAST
@given(graphs(), st.sampled_from(["keep", "remove"]))
def test_undirected_edge_index_matches_brute_force(g, rule):
    n, pairs = g
    ei, report = undirected_edge_index(pairs, n, self_loops=rule)
    undirected = {(min(u, v), max(u, v)) for u, v in pairs.tolist()}
    loops = {p for p in undirected if p[0] == p[1]}
    kept = undirected - loops if rule == "remove" else undirected
    expected = sorted({(u, v) for u, v in kept} | {(v, u) for u, v in kept})
    assert ei.t().tolist() == [list(p) for p in expected]
    assert report == {"input_pairs": len(pairs), "unique_edges": len(undirected),
                      "self_loops": len(loops),
                      "self_loops_removed": rule == "remove" and bool(loops)}


def test_undirected_edge_index_bad_inputs():
    with pytest.raises(ValueError, match="out of range"):
        undirected_edge_index(np.array([[0, 3]]), 3)
    with pytest.raises(ValueError, match="shape \\[num_pairs, 2\\]"):
        undirected_edge_index(np.zeros((4, 3), dtype=np.int64), 5)
    with pytest.raises(ValueError, match="self_loops must be"):
        undirected_edge_index(np.array([[0, 1]]), 3, self_loops="drop")
    # float and boolean pairs used to be cast to int64 first: (0.5, 1.7) became the edge (0, 1)
    with pytest.raises(ValueError, match="pairs must hold integers, got dtype float64"):
        undirected_edge_index(np.array([[0.5, 1.7]]), 3)
    with pytest.raises(ValueError, match="pairs must hold integers, got dtype bool"):
        undirected_edge_index(np.array([[True, False]]), 3)
    ei, _ = undirected_edge_index(np.empty((0, 2)), 3)  # an empty float array holds no ids
    assert ei.shape == (2, 0) and ei.dtype == torch.int64
    ei, _ = undirected_edge_index(np.array([[0, 2]], dtype=np.uint8), 3)
    assert ei.tolist() == [[0, 2], [2, 0]]


@FAST
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=30))
def test_relabel_is_an_order_preserving_bijection(ids):
    original, new = relabel(np.array(ids))
    assert original[new].tolist() == ids
    assert sorted(set(new.tolist())) == list(range(len(set(ids))))
    assert bool(np.all(np.diff(original) > 0))


@FAST
@given(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=20),
       st.data())
def test_read_table_reports_the_first_malformed_line(tmp_path_factory, rows, data):
    path = tmp_path_factory.mktemp("t") / "edges.txt"
    lines = [f"{u} {v}" for u, v in rows]
    path.write_text("\n".join(lines) + "\n")
    assert read_table(path, 2).tolist() == [list(r) for r in rows]
    bad = data.draw(st.integers(0, len(lines) - 1))
    lines[bad] = data.draw(st.sampled_from(["1", "1 2 3", "a b", "1 2.5"]))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"edges.txt, line {bad + 1}: expected"):
        read_table(path, 2)


def test_read_table_names_the_line_of_an_id_past_int64(tmp_path):
    p = tmp_path / "big.txt"
    p.write_text("0 1\n1 99999999999999999999\n")
    # used to say only "could not be parsed as a table of 2 columns"
    with pytest.raises(ValueError, match="big.txt, line 2: 99999999999999999999 is out of range"):
        read_table(p, 2)


def test_read_table_options_and_ragged(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("node,label\n1,2\n\n3,4\n")
    assert read_table(p, 2, delimiter=",", skip_header=1, usecols=(1,)).tolist() == [[2], [4]]
    (tmp_path / "e.txt").write_text("")
    assert read_table(tmp_path / "e.txt", 2).shape == (0, 2)
    r = tmp_path / "r.txt"
    r.write_text("1 2 3\n4\n5 x\n")
    with pytest.raises(ValueError, match="r.txt, line 3: expected integers"):
        read_ragged(r)
    r.write_text("1 2 3\n\n4\n")
    assert read_ragged(r) == [(1, [1, 2, 3]), (3, [4])]


def test_check_graph_checks_edge_weight():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
    # a NaN edge weight used to pass every training entry point and train to NaN
    with pytest.raises(ValueError, match=r"edge_weight holds NaN .* \(first at edge 1\)"):
        check_graph(Data(edge_index=ei, edge_weight=torch.tensor([1.0, float("nan"), 1.0]),
                         num_nodes=3))
    with pytest.raises(ValueError, match=r"edge_weight must have shape \[3\]"):
        check_graph(Data(edge_index=ei, edge_weight=torch.ones(2), num_nodes=3))
    check_graph(Data(edge_index=ei, edge_weight=torch.ones(3), num_nodes=3))
    assert check_edge_weight(torch.ones(3), 3).shape == (3,)


def test_check_features_names_an_input_that_is_not_a_tensor():
    # a nested list used to fail with "'list' object has no attribute 'dim'"
    with pytest.raises(ValueError, match="msg must be a tensor or array, got list"):
        check_features([[1.0, 2.0]], name="msg")
    # an object array (e.g. from pandas) used to fail in torch.from_numpy
    with pytest.raises(ValueError, match="x must hold numbers, got dtype object"):
        check_features(np.array([[1, None]], dtype=object))
    with pytest.raises(ValueError, match="t must be a tensor or array, got list"):
        check_timestamps([1.0, 2.0])
    with pytest.raises(ValueError, match="t must hold real numbers"):  # was NotImplementedError
        check_timestamps(torch.tensor([1 + 1j]))


def test_check_features_finds_nan_in_sparse_features():
    dense = torch.zeros(5, 3)
    dense[1, 2], dense[3, 0] = 1.0, float("nan")
    for x in (dense.to_sparse(), dense.to_sparse_csr()):
        with pytest.raises(ValueError, match=r"x holds NaN values \(first in row 3\)"):
            check_features(x)
    dense[3, 0] = 2.0
    assert check_features(dense.to_sparse()).is_sparse


def test_check_features_allocates_no_mask_on_clean_input():
    # an N x F boolean mask per call set the peak memory of ForwardGNN's whole training run
    # (benchmarks/forward_learning.py --memory measured the check, not the training)
    from torch.profiler import ProfilerActivity, profile

    x = torch.rand(2000, 500)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        check_features(x)
    allocated = sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)
    assert allocated < x.numel() // 100
    # values so large that their sum overflows are still finite: the search clears them
    big = torch.full((4, 3), 3e38)
    assert check_features(big) is big
    big[2, 1] = float("-inf")
    with pytest.raises(ValueError, match=r"x holds infinite values \(first in row 2\)"):
        check_features(big)


def test_check_graph_leaves_labels_and_masks_to_the_caller():
    data = Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0, 1], [1, 3]]),
                train_mask=torch.tensor([0, 2]))  # an index vector: fine here, not in check_data
    check_graph(data)
    with pytest.raises(ValueError, match="train_mask"):
        check_data(data)
    data.edge_index = torch.tensor([[0], [4]])
    with pytest.raises(ValueError, match="node id 4, out of range for num_nodes=4"):
        check_graph(data)


def test_check_temporal_data():
    from torch_geometric.data import TemporalData

    def stream(**kw):
        base = dict(src=torch.tensor([0, 1, 2]), dst=torch.tensor([1, 2, 0]),
                    t=torch.tensor([1, 2, 2]), msg=torch.zeros(3, 2))
        return TemporalData(**{**base, **kw})

    check_temporal_data(stream(), num_nodes=3)
    cases = [
        (stream(), 2, "src/dst holds node id 2, out of range for num_nodes=2"),
        (stream(dst=torch.tensor([1, 2])), None, "src has 3 events but dst has 2"),
        (stream(t=torch.tensor([1, 3, 2])), None, "t is not sorted"),
        (stream(msg=torch.tensor([[0.0], [float("inf")], [0.0]])), None,
         r"msg holds infinite values \(first in row 1\)"),
        (stream(msg=torch.zeros(2, 2)), None, "msg has 2 rows for 3 events"),
        (stream(src=torch.tensor([0, -1, 2])), None, "negative node id"),
        (stream(src=torch.zeros(0, dtype=torch.long), dst=torch.zeros(0, dtype=torch.long),
                t=torch.zeros(0, dtype=torch.long), msg=torch.zeros(0, 2)), None, "no events"),
    ]
    for data, n, match in cases:
        with pytest.raises(ValueError, match=match):
            check_temporal_data(data, n)


def test_share_of_reads_the_ratio_meant():
    from graphkit.data.validation import share_of

    assert share_of(100, 0.29) == 29  # int(0.29 * 100) is 28
    assert share_of(100, 0.07, "ceil") == 7  # ceil(0.07 * 100) is 8
    assert share_of(3, 1 / 3) == 1 and share_of(6, 5 / 6, "ceil") == 5  # computed ratios too
    assert share_of(10, 0.25) == 2 and share_of(10, 0.25, "ceil") == 3
    with pytest.raises(ValueError, match="rounding"):
        share_of(10, 0.5, "round")


def test_a_one_dimensional_msg_is_named_per_event():
    # the message spoke of [num_nodes, num_features] for the event features
    from torch_geometric.data import TemporalData

    from graphkit.data.validation import check_temporal_data

    data = TemporalData(src=torch.tensor([0, 1]), dst=torch.tensor([1, 2]),
                        t=torch.tensor([1, 2]), msg=torch.randn(2))
    with pytest.raises(ValueError, match=r"msg must have shape \[num_events, num_features\]"):
        check_temporal_data(data)


def test_is_integer_takes_python_and_numpy_integers_only():
    assert all(is_integer(v) for v in (0, -3, np.int64(5), np.int32(2)))
    assert not any(is_integer(v) for v in (True, np.bool_(True), 2.0, 2.5, "3", None))

