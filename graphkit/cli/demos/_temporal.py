"""Shared input of the temporal demo sections (NAT, PRES)."""

from __future__ import annotations

from torch_geometric.data import TemporalData

from graphkit.data import load
from graphkit.data.temporal import TemporalSplit, chronological_split


def temporal_sbm_demo_data(seed: int = 0) -> tuple[TemporalData, TemporalSplit, str]:
    """A 3,000-event ``temporal-sbm`` stream, its TGN-protocol split and a table label."""
    data = load("temporal-sbm", num_nodes=200, num_events=3000, seed=seed)
    split = chronological_split(data, seed=seed)
    return data, split, f"temporal-sbm ({data.num_events} events)"
