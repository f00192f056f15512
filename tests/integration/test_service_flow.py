"""Agencies submit over mutual TLS; coordinators see exactly the offline linkage as alerts."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from clients.client import submit_batch
from linkage_service.cli import as_agency_records
from linkage_service.core.decisions import MATCH
from linkage_service.core.linking import link_agencies
from linkage_service.service.matcher import rule_of
from linkage_service.wire.schema import load_schema
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

pytestmark = [pytest.mark.integration]

ORDER = ("health", "police", "school", "social_care", "housing")


def _offline_clusters(batches):
    """Clusters of the offline linkage (components over its links spanning 2+ agencies), as
    {frozenset of (agency, ref): band}: computed here, independently of the service."""
    links = link_agencies(
        [as_agency_records(b) for b in batches], rule_of(load_schema("children-v1"))
    )
    adjacency: dict[tuple[str, str], set[tuple[str, str]]] = {}
    decision: dict[frozenset, int] = {}
    for p in links:
        a, b = batches[p.a], batches[p.b]
        for i, j, d in zip(p.left.tolist(), p.right.tolist(), p.decisions.tolist(), strict=True):
            u, v = (a.agency, str(a.record_ids[i])), (b.agency, str(b.record_ids[j]))
            adjacency.setdefault(u, set()).add(v)
            adjacency.setdefault(v, set()).add(u)
            decision[frozenset((u, v))] = d
    seen: set = set()
    out = {}
    for start in adjacency:
        if start in seen:
            continue
        stack, members = [start], set()
        while stack:
            x = stack.pop()
            if x in members:
                continue
            members.add(x)
            stack.extend(adjacency[x] - members)
        seen |= members
        edges = [k for k in decision if k <= members]
        match_only = _connected(members, [tuple(k) for k in edges if decision[k] == MATCH])
        out[frozenset(members)] = "match" if match_only else "possible"
    return out


def _offline_links(batches):
    """{frozenset of two (agency, ref): decision} of the offline linkage."""
    links = link_agencies(
        [as_agency_records(b) for b in batches], rule_of(load_schema("children-v1"))
    )
    out = {}
    for p in links:
        a, b = batches[p.a], batches[p.b]
        for i, j, d in zip(p.left.tolist(), p.right.tolist(), p.decisions.tolist(), strict=True):
            out[frozenset(((a.agency, str(a.record_ids[i])), (b.agency, str(b.record_ids[j]))))] = d
    return out


def _connected(members, edges) -> bool:
    adj: dict = {m: set() for m in members}
    for u, v in edges:
        adj[u].add(v)
        adj[v].add(u)
    start = next(iter(members))
    stack, seen = [start], set()
    while stack:
        x = stack.pop()
        if x not in seen:
            seen.add(x)
            stack.extend(adj[x] - seen)
    return seen == set(members)


def _offline_matched_records(batches) -> set[tuple[str, str]]:
    links = link_agencies(
        [as_agency_records(b) for b in batches], rule_of(load_schema("children-v1"))
    )
    out = set()
    for p in links:
        a, b = batches[p.a], batches[p.b]
        for i, j, d in zip(p.left.tolist(), p.right.tolist(), p.decisions.tolist(), strict=True):
            if d == MATCH:
                out |= {(a.agency, str(a.record_ids[i])), (b.agency, str(b.record_ids[j]))}
    return out


def _records_flagged_match(channel) -> set[tuple[str, str]]:
    page = rpc.CoordinatorServiceStub(channel).ListAlerts(
        pb.ListAlertsRequest(state=pb.OPEN, page_size=1000)
    )
    assert not page.next_page_token
    return {
        (r.agency, r.record_ref) for a in page.alerts for r in a.records if r.band == pb.BAND_MATCH
    }


def _current_alerts(channel) -> dict[frozenset, str]:
    stub = rpc.CoordinatorServiceStub(channel)
    out, token = {}, ""
    while True:
        page = stub.ListAlerts(pb.ListAlertsRequest(state=pb.OPEN, page_size=50, page_token=token))
        for a in page.alerts:
            band = "match" if a.band == pb.BAND_MATCH else "possible"
            out[frozenset((r.agency, r.record_ref) for r in a.records)] = band
        token = page.next_page_token
        if not token:
            return out


def test_alerts_equal_the_offline_linkage_and_resume_exactly(
    start_server, channel, population_batches
):
    server = start_server()
    batches = [population_batches[a] for a in ORDER]
    watched: list[pb.AlertEvent] = []
    coordinator = channel(server.port, "mash-1")
    stub = rpc.CoordinatorServiceStub(coordinator)
    stream = stub.WatchAlerts(pb.WatchAlertsRequest(after_cursor=0))
    reader = threading.Thread(target=lambda: watched.extend(stream), daemon=True)
    reader.start()
    for batch in batches:
        receipt = submit_batch(channel(server.port, batch.agency), batch)
        assert receipt.accepted == batch.record_count and not receipt.rejected
        # a receipt says nothing about matching
        assert set(receipt.DESCRIPTOR.fields_by_name) == {
            "batch_id",
            "agency",
            "idempotency_key",
            "accepted",
            "rejected",
            "committed_at",
            "replayed",
        }
    assert server.matcher.wait_idle(120)
    expected = _offline_clusters(batches)
    assert len(expected) > 100
    assert _current_alerts(coordinator) == expected
    assert _records_flagged_match(coordinator) == _offline_matched_records(batches)
    stream.cancel()
    reader.join(5)
    cursors = [e.cursor for e in watched]
    assert cursors == sorted(set(cursors)) and cursors
    # a watcher resuming from a cursor gets exactly the rest
    middle = cursors[len(cursors) // 2]
    again = rpc.CoordinatorServiceStub(coordinator).WatchAlerts(
        pb.WatchAlertsRequest(after_cursor=middle), timeout=3
    )
    rest = []
    with pytest.raises(grpc.RpcError) as stopped:
        for event in again:
            rest.append(event.cursor)
    assert stopped.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert rest == [c for c in cursors if c > middle]


def test_resubmitting_returns_the_original_receipt_and_stores_nothing(
    start_server, channel, population_batches
):
    server = start_server()
    batch = population_batches["police"]
    ch = channel(server.port, "police")
    first = submit_batch(ch, batch)
    second = submit_batch(ch, batch)
    assert second.replayed and not first.replayed
    assert (second.batch_id, second.accepted) == (first.batch_id, first.accepted)
    assert server.matcher.wait_idle(60)
    assert server.store.active_records().n == batch.record_count
    status = rpc.AgencyServiceStub(ch).GetBatch(pb.GetBatchRequest(batch_id=first.batch_id))
    assert status.state == pb.BATCH_STATE_MATCHED and status.receipt.accepted == batch.record_count
    # another agency cannot see it
    with pytest.raises(grpc.RpcError) as e:
        rpc.AgencyServiceStub(channel(server.port, "health")).GetBatch(
            pb.GetBatchRequest(batch_id=first.batch_id)
        )
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_withdrawn_records_leave_their_alerts(start_server, channel, population_batches):
    server = start_server()
    for agency in ("health", "police"):
        submit_batch(channel(server.port, agency), population_batches[agency])
    assert server.matcher.wait_idle(60)
    coordinator = channel(server.port, "mash-1")
    before = _current_alerts(coordinator)
    pair = next(k for k in before if len(k) == 2)
    police_ref = next(ref for agency, ref in pair if agency == "police")
    response = rpc.AgencyServiceStub(channel(server.port, "police")).WithdrawRecords(
        pb.WithdrawRecordsRequest(agency="police", record_refs=[police_ref, "no-such"], reason="t")
    )
    assert response.withdrawn == 1
    assert [r.record_ref for r in response.not_withdrawn] == ["no-such"]
    assert server.matcher.wait_idle(60)
    after = _current_alerts(coordinator)
    assert pair not in after
    assert all(("police", police_ref) not in k for k in after)
    closed = rpc.CoordinatorServiceStub(coordinator).ListAlerts(
        pb.ListAlertsRequest(state=pb.CLOSED)
    )
    health_ref = next(ref for agency, ref in pair if agency == "health")
    closing = [
        a
        for a in closed.alerts
        if ("health", health_ref) in {(r.agency, r.record_ref) for r in a.records}
    ]
    assert len(closing) == 1 and closing[0].version == 2
    # the withdrawn reference is not sent to coordinators again
    assert all(r.record_ref != police_ref for a in closed.alerts for r in a.records)


def test_health_and_reflection_answer_stock_tools(start_server, channel):
    server = start_server()
    ch = channel(server.port, "mash-1")
    reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(ch)
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {"mash.linkage.v1.AgencyService", "mash.linkage.v1.CoordinatorService"} <= names


def test_restarting_between_every_batch_still_gives_the_offline_linkage(
    start_server, channel, population_batches, tmp_path
):
    """Each restart restores the index from the store's labels and links (no edges), and the
    store keeps only the labels and links each update changed: after a restart per batch the
    alerts are still exactly the offline linkage's."""
    data_dir = tmp_path / "restarted"
    batches = [population_batches[a] for a in ORDER]
    for batch in batches:
        server = start_server(data_dir)
        receipt = submit_batch(channel(server.port, batch.agency), batch)
        assert receipt.accepted == batch.record_count
        assert server.matcher.wait_idle(120)
        server.stop(0.5)
    server = start_server(data_dir)
    assert server.matcher.wait_idle(120)
    assert _current_alerts(channel(server.port, "mash-1")) == _offline_clusters(batches)
    # the links the store kept (restored, not solved again) are the offline links
    restored = server.matcher._index.links()
    refs = server.matcher._store.refs_of(restored.key_a.tolist() + restored.key_b.tolist())
    kept = {
        frozenset((refs[a], refs[b])): d
        for a, b, d in zip(
            restored.key_a.tolist(),
            restored.key_b.tolist(),
            restored.decision.tolist(),
            strict=True,
        )
    }
    assert kept == _offline_links(batches)


def test_after_withdrawals_the_alerts_are_the_offline_linkage_of_what_remains(
    start_server, channel, population_batches
):
    """The matcher stores and releases only what each update changed; after rounds of
    withdrawals across agencies the open alerts are still the offline linkage of the rest."""
    import dataclasses

    import numpy as np

    server = start_server()
    batches = {a: population_batches[a] for a in ORDER}
    for batch in batches.values():
        submit_batch(channel(server.port, batch.agency), batch)
    assert server.matcher.wait_idle(120)
    rng = np.random.default_rng(11)
    for _ in range(3):
        for agency in ("health", "school", "police"):
            batch = batches[agency]
            drop = rng.choice(len(batch.record_ids), 12, replace=False)
            refs = [str(batch.record_ids[i]) for i in drop]
            stub = rpc.AgencyServiceStub(channel(server.port, agency))
            reply = stub.WithdrawRecords(
                pb.WithdrawRecordsRequest(agency=agency, record_refs=refs, reason="test")
            )
            assert reply.withdrawn == len(refs)
            keep = np.setdiff1d(np.arange(len(batch.record_ids)), drop)
            batches[agency] = dataclasses.replace(
                batch,
                record_ids=batch.record_ids[keep],
                bits=np.ascontiguousarray(batch.bits[keep]),
                identifiers=np.ascontiguousarray(batch.identifiers[keep]),
            )
    assert server.matcher.wait_idle(120)
    coordinator = channel(server.port, "mash-1")
    assert _current_alerts(coordinator) == _offline_clusters(list(batches.values()))
