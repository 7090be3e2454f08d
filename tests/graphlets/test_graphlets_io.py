import networkx as nx
import numpy as np
import pytest
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


def test_load_rejects_malformed_archives(tmp_path):
    path = tmp_path / "a.npz"
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="is not an orbit-adjacency archive"):
        load_orbit_adjacency(tmp_path / "text.npz")
    np.savez(path, foo=np.ones(3))  # was a bare KeyError
    with pytest.raises(ValueError, match="has no 'shape' array"):
        load_orbit_adjacency(path)
    np.savez(path, shape=np.array([2, 2]), A1_0_0_indptr=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="has no 'A1_0_0_data' array"):
        load_orbit_adjacency(path)
    np.savez(path, shape=np.array([2]), A1_0_0_indptr=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"'shape' must hold \[n, n\]"):
        load_orbit_adjacency(path)
    # a column id beyond the shape used to load without complaint
    np.savez(path, shape=np.array([2, 2]), A1_0_0_indptr=np.array([0, 1, 2]),
             A1_0_0_indices=np.array([5, 0], dtype=np.int32),
             A1_0_0_data=np.array([1, 1], dtype=np.int32))
    with pytest.raises(ValueError, match="matrix A1_0_0 is corrupt"):
        load_orbit_adjacency(path)


def test_save_rejects_a_directory_and_a_fractional_chunk_before_counting(tmp_path):
    g = nx.path_graph(4)
    with pytest.raises(ValueError, match="is a directory"):  # was IsADirectoryError at the end
        save_orbit_adjacency(g, tmp_path)
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer, got 1.5"):
        save_orbit_adjacency(g, tmp_path / "a.npz", chunk_rows=1.5)
    assert not list(tmp_path.iterdir())
