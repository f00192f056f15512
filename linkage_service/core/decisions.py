"""The decision rule: from Dice scores and identifier evidence to match / possible / no link.

Evidence beyond the Bloom filter comes from validated identifiers (NHS number) carried as keyed
exact tokens beside it (0 = absent). For one candidate pair, identifier evidence is:

* ``AGREE`` (+1): some identifier is present on both sides and equal. Two valid NHS numbers that
  agree are strong evidence even when the names or address changed, so Dice at or above
  ``identifier_floor`` is a match, and anything lower is at least possible.
* ``DISAGREE`` (-1): identifiers present on both sides, none equal. Two valid numbers that differ
  are strong counter-evidence (twins share surname, birth date and address), so the pair is never
  an automatic match: at most possible, and only when Dice alone would have matched.
* ``UNKNOWN`` (0): Dice alone decides against the ``match`` and ``possible`` thresholds.

Greedy one-to-one solving ranks pairs by decision first (every match before any possible), then
by ``score + evidence``: among matches, agreeing identifiers win over Dice alone. Ranking by
evidence alone let a record carrying a sibling's valid NHS number (Dice about 0.45, possible)
take the place of the child's own record at Dice 1.0 (measured on the synthetic population).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ThresholdError

__all__ = [
    "AGREE",
    "DISAGREE",
    "MATCH",
    "NO_LINK",
    "POSSIBLE",
    "UNKNOWN",
    "DecisionRule",
    "decide",
    "identifier_evidence",
    "identifier_pairs",
    "rank_weights",
]

NO_LINK, POSSIBLE, MATCH = 0, 1, 2
DECISION_NAMES = {MATCH: "match", POSSIBLE: "possible"}
AGREE, UNKNOWN, DISAGREE = 1, 0, -1


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds on Dice; see the module docstring for how identifiers move them.
    ``duplicate`` is the Dice at which two records of one agency count as the same child."""

    match: float
    possible: float
    identifier_floor: float
    duplicate: float = 0.9

    def __post_init__(self) -> None:
        for name in ("match", "possible", "identifier_floor", "duplicate"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ThresholdError(f"{name} threshold must be in (0, 1], got {value}")
        if self.possible > self.match:
            raise ThresholdError(
                f"possible threshold {self.possible} exceeds match threshold {self.match}"
            )


def identifier_pairs(ids_a: np.ndarray, ids_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with an equal non-zero token in some identifier column.

    Args: uint64 arrays of shape (n_a, k) and (n_b, k).
    Returns: (left, right), int64 (m,), unique pairs sorted by left then right.
    """
    lefts, rights = [], []
    for col in range(ids_a.shape[1]):
        left, right = _equal_join(ids_a[:, col], ids_b[:, col])
        lefts.append(left)
        rights.append(right)
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    left, right = np.concatenate(lefts), np.concatenate(rights)
    keys = np.unique(left * max(ids_b.shape[0], 1) + right)
    return keys // max(ids_b.shape[0], 1), keys % max(ids_b.shape[0], 1)


def _equal_join(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs where a[i] == b[j] != 0, by sorting b and expanding equal ranges."""
    a_idx = np.flatnonzero(a)
    b_idx = np.flatnonzero(b)
    order = b_idx[np.argsort(b[b_idx], kind="stable")]
    b_sorted = b[order]
    lo = np.searchsorted(b_sorted, a[a_idx], side="left")
    hi = np.searchsorted(b_sorted, a[a_idx], side="right")
    counts = hi - lo
    left = np.repeat(a_idx, counts).astype(np.int64)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    right = order[starts + np.arange(counts.sum())].astype(np.int64)
    return left, right


def identifier_evidence(
    ids_a: np.ndarray, ids_b: np.ndarray, left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """int8 (m,): AGREE, UNKNOWN or DISAGREE for each pair (module docstring)."""
    a, b = ids_a[left], ids_b[right]
    both = (a != 0) & (b != 0)
    agree = (both & (a == b)).any(axis=1)
    disagree = both.any(axis=1) & ~agree
    return (agree.astype(np.int8) - disagree.astype(np.int8)).astype(np.int8)


def decide(scores: np.ndarray, evidence: np.ndarray, rule: DecisionRule) -> np.ndarray:
    """int8 (m,): MATCH, POSSIBLE or NO_LINK for each pair."""
    by_dice = np.where(
        scores >= rule.match, MATCH, np.where(scores >= rule.possible, POSSIBLE, NO_LINK)
    )
    with_agreement = np.where(scores >= rule.identifier_floor, MATCH, POSSIBLE)
    with_disagreement = np.where(scores >= rule.match, POSSIBLE, NO_LINK)
    decision = np.select(
        [evidence == AGREE, evidence == DISAGREE], [with_agreement, with_disagreement], by_dice
    )
    return decision.astype(np.int8)


def rank_weights(scores: np.ndarray, evidence: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """float64 (m,): the order greedy solving takes pairs in (higher first)."""
    # score + evidence lies in [-1, 2], so a step of 4 per decision class keeps classes apart
    return 4.0 * decisions.astype(np.float64) + scores + evidence.astype(np.float64)
