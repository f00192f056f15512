"""The release policy: clusters -> alert versions, and what a coordinator's alert carries."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from linkage_service.core.decisions import MATCH, POSSIBLE
from linkage_service.notifications import (
    Cluster,
    agency_receipt,
    alert_changes,
    clusters_of,
    coordinator_alert,
)
from linkage_service.store.model import Receipt

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
AGENCY = {1: "health", 2: "police", 3: "school", 4: "police", 5: "housing", 6: "health"}
REFS = {k: (a, f"r{k}") for k, a in AGENCY.items()}


def _links(*edges):
    a = np.array([e[0] for e in edges], np.int64)
    b = np.array([e[1] for e in edges], np.int64)
    d = np.array([e[2] for e in edges], np.int8)
    return a, b, d


def _numbers(start=1):
    counter = iter(range(start, 1000))
    return lambda: next(counter)


def test_clusters_span_agencies_and_take_the_weakest_band():
    a, b, d = _links((1, 2, MATCH), (2, 3, POSSIBLE), (5, 6, MATCH))
    clusters = clusters_of(a, b, d, AGENCY)
    assert clusters == [
        Cluster((1, 2, 3), "possible", (1, 2), (1, 1, 0)),
        Cluster((5, 6), "match", (5, 6), (1, 1)),
    ]


def test_match_groups_tell_which_records_automatic_links_join():
    # 1-2 match, 3-5 match, joined by a possible 2-3: two groups in one alert
    a, b, d = _links((1, 2, MATCH), (2, 3, POSSIBLE), (3, 5, MATCH))
    (cluster,) = clusters_of(a, b, d, AGENCY)
    alert = alert_changes([cluster], [], REFS, _numbers(), T0)[0]
    groups = {r.ref: r.match_group for r in alert.records}
    assert groups == {"r1": 1, "r2": 1, "r3": 2, "r5": 2}
    assert coordinator_alert(alert).records[0].match_group in (1, 2)


def test_each_record_carries_its_own_band():
    cluster = Cluster((1, 2, 3), "possible", (1, 2))
    alert = alert_changes([cluster], [], REFS, _numbers(), T0)[0]
    assert {r.ref: r.band for r in alert.records} == {
        "r1": "match",
        "r2": "match",
        "r3": "possible",
    }


def test_same_agency_only_is_not_an_alert():
    a, b, d = _links((2, 4, MATCH))  # police and police: a duplicate, no other agency
    assert clusters_of(a, b, d, AGENCY) == []


def test_new_cluster_opens_and_a_further_agency_makes_a_new_version():
    first = alert_changes([Cluster((1, 2), "match")], [], REFS, _numbers(), T0)
    assert [(v.alert_id, v.version, v.state) for v in first] == [("A-000001", 1, "open")]
    grown = alert_changes([Cluster((1, 2, 3), "match")], first, REFS, _numbers(2), T1)
    assert [(v.alert_id, v.version, len(v.records)) for v in grown] == [("A-000001", 2, 3)]
    assert grown[0].opened_at == T0 and grown[0].updated_at == T1
    same = alert_changes([Cluster((1, 2, 3), "match")], grown, REFS, _numbers(2), T1)
    assert same == []  # nothing a coordinator sees changed: no version


def test_joining_clusters_keep_the_older_alert_and_merge_the_other():
    a = alert_changes([Cluster((1, 2), "match")], [], REFS, _numbers(), T0)
    b = alert_changes([Cluster((5, 6), "match")], [], REFS, _numbers(2), T0)
    joined = alert_changes([Cluster((1, 2, 5, 6), "possible")], a + b, REFS, _numbers(3), T1)
    by_id = {v.alert_id: v for v in joined}
    assert by_id["A-000001"].state == "open" and by_id["A-000001"].band == "possible"
    assert by_id["A-000002"].state == "merged" and by_id["A-000002"].merged_into == "A-000001"


def test_a_cluster_that_no_longer_spans_agencies_closes_its_alert():
    a = alert_changes([Cluster((1, 2), "match")], [], REFS, _numbers(), T0)
    closed = alert_changes([], a, REFS, _numbers(2), T1)
    assert [(v.alert_id, v.version, v.state) for v in closed] == [("A-000001", 2, "closed")]


def test_duplicates_are_flagged_per_agency():
    alert = alert_changes([Cluster((1, 2, 4), "match")], [], REFS, _numbers(), T0)[0]
    flags = {(r.agency, r.ref): r.duplicate for r in alert.records}
    assert flags == {("health", "r1"): False, ("police", "r2"): True, ("police", "r4"): True}


def test_what_leaves_carries_no_scores_keys_or_counts():
    alert = alert_changes([Cluster((1, 2), "match")], [], REFS, _numbers(), T0)[0]
    message = coordinator_alert(alert)
    assert set(message.DESCRIPTOR.fields_by_name) == {
        "alert_id",
        "version",
        "state",
        "band",
        "agencies",
        "records",
        "opened_at",
        "updated_at",
        "merged_into",
    }
    assert set(message.records[0].DESCRIPTOR.fields_by_name) == {
        "agency",
        "record_ref",
        "duplicate",
        "band",
        "match_group",
    }
    assert list(message.agencies) == ["health", "police"]
    receipt = agency_receipt(Receipt(7, "police", "k", 10, (("x", "why"),), T0))
    assert set(receipt.DESCRIPTOR.fields_by_name) == {
        "batch_id",
        "agency",
        "idempotency_key",
        "accepted",
        "rejected",
        "committed_at",
        "replayed",
    }


def test_withdrawn_references_are_not_sent_again_when_an_alert_closes():
    a = alert_changes([Cluster((1, 2), "match")], [], REFS, _numbers(), T0)
    closed = alert_changes([], a, REFS, _numbers(2), T1, removed={2})
    assert [(r.agency, r.ref) for r in closed[0].records] == [("health", "r1")]
    assert closed[0].agencies == ("health",)
