"""Keyed Bloom-filter encoding of an agency's records.

Each filter field's tokens are hashed with keyed BLAKE3 under the key of the field's slot (see
:mod:`clients.encoding.secret`). A token's bit positions are the first ``weight`` 32-bit words of
its keyed BLAKE3 output, each reduced modulo the filter length: independent positions, not double
hashing, whose linear structure is what the Kroll & Steinmetzer (2015) attack exploited. Because
positions are a prefix of one output stream, fields sharing a slot with different weights still
agree on min(weight) positions for an equal token.

Work is done once per distinct value (:mod:`clients.encoding.field_table`): a column of 1M rows
with 5,000 distinct surnames costs 5,000 normalisations and only the distinct q-grams' hashes;
records are then assembled with numpy. All tables belong to one :class:`BloomEncoder`, which
lives for one run: nothing derived from the secret is kept process-wide.

Identifier fields (NHS number) are not put in the filter: see
:mod:`clients.encoding.identifiers`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from linkage_service.wire.schema import FieldSpec, LinkageSchema

from .csv_input import ColumnChunk
from .field_table import MISSING, FieldTable, SlotHasher
from .fields import field_tokeniser, identifier_value
from .identifiers import IdentifierColumn, nhs_numbers_vectorised
from .secret import Secret, key_check, slot_key

__all__ = ["BloomEncoder", "EncodeReport", "EncodedChunk"]

# Problems listed in the encoded file's report; all of them go to the rejected-rows file.
MAX_PROBLEMS_LISTED = 1000


@dataclass
class EncodeReport:
    """Counts, line numbers and reasons; never a field value other than a duplicated record id."""

    rows_read: int = 0
    encoded: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)
    fields_missing: Counter[str] = field(default_factory=Counter)
    identifiers: dict[str, Counter[str]] = field(default_factory=dict)
    absent_columns: list[str] = field(default_factory=list)

    def reject(self, line: int, reason: str, kind: str) -> None:
        self.rejected[kind] += 1
        self.problems.append((line, reason))

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_read": self.rows_read,
            "encoded": self.encoded,
            "rejected": dict(self.rejected),
            "problems": [
                {"line": line, "reason": reason}
                for line, reason in self.problems[:MAX_PROBLEMS_LISTED]
            ],
            "problems_not_listed": max(len(self.problems) - MAX_PROBLEMS_LISTED, 0),
            "absent_columns": self.absent_columns,
            "fields_missing": dict(self.fields_missing),
            "identifiers": {k: dict(v) for k, v in self.identifiers.items()},
        }


@dataclass(frozen=True)
class EncodedChunk:
    record_ids: list[str]
    bits: np.ndarray  # uint8 (n, filter_bits // 8), big-endian by byte
    identifiers: np.ndarray  # uint64 (n, number of identifier fields)


def _generic_validate(spec: FieldSpec):  # type: ignore[no-untyped-def]
    def validate(raws: Sequence[str]) -> tuple[list[str | None], np.ndarray]:
        results = [identifier_value(spec, raw) for raw in raws]
        codes = {"missing": 0, "invalid": 1, "valid": 2}
        return ([v for _, v in results], np.array([codes[s] for s, _ in results], dtype=np.int8))

    return validate


class BloomEncoder:
    """Encodes rows for one schema and secret. Build one per run; do not share between runs."""

    def __init__(self, schema: LinkageSchema, secret: Secret) -> None:
        self.schema = schema
        self.key_check = key_check(secret)
        self.report = EncodeReport()
        weights: dict[str, int] = {}
        for spec in schema.filter_fields:
            weights[spec.slot] = max(weights.get(spec.slot, 0), spec.weight)
        hashers = {
            s: SlotHasher(slot_key(secret, s), w, schema.filter_bits) for s, w in weights.items()
        }
        self._tables = [
            FieldTable(field_tokeniser(spec), hashers[spec.slot], spec.weight, schema.filter_bits)
            for spec in schema.filter_fields
        ]
        self._hashers = hashers
        self._identifiers = [
            IdentifierColumn(
                slot_key(secret, spec.slot),
                nhs_numbers_vectorised
                if spec.normaliser == "nhs_number"
                else _generic_validate(spec),
            )
            for spec in schema.identifier_fields
        ]
        for spec in schema.identifier_fields:
            self.report.identifiers[spec.name] = Counter()

    @property
    def columns(self) -> tuple[str, ...]:
        """CSV columns read, in order: filter fields, then identifier fields."""
        return tuple(s.column for s in self.schema.filter_fields) + tuple(
            s.column for s in self.schema.identifier_fields
        )

    @property
    def distinct_tokens(self) -> int:
        return sum(h.distinct_tokens for h in self._hashers.values())

    def encode(self, chunk: ColumnChunk) -> EncodedChunk:
        """Encode one chunk of rows; problems and rejections go to the report."""
        self.report.rows_read += chunk.rows_read
        for problem in chunk.problems:
            self.report.reject(problem.line, problem.reason, "malformed row")
        n = len(chunk.record_ids)
        rows = (
            np.stack([table.lookup(chunk.columns[f], n) for f, table in enumerate(self._tables)])
            if n
            else np.zeros((len(self._tables), 0), dtype=np.int64)
        )
        kept = self._kept_rows(chunk.lines, rows != MISSING)
        self.report.encoded += len(kept)
        words = np.zeros((len(kept), self.schema.filter_bits // 64), dtype=np.uint64)
        for f, table in enumerate(self._tables):
            words |= table.bits(rows[f, kept])
        n_filter = len(self._tables)
        every_row = len(kept) == n
        identifiers = np.zeros((len(kept), len(self._identifiers)), dtype=np.uint64)
        for i, (column, spec) in enumerate(
            zip(self._identifiers, self.schema.identifier_fields, strict=True)
        ):
            values = chunk.columns[n_filter + i]
            picked = values if values is None or every_row else [values[r] for r in kept.tolist()]
            identifiers[:, i] = column.tokens(picked, len(kept), self.report.identifiers[spec.name])
        record_ids = chunk.record_ids if every_row else [chunk.record_ids[r] for r in kept.tolist()]
        return EncodedChunk(record_ids, words.view(np.uint8), identifiers)

    def _kept_rows(self, lines: list[int], present: np.ndarray) -> np.ndarray:
        """int64 indices of rows with enough fields present; the rest are reported by line."""
        specs = self.schema.filter_fields
        for f, spec in enumerate(specs):
            self.report.fields_missing[spec.name] += int((~present[f]).sum())
        required = [f for f, spec in enumerate(specs) if spec.missing == "reject"]
        lacking = ~present[required].all(axis=0)
        counts = present.sum(axis=0)
        too_few = counts < self.schema.min_fields_present
        for r in np.flatnonzero(lacking | too_few).tolist():
            missing = [specs[f].name for f in required if not present[f, r]]
            if missing:
                self.report.reject(
                    lines[r],
                    f"required field {missing[0]} is missing or not valid",
                    f"missing {missing[0]}",
                )
            else:
                self.report.reject(
                    lines[r],
                    f"only {counts[r]} of the schema's fields present; "
                    f"at least {self.schema.min_fields_present} needed",
                    "too few fields",
                )
        return np.flatnonzero(~(lacking | too_few))
