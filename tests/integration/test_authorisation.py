"""Every role against every RPC over mutual TLS; all that is not allowed is denied and recorded."""

from __future__ import annotations

import sqlite3

import grpc
import pytest

from clients.client import batch_requests
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .conftest import open_channel

pytestmark = [pytest.mark.integration]

ROLES = {
    "agency": "police",
    "coordinator": "mash-1",
    "auditor": "dpo",
    "admin": "ops",
    "no role": "stranger",
}
ALLOWED = {
    "SubmitBatch": {"agency"},
    "WithdrawRecords": {"agency"},
    "GetBatch": {"agency"},
    "WatchAlerts": {"coordinator"},
    "ListAlerts": {"coordinator"},
    "GetAlert": {"coordinator"},
}


def _call(channel: grpc.Channel, rpc_name: str, batch) -> None:
    agency = rpc.AgencyServiceStub(channel)
    coordinator = rpc.CoordinatorServiceStub(channel)
    if rpc_name == "SubmitBatch":
        agency.SubmitBatch(batch_requests(batch, "authz-key"), timeout=20)
    elif rpc_name == "WithdrawRecords":
        agency.WithdrawRecords(
            pb.WithdrawRecordsRequest(agency="police", record_refs=["x"]), timeout=5
        )
    elif rpc_name == "GetBatch":
        agency.GetBatch(pb.GetBatchRequest(batch_id="1"), timeout=5)
    elif rpc_name == "WatchAlerts":
        for _ in coordinator.WatchAlerts(pb.WatchAlertsRequest(), timeout=1.5):
            pass
    elif rpc_name == "ListAlerts":
        coordinator.ListAlerts(pb.ListAlertsRequest(), timeout=5)
    else:
        coordinator.GetAlert(pb.GetAlertRequest(alert_id="A-000001"), timeout=5)


# Outcomes that show the call got past authorisation (the RPC itself answered).
_PAST_AUTH = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest.mark.parametrize("rpc_name", sorted(ALLOWED))
@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_matrix(start_server, pki, population_batches, role, rpc_name):
    server = start_server()
    channel = open_channel(pki, server.port, ROLES[role])
    try:
        _call(channel, rpc_name, population_batches["police"])
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code = e.code()
        message = e.details()
    finally:
        channel.close()
    if role in ALLOWED[rpc_name]:
        assert code in _PAST_AUTH, (role, rpc_name, code)
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED, (role, rpc_name, code)
        assert ROLES[role] in message
        denials = _audit_actions(server)
        assert ("call denied", ROLES[role]) in denials


def _audit_actions(server) -> list[tuple[str, str]]:
    conn = sqlite3.connect(server.store.path)
    try:
        return [(a, actor) for a, actor in conn.execute("SELECT action, actor FROM audit")]
    finally:
        conn.close()


def test_an_agency_cannot_submit_or_withdraw_as_another(start_server, pki, population_batches):
    server = start_server()
    channel = open_channel(pki, server.port, "health")
    stub = rpc.AgencyServiceStub(channel)
    with pytest.raises(grpc.RpcError) as e:
        stub.SubmitBatch(batch_requests(population_batches["police"], "k1"), timeout=20)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'health'" in e.value.details() and "'police'" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.WithdrawRecords(pb.WithdrawRecordsRequest(agency="police", record_refs=["x"]))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    channel.close()
    assert server.store.active_records().n == 0


def test_a_certificate_from_another_ca_never_gets_a_call_through(
    start_server, pki, population_batches
):
    server = start_server()
    channel = open_channel(pki, server.port, "police", ca_dir=pki.foreign)
    with pytest.raises(grpc.RpcError) as e:
        rpc.AgencyServiceStub(channel).GetBatch(pb.GetBatchRequest(batch_id="1"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_plain_text_is_refused_by_a_tls_server(start_server):
    server = start_server()
    channel = grpc.insecure_channel(f"localhost:{server.port}")
    with pytest.raises(grpc.RpcError) as e:
        rpc.CoordinatorServiceStub(channel).ListAlerts(pb.ListAlertsRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_plain_text_mode_names_callers_by_metadata_and_refuses_the_nameless(start_server):
    from clients.client import Identity, connect

    server = start_server(insecure=True, tls=None)
    named = connect(f"127.0.0.1:{server.port}", Identity(insecure_name="mash-1"))
    assert rpc.CoordinatorServiceStub(named).ListAlerts(pb.ListAlertsRequest()).alerts == []
    named.close()
    nameless = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    with pytest.raises(grpc.RpcError) as e:
        rpc.CoordinatorServiceStub(nameless).ListAlerts(pb.ListAlertsRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "x-linkage-caller" in e.value.details()
    nameless.close()
    assert ("call denied", "?") in _audit_actions(server) or any(
        action == "call denied" for action, _ in _audit_actions(server)
    )
