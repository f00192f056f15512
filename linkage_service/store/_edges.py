"""The standing index's Dice edges in the store: one row per piece of matching work."""

from __future__ import annotations

import sqlite3

import numpy as np

__all__ = ["EDGES_COMPLETE", "load_edges", "save_edges"]

EDGES_COMPLETE = "edges_complete"  # meta key: every finished piece of work saved its edges


def save_edges(
    conn: sqlite3.Connection, seq: int, edges: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    key_u, key_v, common = edges
    if key_u.size:
        conn.execute(
            "INSERT INTO edges VALUES (?, ?, ?, ?)",
            (
                seq,
                np.ascontiguousarray(key_u, "<i8").tobytes(),
                np.ascontiguousarray(key_v, "<i8").tobytes(),
                np.ascontiguousarray(common, "<i4").tobytes(),
            ),
        )


def load_edges(conn: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(key_u, key_v, common) of every saved edge, withdrawn records' included; None if the
    store did work before it kept edges."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (EDGES_COMPLETE,)).fetchone()
    if row is None or row[0] != "1":
        return None
    rows = conn.execute("SELECT key_u, key_v, common FROM edges ORDER BY seq").fetchall()
    parts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int32)]
    for key_u, key_v, common in rows:
        parts[0].append(np.frombuffer(key_u, "<i8").astype(np.int64))
        parts[1].append(np.frombuffer(key_v, "<i8").astype(np.int64))
        parts[2].append(np.frombuffer(common, "<i4").astype(np.int32))
    return (np.concatenate(parts[0]), np.concatenate(parts[1]), np.concatenate(parts[2]))
