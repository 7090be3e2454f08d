"""Sampling layer: CSR cache, neighbour, temporal-neighbour and negative samplers.

Pure torch and Numba (no pyg-lib, torch-sparse or torch-scatter); every sampler accepts CPU
and CUDA tensors.
"""

from graphkit.sampling.csr import CSRGraph
from graphkit.sampling.negative import (
    HistoricalNegativeSampler,
    InductiveNegativeSampler,
    negative_edges,
    uniform_negative_destinations,
)
from graphkit.sampling.neighbor import NeighborLoader, NeighborSampler, SampledSubgraph
from graphkit.sampling.temporal import TemporalNeighborSampler

__all__ = [
    "CSRGraph",
    "HistoricalNegativeSampler",
    "InductiveNegativeSampler",
    "NeighborLoader",
    "NeighborSampler",
    "SampledSubgraph",
    "TemporalNeighborSampler",
    "negative_edges",
    "uniform_negative_destinations",
]
