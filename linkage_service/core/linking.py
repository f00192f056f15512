"""Linking several agencies' encodings: candidates, decisions, one-to-one, clusters.

For every pair of agencies, candidates are the pairs with Dice at or above the ``possible``
threshold plus the pairs whose identifiers agree (found by an exact join, so a changed surname
and a move cannot hide a shared NHS number). The decision rule labels them, greedy one-to-one
solving keeps at most one link per record per agency pair, and matched links form multi-agency
clusters (one per child).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .bitmatrix import BitMatrix
from .clusters import Clusters, multi_agency_clusters
from .decisions import (MATCH, NO_LINK, DecisionRule, decide, identifier_evidence,
                        identifier_pairs, rank_weights)
from .dice import dice_candidates, dice_scores
from .errors import BitLengthError, CoreError
from .solving import greedy_one_to_one

__all__ = ["AgencyRecords", "PairLinks", "link_agencies", "link_pair", "match_clusters"]


@dataclass(frozen=True)
class AgencyRecords:
    """One agency's encodings: ``identifiers`` is uint64 (n, k), 0 = absent."""

    name: str
    matrix: BitMatrix
    identifiers: np.ndarray

    def __post_init__(self) -> None:
        if self.identifiers.shape[0] != self.matrix.n:
            raise CoreError(f"agency {self.name}: {self.matrix.n} filters but "
                            f"{self.identifiers.shape[0]} identifier rows")


@dataclass(frozen=True)
class PairLinks:
    """Accepted links between agencies ``a`` and ``b`` (indices into the agency list).

    Arrays have shape (m,); ``left``/``right`` int64 record indices in a/b, ``scores`` float64
    Dice, ``decisions`` int8 MATCH or POSSIBLE. Sorted by (-score, left, right).
    """

    a: int
    b: int
    left: np.ndarray
    right: np.ndarray
    scores: np.ndarray
    decisions: np.ndarray


def link_pair(a: AgencyRecords, b: AgencyRecords, rule: DecisionRule,
              threads: int | None = None) -> tuple[np.ndarray, ...]:
    """(left, right, scores, decisions) of the one-to-one links between two agencies."""
    if a.identifiers.shape[1] != b.identifiers.shape[1]:
        raise CoreError(f"agencies {a.name} and {b.name} carry different identifier columns")
    candidates = dice_candidates(a.matrix, b.matrix, rule.possible, threads=threads)
    left, right, scores = _with_identifier_pairs(a, b, candidates.left, candidates.right,
                                                 candidates.scores)
    evidence = identifier_evidence(a.identifiers, b.identifiers, left, right)
    decisions = decide(scores, evidence, rule)
    keep = decisions != NO_LINK
    left, right, scores = left[keep], right[keep], scores[keep]
    decisions, evidence = decisions[keep], evidence[keep]
    chosen = greedy_one_to_one(rank_weights(scores, evidence), left, right)
    order = chosen[np.lexsort((right[chosen], left[chosen], -scores[chosen]))]
    return left[order], right[order], scores[order], decisions[order]


def _with_identifier_pairs(a: AgencyRecords, b: AgencyRecords, left: np.ndarray,
                           right: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    id_left, id_right = identifier_pairs(a.identifiers, b.identifiers)
    width = max(b.matrix.n, 1)
    extra = ~np.isin(id_left * width + id_right, left * width + right)
    id_left, id_right = id_left[extra], id_right[extra]
    id_scores = dice_scores(a.matrix, b.matrix, id_left, id_right)
    return (np.concatenate([left, id_left]), np.concatenate([right, id_right]),
            np.concatenate([scores, id_scores]))


def link_agencies(agencies: Sequence[AgencyRecords], rule: DecisionRule,
                  threads: int | None = None) -> list[PairLinks]:
    """Links for every unordered pair of agencies, in (a, b) order with a < b."""
    if len(agencies) < 2:
        raise CoreError("linking needs at least two agencies")
    bits = {agency.matrix.n_bits for agency in agencies}
    if len(bits) > 1:
        raise BitLengthError(f"agencies' filters differ in length: {sorted(bits)}")
    out = []
    for i, j in combinations(range(len(agencies)), 2):
        left, right, scores, decisions = link_pair(agencies[i], agencies[j], rule, threads)
        out.append(PairLinks(i, j, left, right, scores, decisions))
    return out


def match_clusters(agencies: Sequence[AgencyRecords], links: Sequence[PairLinks]) -> Clusters:
    """Multi-agency clusters over MATCH links only (possible links need a person's review)."""
    sizes = np.array([agency.matrix.n for agency in agencies], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    node_agency = np.repeat(np.arange(len(agencies)), sizes)
    node_record = np.arange(int(sizes.sum())) - np.repeat(offsets, sizes)
    u = [offsets[p.a] + p.left[p.decisions == MATCH] for p in links]
    v = [offsets[p.b] + p.right[p.decisions == MATCH] for p in links]
    return multi_agency_clusters(node_agency, node_record,
                                 np.concatenate(u) if u else np.zeros(0, np.int64),
                                 np.concatenate(v) if v else np.zeros(0, np.int64))
