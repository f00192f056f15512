"""Keyed Bloom-filter encoding of an agency's records.

Each filter field's tokens are hashed with keyed BLAKE3 under the key of the field's slot (see
:mod:`clients.encoding.secret`). A token's bit positions are the first ``weight`` 32-bit words of
its keyed BLAKE3 output, each reduced modulo the filter length: independent positions, not double
hashing, whose linear structure is what the Kroll & Steinmetzer (2015) attack exploited. Because
positions are a prefix of one output stream, fields sharing a slot with different weights still
agree on min(weight) positions for an equal token.

Work is done once per distinct value: each field caches raw value -> token ids, each slot caches
token -> positions, so a column of 1M rows with 5,000 distinct surnames costs 5,000 normalisations
and only the distinct q-grams' hashes. Bits are then set for whole chunks with numpy fancy
indexing. All caches belong to one :class:`BloomEncoder`, which lives for one run: nothing
derived from the secret is kept process-wide.

Identifier fields (NHS number) are not put in the filter. A valid number becomes a 64-bit keyed
token beside it (0 = absent); only valid numbers are used, so a typo cannot claim disagreement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain

import blake3
import numpy as np

from linkage_service.wire.schema import LinkageSchema

from .csv_input import CsvRow, RowProblem
from .fields import field_tokeniser, identifier_value
from .secret import Secret, key_check, slot_key

__all__ = ["BloomEncoder", "EncodeReport", "EncodedChunk"]

MAX_PROBLEMS_KEPT = 1000
_UNSEEN = object()
_POSITION_BYTES = 4


@dataclass
class EncodeReport:
    """Counts only, never values: safe to print and to send with the encodings."""

    rows_read: int = 0
    encoded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)
    fields_missing: Counter[str] = field(default_factory=Counter)
    identifiers: dict[str, Counter[str]] = field(default_factory=dict)

    def reject(self, line: int, reason: str, kind: str) -> None:
        self.rejected[kind] += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append((line, reason))

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "encoded": self.encoded,
            "rejected": dict(self.rejected),
            "problems": [{"line": line, "reason": reason} for line, reason in self.problems],
            "fields_missing": dict(self.fields_missing),
            "identifiers": {k: dict(v) for k, v in self.identifiers.items()},
        }


@dataclass(frozen=True)
class EncodedChunk:
    record_ids: list[str]
    bits: np.ndarray  # uint8 (n, filter_bits // 8), big-endian by byte
    identifiers: np.ndarray  # uint64 (n, number of identifier fields)


class _SlotHasher:
    """Token -> bit positions under one slot key; every distinct token is hashed once."""

    def __init__(self, key: bytes, weight: int, n_bits: int) -> None:
        self._key, self._weight, self._n_bits = key, weight, n_bits
        self._length = weight * _POSITION_BYTES
        self._ids: dict[str, int] = {}
        self._pending = bytearray()
        self._table = np.zeros((0, weight), dtype=np.uint32)

    def token_ids(self, tokens: Iterable[str]) -> tuple[int, ...]:
        ids = self._ids
        out = []
        for token in tokens:
            tid = ids.get(token)
            if tid is None:
                tid = ids[token] = len(ids)
                self._pending += blake3.blake3(token.encode(), key=self._key).digest(
                    length=self._length)
            out.append(tid)
        return tuple(out)

    def table(self) -> np.ndarray:
        """uint32 (n_tokens, weight): positions of every token seen so far."""
        if self._pending:
            fresh = np.frombuffer(bytes(self._pending), dtype="<u4").reshape(-1, self._weight)
            self._table = np.vstack([self._table, fresh % np.uint32(self._n_bits)])
            self._pending.clear()
        return self._table


class BloomEncoder:
    """Encodes rows for one schema and secret. Build one per run; do not share between runs."""

    def __init__(self, schema: LinkageSchema, secret: Secret) -> None:
        self.schema = schema
        self.key_check = key_check(secret)
        self.report = EncodeReport()
        weights: dict[str, int] = {}
        for spec in schema.filter_fields:
            weights[spec.slot] = max(weights.get(spec.slot, 0), spec.weight)
        self._slots = {s: _SlotHasher(slot_key(secret, s), w, schema.filter_bits)
                       for s, w in weights.items()}
        self._filter = [(spec, field_tokeniser(spec)) for spec in schema.filter_fields]
        self._caches: list[dict[str, tuple[int, ...] | None]] = [{} for _ in self._filter]
        self._id_keys = [slot_key(secret, spec.slot) for spec in schema.identifier_fields]
        self._id_caches: list[dict[str, tuple[str, int]]] = [{} for _ in self._id_keys]
        for spec in schema.identifier_fields:
            self.report.identifiers[spec.name] = Counter()

    @property
    def columns(self) -> tuple[str, ...]:
        """CSV columns read, in the order values are passed: filter fields, then identifiers."""
        return tuple(s.column for s, _ in self._filter) + tuple(
            s.column for s in self.schema.identifier_fields
        )

    def encode(self, rows: Iterable[CsvRow | RowProblem]) -> EncodedChunk:
        """Encode rows (from :func:`read_csv_rows`); problems and rejections go to the report.

        Work is column by column: each field maps its column through its cache, so the Python
        cost per row is a dictionary lookup per field."""
        good: list[CsvRow] = []
        for row in rows:
            self.report.rows_read += 1
            if isinstance(row, RowProblem):
                self.report.reject(row.line, row.reason, "malformed row")
            else:
                good.append(row)
        columns = list(zip(*(row.values for row in good), strict=True)) or [
            () for _ in self.columns
        ]
        field_ids = [self._column_ids(f, columns[f]) for f in range(len(self._filter))]
        kept = self._kept_rows(good, field_ids)
        self.report.encoded += len(kept)
        bits = self._set_bits(kept, field_ids)
        n_filter = len(self._filter)
        identifiers = np.zeros((len(kept), len(self._id_keys)), dtype=np.uint64)
        for i in range(len(self._id_keys)):
            column = columns[n_filter + i]
            identifiers[:, i] = self._identifier_column(i, [column[r] for r in kept])
        return EncodedChunk([good[r].record_id for r in kept], bits, identifiers)

    def _column_ids(self, f: int, column: tuple[str | None, ...]) -> list[tuple[int, ...] | None]:
        cache = self._caches[f]
        out = []
        for raw in column:
            ids = cache.get(raw, _UNSEEN) if raw is not None else None
            if ids is _UNSEEN:
                ids = self._tokenise(f, raw)  # type: ignore[arg-type]
            out.append(ids)  # type: ignore[arg-type]
        return out

    def _tokenise(self, f: int, raw: str) -> tuple[int, ...] | None:
        spec, tokenise = self._filter[f]
        tokens = tokenise(raw)
        ids = self._slots[spec.slot].token_ids(tokens) if tokens else None
        self._caches[f][raw] = ids
        return ids

    def _kept_rows(self, good: list[CsvRow], field_ids: list[list[tuple[int, ...] | None]],
                   ) -> list[int]:
        """Indices of rows with enough fields present; the rest are reported by line."""
        present = np.array([[ids is not None for ids in col] for col in field_ids],
                           dtype=bool).reshape(len(field_ids), len(good)).T
        for f, (spec, _) in enumerate(self._filter):
            self.report.fields_missing[spec.name] += int((~present[:, f]).sum())
        required = [f for f, (spec, _) in enumerate(self._filter) if spec.missing == "reject"]
        lacking_required = ~present[:, required].all(axis=1)
        counts = present.sum(axis=1)
        too_few = counts < self.schema.min_fields_present
        for r in np.flatnonzero(lacking_required | too_few).tolist():
            self._report_rejected(good[r].line, present[r], int(counts[r]), required)
        return np.flatnonzero(~(lacking_required | too_few)).tolist()

    def _report_rejected(self, line: int, present: np.ndarray, count: int,
                         required: list[int]) -> None:
        missing = [self._filter[f][0].name for f in required if not present[f]]
        if missing:
            self.report.reject(line, f"required field {missing[0]} is missing or not valid",
                               f"missing {missing[0]}")
        else:
            self.report.reject(line, f"only {count} of the schema's fields present; at least "
                               f"{self.schema.min_fields_present} needed", "too few fields")

    def _identifier_column(self, i: int, column: list[str | None]) -> np.ndarray:
        spec, cache = self.schema.identifier_fields[i], self._id_caches[i]
        statuses = self.report.identifiers[spec.name]
        out = np.zeros(len(column), dtype=np.uint64)
        for r, raw in enumerate(column):
            key = raw or ""
            if key not in cache:
                status, value = identifier_value(spec, raw) if raw else ("missing", None)
                cache[key] = (status, 0 if value is None else self._id_token(i, value))
            status, out[r] = cache[key]
            statuses[status] += 1
        return out

    def _id_token(self, i: int, value: str) -> int:
        digest = blake3.blake3(value.encode(), key=self._id_keys[i]).digest(length=8)
        return int.from_bytes(digest, "little") or 1  # 0 is reserved for "absent"

    def _set_bits(self, kept: list[int],
                  field_ids: list[list[tuple[int, ...] | None]]) -> np.ndarray:
        dense = np.zeros((len(kept), self.schema.filter_bits), dtype=bool)
        for f, (spec, _) in enumerate(self._filter):
            column = field_ids[f]
            hits = [(pos, column[r]) for pos, r in enumerate(kept) if column[r]]
            if not hits:
                continue
            lengths = np.fromiter((len(ids) for _, ids in hits), dtype=np.int64, count=len(hits))
            token_ids = np.fromiter(chain.from_iterable(ids for _, ids in hits), dtype=np.int64,
                                    count=int(lengths.sum()))
            rows = np.repeat(np.fromiter((pos for pos, _ in hits), dtype=np.int64,
                                         count=len(hits)), lengths)
            positions = self._slots[spec.slot].table()[token_ids, : spec.weight]
            dense[rows[:, None], positions] = True
        return np.packbits(dense, axis=1)
