"""Linking agencies: the fast pipeline against a slow reference, and its invariants."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.core.bitmatrix import from_packed
from linkage_service.core.decisions import (
    MATCH,
    NO_LINK,
    POSSIBLE,
    DecisionRule,
    decide,
    identifier_evidence,
    rank_weights,
)
from linkage_service.core.linking import (
    AgencyRecords,
    PairLinks,
    duplicate_entities,
    link_agencies,
    link_pair,
    match_clusters,
    promote_corroborated,
)
from linkage_service.core.solving import greedy_one_to_one_reference

RULE = DecisionRule(match=0.8, possible=0.65, identifier_floor=0.6, duplicate=0.9)
N_BITS = 256


def _agency(name, rng, people, picks, noise, id_rate):
    """Records of ``people[picks]`` with ``noise`` of their bits flipped; ids for some."""
    bits = people[picks].copy()
    flips = rng.random(bits.shape) < noise
    bits ^= flips
    ids = np.where(rng.random(len(picks)) < id_rate, picks + 1, 0).astype(np.uint64)
    packed = np.packbits(bits, axis=1)
    return AgencyRecords(name, from_packed(packed, N_BITS), ids.reshape(-1, 1))


def _population(seed, n_people=60, sizes=(40, 30, 25)):
    rng = np.random.default_rng(seed)
    people = rng.random((n_people, N_BITS)) < 0.3
    return [
        _agency(f"ag{k}", rng, people, rng.choice(n_people, size, replace=False), 0.05, 0.5)
        for k, size in enumerate(sizes)
    ]


def _reference_link_pair(a, b, rule):
    """All pairs, Python Dice, the same rule, sequential greedy: obviously right, slow."""
    wa = [
        int.from_bytes(bytes(r), "big")
        for r in np.packbits(np.unpackbits(a.matrix.words.view(np.uint8), axis=1), axis=1)
    ]
    wb = [
        int.from_bytes(bytes(r), "big")
        for r in np.packbits(np.unpackbits(b.matrix.words.view(np.uint8), axis=1), axis=1)
    ]
    left, right, scores = [], [], []
    for i, x in enumerate(wa):
        for j, y in enumerate(wb):
            total = x.bit_count() + y.bit_count()
            score = 2 * (x & y).bit_count() / total if total else 0.0
            left.append(i)
            right.append(j)
            scores.append(score)
    left, right, scores = np.array(left), np.array(right), np.array(scores)
    evidence = identifier_evidence(a.identifiers, b.identifiers, left, right)
    decisions = decide(scores, evidence, rule)
    keep = decisions != NO_LINK
    chosen = greedy_one_to_one_reference(
        rank_weights(scores[keep], evidence[keep], decisions[keep]), left[keep], right[keep]
    )
    return {(int(left[keep][c]), int(right[keep][c]), int(decisions[keep][c])) for c in chosen}


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_fast_linking_equals_the_reference(seed):
    a, b, _ = _population(seed)
    left, right, _, decisions = link_pair(a, b, RULE)
    assert set(
        zip(left.tolist(), right.tolist(), decisions.tolist(), strict=True)
    ) == _reference_link_pair(a, b, RULE)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_invariants(seed):
    agencies = _population(seed)
    links = link_agencies(agencies, RULE)
    assert [(p.a, p.b) for p in links] == [(0, 1), (0, 2), (1, 2)]
    for p in links:
        # one link per record per agency pair (no duplicates inside these agencies)
        assert len(set(p.left.tolist())) == len(p.left)
        assert len(set(p.right.tolist())) == len(p.right)
        # sorted by score descending, then left, then right
        order = np.lexsort((p.right, p.left, -p.scores))
        assert (order == np.arange(len(order))).all()
        # two valid identifiers that differ never make an automatic match
        ids_a, ids_b = agencies[p.a].identifiers[p.left, 0], agencies[p.b].identifiers[p.right, 0]
        differ = (ids_a != 0) & (ids_b != 0) & (ids_a != ids_b)
        assert not (differ & (p.decisions == MATCH)).any()
    again = link_agencies(agencies, RULE)
    assert all(
        (x.left == y.left).all() and (x.right == y.right).all()
        for x, y in zip(links, again, strict=True)
    )


def test_agreeing_identifiers_link_even_when_everything_else_changed():
    rng = np.random.default_rng(1)
    bits = rng.random((2, N_BITS)) < 0.3
    bits[1, :128] = bits[0, :128]  # half the bits shared: Dice about 0.6-0.7
    a = AgencyRecords(
        "a", from_packed(np.packbits(bits[:1], axis=1), N_BITS), np.array([[42]], dtype=np.uint64)
    )
    b = AgencyRecords(
        "b", from_packed(np.packbits(bits[1:], axis=1), N_BITS), np.array([[42]], dtype=np.uint64)
    )
    low = DecisionRule(match=0.95, possible=0.9, identifier_floor=0.5)
    left, right, scores, decisions = link_pair(a, b, low)
    assert left.tolist() == [0] and decisions.tolist() == [MATCH] and scores[0] < 0.9


def test_a_duplicate_inside_an_agency_does_not_hide_the_other_links():
    rng = np.random.default_rng(2)
    child = rng.random(N_BITS) < 0.3
    a_bits = np.stack([child, child])  # agency a holds the child twice
    a = AgencyRecords(
        "a", from_packed(np.packbits(a_bits, axis=1), N_BITS), np.zeros((2, 1), np.uint64)
    )
    b = AgencyRecords(
        "b", from_packed(np.packbits(child[None], axis=1), N_BITS), np.zeros((1, 1), np.uint64)
    )
    assert duplicate_entities(a, RULE).tolist() == [0, 0]
    links = link_agencies([a, b], RULE)
    assert sorted(links[0].left.tolist()) == [0, 1]
    clusters = match_clusters([a, b], links)
    assert clusters.duplicate_within_agency.tolist() == [True, True, False]


def _one_record_agencies(identifiers):
    packed = np.zeros((1, N_BITS // 8), np.uint8)
    return [
        AgencyRecords(name, from_packed(packed, N_BITS), np.array([[ident]], np.uint64))
        for name, ident in zip("abcd", identifiers, strict=True)
    ]


def _links(decisions):
    """One link per agency pair between the single records, with the given decisions."""
    return [
        PairLinks(a, b, np.array([0]), np.array([0]), np.array([0.7]), np.array([d], np.int8))
        for (a, b), d in decisions.items()
    ]


def test_possible_link_corroborated_by_other_agencies_becomes_a_match():
    agencies = _one_record_agencies([0, 0, 0, 0])
    links = _links({(0, 1): MATCH, (1, 2): MATCH, (0, 2): POSSIBLE, (2, 3): POSSIBLE})
    out = {(p.a, p.b): int(p.decisions[0]) for p in promote_corroborated(agencies, links)}
    assert out == {(0, 1): MATCH, (1, 2): MATCH, (0, 2): MATCH, (2, 3): POSSIBLE}


def test_corroboration_never_overrules_disagreeing_identifiers():
    agencies = _one_record_agencies([11, 0, 22, 0])  # a and c: valid numbers that differ
    links = _links({(0, 1): MATCH, (1, 2): MATCH, (0, 2): POSSIBLE})
    out = {(p.a, p.b): int(p.decisions[0]) for p in promote_corroborated(agencies, links)}
    assert out[(0, 2)] == POSSIBLE
