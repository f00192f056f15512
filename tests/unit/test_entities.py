"""Duplicates inside one agency: joins never bridge different valid identifiers."""

import numpy as np

from linkage_service.core.entities import (
    MAX_SHARED_IDENTIFIER,
    constrained_entities,
    frequent_identifiers_cleared,
)


def _ids(*values):
    return np.array(values, dtype=np.uint64).reshape(-1, 1)


def test_chains_join_when_nothing_conflicts():
    labels = constrained_entities(
        4, np.array([0, 1]), np.array([1, 2]), np.array([0.95, 0.93]), _ids(0, 7, 0, 0)
    )
    assert labels.tolist() == [0, 0, 0, 3]


def test_a_bridge_record_cannot_join_twins_with_different_numbers():
    # record 1 has no number and is close to both twins (0 holds 11, 2 holds 22)
    labels = constrained_entities(
        3, np.array([0, 1]), np.array([1, 2]), np.array([0.95, 0.94]), _ids(11, 0, 22)
    )
    assert labels.tolist() == [0, 0, 2]  # the stronger join wins, the other is refused


def test_directly_disagreeing_records_stay_apart():
    labels = constrained_entities(2, np.array([0]), np.array([1]), np.array([0.99]), _ids(1, 2))
    assert labels.tolist() == [0, 1]


def test_order_of_candidate_joins_does_not_matter():
    left, right = np.array([1, 0]), np.array([2, 1])
    scores = np.array([0.94, 0.95])
    labels = constrained_entities(3, left, right, scores, _ids(11, 0, 22))
    assert labels.tolist() == [0, 0, 2]


def test_identifier_values_held_too_widely_are_ignored():
    ids = _ids(*([42] * (MAX_SHARED_IDENTIFIER + 1)), 7, 7, 0)
    cleared = frequent_identifiers_cleared(ids)
    assert cleared[: MAX_SHARED_IDENTIFIER + 1, 0].tolist() == [0] * (MAX_SHARED_IDENTIFIER + 1)
    assert cleared[-3:, 0].tolist() == [7, 7, 0]
    assert ids[0, 0] == 42  # the input is not modified
