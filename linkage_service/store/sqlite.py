"""The embedded store: SQLite in WAL mode with synchronous commits.

A method returns only after its transaction is committed and synced, so an acknowledged batch,
withdrawal, alert or audit entry survives a crash of the process (``synchronous=FULL``). One
connection is shared under a lock: SQLite allows one writer at a time anyway, and the service's
writes are few and large (a batch is one transaction).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from linkage_service.audit.chain import append as audit_append

from ._edges import load_edges, save_edges
from ._sql import transaction
from .errors import IdempotencyConflict, StoreError
from .model import AlertVersion, IncomingBatch, Receipt, StoredRecords
from .serial import alert_from_json, alert_to_json, receipt_from_json, receipt_to_json

__all__ = ["DB_NAME", "SqliteStore"]

DB_NAME = "linkage.sqlite3"
_IN_CHUNK = 900  # bound on host parameters per IN (...) query


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(values: Sequence[object], size: int = _IN_CHUNK) -> Iterator[Sequence[object]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class SqliteStore:
    """The durable state of one service instance; see :mod:`linkage_service.store.base`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn, self.path = conn, path
        self._lock = threading.RLock()

    @classmethod
    def open(cls, data_dir: Path) -> SqliteStore:
        from .migrations import migrate

        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            path = data_dir / DB_NAME
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the store in {data_dir}: {e}") from e
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- meta and audit ---------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def set_meta_audited(
        self, key: str, value: str, actor: str, action: str, detail: dict[str, object]
    ) -> None:
        """Set a meta value and record it in the audit log, in one transaction."""
        with self._lock, transaction(self._conn):
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            audit_append(self._conn, actor, action, detail)

    def audit(self, actor: str, action: str, detail: dict[str, object]) -> None:
        with self._lock, transaction(self._conn):
            audit_append(self._conn, actor, action, detail)

    # -- batches ----------------------------------------------------------------------------

    def submit(self, batch: IncomingBatch, actor: str) -> Receipt:
        """Commit the batch (or return the original receipt for a repeated idempotency key).
        References the agency already holds are rejected in the receipt, not stored."""
        h = batch.header
        with self._lock, transaction(self._conn):
            row = self._conn.execute(
                "SELECT receipt, content_sha256 FROM batches "
                "WHERE agency = ? AND idempotency_key = ?",
                (h.agency, h.idempotency_key),
            ).fetchone()
            if row is not None and row[1] != batch.content_sha256:
                raise IdempotencyConflict(
                    f"idempotency key {h.idempotency_key!r} was used for a different batch "
                    "(other content); choose a new key for new content"
                )
            if row is not None:
                audit_append(
                    self._conn, actor, "batch replayed", {"idempotency_key": h.idempotency_key}
                )
                return receipt_from_json(row[0], replayed=True)
            held = self._held_refs(h.agency, batch.refs)
            keep = [i for i, ref in enumerate(batch.refs) if ref not in held]
            rejected = tuple(
                (ref, "reference already held: withdraw it first to replace it")
                for ref in batch.refs
                if ref in held
            )
            return self._insert_batch(batch, keep, rejected, actor)

    def _held_refs(self, agency: str, refs: Sequence[str]) -> set[str]:
        held: set[str] = set()
        for part in _chunks(refs):
            marks = ",".join("?" * len(part))
            held.update(
                r[0]
                for r in self._conn.execute(
                    f"SELECT ref FROM records WHERE agency = ? AND withdrawn_at IS NULL "
                    f"AND ref IN ({marks})",
                    (agency, *part),
                )
            )
        return held

    def _insert_batch(
        self,
        batch: IncomingBatch,
        keep: list[int],
        rejected: tuple[tuple[str, str], ...],
        actor: str,
    ) -> Receipt:
        h, at = batch.header, _now()
        cur = self._conn.execute(
            "INSERT INTO batches (agency, idempotency_key, record_count, accepted, receipt, "
            "committed_at, content_sha256) VALUES (?, ?, ?, ?, '', ?, ?)",
            (
                h.agency,
                h.idempotency_key,
                h.record_count,
                len(keep),
                at.isoformat(),
                batch.content_sha256,
            ),
        )
        batch_id = int(cur.lastrowid or 0)
        receipt = Receipt(batch_id, h.agency, h.idempotency_key, len(keep), rejected, at)
        self._conn.execute(
            "UPDATE batches SET receipt = ? WHERE batch_id = ?",
            (receipt_to_json(receipt), batch_id),
        )
        first = self._next_key()
        bits, ids = batch.bits, np.ascontiguousarray(batch.identifiers, dtype="<u8")
        self._conn.executemany(
            "INSERT INTO records (key, agency, ref, batch_id, bits, identifiers, component) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    first + n,
                    h.agency,
                    batch.refs[i],
                    batch_id,
                    bits[i].tobytes(),
                    ids[i].tobytes(),
                    first + n,
                )
                for n, i in enumerate(keep)
            ),
        )
        self._conn.execute("INSERT INTO work (kind, batch_id) VALUES ('batch', ?)", (batch_id,))
        detail = {
            "batch_id": batch_id,
            "records": h.record_count,
            "accepted": len(keep),
            "rejected": len(rejected),
            "idempotency_key": h.idempotency_key,
        }
        audit_append(self._conn, actor, "batch committed", detail, at)
        return receipt

    def _next_key(self) -> int:
        row = self._conn.execute("SELECT COALESCE(MAX(key), 0) FROM records").fetchone()
        return int(row[0]) + 1

    def batch(self, agency: str, batch_id: int) -> tuple[Receipt, bool] | None:
        """The receipt of one of ``agency``'s batches and whether matching has finished."""
        with self._lock:
            row = self._conn.execute(
                "SELECT b.receipt, w.done_at FROM batches b JOIN work w ON w.batch_id = "
                "b.batch_id AND w.kind = 'batch' WHERE b.batch_id = ? AND b.agency = ?",
                (batch_id, agency),
            ).fetchone()
        return None if row is None else (receipt_from_json(row[0]), row[1] is not None)

    # -- withdrawals ------------------------------------------------------------------------

    def withdraw(
        self, agency: str, refs: Sequence[str], reason: str, actor: str
    ) -> tuple[list[int], list[str]]:
        """(keys withdrawn, references the agency does not hold)."""
        at = _now().isoformat()
        with self._lock, transaction(self._conn):
            found: dict[str, int] = {}
            for part in _chunks(list(dict.fromkeys(refs))):
                marks = ",".join("?" * len(part))
                found.update(
                    self._conn.execute(
                        f"SELECT ref, key FROM records WHERE agency = ? AND withdrawn_at IS NULL "
                        f"AND ref IN ({marks})",
                        (agency, *part),
                    ).fetchall()
                )
            keys = sorted(found.values())
            self._conn.executemany(
                "UPDATE records SET withdrawn_at = ? WHERE key = ?", ((at, k) for k in keys)
            )
            if keys:
                self._conn.execute(
                    "INSERT INTO work (kind, keys) VALUES ('withdrawal', ?)", (json.dumps(keys),)
                )
            missing = [r for r in dict.fromkeys(refs) if r not in found]
            audit_append(
                self._conn,
                actor,
                "records withdrawn",
                {"withdrawn": len(keys), "not_held": len(missing), "reason": reason},
            )
        return keys, missing

    # -- matching state ---------------------------------------------------------------------

    def pending_work(self) -> list[tuple[int, str, int | None, list[int]]]:
        """Unfinished matching work in commit order: (seq, kind, batch id, withdrawn keys)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, kind, batch_id, keys FROM work WHERE done_at IS NULL ORDER BY seq"
            ).fetchall()
        return [(s, k, b, json.loads(keys) if keys else []) for s, k, b, keys in rows]

    def active_records(self, batch_id: int | None = None) -> StoredRecords:
        """Active records in key order; for one batch, all its stored records, withdrawn ones
        included: their withdrawal is later work, which takes them out again."""
        where = "withdrawn_at IS NULL" if batch_id is None else "batch_id = ?"
        args: tuple[object, ...] = () if batch_id is None else (batch_id,)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT key, agency, ref, bits, identifiers FROM records WHERE {where} "
                "ORDER BY key",
                args,
            ).fetchall()
        return _as_records(rows, self.filter_bytes(), self.identifier_width())

    def restorable_records(
        self, pending_batches: Iterable[int], pending_withdrawn: Iterable[int]
    ) -> StoredRecords:
        """What the index held when the last finished work was committed: active records of
        finished batches, plus records whose withdrawal is still pending, in key order."""
        skip = sorted(set(pending_batches))
        back = sorted(set(pending_withdrawn))
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, agency, ref, bits, identifiers, batch_id FROM records "
                "WHERE withdrawn_at IS NULL ORDER BY key"
            ).fetchall()
            extra = []
            for part in _chunks(back):
                marks = ",".join("?" * len(part))
                extra += self._conn.execute(
                    f"SELECT key, agency, ref, bits, identifiers, batch_id FROM records "
                    f"WHERE key IN ({marks})",
                    tuple(part),
                ).fetchall()
        skipped = set(skip)
        kept = sorted((r for r in rows + extra if r[5] not in skipped), key=lambda r: r[0])
        return _as_records(kept, self.filter_bytes(), self.identifier_width())

    def component_labels(self, keys: np.ndarray) -> np.ndarray:
        """int64 component label of each key (as last committed by the matcher)."""
        labels: dict[int, int] = {}
        with self._lock:
            for part in _chunks(keys.tolist()):
                marks = ",".join("?" * len(part))
                labels.update(
                    self._conn.execute(
                        f"SELECT key, component FROM records WHERE key IN ({marks})", tuple(part)
                    ).fetchall()
                )
        return np.fromiter((labels[int(k)] for k in keys), dtype=np.int64, count=len(keys))

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Every saved Dice edge (key_u, key_v, common); None if some work predates them."""
        with self._lock:
            return load_edges(self._conn)

    def links(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(key_a, key_b, decision, score) of the current links, sorted by (key_a, key_b)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_a, key_b, decision, score FROM links ORDER BY key_a, key_b"
            ).fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        return (
            arr[:, 0].astype(np.int64),
            arr[:, 1].astype(np.int64),
            arr[:, 2].astype(np.int8),
            arr[:, 3],
        )

    def refs_of(self, keys: Iterable[int]) -> dict[int, tuple[str, str]]:
        """key -> (agency, reference), withdrawn records included."""
        out: dict[int, tuple[str, str]] = {}
        with self._lock:
            for part in _chunks(sorted(set(keys))):
                marks = ",".join("?" * len(part))
                for key, agency, ref in self._conn.execute(
                    f"SELECT key, agency, ref FROM records WHERE key IN ({marks})", tuple(part)
                ):
                    out[int(key)] = (agency, ref)
        return out

    def filter_bytes(self) -> int:
        return int(self.meta("filter_bits") or 0) // 8

    def identifier_width(self) -> int:
        return len(json.loads(self.meta("identifier_names") or "[]"))

    # -- alerts -----------------------------------------------------------------------------

    def open_alerts_touching(self, keys: Iterable[int]) -> list[AlertVersion]:
        """The current versions of open alerts that hold any of ``keys``."""
        ids: set[str] = set()
        with self._lock:
            for part in _chunks(sorted(set(keys))):
                marks = ",".join("?" * len(part))
                ids.update(
                    r[0]
                    for r in self._conn.execute(
                        f"SELECT alert_id FROM alert_keys WHERE key IN ({marks})", tuple(part)
                    )
                )
            return [self._alert(i) for i in sorted(ids)]

    def next_alert_number(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(number), 0) FROM alerts").fetchone()
        return int(row[0]) + 1

    def finish_work(
        self,
        seq: int,
        region: Sequence[int],
        links: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        components: tuple[np.ndarray, np.ndarray],
        versions: Sequence[AlertVersion],
        actor: str,
        meta: dict[str, str] | None = None,
        edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> list[AlertVersion]:
        """Record one piece of matching work in one transaction: the changed links (every
        link with an end in ``region`` is replaced by ``links``) and component labels, the
        Dice edges it found (key_u, key_v, common bits), the alert versions it released
        (cursors assigned), ``meta`` values the index needs to be restored, done."""
        with self._lock, transaction(self._conn):
            for key, value in (meta or {}).items():
                self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            if edges is not None:
                save_edges(self._conn, seq, edges)
            self._replace_region(region, links, components)
            released = [self._release(v, actor) for v in versions]
            self._conn.execute(
                "UPDATE work SET done_at = ? WHERE seq = ?", (_now().isoformat(), seq)
            )
        return released

    def _replace_region(self, region, links, components) -> None:  # type: ignore[no-untyped-def]
        region_list = [int(k) for k in region]
        for part in _chunks(region_list):
            marks = ",".join("?" * len(part))
            self._conn.execute(
                f"DELETE FROM links WHERE key_a IN ({marks}) OR key_b IN ({marks})",
                (*part, *part),
            )
        key_a, key_b, decision, score = links
        self._conn.executemany(
            "INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?)",
            zip(key_a.tolist(), key_b.tolist(), decision.tolist(), score.tolist(), strict=True),
        )
        keys, labels = components
        self._conn.executemany(
            "UPDATE records SET component = ? WHERE key = ?",
            zip(labels.tolist(), keys.tolist(), strict=True),
        )

    def _release(self, v: AlertVersion, actor: str) -> AlertVersion:
        number = int(v.alert_id.split("-")[-1])
        body = alert_to_json(v)
        self._conn.execute(
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                v.alert_id,
                number,
                v.version,
                v.state,
                v.band,
                body,
                v.opened_at.isoformat(),
                v.updated_at.isoformat(),
            ),
        )
        self._conn.execute("DELETE FROM alert_keys WHERE alert_id = ?", (v.alert_id,))
        if v.state == "open":
            self._conn.executemany(
                "INSERT OR REPLACE INTO alert_keys VALUES (?, ?)",
                ((k, v.alert_id) for k in v.keys),
            )
        cur = self._conn.execute(
            "INSERT INTO alert_events (alert_id, version, body) VALUES (?, ?, ?)",
            (v.alert_id, v.version, body),
        )
        audit_append(
            self._conn,
            actor,
            "alert released",
            {
                "alert_id": v.alert_id,
                "version": v.version,
                "state": v.state,
                "band": v.band,
                "agencies": list(v.agencies),
                "records": len(v.records),
            },
        )
        return alert_from_json(body, cursor=int(cur.lastrowid or 0))

    def _alert(self, alert_id: str) -> AlertVersion:
        row = self._conn.execute(
            "SELECT body FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        if row is None:
            raise KeyError(alert_id)
        return alert_from_json(row[0])

    def alert(self, alert_id: str) -> AlertVersion | None:
        with self._lock:
            try:
                return self._alert(alert_id)
            except KeyError:
                return None

    def alert_events(self, after_cursor: int, limit: int = 500) -> list[AlertVersion]:
        """Released versions with cursor > ``after_cursor``, in cursor order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT cursor, body FROM alert_events WHERE cursor > ? ORDER BY cursor LIMIT ?",
                (after_cursor, limit),
            ).fetchall()
        return [alert_from_json(body, cursor=int(c)) for c, body in rows]

    def list_alerts(
        self,
        state: str | None,
        updated_after: datetime | None,
        updated_before: datetime | None,
        after_number: int,
        limit: int,
    ) -> list[AlertVersion]:
        """Current versions, by alert number, filtered; for paging by number."""
        sql = "SELECT body FROM alerts WHERE number > ?"
        args: list[object] = [after_number]
        if state:
            sql += " AND state = ?"
            args.append(state)
        if updated_after:
            sql += " AND updated_at >= ?"
            args.append(updated_after.isoformat())
        if updated_before:
            sql += " AND updated_at < ?"
            args.append(updated_before.isoformat())
        sql += " ORDER BY number LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [alert_from_json(r[0]) for r in rows]


def _as_records(rows: list[tuple], filter_bytes: int, width: int) -> StoredRecords:  # type: ignore[type-arg]
    n = len(rows)
    keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    bits = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.uint8).reshape(n, filter_bytes)
    ids = np.frombuffer(b"".join(r[4] for r in rows), dtype="<u8").reshape(n, width)
    return StoredRecords(
        keys,
        tuple(r[1] for r in rows),
        tuple(r[2] for r in rows),
        bits,
        ids.astype(np.uint64),
    )
