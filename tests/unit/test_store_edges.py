"""Dice edges kept in the store across restarts, and the v5 migration's completeness mark."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from linkage_service.store._edges import load_edges, save_edges
from linkage_service.store.migrations import MIGRATIONS, migrate

pytestmark = pytest.mark.unit


def _work(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("INSERT INTO work VALUES (?, 'batch', 1, NULL, NULL)", (seq,))


def test_edges_come_back_in_work_order(tmp_path):
    conn = sqlite3.connect(tmp_path / "s.db")
    migrate(conn)
    assert [len(a) for a in load_edges(conn)] == [0, 0, 0]
    _work(conn, 1)
    _work(conn, 2)
    save_edges(conn, 2, (np.array([7]), np.array([9]), np.array([40])))
    save_edges(conn, 1, (np.array([1, 2]), np.array([3, 4]), np.array([50, 60])))
    save_edges(conn, 3, (np.zeros(0, np.int64),) * 3)  # nothing found: no row
    key_u, key_v, common = load_edges(conn)
    assert (key_u.tolist(), key_v.tolist(), common.tolist()) == ([1, 2, 7], [3, 4, 9], [50, 60, 40])
    assert key_u.dtype == np.int64 and common.dtype == np.int32
    assert conn.execute("SELECT COUNT(*) FROM edges").fetchone()[0] == 2


def test_a_store_that_matched_before_edges_were_kept_is_not_complete(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db")
    for version, statements in enumerate(MIGRATIONS[:4]):
        for statement in statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version + 1}")
    _work(conn, 1)
    conn.commit()
    migrate(conn)
    assert load_edges(conn) is None  # its index compares restored components again instead
