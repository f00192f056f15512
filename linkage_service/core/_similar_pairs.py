"""Dice edges of the standing index's candidate graph: a superset of what offline linking pairs.

Offline linking accepts a pair by anonlink's rule in one orientation (left agency first): the
popcount pre-filter ``|pa - pb| <= uint32(2 pa (1/t - 1))`` with ``pa`` the left popcount, then
``score >= t``. The standing index only needs a superset of those pairs (an extra edge merges
components, which stays exact), so it asks for Dice at or above ``t * (1 - THRESHOLD_SLACK)``:
every pair accepted at ``t`` in either orientation passes that lower threshold with room to spare
for the rounding of the bound and of the score.
"""

from __future__ import annotations

import numpy as np

from .bitmatrix import BitMatrix
from .dice import dice_candidates

__all__ = ["DIRECT_ROWS", "THRESHOLD_SLACK", "similar_pairs"]

THRESHOLD_SLACK = 1e-9
# Batches of at most this many rows are compared with one pass over the words per row: the
# kernel's set-up (sorting the other side) costs more than that below about a dozen rows
# (measured: one row against 20,000 at 1024 bits, 1 ms direct, 6-30 ms through the kernel).
DIRECT_ROWS = 8


def similar_pairs(
    new: BitMatrix, other: BitMatrix, threshold: float, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(left, right), int64 (m,): rows of ``new`` and ``other`` with Dice at or above
    ``threshold`` less the slack (module docstring); any order."""
    t = threshold * (1 - THRESHOLD_SLACK)
    if new.n > DIRECT_ROWS:
        found = dice_candidates(new, other, t, threads=threads)
        return found.left, found.right
    lefts, rights = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for i in range(new.n):
        common = np.bitwise_count(other.words & new.words[i]).sum(axis=1, dtype=np.int64)
        total = other.popcounts + new.popcounts[i]
        hit = np.flatnonzero((2 * common >= t * total) & (common > 0))
        lefts.append(np.full(hit.size, i, np.int64))
        rights.append(hit.astype(np.int64))
    return np.concatenate(lefts), np.concatenate(rights)
