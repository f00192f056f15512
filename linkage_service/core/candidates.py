"""Candidate pairs: a structure of arrays, in one documented order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CandidatePairs", "empty_candidates", "sorted_candidates"]


@dataclass(frozen=True, eq=False)
class CandidatePairs:
    """Pairs ``(left[k], right[k])`` with similarity ``scores[k]``, ``k`` in ``range(len(self))``.

    Attributes:
        scores: ``np.float64``, shape ``(k,)``: Dice coefficient of each pair.
        left: ``np.int64``, shape ``(k,)``: row index into the left (first) matrix.
        right: ``np.int64``, shape ``(k,)``: row index into the right (second) matrix.

    Order: decreasing score, then increasing ``left``, then increasing ``right`` (the order of
    anonlink's candidate generation). Each ``(left, right)`` pair appears at most once.
    """

    scores: np.ndarray
    left: np.ndarray
    right: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def same_as(self, other: CandidatePairs) -> bool:
        """True when both hold the same pairs in the same order with bit-identical scores."""
        return (
            len(self) == len(other)
            and np.array_equal(self.left, other.left)
            and np.array_equal(self.right, other.right)
            and np.array_equal(self.scores.view(np.uint64), other.scores.view(np.uint64))
        )


def empty_candidates() -> CandidatePairs:
    """No pairs, with the documented dtypes."""
    return CandidatePairs(
        scores=np.empty(0, dtype=np.float64),
        left=np.empty(0, dtype=np.int64),
        right=np.empty(0, dtype=np.int64),
    )


def sorted_candidates(
    scores: npt.ArrayLike, left: npt.ArrayLike, right: npt.ArrayLike
) -> CandidatePairs:
    """Pairs in any order, returned as ``CandidatePairs`` in (-score, left, right) order."""
    scores = np.asarray(scores, dtype=np.float64)
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    # lexsort uses its last key as the primary one.
    order = np.lexsort((right, left, -scores))
    return CandidatePairs(scores=scores[order], left=left[order], right=right[order])
