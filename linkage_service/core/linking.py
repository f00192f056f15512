"""Linking several agencies' encodings: candidates, decisions, one-to-one, clusters.

For every pair of agencies, candidates are the pairs with Dice at or above the ``possible``
threshold plus the pairs whose identifiers agree (found by an exact join, so a changed surname
and a move cannot hide a shared NHS number). The decision rule labels them, greedy one-to-one
solving keeps at most one link per child per agency pair, a possible link that other agencies'
matches corroborate becomes a match (:func:`promote_corroborated`), and matched links form
multi-agency clusters (one per child).

Duplicates inside one agency: records of one agency with Dice at or above the ``duplicate``
threshold, or with an equal identifier, and no disagreeing identifier, are one *entity* (the
agency holds that child twice). One-to-one solving runs between entities, not records, and every
qualifying record pair of an accepted entity pair is linked, so a duplicate does not hide the
child's other records. Without this, each duplicate cost a true link per other agency (measured:
45 % of the missed links on the synthetic population).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .bitmatrix import BitMatrix
from .candidates import CandidatePairs
from .clusters import Clusters, connected_clusters, multi_agency_clusters
from .decisions import (
    DISAGREE,
    MATCH,
    NO_LINK,
    POSSIBLE,
    DecisionRule,
    decide,
    identifier_evidence,
    identifier_pairs,
    rank_weights,
)
from .dice import dice_candidates, dice_scores
from .entities import constrained_entities, frequent_identifiers_cleared
from .errors import BitLengthError, CoreError
from .solving import greedy_one_to_one

__all__ = [
    "AgencyRecords",
    "DicePairs",
    "PairLinks",
    "duplicate_entities",
    "link_agencies",
    "link_pair",
    "match_clusters",
    "promote_corroborated",
]


@dataclass(frozen=True)
class AgencyRecords:
    """One agency's encodings: ``identifiers`` is uint64 (n, k), 0 = absent."""

    name: str
    matrix: BitMatrix
    identifiers: np.ndarray

    def __post_init__(self) -> None:
        if self.identifiers.shape[0] != self.matrix.n:
            raise CoreError(
                f"agency {self.name}: {self.matrix.n} filters but "
                f"{self.identifiers.shape[0]} identifier rows"
            )


# (i, j, threshold) -> what dice_candidates(agencies[i].matrix, agencies[j].matrix, threshold)
# returns; i == j for the duplicates inside one agency. The standing index answers from the edges
# it keeps instead of comparing all pairs again (standing.py).
DicePairs = Callable[[int, int, float], CandidatePairs]


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


def duplicate_entities(
    agency: AgencyRecords,
    rule: DecisionRule,
    threads: int | None = None,
    found: CandidatePairs | None = None,
) -> np.ndarray:
    """int64 (n,): entity label per record (the smallest record index among its duplicates);
    the joining rule is in :mod:`linkage_service.core.entities`. ``found``: the agency's Dice
    pairs at ``rule.duplicate`` if already known (default: computed)."""
    if found is None:
        found = dice_candidates(agency.matrix, agency.matrix, rule.duplicate, threads=threads)
    id_left, id_right = identifier_pairs(agency.identifiers, agency.identifiers)
    id_scores = dice_scores(agency.matrix, agency.matrix, id_left, id_right)
    by_id = id_scores >= rule.identifier_floor
    left = np.concatenate([found.left, id_left[by_id]])
    right = np.concatenate([found.right, id_right[by_id]])
    scores = np.concatenate([found.scores, id_scores[by_id]])
    distinct = left != right
    return constrained_entities(
        agency.matrix.n, left[distinct], right[distinct], scores[distinct], agency.identifiers
    )


def link_pair(
    a: AgencyRecords,
    b: AgencyRecords,
    rule: DecisionRule,
    threads: int | None = None,
    entities: tuple[np.ndarray, np.ndarray] | None = None,
    candidates: CandidatePairs | None = None,
) -> tuple[np.ndarray, ...]:
    """(left, right, scores, decisions) of the links between two agencies: one-to-one between
    entities (``entities`` gives each side's labels; default: every record its own).
    ``candidates``: the Dice pairs at ``rule.possible`` if already known (default: computed)."""
    if a.identifiers.shape[1] != b.identifiers.shape[1]:
        raise CoreError(f"agencies {a.name} and {b.name} carry different identifier columns")
    if candidates is None:
        candidates = dice_candidates(a.matrix, b.matrix, rule.possible, threads=threads)
    left, right, scores = _with_identifier_pairs(
        a, b, candidates.left, candidates.right, candidates.scores
    )
    evidence = identifier_evidence(a.identifiers, b.identifiers, left, right)
    decisions = decide(scores, evidence, rule)
    keep = decisions != NO_LINK
    left, right, scores = left[keep], right[keep], scores[keep]
    decisions, evidence = decisions[keep], evidence[keep]
    ent_a, ent_b = entities or (np.arange(a.matrix.n), np.arange(b.matrix.n))
    ent_left, ent_right = ent_a[left], ent_b[right]
    chosen = greedy_one_to_one(rank_weights(scores, evidence, decisions), ent_left, ent_right)
    width = max(b.matrix.n, 1)
    kept = np.flatnonzero(
        np.isin(ent_left * width + ent_right, ent_left[chosen] * width + ent_right[chosen])
    )
    order = kept[np.lexsort((right[kept], left[kept], -scores[kept]))]
    return left[order], right[order], scores[order], decisions[order]


def _with_identifier_pairs(
    a: AgencyRecords, b: AgencyRecords, left: np.ndarray, right: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, ...]:
    id_left, id_right = identifier_pairs(a.identifiers, b.identifiers)
    width = max(b.matrix.n, 1)
    extra = ~np.isin(id_left * width + id_right, left * width + right)
    id_left, id_right = id_left[extra], id_right[extra]
    id_scores = dice_scores(a.matrix, b.matrix, id_left, id_right)
    return (
        np.concatenate([left, id_left]),
        np.concatenate([right, id_right]),
        np.concatenate([scores, id_scores]),
    )


def link_agencies(
    agencies: Sequence[AgencyRecords],
    rule: DecisionRule,
    threads: int | None = None,
    dice: DicePairs | None = None,
) -> list[PairLinks]:
    """Links for every unordered pair of agencies, in (a, b) order with a < b. ``dice`` supplies
    the Dice pairs (default: all pairs compared with ``dice_candidates``)."""
    if len(agencies) < 2:
        raise CoreError("linking needs at least two agencies")
    bits = {agency.matrix.n_bits for agency in agencies}
    if len(bits) > 1:
        raise BitLengthError(f"agencies' filters differ in length: {sorted(bits)}")
    agencies = [
        dataclasses.replace(a, identifiers=frequent_identifiers_cleared(a.identifiers))
        for a in agencies
    ]

    def found(i: int, j: int, t: float) -> CandidatePairs | None:
        return None if dice is None else dice(i, j, t)

    entities = [
        duplicate_entities(agency, rule, threads, found(i, i, rule.duplicate))
        for i, agency in enumerate(agencies)
    ]
    out = []
    for i, j in combinations(range(len(agencies)), 2):
        left, right, scores, decisions = link_pair(
            agencies[i],
            agencies[j],
            rule,
            threads,
            (entities[i], entities[j]),
            found(i, j, rule.possible),
        )
        out.append(PairLinks(i, j, left, right, scores, decisions))
    return promote_corroborated(agencies, out)


def _match_edges(
    agencies: Sequence[AgencyRecords], links: Sequence[PairLinks]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node offsets per agency and the (u, v) node ids of every MATCH link."""
    sizes = np.array([agency.matrix.n for agency in agencies], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    u = [offsets[p.a] + p.left[p.decisions == MATCH] for p in links]
    v = [offsets[p.b] + p.right[p.decisions == MATCH] for p in links]
    empty = np.zeros(0, np.int64)
    return offsets, np.concatenate([empty, *u]), np.concatenate([empty, *v])


def promote_corroborated(
    agencies: Sequence[AgencyRecords], links: list[PairLinks]
) -> list[PairLinks]:
    """A possible link between two records that MATCH links already join through other
    agencies (A-B and B-C match, A-C possible) becomes a match: the other agencies corroborate
    it, unless the pair's own valid identifiers disagree. Measured on the synthetic population:
    +1.5 points of recall for 8 more false links in 34,000. Pairs the clusters imply but no
    candidate supports are not added (that cost more false links than it found)."""
    offsets, u, v = _match_edges(agencies, links)
    total = int(sum(agency.matrix.n for agency in agencies))
    labels = connected_clusters(total, u, v)
    out = []
    for p in links:
        same = labels[offsets[p.a] + p.left] == labels[offsets[p.b] + p.right]
        # never overrule two valid identifiers that disagree (the twin rule)
        evidence = identifier_evidence(
            agencies[p.a].identifiers, agencies[p.b].identifiers, p.left, p.right
        )
        promote = (p.decisions == POSSIBLE) & same & (evidence != DISAGREE)
        decisions = np.where(promote, MATCH, p.decisions)
        out.append(dataclasses.replace(p, decisions=decisions.astype(np.int8)))
    return out


def match_clusters(agencies: Sequence[AgencyRecords], links: Sequence[PairLinks]) -> Clusters:
    """Multi-agency clusters over MATCH links only (possible links need a person's review)."""
    offsets, u, v = _match_edges(agencies, links)
    sizes = np.array([agency.matrix.n for agency in agencies], dtype=np.int64)
    node_agency = np.repeat(np.arange(len(agencies)), sizes)
    node_record = np.arange(int(sizes.sum())) - np.repeat(offsets, sizes)
    return multi_agency_clusters(node_agency, node_record, u, v)
