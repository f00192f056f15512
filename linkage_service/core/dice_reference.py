"""Slow, obviously-correct Dice candidate generation: one Python-int popcount per pair.

It is the yardstick for ``dice.dice_candidates``; keep it simple rather than fast. The acceptance
rule copies anonlink's ``dice_coefficient_accelerated`` (anonlink/similarities/dice.cpp) exactly:

1. a left record with no set bits has no candidates (for any threshold > 0);
2. anonlink's popcount pre-filter: skip the pair unless
   ``|pa - pb| <= uint32(2 * pa * (1 / t - 1))``, evaluated in doubles and truncated;
3. ``score = 2 * |a & b| / double(pa + pb)`` and the pair is kept when ``score >= t``.
"""

from __future__ import annotations

from linkage_service.core.bitmatrix import BitMatrix
from linkage_service.core.candidates import CandidatePairs, sorted_candidates
from linkage_service.core.dice import check_dice_inputs

__all__ = ["anonlink_max_delta", "dice_candidates_reference"]

UINT32_RANGE = 2**32
INT64_LIMIT = 2**63


def anonlink_max_delta(popcount: int, threshold: float) -> int:
    """anonlink's bound on ``|pa - pb|``: ``(uint32_t)(2 * pa * (1/t - 1))`` in C, for ``pa > 0``.

    A double-to-uint32 conversion out of range is undefined in C; x86-64 compilers truncate to a
    signed 64-bit integer and keep the low 32 bits, which only matters for ``t`` below ~5e-7.
    """
    bound = 2 * popcount * (1 / threshold - 1)
    if bound >= INT64_LIMIT:
        return 0
    return int(bound) % UINT32_RANGE


def _row_ints(matrix: BitMatrix) -> list[int]:
    return [int.from_bytes(row.tobytes(), "little") for row in matrix.words]


def dice_candidates_reference(a: BitMatrix, b: BitMatrix, threshold: float) -> CandidatePairs:
    """All pairs ``(i, j)`` whose Dice coefficient passes anonlink's rule at ``threshold``.

    Same contract and output as ``dice.dice_candidates``; cost is about a microsecond per pair.
    """
    threshold = check_dice_inputs(a, b, threshold)
    b_ints = _row_ints(b)
    b_counts = [x.bit_count() for x in b_ints]
    scores: list[float] = []
    left: list[int] = []
    right: list[int] = []
    for i, x in enumerate(_row_ints(a)):
        pa = x.bit_count()
        if pa == 0:
            continue
        max_delta = anonlink_max_delta(pa, threshold)
        for j, (y, pb) in enumerate(zip(b_ints, b_counts, strict=True)):
            if abs(pa - pb) > max_delta:
                continue
            score = 2 * (x & y).bit_count() / float(pa + pb)
            if score >= threshold:
                scores.append(score)
                left.append(i)
                right.append(j)
    return sorted_candidates(scores, left, right)
