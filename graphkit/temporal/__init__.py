"""Temporal link prediction: NAT's N-cache and model, a TGN baseline, and the shared harness.

* :class:`NCache`: NAT's per-hop hash tables of down-sampled neighbours.
"""

from graphkit.temporal.ncache import NCache

__all__ = ["NCache"]
