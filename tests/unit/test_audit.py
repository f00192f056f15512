"""The audit hash chain on a real SQLite file in WAL mode: every tampering is found, by seq."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage_service.audit.chain import (
    AUDIT_DDL,
    GENESIS,
    append,
    entry_hash,
    export,
    verify,
    verify_export,
)
from linkage_service.audit.errors import AuditError

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def open_db(directory: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(directory / "linkage.sqlite3", isolation_level=None)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.execute("PRAGMA synchronous=FULL")
    for statement in AUDIT_DDL:
        conn.execute(statement)
    return conn


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = open_db(tmp_path)
    yield db
    db.close()


def add(conn: sqlite3.Connection, details: list[dict[str, object]], actor: str = "alice") -> None:
    """Append one entry per detail, one transaction each (as the store does)."""
    for i, detail in enumerate(details):
        conn.execute("BEGIN IMMEDIATE")
        append(conn, actor, f"action {i}", detail, T0 + timedelta(seconds=i))
        conn.execute("COMMIT")


def filled(conn: sqlite3.Connection, n: int = 10) -> sqlite3.Connection:
    add(conn, [{"i": i, "note": f"entry {i + 1}"} for i in range(n)])
    return conn


def row(conn: sqlite3.Connection, seq: int) -> tuple:
    return conn.execute("SELECT * FROM audit WHERE seq = ?", (seq,)).fetchone()


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    return tuple(conn.execute("SELECT seq, hash FROM audit_head").fetchone())


# -- tamperings, as someone with write access to the file would do them ------------------------


def edit_detail(conn: sqlite3.Connection, k: int) -> None:
    old = row(conn, k)[4]
    conn.execute("UPDATE audit SET detail = ? WHERE seq = ?", (f'{{"forged":{old}}}', k))


def edit_actor(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("UPDATE audit SET actor = actor || 'x' WHERE seq = ?", (k,))


def delete(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("DELETE FROM audit WHERE seq = ?", (k,))


def swap(conn: sqlite3.Connection, a: int, b: int) -> None:
    """Exchange everything but seq between two entries (reordering them)."""
    ra, rb = row(conn, a), row(conn, b)
    sql = "UPDATE audit SET at=?, actor=?, action=?, detail=?, prev_hash=?, hash=? WHERE seq=?"
    conn.execute(sql, (*rb[1:], a))
    conn.execute(sql, (*ra[1:], b))


def truncate(conn: sqlite3.Connection, k: int) -> None:
    conn.execute("DELETE FROM audit WHERE seq >= ?", (k,))


def truncate_and_rewind(conn: sqlite3.Connection, k: int) -> None:
    truncate(conn, k)
    prev = GENESIS if k == 1 else row(conn, k - 1)[6]
    conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (k - 1, prev))


def rewrite(conn: sqlite3.Connection, k: int) -> None:
    """Edit an entry and recompute its own hash (but not the later ones')."""
    edit_actor(conn, k)
    seq, at, actor, action, detail, prev, _ = row(conn, k)
    digest = entry_hash(seq, at, actor, action, detail, prev)
    conn.execute("UPDATE audit SET hash = ? WHERE seq = ?", (digest, k))


def insert_forged(conn: sqlite3.Connection, k: int) -> None:
    """A self-consistent entry put after entry k, later entries renumbered to make room."""
    conn.execute("UPDATE audit SET seq = -seq WHERE seq > ?", (k,))
    conn.execute("UPDATE audit SET seq = 1 - seq WHERE seq < 0")
    prev = GENESIS if k == 0 else row(conn, k)[6]
    at, detail = T0.isoformat(timespec="microseconds"), '{"forged":true}'
    digest = entry_hash(k + 1, at, "mallory", "forged", detail, prev)
    conn.execute(
        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
        (k + 1, at, "mallory", "forged", detail, prev, digest),
    )


# -- round trip --------------------------------------------------------------------------------


def test_append_then_verify_round_trip(conn):
    add(conn, [{"b": 2, "a": "Zoë"}, {}, {"nested": {"list": [1, 2.5, None, True]}}], "Zoë O'Brien")
    entries = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    assert [e[0] for e in entries] == [1, 2, 3]
    assert all(ISO_UTC.fullmatch(e[1]) for e in entries)
    assert entries[0][4] == '{"a":"Zoë","b":2}'  # canonical: sorted, compact, not escaped
    assert entries[0][5] == GENESIS and entries[1][5] == entries[0][6]
    assert entries[2][5] == entries[1][6]
    result = verify(conn)
    assert result.ok and result.problem is None and result.first_bad_seq is None
    assert (result.entries, result.head_seq, result.head_hash) == (3, 3, entries[2][6])
    assert head(conn) == (3, entries[2][6])


def test_append_returns_the_stored_entry_and_converts_time_to_utc(conn):
    conn.execute("BEGIN IMMEDIATE")
    local = datetime(2025, 3, 1, 10, 30, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    entry = append(conn, "bob", "alert released", {"alert_id": "A-1"}, local)
    conn.execute("COMMIT")
    assert entry.at == "2025-03-01T09:30:00.000005+00:00"
    stored = (1, entry.at, "bob", "alert released", entry.detail, GENESIS, entry.hash)
    assert tuple(row(conn, 1)) == stored
    assert json.loads(entry.detail) == {"alert_id": "A-1"}


def test_an_empty_log_verifies(conn):
    result = verify(conn)
    assert result.ok and (result.entries, result.head_seq, result.head_hash) == (0, 0, GENESIS)


def test_hash_encoding_is_the_documented_canonical_json():
    args = (7, "2025-03-01T09:30:00.000000+00:00", "Zoë", 'look"up', '{"a":1}', GENESIS)
    text = json.dumps(["mash-linkage/audit/v1", *args], ensure_ascii=False, separators=(",", ":"))
    assert entry_hash(*args) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    # shifting a field boundary changes the hash
    assert entry_hash(1, "t", "ab", "c", "{}", GENESIS) != entry_hash(
        1, "t", "a", "bc", "{}", GENESIS
    )


def test_append_runs_inside_the_callers_transaction(conn):
    with pytest.raises(AuditError, match="inside the caller's transaction"):
        append(conn, "alice", "x", {})
    conn.execute("BEGIN IMMEDIATE")
    append(conn, "alice", "x", {})
    conn.execute("ROLLBACK")  # the caller's rollback takes the entry and the head with it
    assert verify(conn).entries == 0 and conn.execute("SELECT * FROM audit_head").fetchall() == []


@pytest.mark.parametrize(
    ("actor", "action", "detail", "at", "message"),
    [
        ("", "x", {}, None, "actor must be a non-empty string"),
        ("  ", "x", {}, None, "actor must be a non-empty string"),
        ("a" * 201, "x", {}, None, "201 characters"),
        ("alice", "line\nbreak", {}, None, "unprintable"),
        ("alice", "x", {"t": datetime.now(UTC)}, None, "cannot be stored as JSON"),
        ("alice", "x", {"v": float("nan")}, None, "cannot be stored as JSON"),
        ("alice", "x", {"s": "\udc80"}, None, "cannot be stored as JSON"),
        ("alice", "x", {1: "a", "1": "b"}, None, "cannot be stored as JSON"),
        ("alice", "x", ["not", "a", "mapping"], None, "must be a mapping"),
        ("alice", "x", {}, datetime(2025, 1, 1), "timezone-aware"),
    ],
)
def test_append_rejects_bad_input(conn, actor, action, detail, at, message):
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(AuditError, match=message):
        append(conn, actor, action, detail, at)
    conn.execute("ROLLBACK")


def test_append_refuses_a_log_whose_head_does_not_match(conn):
    truncate(filled(conn, 3), 3)
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(AuditError, match="refusing to append"):
        append(conn, "alice", "x", {})
    conn.execute("ROLLBACK")


# -- each tampering, and where it is found ----------------------------------------------------

TAMPERINGS: list[tuple[str, Callable[[sqlite3.Connection], object], int, str]] = [
    ("edit detail", lambda c: edit_detail(c, 4), 4, "entry 4: hash does not match its contents"),
    ("edit actor", lambda c: edit_actor(c, 7), 7, "entry 7: hash does not match its contents"),
    ("edit first", lambda c: edit_actor(c, 1), 1, "entry 1: hash does not match"),
    ("delete middle", lambda c: delete(c, 5), 5, "entry 5 missing: after entry 4 comes entry 6"),
    ("delete first", lambda c: delete(c, 1), 1, "entry 1 missing: the log starts with entry 2"),
    ("delete two", lambda c: c.execute("DELETE FROM audit WHERE seq IN (5, 6)"), 5, "entries 5-6"),
    ("swap", lambda c: swap(c, 3, 8), 3, "entry 3: prev_hash does not match the hash of entry 2"),
    ("swap adjacent", lambda c: swap(c, 6, 7), 6, "entry 6: prev_hash does not match"),
    ("truncate tail", lambda c: truncate(c, 8), 8, "entries 8-10 missing: the head records"),
    ("delete last", lambda c: delete(c, 10), 10, "entry 10 missing: the head records entry 10"),
    ("truncate all", lambda c: truncate(c, 1), 1, "but the log is empty"),
    ("head past end", lambda c: c.execute("UPDATE audit_head SET seq = 12"), 11, "entries 11-12"),
    ("insert middle", lambda c: insert_forged(c, 4), 5, "entry 5: entry 6 links past it"),
    ("insert first", lambda c: insert_forged(c, 0), 1, "entry 1: entry 2 links past it"),
    ("append past head", lambda c: insert_forged(c, 10), 11, "entry 11 is after the audit head"),
    ("rewrite last", lambda c: rewrite(c, 10), 10, "entry 10: hash does not match the audit head"),
    # a consistently rewritten entry shows at the next one, whose link to it broke
    ("rewrite middle", lambda c: rewrite(c, 4), 5, "entry 5: prev_hash does not match"),
    (
        "forge head",
        lambda c: c.execute("UPDATE audit_head SET hash = ?", ("ab" * 32,)),
        10,
        "entry 10: hash does not match the audit head",
    ),
    (
        "invalid utf-8",
        lambda c: c.execute("UPDATE audit SET actor = CAST(x'ff' AS TEXT) WHERE seq = 2"),
        2,
        "entry 2: actor is not valid UTF-8",
    ),
    (
        "non-canonical detail",
        lambda c: c.execute("UPDATE audit SET detail = '{\"i\": 2}' WHERE seq = 3"),
        3,
        "entry 3: detail is not the canonical JSON",
    ),
    (
        "blob hash",
        lambda c: c.execute("UPDATE audit SET hash = x'00' WHERE seq = 9"),
        9,
        "entry 9: hash does not match",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "message"), [t[1:] for t in TAMPERINGS], ids=[t[0] for t in TAMPERINGS]
)
def test_each_tampering_is_found_at_its_entry(conn, tamper, bad_seq, message):
    filled(conn)
    assert verify(conn).ok
    original_head = head(conn)[1]
    tamper(conn)
    for result in (verify(conn), verify(conn, expect_head=original_head)):
        assert not result.ok
        assert result.first_bad_seq == bad_seq, result.problem
        assert message in result.problem


def test_a_consistently_rewound_head_is_found_only_against_a_noted_head(conn):
    filled(conn)
    noted = head(conn)[1]
    truncate_and_rewind(conn, 7)
    assert verify(conn).ok  # indistinguishable from a log that only ever had 6 entries
    result = verify(conn, expect_head=noted)
    assert not result.ok and result.first_bad_seq == 7
    assert "entry 7 onwards missing: the expected head" in result.problem


def test_expect_head_may_be_any_earlier_head(conn):
    filled(conn, 5)
    third = row(conn, 3)[6]
    filled(conn, 5)
    assert verify(conn, expect_head=third.upper()).ok
    assert verify(conn, expect_head=GENESIS).ok
    assert not verify(conn, expect_head="ab" * 32).ok
    with pytest.raises(AuditError, match="not a SHA-256 hash"):
        verify(conn, expect_head="abc")


def test_a_missing_head_is_reported(conn):
    filled(conn, 3).execute("DELETE FROM audit_head")
    result = verify(conn)
    assert not result.ok and result.first_bad_seq is None and "head is missing" in result.problem
    conn.execute("DROP TABLE audit_head")
    assert "audit_head table is missing" in verify(conn).problem


def test_no_audit_table_is_an_error(tmp_path):
    db = sqlite3.connect(tmp_path / "other.sqlite3")
    with pytest.raises(AuditError, match="no audit table"):
        verify(db)
    db.close()


def test_verify_inside_the_callers_transaction_leaves_it_open(conn):
    filled(conn, 3)
    conn.execute("BEGIN")
    assert verify(conn).ok and conn.in_transaction
    conn.execute("COMMIT")
    assert verify(conn).ok and not conn.in_transaction


def test_verify_streams_a_large_log(conn):
    n = 50_000
    prev, rows = GENESIS, []
    for seq in range(1, n + 1):
        digest = entry_hash(seq, "2025-03-01T09:30:00.000000+00:00", "svc", "x", "{}", prev)
        rows.append((seq, "2025-03-01T09:30:00.000000+00:00", "svc", "x", "{}", prev, digest))
        prev = digest
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO audit_head VALUES (1, ?, ?)", (n, prev))
    conn.execute("COMMIT")
    result = verify(conn)
    assert result.ok and result.entries == n and result.head_hash == prev


# -- export ------------------------------------------------------------------------------------


def exported(conn: sqlite3.Connection) -> list[str]:
    out = io.StringIO()
    count = export(conn, out)
    lines = out.getvalue().splitlines()
    assert count == len(lines)
    return lines


def test_export_round_trip(conn):
    add(conn, [{"who": "Zoë\u2028", "n": 1}, {"list": [1, 2]}, {}], "Zoë")
    lines = exported(conn)
    assert all(line.isascii() for line in lines)  # safe to split on any line break
    first = json.loads(lines[0])
    assert list(first) == ["seq", "at", "actor", "action", "detail", "prev_hash", "hash"]
    assert first["detail"] == {"who": "Zoë\u2028", "n": 1} and first["actor"] == "Zoë"
    result = verify_export(lines)
    assert result == verify(conn)
    assert verify_export([]).ok and verify_export(["", "\n"]).entries == 0


def edit_line(lines: list[str], i: int, **changes: object) -> list[str]:
    record = json.loads(lines[i])
    record.update(changes)
    return [*lines[:i], json.dumps(record), *lines[i + 1 :]]


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "message"),
    [
        (lambda ls: edit_line(ls, 2, detail={"i": 99}), 3, "entry 3: hash does not match"),
        (lambda ls: edit_line(ls, 0, actor="mallory"), 1, "entry 1: hash does not match"),
        (lambda ls: ls[:3] + ls[4:], 4, "entry 4 missing: after entry 3 comes entry 5"),
        (lambda ls: [ls[1], ls[0], *ls[2:]], 1, "entry 1 missing: the log starts with entry 2"),
        (lambda ls: edit_line(ls, 1, detail="{}"), 2, "detail is not a JSON object"),
        (lambda ls: edit_line(ls, 1, extra=1), 2, "is not an audit entry"),
        (lambda ls: [*ls[:2], "{not json", *ls[3:]], 3, "line 3 is not valid JSON"),
        (lambda ls: [*ls[:2], ls[2][:-1] + ',"actor":"x"}', *ls[3:]], 3, "duplicate key"),
        (lambda ls: [*ls[:2], ls[2].replace('"seq":3', '"seq":"3"'), *ls[3:]], 3, "integer"),
    ],
    ids=["detail", "actor", "dropped", "reordered", "str detail", "extra", "garbage", "dup", "seq"],
)
def test_a_tampered_export_is_found(conn, tamper, bad_seq, message):
    lines = exported(filled(conn, 6))
    result = verify_export(tamper(lines))
    assert not result.ok and result.first_bad_seq == bad_seq, result.problem
    assert message in result.problem


def test_a_cut_export_is_found_against_a_noted_head(conn):
    lines = exported(filled(conn, 6))
    noted = verify(conn).head_hash
    assert verify_export(lines[:4]).ok
    result = verify_export(lines[:4], expect_head=noted)
    assert not result.ok and result.first_bad_seq == 5


def test_export_keeps_a_damaged_detail_for_the_auditor(conn):
    filled(conn, 3).execute("UPDATE audit SET detail = '{broken' WHERE seq = 2")
    lines = exported(conn)
    assert json.loads(lines[1])["detail"] == "{broken"
    result = verify_export(lines)
    assert not result.ok and result.first_bad_seq == 2
    assert verify(conn).first_bad_seq == 2


# -- property: any one tampering of any log is found at its entry ------------------------------

NAMES = st.from_regex(r"[a-zA-Z][a-zA-Z0-9 .@:-]{0,20}", fullmatch=True)
JSON_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8)
JSON_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    JSON_TEXT,
    st.lists(st.integers(), max_size=3),
)
DETAILS = st.dictionaries(JSON_TEXT, JSON_VALUE, max_size=4)
KINDS = ["none", "detail", "actor", "delete", "swap", "truncate", "rewind", "insert"]


@settings(max_examples=150, deadline=None)
@given(
    entries=st.lists(st.tuples(NAMES, NAMES, DETAILS), min_size=1, max_size=12),
    kind=st.sampled_from(KINDS),
    data=st.data(),
)
def test_any_single_tampering_is_found(tmp_path_factory, entries, kind, data):
    conn = open_db(tmp_path_factory.mktemp("audit"))
    try:
        for i, (actor, action, detail) in enumerate(entries):
            conn.execute("BEGIN IMMEDIATE")
            append(conn, actor, action, detail, T0 + timedelta(milliseconds=i))
            conn.execute("COMMIT")
        n, noted = len(entries), head(conn)[1]
        bad = tamper_randomly(conn, n, kind, data.draw)
        result, against_noted = verify(conn), verify(conn, expect_head=noted)
        assert result.ok is (bad is None or kind == "rewind"), result.problem
        assert against_noted.first_bad_seq == bad, against_noted.problem
        assert against_noted.ok is (bad is None)
        if not (kind == "insert" and bad == n + 1):  # an export has no head to be behind
            assert verify_export(exported(conn), noted).first_bad_seq == bad
    finally:
        conn.close()


TAMPER_AT: dict[str, Callable[[sqlite3.Connection, int], None]] = {
    "detail": edit_detail,
    "actor": edit_actor,
    "delete": delete,
    "swap": delete,  # a log of one entry has nothing to swap
    "truncate": truncate,
    "rewind": truncate_and_rewind,
}


def tamper_randomly(conn: sqlite3.Connection, n: int, kind: str, draw) -> int | None:
    """Apply one tampering of the given kind; the seq verify must report."""
    if kind == "none":
        return None
    if kind == "swap" and n >= 2:
        a, b = sorted(draw(st.lists(st.integers(1, n), min_size=2, max_size=2, unique=True)))
        swap(conn, a, b)
        return a
    if kind == "insert":
        k = draw(st.integers(0, n))
        insert_forged(conn, k)
        return k + 1
    k = draw(st.integers(1, n))
    TAMPER_AT[kind](conn, k)
    return k
