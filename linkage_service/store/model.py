"""What the store keeps: plain typed values, no SQL. The store interface is in :mod:`.base`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

__all__ = [
    "AlertRecordView",
    "AlertVersion",
    "BatchHeader",
    "IncomingBatch",
    "Link",
    "Receipt",
    "StoredRecords",
]


@dataclass(frozen=True)
class BatchHeader:
    agency: str
    schema_fingerprint: str
    key_check: str
    filter_bits: int
    record_count: int
    idempotency_key: str
    identifier_names: tuple[str, ...]


@dataclass(frozen=True)
class IncomingBatch:
    """A validated batch: ``bits`` uint8 (n, filter_bits / 8), ``identifiers`` uint64 (n, k)."""

    header: BatchHeader
    refs: tuple[str, ...]
    bits: np.ndarray
    identifiers: np.ndarray
    content_sha256: str = ""


@dataclass(frozen=True)
class Receipt:
    """What an agency is told about its batch: counts and its own rejected references only."""

    batch_id: int
    agency: str
    idempotency_key: str
    accepted: int
    rejected: tuple[tuple[str, str], ...]
    committed_at: datetime
    replayed: bool = False


@dataclass(frozen=True)
class StoredRecords:
    """Active records in key order. ``keys`` int64 (n,) increasing; ``bits`` uint8
    (n, filter_bits / 8); ``identifiers`` uint64 (n, k); ``agencies`` and ``refs`` length n."""

    keys: np.ndarray
    agencies: tuple[str, ...]
    refs: tuple[str, ...]
    bits: np.ndarray
    identifiers: np.ndarray

    @property
    def n(self) -> int:
        return int(self.keys.shape[0])


@dataclass(frozen=True)
class Link:
    key_a: int
    key_b: int
    decision: int
    score: float


@dataclass(frozen=True, order=True)
class AlertRecordView:
    agency: str
    ref: str
    duplicate: bool
    band: str = "match"
    match_group: int = 0


@dataclass(frozen=True)
class AlertVersion:
    """One released version of an alert. ``state`` is open, closed or merged; ``band`` match
    or possible; ``cursor`` is assigned by the store when the version is released."""

    alert_id: str
    version: int
    state: str
    band: str
    agencies: tuple[str, ...]
    records: tuple[AlertRecordView, ...]
    keys: tuple[int, ...]
    opened_at: datetime
    updated_at: datetime
    merged_into: str = ""
    cursor: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False)
