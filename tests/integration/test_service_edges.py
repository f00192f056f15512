"""Edge cases a review found: withdrawals racing matching, reused keys, limits, odd inputs."""

from __future__ import annotations

import grpc
import pytest

from clients.client import batch_requests, submit_batch
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

pytestmark = [pytest.mark.integration]


def test_withdrawal_committed_before_its_batch_is_matched(
    start_server, channel, population_batches, tmp_path
):
    server = start_server(data_dir=tmp_path / "d")
    server.matcher.stop()  # matching paused: batches are committed, not matched
    for agency in ("health", "police"):
        submit_batch(channel(server.port, agency), population_batches[agency])
    refs = population_batches["police"].record_ids[:50].tolist()
    rpc.AgencyServiceStub(channel(server.port, "police")).WithdrawRecords(
        pb.WithdrawRecordsRequest(agency="police", record_refs=refs, reason="sent in error")
    )
    server.server.stop(0).wait()
    server.store.close()
    restarted = start_server(data_dir=tmp_path / "d")  # pending work, in commit order
    assert restarted.matcher.wait_idle(60) and restarted.matcher.failure is None
    alerts = rpc.CoordinatorServiceStub(channel(restarted.port, "mash-1")).ListAlerts(
        pb.ListAlertsRequest(page_size=1000)
    )
    assert alerts.alerts
    shown = {r.record_ref for a in alerts.alerts for r in a.records}
    assert not shown & set(refs)


def test_a_reused_idempotency_key_with_other_content_is_refused(
    start_server, channel, population_batches
):
    server = start_server()
    stub = rpc.AgencyServiceStub(channel(server.port, "police"))
    batch = population_batches["police"]
    stub.SubmitBatch(batch_requests(batch, "same-key"))
    smaller = batch.__class__(
        **{
            **batch.__dict__,
            "record_ids": batch.record_ids[:10],
            "bits": batch.bits[:10],
            "identifiers": batch.identifiers[:10],
        }
    )
    with pytest.raises(grpc.RpcError) as e:
        stub.SubmitBatch(batch_requests(smaller, "same-key"))
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "different batch" in e.value.details()


def test_watchers_are_bounded_so_calls_still_get_a_thread(start_server, channel):
    server = start_server()
    ch = channel(server.port, "mash-1")
    stub = rpc.CoordinatorServiceStub(ch)
    streams = [stub.WatchAlerts(pb.WatchAlertsRequest()) for _ in range(16)]
    for s in streams:  # wait until each holds its slot
        assert s.initial_metadata() is not None
    with pytest.raises(grpc.RpcError) as e:
        next(iter(stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=5)))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.ListAlerts(pb.ListAlertsRequest(), timeout=5).alerts == []
    for s in streams:
        s.cancel()


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda a, c: a.GetBatch(pb.GetBatchRequest(batch_id="²")), grpc.StatusCode.NOT_FOUND),
        (lambda a, c: a.GetBatch(pb.GetBatchRequest(batch_id="9" * 30)), grpc.StatusCode.NOT_FOUND),
        (
            lambda a, c: c.ListAlerts(
                pb.ListAlertsRequest(page_token="QS05OTk5OTk5OTk5OTk5OTk5OTk5OTk5")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            lambda a, c: c.ListAlerts(pb.ListAlertsRequest(state=42)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            lambda a, c: a.WithdrawRecords(
                pb.WithdrawRecordsRequest(agency="police", record_refs=["x"], reason="r" * 500)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_odd_requests_get_a_clear_status(start_server, channel, call, code):
    server = start_server()
    agency = rpc.AgencyServiceStub(channel(server.port, "police"))
    coordinator = rpc.CoordinatorServiceStub(channel(server.port, "mash-1"))
    with pytest.raises(grpc.RpcError) as e:
        call(agency, coordinator)
    assert e.value.code() == code, e.value.details()


def test_a_cursor_beyond_int64_is_just_the_end(start_server, channel):
    server = start_server()
    stub = rpc.CoordinatorServiceStub(channel(server.port, "mash-1"))
    with pytest.raises(grpc.RpcError) as e:
        for _ in stub.WatchAlerts(pb.WatchAlertsRequest(after_cursor=2**64 - 1), timeout=1.5):
            pass
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
