"""The store's SQL schema, as numbered migrations applied in order (PRAGMA user_version)."""

from __future__ import annotations

import sqlite3

from linkage_service.audit.chain import AUDIT_DDL

from ._sql import transaction

__all__ = ["MIGRATIONS", "migrate"]

_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE batches (
        batch_id INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        record_count INTEGER NOT NULL,
        accepted INTEGER NOT NULL,
        receipt TEXT NOT NULL,
        committed_at TEXT NOT NULL,
        UNIQUE (agency, idempotency_key))""",
    """CREATE TABLE records (
        key INTEGER PRIMARY KEY,
        agency TEXT NOT NULL,
        ref TEXT NOT NULL,
        batch_id INTEGER NOT NULL REFERENCES batches (batch_id),
        bits BLOB NOT NULL,
        identifiers BLOB NOT NULL,
        component INTEGER NOT NULL,
        withdrawn_at TEXT)""",
    # one active record per (agency, reference); a withdrawn reference may be submitted again
    """CREATE UNIQUE INDEX records_active_ref ON records (agency, ref)
        WHERE withdrawn_at IS NULL""",
    # matching work in commit order: a batch to match, or withdrawn keys to take out
    """CREATE TABLE work (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('batch', 'withdrawal')),
        batch_id INTEGER,
        keys TEXT,
        done_at TEXT)""",
    "CREATE INDEX work_pending ON work (seq) WHERE done_at IS NULL",
    """CREATE TABLE links (
        key_a INTEGER NOT NULL,
        key_b INTEGER NOT NULL,
        decision INTEGER NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (key_a, key_b)) WITHOUT ROWID""",
    "CREATE INDEX links_b ON links (key_b)",
    """CREATE TABLE alerts (
        alert_id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        band TEXT NOT NULL,
        body TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX alerts_updated ON alerts (updated_at)",
    # the keys of open alerts, to find the alerts a re-solved region touches
    """CREATE TABLE alert_keys (
        key INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL)""",
    # every released version, in release order: the coordinators' stream and its cursor
    """CREATE TABLE alert_events (
        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (alert_id, version))""",
    *AUDIT_DDL,
)

# v2: the digest of a batch's content, so a reused idempotency key with other content is refused
_V2 = ("ALTER TABLE batches ADD COLUMN content_sha256 TEXT NOT NULL DEFAULT ''",)

# v3: releasing an alert version replaces that alert's keys; without an index on alert_id every
# release scanned every open alert's keys (milliseconds per alert at a million records)
_V3 = ("CREATE INDEX alert_keys_alert ON alert_keys (alert_id)",)

# v4: the matcher loads each batch's records by batch id (a full scan took ~85 ms at 1M records)
_V4 = ("CREATE INDEX records_batch ON records (batch_id)",)

# v5: the Dice edges each piece of matching work found, one row per work item (three packed
# arrays), so a restart restores them instead of comparing every component's records again
# (minutes for a component of 200,000 records). A store that already did work without keeping
# them is not marked complete, and its index finds the edges again as before.
_V5 = (
    """CREATE TABLE edges (
        seq INTEGER PRIMARY KEY REFERENCES work (seq),
        key_u BLOB NOT NULL,
        key_v BLOB NOT NULL,
        common BLOB NOT NULL)""",
    "INSERT INTO meta SELECT 'edges_complete', '1' WHERE NOT EXISTS (SELECT 1 FROM work)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database has not seen; returns the schema version reached."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > len(MIGRATIONS):
        raise sqlite3.DatabaseError(
            f"the store is at schema version {current}, newer than this program "
            f"({len(MIGRATIONS)}): upgrade the program"
        )
    for version in range(current, len(MIGRATIONS)):
        with transaction(conn):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
    return len(MIGRATIONS)
