import networkx as nx
import torch

from graphkit.graphlets import KEYS, orbit_adjacency
from graphkit.graphlets.io import load_orbit_adjacency, save_orbit_adjacency


def test_save_and_load_round_trip(tmp_path):
    g = nx.karate_club_graph()
    path = tmp_path / "karate.npz"
    save_orbit_adjacency(g, path, chunk_rows=7)
    loaded = load_orbit_adjacency(path)
    expected = orbit_adjacency(g)
    assert set(loaded) == set(expected) == set(KEYS)
    for key in KEYS:
        assert (loaded[key] != expected[key]).nnz == 0
    assert not [p for p in tmp_path.iterdir() if p.name != "karate.npz"]


def test_empty_graph_writes_empty_matrices(tmp_path):
    path = tmp_path / "empty.npz"
    save_orbit_adjacency(torch.zeros(2, 0, dtype=torch.long), path, num_nodes=0)
    loaded = load_orbit_adjacency(path)
    assert len(loaded) == len(KEYS)
    assert all(m.shape == (0, 0) and m.nnz == 0 for m in loaded.values())
