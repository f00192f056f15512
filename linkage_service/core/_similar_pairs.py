"""Dice edges of the standing index's candidate graph: a superset of what offline linking pairs.

Offline linking accepts a pair by anonlink's rule in one orientation (left agency first): the
popcount pre-filter ``|pa - pb| <= uint32(2 pa (1/t - 1))`` with ``pa`` the left popcount, then
``score >= t``. The standing index only needs a superset of those pairs (an extra edge merges
components, which stays exact), so it asks for Dice at or above ``t * (1 - THRESHOLD_SLACK)``:
every pair accepted at ``t`` in either orientation passes that lower threshold with room to spare
for the rounding of the bound and of the score.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import partial

import numpy as np

from .bitmatrix import BitMatrix
from .dice import dice_candidates

__all__ = ["DIRECT_ROWS", "SCAN_BLOCK_ROWS", "THRESHOLD_SLACK", "similar_pairs"]

THRESHOLD_SLACK = 1e-9
# Batches of at most this many rows are compared with one pass over the words per row: the
# kernel's set-up (sorting the other side) costs more than that below about a dozen rows
# (measured: one row against 20,000 at 1024 bits, 1 ms direct, 6-30 ms through the kernel).
DIRECT_ROWS = 8
SCAN_BLOCK_ROWS = 8192  # 1 MiB of 1024-bit rows per buffer


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
    spans = _spans(other.n, threads)
    with ThreadPoolExecutor(len(spans)) if len(spans) > 1 else nullcontext() as pool:
        for i in range(new.n):
            scan = partial(_scan, new.words[i], int(new.popcounts[i]), other, t)
            parts = list(pool.map(scan, spans)) if pool else [scan(spans[0])]
            hit = np.concatenate(parts)
            lefts.append(np.full(hit.size, i, np.int64))
            rights.append(hit)
    return np.concatenate(lefts), np.concatenate(rights)


def _spans(n: int, threads: int | None) -> list[tuple[int, int]]:
    """Row ranges for the scanning threads: one per thread, whole blocks, at least one."""
    workers = max(1, min(threads or os.cpu_count() or 1, -(-n // SCAN_BLOCK_ROWS)))
    step = -(-n // workers // SCAN_BLOCK_ROWS) * SCAN_BLOCK_ROWS or SCAN_BLOCK_ROWS
    return [(lo, min(lo + step, n)) for lo in range(0, max(n, 1), step)]


def _scan(
    row: np.ndarray, pa: int, other: BitMatrix, t: float, span: tuple[int, int]
) -> np.ndarray:
    """int64: rows of ``other`` in ``span`` with Dice >= t against ``row`` (popcount ``pa``).
    Block by block, so the AND and popcount buffers stay in cache (measured at 1M rows of 1024
    bits: 70 ms for one pass over the whole matrix, 38 ms in blocks, 21 ms on two threads)."""
    lo, hi = span
    width = other.words.shape[1]
    anded = np.empty((SCAN_BLOCK_ROWS, width), np.uint64)
    counts = np.empty((SCAN_BLOCK_ROWS, width), np.uint8)
    out = [np.zeros(0, np.int64)]
    for start in range(lo, hi, SCAN_BLOCK_ROWS):
        stop = min(start + SCAN_BLOCK_ROWS, hi)
        m = stop - start
        np.bitwise_and(other.words[start:stop], row, out=anded[:m])
        np.bitwise_count(anded[:m], out=counts[:m])
        common = np.add.reduce(counts[:m], axis=1, dtype=np.int64)
        total = other.popcounts[start:stop] + pa
        out.append(start + np.flatnonzero((2 * common >= t * total) & (common > 0)))
    return np.concatenate(out)
