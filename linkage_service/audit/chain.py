"""The audit log: an append-only SHA-256 hash chain in the service's SQLite database.

Each entry's hash covers its seq, time, actor, action, detail and the previous entry's hash;
`audit_head` records the last entry and moves in the same transaction as each append. `verify`
detects an edited, deleted, reordered or inserted entry, a cut tail and a head that does not
match the log. There is no key: whoever can write the database can rebuild the whole chain and
head consistently (or cut the tail and rewind the head); a head hash noted earlier
(`expect_head`) detects that, so auditors keep the head that `verify` reports.

Hash: SHA-256 hex of the UTF-8 bytes of json.dumps(["mash-linkage/audit/v1", seq, at, actor,
action, detail, prev_hash], ensure_ascii=False, separators=(",", ":")), seq a JSON integer, the
rest JSON strings, `detail` the stored canonical JSON text (sort_keys=True, same separators,
ensure_ascii=False). Every value is quoted and escaped, so no field boundary can shift.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, cast

from .errors import AuditError

__all__ = ["AUDIT_DDL", "GENESIS", "AuditEntry", "VerifyResult", "append", "entry_hash"]
__all__ += ["export", "verify", "verify_export"]

AUDIT_DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, "
    "actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "seq INTEGER NOT NULL, hash TEXT NOT NULL)",
)
GENESIS = "0" * 64
HASH_VERSION = "mash-linkage/audit/v1"
MAX_NAME = 200
_FIELDS = ("seq", "at", "actor", "action", "detail", "prev_hash", "hash")
_INSERT = f"INSERT INTO audit ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
# CAST AS BLOB: text that is not valid UTF-8 (written by a forger) is reported, not a crash.
_SELECT = f"SELECT seq, {', '.join(f'CAST({f} AS BLOB)' for f in _FIELDS[1:])} FROM audit"
_Problem = tuple[int | None, str]  # (first bad seq, message)
_Row = tuple[object, ...]  # one entry as read, in _FIELDS order, types not yet checked


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str  # ISO-8601 UTC with microseconds
    actor: str
    action: str
    detail: str  # canonical JSON text of the detail object
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # entries read and found consistent before any problem
    head_seq: int | None  # what the head records (export: its last entry); None if unusable
    head_hash: str | None
    first_bad_seq: int | None = None  # None if the problem is no one entry's (e.g. no head)
    problem: str | None = None


def entry_hash(seq: int, at: str, actor: str, action: str, detail: str, prev_hash: str) -> str:
    text = _HASH_JSON.encode([HASH_VERSION, seq, at, actor, action, detail, prev_hash])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    detail: Mapping[str, object],
    at: datetime | None = None,
) -> AuditEntry:
    """Add an entry and move the head inside the caller's open transaction (never commits)."""
    _check_name("actor", actor)
    _check_name("action", action)
    detail_text, stamp = _detail_text(detail), _timestamp(at)
    if not conn.in_transaction:
        raise AuditError("audit append must run inside the caller's transaction (BEGIN first)")
    head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    head, last = tuple(head or (0, GENESIS)), tuple(last or (0, GENESIS))
    if head != last:
        raise AuditError(
            f"the audit head (entry {head[0]}) does not match the last entry ({last[0]}); "
            "refusing to append to a damaged log: run `linkage audit verify`"
        )
    seq, prev = int(head[0]) + 1, str(head[1])
    digest = entry_hash(seq, stamp, actor, action, detail_text, prev)
    entry = AuditEntry(seq, stamp, actor, action, detail_text, prev, digest)
    conn.execute(_INSERT, (seq, stamp, actor, action, detail_text, prev, digest))
    conn.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, digest),
    )
    return entry


def verify(conn: sqlite3.Connection, expect_head: str | None = None) -> VerifyResult:
    """Check every entry (streamed in seq order) and the head."""
    chain = _Chain(_check_expect(expect_head))
    with _snapshot(conn):
        has_head_table, head = _read_head(conn)
        chain.head_seq = head[0] if head else None
        with closing(_db_rows(conn)) as rows:
            for row in rows:
                if bad := chain.step(row):
                    return chain.result(head, bad)
    if not has_head_table:
        return chain.result(None, (None, "the audit_head table is missing (dropped?)"))
    return chain.result(head, _head_problem(chain, head) or chain.expect_problem())


def export(conn: sqlite3.Connection, out: IO[str]) -> int:
    """Write each entry as one JSON object (ASCII) per line, detail as an object; the count."""
    count = 0
    with _snapshot(conn):
        _read_head(conn)  # raises if there is no audit table
        with closing(_db_rows(conn)) as rows:
            for row in rows:
                record = dict(zip(_FIELDS, row, strict=True))
                record["detail"] = _parse_detail(record["detail"])
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
                count += 1
    return count


def verify_export(lines: Iterable[str], expect_head: str | None = None) -> VerifyResult:
    """Check an export on its own; without the database's head, a cut tail is detected only
    against a head hash noted earlier (`expect_head`)."""
    chain = _Chain(_check_expect(expect_head))
    bad: _Problem | None = None
    for number, line in enumerate(lines, 1):
        if line.strip() and (bad := chain.step(_parse_line(number, line))):
            break
    bad = bad or chain.expect_problem()
    return VerifyResult(bad is None, chain.entries, chain.last_seq, chain.last_hash, *bad or ())


class _Chain:
    """Checks entries one at a time in seq order, remembering only the last two hashes."""

    def __init__(self, expect: str | None) -> None:
        self.expect, self.found = expect, expect in (None, GENESIS)
        self.head_seq: object = None
        self.entries = self.last_seq = 0
        self.last_hash = self.hash_at_head = GENESIS
        self.before_last = ""

    def step(self, row: _Row | str) -> _Problem | None:
        n = self.last_seq + 1
        if isinstance(row, str):
            return n, f"entry {n}: {row}"
        if type(row[0]) is not int:
            return n, f"entry {n}: seq {row[0]!r} is not an integer (forged?)"
        if row[0] != n:
            return _misplaced(row[0], n)
        entry = _as_entry(n, row)
        if isinstance(entry, str):
            return n, f"entry {n}: {entry} (edited?)"
        if (prev := entry.prev_hash) != self.last_hash:
            return self._unlinked(n, prev)
        if entry_hash(n, entry.at, entry.actor, entry.action, entry.detail, prev) != entry.hash:
            return n, f"entry {n}: hash does not match its contents (edited?)"
        self.before_last, self.last_hash, self.last_seq = self.last_hash, entry.hash, n
        self.entries += 1
        self.hash_at_head = entry.hash if n == self.head_seq else self.hash_at_head
        self.found = self.found or entry.hash == self.expect
        return None

    def _unlinked(self, n: int, prev_hash: str) -> _Problem:
        if n == 1:
            return 1, "entry 1: prev_hash is not the genesis hash (forged?)"
        if prev_hash == self.before_last:
            return n - 1, f"entry {n - 1}: entry {n} links past it to entry {n - 2} (inserted?)"
        return n, (
            f"entry {n}: prev_hash does not match the hash of entry {n - 1} "
            "(reordered, or entries deleted and renumbered?)"
        )

    def expect_problem(self) -> _Problem | None:
        if self.found:
            return None
        end = self.last_seq
        return end + 1, (
            f"entry {end + 1} onwards missing: the expected head {self.expect} is not in the "
            f"log, which ends at entry {end} (tail cut and head rewound, or log rewritten?)"
        )

    def result(self, head: tuple[object, object] | None, bad: _Problem | None) -> VerifyResult:
        seq, digest = head if head else (0, GENESIS) if bad is None else (None, None)
        if type(seq) is not int or not isinstance(digest, str):
            seq, digest = None, None
        return VerifyResult(bad is None, self.entries, seq, digest, *bad or ())


def _misplaced(seq: int, n: int) -> _Problem:
    if seq < n:  # only a first entry numbered 0 or below
        return seq, f"entry {seq}: sequence numbers start at 1 (forged?)"
    missing = f"entry {n}" if seq == n + 1 else f"entries {n}-{seq - 1}"
    where = "the log starts with" if n == 1 else f"after entry {n - 1} comes"
    return n, f"{missing} missing: {where} entry {seq} (deleted?)"


def _head_problem(chain: _Chain, head: tuple[object, object] | None) -> _Problem | None:
    last = chain.last_seq
    if head is None:
        return None if last == 0 else (None, f"the audit head is missing but {last} entries exist")
    seq, digest = head
    if type(seq) is not int or seq < 0 or (seq == 0 and digest != GENESIS):
        return None, "the audit head is malformed (edited?)"
    if seq > last:
        gone = f"entry {seq}" if seq == last + 1 else f"entries {last + 1}-{seq}"
        end = f"ends at entry {last}" if last else "is empty"
        return last + 1, f"{gone} missing: the head records entry {seq} but the log {end} (cut?)"
    if chain.hash_at_head != digest:
        return seq, f"entry {seq}: hash does not match the audit head (rewritten?)"
    if seq < last:
        return seq + 1, f"entry {seq + 1} is after the audit head: added without moving it?"
    return None


def _as_entry(seq: int, row: _Row) -> AuditEntry | str:
    for name, value in zip(_FIELDS[1:], row[1:], strict=True):
        if not isinstance(value, str):
            return f"{name} is not text"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # surrogates stand for bytes that are not UTF-8
            return f"{name} is not valid UTF-8 text"
    entry = AuditEntry(seq, *cast("tuple[str, ...]", row[1:]))
    parsed = _parse_detail(entry.detail)
    if not isinstance(parsed, dict) or _canonical(parsed) != entry.detail:
        return "detail is not the canonical JSON of an object"
    return entry


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise AuditError(f"audit {what} must be a non-empty string")
    if len(value) > MAX_NAME:
        raise AuditError(f"audit {what} is {len(value)} characters; at most {MAX_NAME} allowed")
    if not value.isprintable():
        raise AuditError(f"audit {what} {value!r} contains unprintable characters")


def _detail_text(detail: Mapping[str, object]) -> str:
    if not isinstance(detail, Mapping):
        raise AuditError(f"audit detail must be a mapping, not {type(detail).__name__}")
    try:
        text = _canonical(dict(detail))
        text.encode("utf-8")
        same = _canonical(_strict_loads(text)) == text
    except (TypeError, ValueError, RecursionError) as e:
        raise AuditError(f"audit detail cannot be stored as JSON: {e}") from e
    if not same:
        raise AuditError("audit detail does not survive a JSON round trip (non-string keys?)")
    return text


def _timestamp(at: datetime | None) -> str:
    at = datetime.now(UTC) if at is None else at
    if at.utcoffset() is None:
        raise AuditError("audit time must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(value: object) -> str:
    return _CANONICAL_JSON.encode(value)


def _unique_keys(items: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(items)
    if len(found) != len(items):
        raise ValueError("duplicate key in object")
    return found


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_HASH_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# Refuses NaN/Infinity and duplicate keys, on which JSON readers disagree.
_strict_loads = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_not_json).decode


def _parse_detail(detail: object) -> object:
    """The stored detail as an object, or unchanged if it is not valid JSON text."""
    try:
        return _strict_loads(detail) if isinstance(detail, str) else detail
    except (ValueError, RecursionError):
        return detail


def _parse_line(number: int, line: str) -> _Row | str:
    try:
        record = _strict_loads(line)
    except (ValueError, RecursionError) as e:
        return f"line {number} is not valid JSON ({e})"
    if not isinstance(record, dict) or set(record) != set(_FIELDS):
        return f"line {number} is not an audit entry with fields {', '.join(_FIELDS)}"
    if not isinstance(record["detail"], dict):
        return f"line {number}: detail is not a JSON object"
    record["detail"] = _canonical(record["detail"])
    return tuple(record[f] for f in _FIELDS)


def _check_expect(expect_head: str | None) -> str | None:
    digest = None if expect_head is None else expect_head.strip().lower()
    if digest is not None and (len(digest) != 64 or digest.strip("0123456789abcdef")):
        raise AuditError(f"expected head {expect_head!r} is not a SHA-256 hash (64 hex digits)")
    return digest


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One consistent view: the caller's open transaction, or a read transaction of our own."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _read_head(conn: sqlite3.Connection) -> tuple[bool, tuple[object, object] | None]:
    """Whether there is an audit_head table, and its row; raises if there is no audit table."""
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "audit" not in names:
        raise AuditError("the database has no audit table")
    if "audit_head" not in names:
        return False, None
    row = conn.execute("SELECT seq, CAST(hash AS BLOB) FROM audit_head WHERE id = 1").fetchone()
    return True, None if row is None else (row[0], _text(row[1]))


def _db_rows(conn: sqlite3.Connection) -> Generator[_Row, None, None]:
    cursor = conn.execute(_SELECT + " ORDER BY seq")
    try:
        for seq, *texts in cursor:
            yield (seq, *map(_text, texts))
    finally:
        cursor.close()


def _text(value: object) -> object:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
