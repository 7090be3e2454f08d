"""Sampling layer: CSR cache, neighbour, temporal-neighbour and negative samplers.

Pure torch and Numba (no pyg-lib, torch-sparse or torch-scatter); every sampler accepts CPU
and CUDA tensors.
"""

from graphkit.sampling.temporal import TemporalNeighborSampler

__all__ = ["TemporalNeighborSampler"]
