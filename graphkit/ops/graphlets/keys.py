"""The 28 graphlet-orbit adjacency keys ``(hop, orbit_i, orbit_j)`` shared by every backend.

The order is the compiled core's output order (``graphkit._cpp.graphlet_keys()``): GRADCO's 20
matrices with ``i <= j``, each non-symmetric one followed by its transpose.
"""

from __future__ import annotations

__all__ = ["KEYS", "KEY_INDEX", "SYMMETRIC_KEYS", "ALL_MASK", "mask_of"]

KEYS: tuple[tuple[int, int, int], ...] = (
    (1, 0, 0), (1, 1, 2), (1, 2, 1), (1, 3, 3), (1, 4, 5), (1, 5, 4), (1, 5, 5),
    (1, 6, 7), (1, 7, 6), (1, 8, 8), (1, 9, 11), (1, 11, 9), (1, 10, 10), (1, 10, 11),
    (1, 11, 10), (1, 12, 13), (1, 13, 12), (1, 13, 13), (1, 14, 14), (2, 1, 1), (2, 4, 5),
    (2, 5, 4), (2, 6, 6), (2, 8, 8), (2, 9, 10), (2, 10, 9), (2, 12, 12), (3, 4, 4),
)
KEY_INDEX: dict[tuple[int, int, int], int] = {k: i for i, k in enumerate(KEYS)}
SYMMETRIC_KEYS: frozenset[tuple[int, int, int]] = frozenset(k for k in KEYS if k[1] == k[2])
ALL_MASK: int = (1 << len(KEYS)) - 1


def mask_of(keys) -> int:
    """Bit mask selecting ``keys`` (an iterable of ``(hop, i, j)``)."""
    mask = 0
    for key in keys:
        key = tuple(int(x) for x in key)
        if key not in KEY_INDEX:
            raise ValueError(f"unknown orbit-adjacency key {key}; valid keys: {list(KEYS)}")
        mask |= 1 << KEY_INDEX[key]
    return mask
