"""The decision rule and identifier evidence, against hand-worked cases and a naive join."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkage_service.core.decisions import (
    AGREE,
    DISAGREE,
    MATCH,
    NO_LINK,
    POSSIBLE,
    UNKNOWN,
    DecisionRule,
    decide,
    identifier_evidence,
    identifier_pairs,
    rank_weights,
)
from linkage_service.core.errors import ThresholdError

RULE = DecisionRule(match=0.8, possible=0.65, identifier_floor=0.6)


@pytest.mark.parametrize(
    ("score", "evidence", "expected"),
    [
        (0.85, UNKNOWN, MATCH),
        (0.7, UNKNOWN, POSSIBLE),
        (0.5, UNKNOWN, NO_LINK),
        (0.62, AGREE, MATCH),
        (0.3, AGREE, POSSIBLE),  # agreeing valid NHS numbers
        (0.99, DISAGREE, POSSIBLE),
        (0.75, DISAGREE, NO_LINK),  # twins: never automatic
        (0.8, UNKNOWN, MATCH),
        (0.65, UNKNOWN, POSSIBLE),  # thresholds are inclusive
    ],
)
def test_decide(score, evidence, expected):
    assert decide(np.array([score]), np.array([evidence], np.int8), RULE)[0] == expected


def test_evidence_needs_both_sides_present():
    a = np.array([[5, 0], [5, 0], [0, 0], [7, 9]], dtype=np.uint64)
    b = np.array([[5, 1], [6, 0], [5, 0], [8, 9]], dtype=np.uint64)
    i = np.arange(4)
    assert identifier_evidence(a, b, i, i).tolist() == [AGREE, DISAGREE, UNKNOWN, AGREE]


@given(st.lists(st.integers(0, 4), max_size=30), st.lists(st.integers(0, 4), max_size=30))
def test_identifier_join_equals_naive(left, right):
    a = np.array(left, dtype=np.uint64).reshape(-1, 1)
    b = np.array(right, dtype=np.uint64).reshape(-1, 1)
    got = set(zip(*(x.tolist() for x in identifier_pairs(a, b)), strict=True))
    naive = {(i, j) for i, x in enumerate(left) for j, y in enumerate(right) if x == y != 0}
    assert got == naive


def test_every_match_ranks_above_every_possible():
    scores = np.array([0.45, 1.0, 0.99])
    evidence = np.array([AGREE, UNKNOWN, DISAGREE], dtype=np.int8)
    decisions = decide(scores, evidence, RULE)
    assert decisions.tolist() == [POSSIBLE, MATCH, POSSIBLE]
    weights = rank_weights(scores, evidence, decisions)
    assert weights[1] > weights[0] > weights[2]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(match=0.6, possible=0.7, identifier_floor=0.5),
        dict(match=1.2, possible=0.7, identifier_floor=0.5),
        dict(match=0.8, possible=0.7, identifier_floor=0.0),
    ],
)
def test_bad_rules_are_refused(kwargs):
    with pytest.raises(ThresholdError):
        DecisionRule(**kwargs)
