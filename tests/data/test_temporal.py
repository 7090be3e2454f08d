from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import TemporalData

from graphkit.data import load, read_jodie_csv
from graphkit.data.temporal import (
    chronological_split,
    read_snap_temporal,
    read_tgn_csv,
    temporal_sbm,
)


@pytest.fixture(scope="module")
def uci(data_root):
    return load("uci", root=data_root)


# Sizes from ../shared/data/SOURCES.md.
@pytest.mark.parametrize(
    "name, num_events, num_nodes",
    [("uci", 59835, 1899), ("enron", 125235, 184), ("collegemsg", 59835, 1899)],
)
def test_real_files_sizes(data_root, name, num_events, num_nodes):
    data = load(name, root=data_root)
    assert data.num_events == num_events
    assert data.num_nodes == num_nodes
    # ids contiguous from 0: every id in [0, N) occurs
    ids = torch.cat([data.src, data.dst]).unique()
    assert torch.equal(ids, torch.arange(num_nodes))
    assert data.t.dtype == torch.long and bool((data.t[1:] >= data.t[:-1]).all())
    assert data.msg.shape == (num_events, 0)


def test_id_shift_rule(data_root, uci):
    """ml_ ids are relabelled in increasing order: UCI's ids 2..1900 become 0..1898."""
    raw = np.loadtxt(Path(data_root) / "temporal/uci/ml_uci.csv", delimiter=",", skiprows=1,
                     max_rows=50)
    assert raw[:, 1].min() >= 2
    assert torch.equal(uci.src[:50], torch.from_numpy(raw[:, 1].astype(np.int64) - 2))
    assert torch.equal(uci.dst[:50], torch.from_numpy(raw[:, 2].astype(np.int64) - 2))
    assert torch.equal(uci.t[:50], torch.from_numpy(raw[:, 3].astype(np.int64)))
    assert bool((uci.y == 1).all())


def test_collegemsg_matches_uci_up_to_time_offset(data_root, uci):
    """SOURCES.md: both are Panzarasa et al.'s data, UCI's clock 32400 s behind SNAP's."""
    college = load("collegemsg", root=data_root)
    assert torch.equal(college.src, uci.src) and torch.equal(college.dst, uci.dst)
    assert bool(((college.t - uci.t) == 32400).all())


def test_jodie_reader_roundtrip(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text(
        "user_id,item_id,timestamp,state_label,comma_separated_list_of_features\n"
        "5,0,0.0,0,0.1,0.2\n"
        "7,3,1.5,1,0.3,0.4\n"
        "5,3,2.0,0,0.5,0.6\n"
    )
    data = read_jodie_csv(path)
    # users 5, 7 -> 0, 1; items 0, 3 -> 2, 3 (offset by the number of users)
    assert data.src.tolist() == [0, 1, 0]
    assert data.dst.tolist() == [2, 3, 3]
    assert data.t.dtype == torch.float64 and data.t.tolist() == [0.0, 1.5, 2.0]
    assert data.y.tolist() == [0, 1, 0]
    assert torch.allclose(data.msg, torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]))
    assert data.num_events == 3


def test_jodie_without_features(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text("user_id,item_id,timestamp,state_label\n0,0,1,0\n1,0,2,0\n")
    data = read_jodie_csv(path)
    assert data.msg.shape == (2, 0) and data.t.dtype == torch.long


@pytest.mark.parametrize(
    "body, message",
    [
        ("0,0,1,0,0.1\n1,0,2,0\n", "line 3"),  # wrong field count
        ("0,0,1,0,0.1\nx,0,2,0,0.2\n", "line 3"),  # not a number
        ("0,0,2,0,0.1\n1,0,1,0,0.2\n", "line 3: timestamps are not sorted"),
        ("0,0,-1,0,0.1\n1,0,1,0,0.2\n", "line 2: negative timestamp"),
        ("0,0,1,0,0.1\n1.5,0,2,0,0.2\n", "line 3: user_id must be a non-negative integer"),
    ],
)
def test_jodie_bad_lines(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id,timestamp,state_label,f\n" + body)
    with pytest.raises(ValueError, match=message):
        read_jodie_csv(path)


def test_tgn_and_snap_bad_lines(tmp_path):
    tgn = tmp_path / "ml_bad.csv"
    tgn.write_text(",u,i,ts,label,idx\n0,1,2,5.0,0,1\n1,2,3,4.0,0,2\n")
    with pytest.raises(ValueError, match="line 3: timestamps are not sorted"):
        read_tgn_csv(tgn)
    snap = tmp_path / "snap.txt"
    snap.write_text("1 2 10\n2 3\n")
    with pytest.raises(ValueError, match="line 2"):
        read_snap_temporal(snap)
    snap.write_text("1 2 10\n\n2 3 5\n")
    with pytest.raises(ValueError, match="line 3: timestamps are not sorted"):
        read_snap_temporal(snap)


def test_missing_file_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHKIT_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="ml_enron.csv"):
        load("enron", root=str(tmp_path))


def test_temporal_sbm_properties():
    data = load("temporal-sbm", num_nodes=50, num_events=3000, num_communities=5, seed=1)
    assert data.num_events == 3000 and int(data.src.max()) < 50 and int(data.dst.max()) < 50
    assert bool((data.t[1:] >= data.t[:-1]).all()) and bool((data.src != data.dst).all())
    # y marks repeated pairs, exactly
    keys = (data.src * 50 + data.dst).tolist()
    seen, want = set(), []
    for k in keys:
        want.append(int(k in seen))
        seen.add(k)
    assert data.y.tolist() == want
    assert 0.3 < data.y.float().mean() < 0.9  # recurrence is present
    again = temporal_sbm(num_nodes=50, num_events=3000, num_communities=5, seed=1)
    assert torch.equal(again.dst, data.dst)
    with pytest.raises(ValueError, match="num_communities"):
        temporal_sbm(num_nodes=5, num_communities=6)
    with pytest.raises(ValueError, match="p_in"):
        temporal_sbm(p_in=1.5)


def test_temporal_sbm_has_community_structure():
    data = temporal_sbm(num_nodes=100, num_events=4000, num_communities=4, p_in=1.0,
                        p_repeat=0.0, seed=0)
    # with p_in=1 the interaction graph splits into (at most) num_communities components
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    adj = sp.coo_matrix((np.ones(4000), (data.src.numpy(), data.dst.numpy())), shape=(100, 100))
    assert connected_components(adj, directed=False)[0] <= 4


def test_chronological_split_protocol(uci):
    split = chronological_split(uci, seed=0)
    t = uci.t.double()  # compare with the float quantiles in float64, not float32
    n = uci.num_nodes
    # chronological: train <= val_time < val <= test_time < test
    assert bool((t[split.train_mask] <= split.val_time).all())
    assert bool((t[split.val_mask] > split.val_time).all())
    assert bool((t[split.val_mask] <= split.test_time).all())
    assert bool((t[split.test_mask] > split.test_time).all())
    assert not bool((split.val_mask & split.test_mask).any())
    assert split.val_mask.sum() + split.test_mask.sum() + (t <= split.val_time).sum() == t.numel()
    # 10% of the nodes are held out, all active after val_time
    assert split.new_nodes.numel() == int(0.1 * n)
    late = torch.cat([uci.src[t > split.val_time], uci.dst[t > split.val_time]]).unique()
    assert bool(torch.isin(split.new_nodes, late).all())
    # new nodes have no training edges
    train_nodes = torch.cat([uci.src[split.train_mask], uci.dst[split.train_mask]]).unique()
    assert not bool(torch.isin(split.new_nodes, train_nodes).any())
    # inductive edges are exactly the val/test edges touching a node unseen in training
    for full, ind in ((split.val_mask, split.inductive_val_mask),
                      (split.test_mask, split.inductive_test_mask)):
        unseen = ~torch.isin(uci.src, train_nodes) | ~torch.isin(uci.dst, train_nodes)
        assert torch.equal(ind, full & unseen)
        assert int(ind.sum()) > 0
    # every edge touching a held-out node after val_time is inductive
    touches = torch.isin(uci.src, split.new_nodes) | torch.isin(uci.dst, split.new_nodes)
    assert bool(split.inductive_test_mask[touches & split.test_mask].all())


def test_chronological_split_bad_inputs(uci):
    with pytest.raises(ValueError, match="val_ratio"):
        chronological_split(uci, val_ratio=0.6, test_ratio=0.5)
    with pytest.raises(ValueError, match="new_node_ratio"):
        chronological_split(uci, new_node_ratio=1.5)
    # a stream whose columns disagree failed in a NumPy boolean index
    src, dst, t = torch.tensor([0, 1, 2]), torch.tensor([1, 2]), torch.tensor([1, 2, 3])
    with pytest.raises(ValueError, match="src has 3 events but dst has 2"):
        chronological_split(TemporalData(src=src, dst=dst, t=t))
    with pytest.raises(ValueError, match="src/dst holds a negative node id"):
        chronological_split(TemporalData(src=src, dst=torch.tensor([1, -2, 0]), t=t))
    msg = torch.tensor([[0.0], [float("nan")], [1.0]])
    with pytest.raises(ValueError, match=r"msg holds NaN values \(first in row 1\)"):
        chronological_split(TemporalData(src=src, dst=src, t=t, msg=msg))


@pytest.mark.parametrize("reader,header", [(read_tgn_csv, ",u,i,ts,label,idx\n"),
                                           (read_snap_temporal, ""),
                                           (read_jodie_csv, "user_id,item_id,timestamp,label\n")])
def test_empty_or_binary_stream_files_are_named(tmp_path, reader, header):
    path = tmp_path / "stream.csv"
    path.write_text(header)  # empty, or truncated right after the header
    with pytest.raises(ValueError, match=r"stream\.csv holds no (events|interactions)"):
        reader(path)
    path.write_bytes(header.encode() + b"\x1f\x8b\x08\x00 gzip bytes \xff\xfe\n")
    with pytest.raises(ValueError, match=r"stream\.csv, line \d: not UTF-8 text"):
        reader(path)


def test_nan_label_or_feature_is_named_not_cast(tmp_path):
    tgn = tmp_path / "ml_x.csv"
    tgn.write_text(",u,i,ts,label,idx\n0,1,2,5,0,1\n1,2,3,6,nan,2\n")
    with pytest.raises(ValueError, match=r"ml_x\.csv, line 3: label must be a non-negative int"):
        read_tgn_csv(tgn)
    jodie = tmp_path / "j.csv"
    jodie.write_text("user_id,item_id,timestamp,state_label,f\n0,0,1,0,0.1\n1,0,2,0,nan\n")
    with pytest.raises(ValueError, match=r"j\.csv, line 3: a feature is NaN or infinite"):
        read_jodie_csv(jodie)
    jodie.write_text("user_id,item_id,timestamp,state_label,f\n0,0,1,nan,0.1\n")
    with pytest.raises(ValueError, match=r"j\.csv, line 2: state_label must be"):
        read_jodie_csv(jodie)


@pytest.mark.parametrize(("reader", "text"), [
    (read_jodie_csv, "0,0,0.0,0,0.1\n1,0,1.0,0,0.3\n"),
    (read_tgn_csv, "0,1,2,5.0,0,1\n1,2,3,6.0,0,2\n"),
])
def test_a_file_without_its_header_line_is_named(tmp_path, reader, text):
    # the first event was skipped as the header without a word
    path = tmp_path / "events.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"line 1: expected the header line .* got the event"):
        reader(path)
