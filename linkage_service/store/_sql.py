"""Transactions on a connection opened in autocommit mode (isolation_level=None)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["transaction"]


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error: a write takes the lock up front,
    so two writers never deadlock half-way through."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        # a failed COMMIT (disk full, I/O error) can leave the transaction open: close it, so
        # the shared connection never shows uncommitted rows or refuses the next BEGIN
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
