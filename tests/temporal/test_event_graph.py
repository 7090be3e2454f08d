import pytest
import torch

from graphkit.temporal.event_graph import EventGraph, earlier_events, repeat_targets


def test_subgraph_links_each_node_to_its_most_recent_earlier_events():
    g = EventGraph(num_nodes=5, feature_dim=2, num_neighbors=2)
    src, dst = torch.tensor([0, 0, 1, 0]), torch.tensor([1, 2, 2, 3])
    t = torch.tensor([1, 2, 3, 4])
    feats = torch.arange(8.0).view(4, 2)
    g.insert(src[:2], dst[:2], t[:2], feats[:2])
    g.insert(src[2:], dst[2:], t[2:], feats[2:])
    n_id = torch.tensor([0, 2])
    all_id, edge_index, e_t, e_msg = g.subgraph(n_id, torch.tensor([4, 10]))
    # node 0 before t=4: events 0 (t=1, ->1) and 1 (t=2, ->2); node 2: events 1 and 2
    edges = {(int(all_id[j]), int(all_id[i]), int(tt), tuple(m.tolist()))
             for (j, i), tt, m in zip(edge_index.t(), e_t, e_msg)}
    assert edges == {(1, 0, 1, (0.0, 1.0)), (2, 0, 2, (2.0, 3.0)),
                     (0, 2, 2, (2.0, 3.0)), (1, 2, 3, (4.0, 5.0))}
    assert all_id.tolist() == [0, 1, 2]


def test_empty_state_round_trip_and_bad_arguments():
    g = EventGraph(num_nodes=3, feature_dim=1, num_neighbors=1)
    all_id, edge_index, e_t, e_msg = g.subgraph(torch.tensor([1]), torch.tensor([5]))
    assert all_id.tolist() == [1] and edge_index.shape == (2, 0) and e_msg.shape == (0, 1)
    g.insert(torch.tensor([0]), torch.tensor([1]), torch.tensor([1]), torch.ones(1, 1))
    h = EventGraph(num_nodes=3, feature_dim=1, num_neighbors=1)
    h.load_state(g.state())
    for a, b in zip(g.subgraph(torch.tensor([1]), torch.tensor([5])),
                    h.subgraph(torch.tensor([1]), torch.tensor([5]))):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="num_neighbors"):
        EventGraph(num_nodes=3, feature_dim=1, num_neighbors=0)
    with pytest.raises(ValueError, match="num_nodes must be positive"):
        EventGraph(num_nodes=0, feature_dim=1, num_neighbors=1)
    # feature rows of another width failed in torch.cat; fewer rows than events were stored
    # and later read by the wrong event ids
    src, dst, t = torch.tensor([1, 2]), torch.tensor([2, 0]), torch.tensor([2, 3])
    with pytest.raises(ValueError, match=r"feats must have shape \[2, 1\].*got \[2, 3\]"):
        g.insert(src, dst, t, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"got \[1, 1\]"):
        g.insert(src, dst, t, torch.ones(1, 1))
    assert g.msgs.shape == (1, 1) and g.sampler.num_events == 1


def test_earlier_events_counts_the_nodes_events_before_each_position():
    src, dst = torch.tensor([0, 1, 0, 2, 3]), torch.tensor([1, 2, 0, 0, 1])
    node = torch.tensor([0, 0, 0, 1, 1, 2, 4, 0])
    event = torch.tensor([0, 2, 3, 1, 4, 3, 4, 5])
    # a loop (event 2: 0 -> 0) counts once; event 5 is past the batch
    assert earlier_events(src, dst, node, event).tolist() == [0, 1, 2, 1, 2, 1, 0, 3]
    with pytest.raises(ValueError, match="same length"):
        earlier_events(src, dst[:2], node, event)


def test_repeat_targets_copies_the_edges_of_each_centre():
    edge_index = torch.tensor([[3, 1, 2, 0, 3], [0, 2, 0, 1, 2]])
    edges, eid = repeat_targets(edge_index, 4, torch.tensor([2, 0, 3, 2]), 10)
    got = sorted(zip(edges[0].tolist(), edges[1].tolist(), eid.tolist()))
    assert got == sorted([(1, 10, 1), (3, 10, 4), (3, 11, 0), (2, 11, 2),
                          (1, 13, 1), (3, 13, 4)])
