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

import blake3
import numpy as np

from linkage_service.wire.schema import FieldSpec, LinkageSchema

from .csv_input import CsvRow, RowProblem
from .fields import field_tokeniser, identifier_value
from .secret import Secret, key_check, slot_key

__all__ = ["BloomEncoder", "EncodeReport", "EncodedChunk"]

MAX_PROBLEMS_KEPT = 1000
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
        self._ids: dict[str, int] = {}
        self._rows: list[np.ndarray] = []
        self._table = np.zeros((0, weight), dtype=np.uint32)

    def token_ids(self, tokens: Iterable[str]) -> tuple[int, ...]:
        out = []
        for token in tokens:
            tid = self._ids.get(token)
            if tid is None:
                tid = self._ids[token] = len(self._ids)
                digest = blake3.blake3(token.encode(), key=self._key).digest(
                    length=self._weight * _POSITION_BYTES
                )
                self._rows.append(np.frombuffer(digest, dtype="<u4") % np.uint32(self._n_bits))
            out.append(tid)
        return tuple(out)

    def table(self) -> np.ndarray:
        """uint32 (n_tokens, weight): positions of every token seen so far."""
        if len(self._rows) > self._table.shape[0]:
            self._table = np.vstack([self._table, *self._rows[self._table.shape[0]:]])
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
        """Encode rows (from :func:`read_csv_rows`); problems and rejections go to the report."""
        n_filter = len(self._filter)
        record_ids: list[str] = []
        hits: list[list[tuple[int, ...]]] = [[] for _ in self._filter]
        owners: list[list[int]] = [[] for _ in self._filter]
        id_tokens: list[tuple[int, ...]] = []
        for row in rows:
            self.report.rows_read += 1
            if isinstance(row, RowProblem):
                self.report.reject(row.line, row.reason, "malformed row")
                continue
            tokens = self._row_tokens(row)
            if tokens is None:
                continue
            position = len(record_ids)
            record_ids.append(row.record_id)
            for f, ids in enumerate(tokens):
                if ids:
                    hits[f].append(ids)
                    owners[f].append(position)
            id_tokens.append(self._identifier_tokens(row.values[n_filter:]))
        self.report.encoded += len(record_ids)
        bits = self._set_bits(len(record_ids), hits, owners)
        identifiers = np.array(id_tokens, dtype=np.uint64).reshape(
            len(record_ids), len(self._id_keys)
        )
        return EncodedChunk(record_ids, bits, identifiers)

    def _row_tokens(self, row: CsvRow) -> list[tuple[int, ...] | None] | None:
        out: list[tuple[int, ...] | None] = []
        for f, (spec, tokenise) in enumerate(self._filter):
            raw = row.values[f]
            ids = None if raw is None else self._cached_ids(f, spec, tokenise, raw)
            if ids is None:
                self.report.fields_missing[spec.name] += 1
                if spec.missing == "reject":
                    self.report.reject(row.line, f"required field {spec.name} is missing "
                                       "or not valid", f"missing {spec.name}")
                    return None
            out.append(ids)
        present = sum(1 for ids in out if ids)
        if present < self.schema.min_fields_present:
            self.report.reject(row.line, f"only {present} of the schema's fields present; "
                               f"at least {self.schema.min_fields_present} needed",
                               "too few fields")
            return None
        return out

    def _cached_ids(self, f: int, spec: FieldSpec, tokenise, raw: str) -> tuple[int, ...] | None:  # type: ignore[no-untyped-def]
        cache = self._caches[f]
        if raw in cache:
            return cache[raw]
        tokens = tokenise(raw)
        ids = self._slots[spec.slot].token_ids(tokens) if tokens else None
        cache[raw] = ids
        return ids

    def _identifier_tokens(self, raws: tuple[str | None, ...]) -> tuple[int, ...]:
        out = []
        for i, (spec, raw) in enumerate(zip(self.schema.identifier_fields, raws, strict=True)):
            cache = self._id_caches[i]
            key = raw or ""
            if key not in cache:
                status, value = identifier_value(spec, raw) if raw else ("missing", None)
                cache[key] = (status, 0 if value is None else self._id_token(i, value))
            status, token = cache[key]
            self.report.identifiers[spec.name][status] += 1
            out.append(token)
        return tuple(out)

    def _id_token(self, i: int, value: str) -> int:
        digest = blake3.blake3(value.encode(), key=self._id_keys[i]).digest(length=8)
        return int.from_bytes(digest, "little") or 1  # 0 is reserved for "absent"

    def _set_bits(self, n: int, hits: list[list[tuple[int, ...]]],
                  owners: list[list[int]]) -> np.ndarray:
        dense = np.zeros((n, self.schema.filter_bits), dtype=bool)
        for f, (spec, _) in enumerate(self._filter):
            if not hits[f]:
                continue
            lengths = np.fromiter((len(h) for h in hits[f]), dtype=np.int64, count=len(hits[f]))
            token_ids = np.fromiter((t for h in hits[f] for t in h), dtype=np.int64,
                                    count=int(lengths.sum()))
            rows = np.repeat(np.asarray(owners[f], dtype=np.int64), lengths)
            positions = self._slots[spec.slot].table()[token_ids, : spec.weight]
            dense[rows[:, None], positions] = True
        return np.packbits(dense, axis=1)
