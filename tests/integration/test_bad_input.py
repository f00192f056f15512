"""Each bad-input rule: a clear status naming the problem; nothing stored but the audit entry."""

from __future__ import annotations

import sqlite3

import grpc
import numpy as np
import pytest

from clients.client import batch_requests
from linkage_service.service.config import Limits
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

pytestmark = [pytest.mark.integration]

Code = grpc.StatusCode


def _header(batch, **changes) -> pb.SubmitBatchRequest:
    fields = dict(
        agency=batch.agency,
        schema_fingerprint=batch.schema_fingerprint,
        key_check=batch.key_check,
        filter_bits=batch.filter_bits,
        record_count=batch.record_count,
        idempotency_key="bad-input",
        identifier_names=list(batch.identifier_names),
    )
    fields.update(changes)
    return pb.SubmitBatchRequest(header=pb.BatchHeader(**fields))


def _chunks(batch, start=0, stop=None, **changes):
    stop = batch.record_count if stop is None else stop
    fields = dict(
        bits=batch.bits[start:stop].tobytes(),
        record_refs=batch.record_ids[start:stop].tolist(),
        identifiers=np.ascontiguousarray(batch.identifiers[start:stop], "<u8").tobytes(),
    )
    fields.update(changes)
    return pb.SubmitBatchRequest(chunk=pb.BatchChunk(**fields))


def _raw(batch, bits=None, refs=None):
    """Header and one chunk with the given bits / references (bypassing file checks)."""
    chunk = _chunks(batch)
    if bits is not None:
        chunk.chunk.bits = bits.tobytes()
    if refs is not None:
        del chunk.chunk.record_refs[:]
        chunk.chunk.record_refs.extend(refs)
    return [_header(batch), chunk]


def _cases(batch):
    n = batch.record_count
    ones = batch.bits.copy()
    ones[3] = 0xFF
    dup_refs = batch.record_ids.tolist()
    dup_refs[5] = dup_refs[4]
    long_refs = batch.record_ids.tolist()
    long_refs[2] = "x" * 200
    return {
        "wrong schema": (
            [_header(batch, schema_fingerprint="f" * 16), _chunks(batch)],
            Code.FAILED_PRECONDITION,
            "schema fingerprint",
        ),
        "wrong key": (
            [_header(batch, key_check="0" * 16), _chunks(batch)],
            Code.FAILED_PRECONDITION,
            "key check",
        ),
        "bit length": (
            [_header(batch, filter_bits=512), _chunks(batch)],
            Code.INVALID_ARGUMENT,
            "filter_bits",
        ),
        "ragged chunk": (
            [_header(batch), _chunks(batch, bits=batch.bits.tobytes()[:-1])],
            Code.INVALID_ARGUMENT,
            "bytes of bits",
        ),
        "count short": (
            [_header(batch), _chunks(batch, 0, n - 1)],
            Code.INVALID_ARGUMENT,
            "announced",
        ),
        "count over": (
            [_header(batch, record_count=n - 1), _chunks(batch)],
            Code.INVALID_ARGUMENT,
            "announced",
        ),
        "empty batch": ([_header(batch, record_count=0)], Code.INVALID_ARGUMENT, "empty"),
        "no header": ([_chunks(batch)], Code.INVALID_ARGUMENT, "BatchHeader"),
        "duplicate refs": (
            _raw(batch, refs=dup_refs),
            Code.INVALID_ARGUMENT,
            "more than once",
        ),
        "ref too long": (
            _raw(batch, refs=long_refs),
            Code.INVALID_ARGUMENT,
            "printable",
        ),
        "all-ones record": (
            _raw(batch, bits=ones),
            Code.INVALID_ARGUMENT,
            "plausible",
        ),
        "too many records": (
            [_header(batch, record_count=10**7), _chunks(batch)],
            Code.RESOURCE_EXHAUSTED,
            "limit",
        ),
    }


CASES = [
    "wrong schema",
    "wrong key",
    "bit length",
    "ragged chunk",
    "count short",
    "count over",
    "empty batch",
    "no header",
    "duplicate refs",
    "ref too long",
    "all-ones record",
    "too many records",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_batch_is_refused_and_changes_nothing(start_server, channel, population_batches, case):
    batch = population_batches["police"]
    server = start_server(key_check=batch.key_check)
    requests, code, words = _cases(batch)[case]
    stub = rpc.AgencyServiceStub(channel(server.port, "police"))
    with pytest.raises(grpc.RpcError) as e:
        stub.SubmitBatch(iter(requests), timeout=20)
    assert e.value.code() == code, e.value.details()
    assert words in e.value.details()
    assert server.store.active_records().n == 0
    conn = sqlite3.connect(server.store.path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
        refused = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'batch refused'")
        assert refused.fetchone()[0] == 1
    finally:
        conn.close()


def test_an_oversized_message_is_resource_exhausted(start_server, channel, population_batches):
    server = start_server(limits=Limits(max_message_bytes=4096))
    batch = population_batches["police"]
    stub = rpc.AgencyServiceStub(channel(server.port, "police"))
    with pytest.raises(grpc.RpcError) as e:
        stub.SubmitBatch(iter([_header(batch), _chunks(batch)]), timeout=20)
    assert e.value.code() == Code.RESOURCE_EXHAUSTED
    assert server.store.active_records().n == 0


def test_references_already_held_are_rejected_in_the_receipt(
    start_server, channel, population_batches
):
    server = start_server()
    batch = population_batches["police"]
    stub = rpc.AgencyServiceStub(channel(server.port, "police"))
    stub.SubmitBatch(batch_requests(batch, "first"))
    again = stub.SubmitBatch(batch_requests(batch, "second"))
    assert again.accepted == 0 and len(again.rejected) == batch.record_count
    assert "already held" in again.rejected[0].reason
    assert server.store.active_records().n == batch.record_count


def test_the_first_batch_pins_the_key_check_when_none_is_configured(
    start_server, channel, population_batches
):
    server = start_server()
    health, police = population_batches["health"], population_batches["police"]
    rpc.AgencyServiceStub(channel(server.port, "health")).SubmitBatch(batch_requests(health, "a"))
    stub = rpc.AgencyServiceStub(channel(server.port, "police"))
    with pytest.raises(grpc.RpcError) as e:
        stub.SubmitBatch(iter([_header(police, key_check="ab" * 8), _chunks(police)]))
    assert e.value.code() == Code.FAILED_PRECONDITION
    assert health.key_check in e.value.details()
    assert server.store.meta("key_check") == health.key_check
