"""The linkage schema: the versioned contract every agency encodes with and the service checks.

A schema is a TOML file (see ``schemas/children-v1.toml`` for every key, documented). It is parsed
into a frozen :class:`LinkageSchema`; unknown keys, unknown normalisers or tokenisers, and values
out of range are refused with a :class:`SchemaError` that names the offending key.

The *canonical form* is the schema with every default filled in, serialised as JSON with sorted
keys and no whitespace; its *fingerprint* is the BLAKE3 hash of that form. Two agencies' encodings
are comparable only if their fingerprints are equal, so any change to fields, weights, filter
length or thresholds makes a new fingerprint.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import blake3

from .errors import SchemaError

__all__ = [
    "BUILTIN_SCHEMAS",
    "FieldSpec",
    "LinkageSchema",
    "Thresholds",
    "load_schema",
    "parse_schema",
]

SCHEMA_FORMAT_VERSION = 1
BUILTIN_SCHEMAS = {"children-v1": "children-v1.toml", "febrl-v1": "febrl-v1.toml"}
NORMALISERS = frozenset(
    {"given_name", "family_name", "date", "postcode", "nhs_number", "sex", "text"}
)
# An identifier is not put in the Bloom filter: it travels beside it as a keyed exact token, so
# that agreement and disagreement of a validated number can be weighed by the decision rule.
TOKENISERS = frozenset({"qgrams", "date_parts", "postcode", "exact", "identifier"})
MISSING_RULES = frozenset({"skip", "reject"})
# Which normalisers each tokeniser can work from.
ALLOWED_PAIRS = {
    "qgrams": frozenset({"given_name", "family_name", "text"}),
    "date_parts": frozenset({"date"}),
    "postcode": frozenset({"postcode"}),
    "exact": frozenset(
        {"given_name", "family_name", "text", "sex", "date", "postcode", "nhs_number"}
    ),
    "identifier": frozenset({"nhs_number", "text"}),
}
MAX_WEIGHT = 64
_TOP_KEYS = {
    "schema_version",
    "name",
    "description",
    "record_id_column",
    "filter",
    "thresholds",
    "rules",
    "fields",
}
_FIELD_KEYS = {
    "name",
    "column",
    "normaliser",
    "tokeniser",
    "weight",
    "missing",
    "q",
    "slot",
    "description",
}


@dataclass(frozen=True)
class FieldSpec:
    """One encoded field. ``slot`` names the key-derivation slot: fields that share a slot hash
    equal tokens to overlapping bit positions, which makes swapped given/family names agree."""

    name: str
    column: str
    normaliser: str
    tokeniser: str
    weight: int
    missing: str = "skip"
    q: int = 2
    slot: str = ""
    description: str = ""

    @property
    def is_identifier(self) -> bool:
        return self.tokeniser == "identifier"


@dataclass(frozen=True)
class Thresholds:
    """Dice thresholds: ``match`` links automatically, ``possible`` opens the clerical band;
    ``identifier_floor`` is the Dice above which agreeing valid identifiers make a match;
    records of one agency at or above ``duplicate`` are treated as one child (a duplicate)."""

    match: float
    possible: float
    identifier_floor: float
    duplicate: float


@dataclass(frozen=True)
class LinkageSchema:
    schema_version: int
    name: str
    description: str
    record_id_column: str
    filter_bits: int
    thresholds: Thresholds
    min_fields_present: int
    fields: tuple[FieldSpec, ...]

    @property
    def filter_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if not f.is_identifier)

    @property
    def identifier_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.is_identifier)

    def canonical(self) -> str:
        """The canonical JSON form that the fingerprint is computed over."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        return blake3.blake3(self.canonical().encode()).hexdigest()[:32]


def load_schema(name_or_path: str | Path | None = None) -> LinkageSchema:
    """Load a built-in schema by name (default ``children-v1``) or a schema file by path."""
    if name_or_path is None:
        name_or_path = "children-v1"
    if str(name_or_path) in BUILTIN_SCHEMAS:
        builtin = resources.files(__package__) / "schemas" / BUILTIN_SCHEMAS[str(name_or_path)]
        return parse_schema(builtin.read_text(encoding="utf-8"), source=str(name_or_path))
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SchemaError(f"cannot read schema {path}: not UTF-8 text ({e.reason})") from e
    except OSError as e:
        known = ", ".join(sorted(BUILTIN_SCHEMAS))
        raise SchemaError(
            f"cannot read schema {str(name_or_path)!r}: {e.strerror or e}; "
            f"built-in schemas are: {known}"
        ) from e
    return parse_schema(text, source=str(path))


def parse_schema(text: str, source: str = "<schema>") -> LinkageSchema:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SchemaError(f"{source}: not valid TOML: {e}") from e
    _reject_unknown(raw, _TOP_KEYS, source, "")
    version = raw.get("schema_version")
    if version != SCHEMA_FORMAT_VERSION:
        raise SchemaError(
            f"{source}: schema_version must be {SCHEMA_FORMAT_VERSION}, got {version!r}"
        )
    filter_table = _table(raw, "filter", source)
    _reject_unknown(filter_table, {"bits"}, source, "filter.")
    bits = _int(filter_table.get("bits", 1024), "filter.bits", source, 64, 1 << 16)
    if bits % 64:
        raise SchemaError(f"{source}: filter.bits must be a multiple of 64, got {bits}")
    rules = _table(raw, "rules", source)
    _reject_unknown(rules, {"min_fields_present"}, source, "rules.")
    fields = tuple(_parse_field(f, i, source) for i, f in enumerate(_fields(raw, source)))
    _check_fields(fields, source)
    min_present = _int(
        rules.get("min_fields_present", 1),
        "rules.min_fields_present",
        source,
        1,
        sum(1 for f in fields if not f.is_identifier),
    )
    return LinkageSchema(
        schema_version=version,
        name=_str(raw, "name", source),
        description=str(raw.get("description", "")),
        record_id_column=_str({"record_id_column": "record_id", **raw}, "record_id_column", source),
        filter_bits=bits,
        thresholds=_parse_thresholds(_table(raw, "thresholds", source), source),
        min_fields_present=min_present,
        fields=fields,
    )


def _parse_thresholds(table: dict[str, Any], source: str) -> Thresholds:
    _reject_unknown(
        table, {"match", "possible", "identifier_floor", "duplicate"}, source, "thresholds."
    )
    match = _float(table.get("match", 0.8), "thresholds.match", source)
    possible = _float(table.get("possible", 0.65), "thresholds.possible", source)
    floor = _float(table.get("identifier_floor", 0.5), "thresholds.identifier_floor", source)
    duplicate = _float(table.get("duplicate", 0.9), "thresholds.duplicate", source)
    if not possible <= match:
        raise SchemaError(
            f"{source}: thresholds.possible ({possible}) must not exceed thresholds.match ({match})"
        )
    return Thresholds(match=match, possible=possible, identifier_floor=floor, duplicate=duplicate)


def _parse_field(raw: Any, index: int, source: str) -> FieldSpec:
    where = f"fields[{index}]"
    if not isinstance(raw, dict):
        raise SchemaError(f"{source}: {where} must be a table")
    _reject_unknown(raw, _FIELD_KEYS, source, where + ".")
    name = _str(raw, "name", source, where)
    normaliser = _choice(raw, "normaliser", NORMALISERS, source, where)
    tokeniser = _choice(raw, "tokeniser", TOKENISERS, source, where)
    if normaliser not in ALLOWED_PAIRS[tokeniser]:
        raise SchemaError(
            f"{source}: {where}: tokeniser {tokeniser!r} cannot use normaliser {normaliser!r}; "
            f"it takes: {', '.join(sorted(ALLOWED_PAIRS[tokeniser]))}"
        )
    weight = _int(
        raw.get("weight", 0 if tokeniser == "identifier" else 10),
        f"{where}.weight",
        source,
        0,
        MAX_WEIGHT,
    )
    if tokeniser != "identifier" and weight < 1:
        raise SchemaError(f"{source}: {where}.weight must be at least 1 for a filter field")
    missing = _choice(raw, "missing", MISSING_RULES, source, where, default="skip")
    if tokeniser == "identifier" and missing == "reject":
        raise SchemaError(
            f"{source}: {where}.missing cannot be 'reject' for an identifier: a missing or "
            "invalid identifier is counted, never a reason to drop the record"
        )
    return FieldSpec(
        name=name,
        column=_str({"column": name, **raw}, "column", source, where),
        normaliser=normaliser,
        tokeniser=tokeniser,
        weight=weight,
        missing=missing,
        q=_int(raw.get("q", 2), f"{where}.q", source, 1, 4),
        slot=_str({"slot": name, **raw}, "slot", source, where),
        description=str(raw.get("description", "")),
    )


def _check_fields(fields: tuple[FieldSpec, ...], source: str) -> None:
    if not fields:
        raise SchemaError(f"{source}: a schema needs at least one field")
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaError(f"{source}: field names must be unique; repeated: {', '.join(dupes)}")
    if not any(not f.is_identifier for f in fields):
        raise SchemaError(f"{source}: a schema needs at least one field in the Bloom filter")


def _fields(raw: dict[str, Any], source: str) -> list[Any]:
    fields = raw.get("fields")
    if not isinstance(fields, list):
        raise SchemaError(f"{source}: 'fields' must be an array of tables ([[fields]])")
    return fields


def _reject_unknown(table: dict[str, Any], allowed: set[str], source: str, prefix: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SchemaError(
            f"{source}: unknown schema key {prefix}{unknown[0]!s}; allowed here: "
            + ", ".join(sorted(allowed))
        )


def _table(raw: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SchemaError(f"{source}: {key} must be a table")
    return value


def _str(raw: dict[str, Any], key: str, source: str, where: str = "") -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        prefix = where + "." if where else ""
        raise SchemaError(f"{source}: {prefix}{key} must be a non-empty string")
    return value


def _choice(
    raw: dict[str, Any],
    key: str,
    allowed: frozenset[str],
    source: str,
    where: str,
    default: str | None = None,
) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise SchemaError(
            f"{source}: {where}.{key} is {value!r}; choose one of: {', '.join(sorted(allowed))}"
        )
    return str(value)


def _int(value: Any, key: str, source: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SchemaError(f"{source}: {key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _float(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise SchemaError(f"{source}: {key} must be a number in (0, 1], got {value!r}")
    return float(value)
