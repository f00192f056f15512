"""The agency's and coordinator's side of the gRPC API: channels, batch upload, alerts.

Uploads stream an encoded file in chunks of packed bits (never a message per record) under an
idempotency key derived from the file's content, so a retried or repeated upload of the same
file is stored once and answered with the original receipt.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from linkage_service.wire.encoded_file import EncodedBatch
from linkage_service.wire.v1 import linkage_pb2 as pb
from linkage_service.wire.v1 import linkage_pb2_grpc as rpc

from .encoding.errors import EncodingError

__all__ = [
    "CALLER_METADATA",
    "ClientError",
    "Identity",
    "batch_requests",
    "connect",
    "idempotency_key",
    "submit_batch",
    "watch_alerts",
]

CALLER_METADATA = "x-linkage-caller"
CHUNK_RECORDS = 8192  # about 1.3 MB per message at 1024 bits: well under gRPC's 4 MB default
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class ClientError(EncodingError):
    """A call the service refused or could not answer; the message carries its status."""


@dataclass(frozen=True)
class Identity:
    """Mutual-TLS files of one caller, or (plain-text loopback mode) just a name."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    insecure_name: str | None = None


def connect(address: str, identity: Identity) -> grpc.Channel:
    if identity.insecure_name is not None:
        return grpc.intercept_channel(
            grpc.insecure_channel(address), _NameInterceptor(identity.insecure_name)
        )
    if not (identity.cert and identity.key and identity.ca):
        raise ClientError("give --cert, --key and --ca (the caller's certificate, key and CA)")
    try:
        creds = grpc.ssl_channel_credentials(
            root_certificates=identity.ca.read_bytes(),
            private_key=identity.key.read_bytes(),
            certificate_chain=identity.cert.read_bytes(),
        )
    except OSError as e:
        raise ClientError(f"cannot read {e.filename}: {e.strerror}") from e
    return grpc.secure_channel(address, creds)


class _NameInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    def __init__(self, name: str) -> None:
        self._name = name

    def _details(self, details):  # type: ignore[no-untyped-def]
        metadata = [*(details.metadata or []), (CALLER_METADATA, self._name)]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request_iterator)

    def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)


def idempotency_key(batch: EncodedBatch) -> str:
    """Content-derived: the same encoded file always gets the same key."""
    digest = hashlib.sha256()
    for part in (batch.agency, batch.schema_fingerprint, batch.key_check):
        digest.update(part.encode() + b"\0")
    digest.update("\0".join(batch.record_ids.tolist()).encode())
    digest.update(np.ascontiguousarray(batch.bits).tobytes())
    digest.update(np.ascontiguousarray(batch.identifiers, dtype="<u8").tobytes())
    return f"sha256:{digest.hexdigest()}"


def batch_requests(
    batch: EncodedBatch,
    key: str,
    chunk_records: int = CHUNK_RECORDS,
    progress: Callable[[int], None] | None = None,
) -> Iterator[pb.SubmitBatchRequest]:
    yield pb.SubmitBatchRequest(
        header=pb.BatchHeader(
            agency=batch.agency,
            schema_fingerprint=batch.schema_fingerprint,
            key_check=batch.key_check,
            filter_bits=batch.filter_bits,
            record_count=batch.record_count,
            idempotency_key=key,
            identifier_names=list(batch.identifier_names),
        )
    )
    ids = np.ascontiguousarray(batch.identifiers, dtype="<u8")
    for start in range(0, batch.record_count, chunk_records):
        stop = min(start + chunk_records, batch.record_count)
        yield pb.SubmitBatchRequest(
            chunk=pb.BatchChunk(
                bits=np.ascontiguousarray(batch.bits[start:stop]).tobytes(),
                record_refs=batch.record_ids[start:stop].tolist(),
                identifiers=ids[start:stop].tobytes(),
            )
        )
        if progress is not None:
            progress(stop - start)


def submit_batch(
    channel: grpc.Channel,
    batch: EncodedBatch,
    attempts: int = 5,
    timeout: float = 300.0,
    progress: Callable[[int], None] | None = None,
) -> pb.BatchReceipt:
    """Upload with retries under one idempotency key; raises ClientError on refusal."""
    stub = rpc.AgencyServiceStub(channel)
    key = idempotency_key(batch)
    for attempt in range(1, attempts + 1):
        try:
            return stub.SubmitBatch(batch_requests(batch, key, progress=progress), timeout=timeout)
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            if code not in RETRYABLE or attempt == attempts:
                raise ClientError(f"{code.name}: {e.details()}") from e  # type: ignore[attr-defined]
            time.sleep(min(2.0 ** (attempt - 1) * 0.2, 5.0))
    raise AssertionError("unreachable")


def watch_alerts(
    channel: grpc.Channel, after_cursor: int, timeout: float | None = None
) -> Iterator[pb.AlertEvent]:
    """Alert versions after the cursor, then live ones; reconnects on UNAVAILABLE."""
    stub = rpc.CoordinatorServiceStub(channel)
    cursor = after_cursor
    while True:
        try:
            for event in stub.WatchAlerts(
                pb.WatchAlertsRequest(after_cursor=cursor), timeout=timeout
            ):
                cursor = event.cursor
                yield event
            return
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            if code != grpc.StatusCode.UNAVAILABLE:
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return
                raise ClientError(f"{code.name}: {e.details()}") from e  # type: ignore[attr-defined]
            time.sleep(0.5)
