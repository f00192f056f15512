"""Checking a streamed batch before anything is stored: every rule names what is wrong.

Order of checks: the header (who, which schema and key, sizes), then each chunk as it arrives
(lengths agree, count not exceeded), then the whole batch (count reached, references valid and
unique, popcounts plausible). The first failure aborts the call; nothing is stored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from linkage_service.store.model import BatchHeader, IncomingBatch
from linkage_service.wire.schema import LinkageSchema
from linkage_service.wire.v1 import linkage_pb2 as pb

from .config import Limits
from .errors import InvalidBatch, PermissionDenied, TooLarge, WrongEncoding

__all__ = ["Expected", "plausible_popcounts", "read_batch"]

MAX_IDEMPOTENCY_CHARS = 128
# No real record sets more than this share of its filter's bits: an all-ones row would match
# everything, which is how a probing or broken client would show itself.
MAX_FILL = 0.7
# What `linkage encode` writes: the first 16 hex digits of a value derived from the secret.
_KEY_CHECK = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Expected:
    """What the service accepts: its schema, the pinned key check (None: not pinned yet)."""

    schema: LinkageSchema
    key_check: str | None
    limits: Limits


def plausible_popcounts(schema: LinkageSchema) -> tuple[int, int]:
    """(lowest, highest) bits a real record can set: at least one token of the schema's
    ``min_fields_present`` lightest fields, at most MAX_FILL of the filter."""
    weights = sorted(s.weight for s in schema.filter_fields)
    need = max(1, min(schema.min_fields_present, len(weights)))
    return max(1, sum(weights[:need]) // 2), int(schema.filter_bits * MAX_FILL)


def read_batch(
    requests: Iterable[pb.SubmitBatchRequest], caller_agency: str, expected: Expected
) -> IncomingBatch:
    it = iter(requests)
    first = next(it, None)
    if first is None or first.WhichOneof("part") != "header":
        raise InvalidBatch("the first message of SubmitBatch must be a BatchHeader")
    header = check_header(first.header, caller_agency, expected)
    refs, bits, ids = _read_chunks(it, header, expected)
    return check_content(header, refs, bits, ids, expected)


def check_header(h: pb.BatchHeader, caller_agency: str, expected: Expected) -> BatchHeader:
    schema = expected.schema
    if h.agency != caller_agency:
        raise PermissionDenied(
            f"caller is agency {caller_agency!r} and cannot submit as agency {h.agency!r}"
        )
    if h.schema_fingerprint != schema.fingerprint:
        raise WrongEncoding(
            f"batch schema fingerprint {h.schema_fingerprint or '(none)'} differs from the "
            f"service's {schema.fingerprint} (schema {schema.name}): re-encode with that schema"
        )
    if not _KEY_CHECK.fullmatch(h.key_check):
        raise InvalidBatch(f"key_check must be 16 lower-case hex digits, got {h.key_check[:40]!r}")
    if expected.key_check is not None and h.key_check != expected.key_check:
        raise WrongEncoding(
            f"batch key check {h.key_check or '(none)'} differs from the service's "
            f"{expected.key_check}: the batch was encoded with a different secret"
        )
    if h.filter_bits != schema.filter_bits:
        raise InvalidBatch(
            f"filter_bits is {h.filter_bits}; schema {schema.name} uses {schema.filter_bits}"
        )
    names = tuple(s.name for s in schema.identifier_fields)
    if tuple(h.identifier_names) != names:
        raise InvalidBatch(
            f"identifier_names {list(h.identifier_names)} differ from the schema's {list(names)}"
        )
    if h.record_count == 0:
        raise InvalidBatch("record_count is 0: an empty batch")
    if h.record_count > expected.limits.max_batch_records:
        raise TooLarge(
            f"record_count {h.record_count} exceeds this service's limit of "
            f"{expected.limits.max_batch_records} records per batch"
        )
    key = h.idempotency_key
    if not 0 < len(key) <= MAX_IDEMPOTENCY_CHARS or not key.isprintable():
        raise InvalidBatch(
            f"idempotency_key must be 1-{MAX_IDEMPOTENCY_CHARS} printable characters"
        )
    return BatchHeader(
        h.agency, h.schema_fingerprint, h.key_check, h.filter_bits, h.record_count, key, names
    )


def _read_chunks(
    it: Iterable[pb.SubmitBatchRequest], h: BatchHeader, expected: Expected
) -> tuple[list[str], bytes, bytes]:
    row_bytes, id_bytes = h.filter_bits // 8, 8 * len(h.identifier_names)
    refs: list[str] = []
    bits: list[bytes] = []
    ids: list[bytes] = []
    for number, request in enumerate(it, start=1):
        if request.WhichOneof("part") != "chunk":
            raise InvalidBatch(f"message {number + 1}: a second header; expected chunks only")
        c = request.chunk
        n = len(c.record_refs)
        if len(c.bits) != n * row_bytes:
            raise InvalidBatch(
                f"chunk {number}: {len(c.bits)} bytes of bits for {n} references; "
                f"expected {n * row_bytes} ({h.filter_bits} bits each)"
            )
        if len(c.identifiers) != n * id_bytes:
            raise InvalidBatch(
                f"chunk {number}: {len(c.identifiers)} bytes of identifiers for {n} "
                f"references; expected {n * id_bytes}"
            )
        if len(refs) + n > h.record_count:
            raise InvalidBatch(
                f"chunk {number} brings the batch to {len(refs) + n} records; "
                f"the header announced {h.record_count}"
            )
        refs.extend(c.record_refs)
        bits.append(c.bits)
        ids.append(c.identifiers)
    if len(refs) != h.record_count:
        raise InvalidBatch(f"the header announced {h.record_count} records; {len(refs)} arrived")
    return refs, b"".join(bits), b"".join(ids)


def check_content(
    h: BatchHeader, refs: list[str], bits: bytes, ids: bytes, expected: Expected
) -> IncomingBatch:
    _check_refs(refs, expected.limits.max_ref_chars)
    matrix = np.frombuffer(bits, dtype=np.uint8).reshape(len(refs), h.filter_bits // 8)
    counts = np.bitwise_count(matrix).sum(axis=1)
    low, high = plausible_popcounts(expected.schema)
    bad = np.flatnonzero((counts < low) | (counts > high))
    if bad.size:
        i = int(bad[0])
        raise InvalidBatch(
            f"record {refs[i]!r} sets {int(counts[i])} of {h.filter_bits} bits, outside the "
            f"plausible {low}-{high} for schema {expected.schema.name} "
            f"({bad.size} such records)"
        )
    identifiers = np.frombuffer(ids, dtype="<u8").reshape(len(refs), len(h.identifier_names))
    return IncomingBatch(
        h, tuple(refs), matrix, identifiers.astype(np.uint64), _digest(h, refs, bits, ids)
    )


def _digest(h: BatchHeader, refs: list[str], bits: bytes, ids: bytes) -> str:
    """SHA-256 of everything the batch asserts, to tell a retry from new content."""
    digest = hashlib.sha256()
    for part in (h.agency, h.schema_fingerprint, h.key_check, str(h.filter_bits)):
        digest.update(part.encode() + b"\0")
    digest.update("\0".join(refs).encode())
    digest.update(bits)
    digest.update(ids)
    return digest.hexdigest()


def _check_refs(refs: list[str], max_chars: int) -> None:
    for ref in refs:
        if not 0 < len(ref) <= max_chars or not ref.isprintable():
            raise InvalidBatch(
                f"record reference {ref[:40]!r}: must be 1-{max_chars} printable characters"
            )
    if len(set(refs)) != len(refs):
        seen: set[str] = set()
        first = next(r for r in refs if r in seen or seen.add(r))  # type: ignore[func-returns-value]
        raise InvalidBatch(f"record reference {first!r} appears more than once in the batch")
